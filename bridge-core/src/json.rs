//! JSON text from any `Serialize` value, written for size: client frames
//! everywhere, and in the browser module also its reports and snapshots, are
//! written with this instead of serde_json, whose formatter, float printer and
//! error machinery weigh more in the module than the values it writes. The
//! text is serde_json's compact form (the tests compare the two), except for
//! floats, whose text the caller's [`Floats`] writes: the browser hands them
//! to the engine's `String(x)`, which `JSON.parse` reads back exactly.

use std::fmt;

use serde::ser::{self, Serialize};

/// How a float is written (only finite ones: the others are `null`, as in serde_json).
pub trait Floats {
    /// Appends `x` to `out` as a JSON number.
    fn write(x: f64, out: &mut String);
}

/// Rust's own shortest round-trip text (`0.1`, `43.25`).
#[derive(Debug, Clone, Copy)]
pub struct RustFloats;

impl Floats for RustFloats {
    fn write(x: f64, out: &mut String) {
        use fmt::Write;
        let _ = write!(out, "{x}");
    }
}

/// `value` as compact JSON, floats written by `F`.
pub fn to_string<F: Floats, T: Serialize + ?Sized>(value: &T) -> String {
    let mut w = Writer::<F> { out: String::new(), raw: false, floats: std::marker::PhantomData };
    let _ = value.serialize(&mut w);
    w.out
}

/// serde_json's marker for a value to write as is (`RawValue`, our `Json`).
const RAW_TOKEN: &str = "$serde_json::private::RawValue";

/// The writer. Never fails: its error exists because serde wants one.
struct Writer<F> {
    out: String,
    /// The next string is raw JSON, written as is (inside a `RawValue`).
    raw: bool,
    floats: std::marker::PhantomData<F>,
}

/// Never produced by the writer itself; a value's own `Serialize` may report one.
#[derive(Debug)]
struct Error;

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("cannot be written as JSON")
    }
}

impl std::error::Error for Error {}

impl ser::Error for Error {
    fn custom<T: fmt::Display>(_: T) -> Self {
        Error
    }
}

impl<F> Writer<F> {
    #[inline(never)]
    fn string(&mut self, s: &str) {
        if std::mem::take(&mut self.raw) {
            self.out.push_str(s);
            return;
        }
        self.out.push('"');
        for c in s.chars() {
            match c {
                '"' => self.out.push_str("\\\""),
                '\\' => self.out.push_str("\\\\"),
                '\n' => self.out.push_str("\\n"),
                '\r' => self.out.push_str("\\r"),
                '\t' => self.out.push_str("\\t"),
                '\u{8}' => self.out.push_str("\\b"),
                '\u{c}' => self.out.push_str("\\f"),
                c if (c as u32) < 0x20 => {
                    const HEX: &[u8; 16] = b"0123456789abcdef";
                    self.out.push_str("\\u00");
                    self.out.push(HEX[(c as usize) >> 4] as char);
                    self.out.push(HEX[(c as usize) & 15] as char);
                }
                c => self.out.push(c),
            }
        }
        self.out.push('"');
    }

    fn unsigned(&mut self, v: u64) {
        crate::text::unsigned(&mut self.out, v);
    }

    fn signed(&mut self, v: i64) {
        if v < 0 {
            self.out.push('-');
        }
        self.unsigned(v.unsigned_abs());
    }

    /// Before an element or a key: a comma unless it is the first.
    #[inline(never)]
    fn next(&mut self, first: &mut bool) {
        if !std::mem::take(first) {
            self.out.push(',');
        }
    }

    #[inline(never)]
    fn key(&mut self, first: &mut bool, key: &str) {
        self.next(first);
        self.string(key);
        self.out.push(':');
    }
}

/// An array or an object being written; `first` until its first element.
struct Compound<'a, F> {
    w: &'a mut Writer<F>,
    first: bool,
    /// Closes with this (`]`, `}`, or `}}` for an enum variant's content).
    close: &'static str,
}

impl<'a, F: Floats> Compound<'a, F> {
    fn open(w: &'a mut Writer<F>, open: &'static str, close: &'static str) -> Self {
        w.out.push_str(open);
        Compound { w, first: true, close }
    }

    fn element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Error> {
        self.w.next(&mut self.first);
        v.serialize(&mut *self.w)
    }

    fn field<T: Serialize + ?Sized>(&mut self, key: &'static str, v: &T) -> Result<(), Error> {
        if key == RAW_TOKEN {
            self.w.raw = true;
        } else {
            self.w.key(&mut self.first, key);
        }
        v.serialize(&mut *self.w)
    }

    fn close(self) -> Result<(), Error> {
        self.w.out.push_str(self.close);
        Ok(())
    }
}

/// `{"variant":` before an enum variant's content.
fn variant<F>(w: &mut Writer<F>, name: &str) {
    w.out.push('{');
    w.string(name);
    w.out.push(':');
}

/// The serializer's integer methods: each widens its value and writes it with `$write`.
macro_rules! integers {
    ($($method:ident($t:ty) => $write:ident),*) => {$(
        fn $method(self, v: $t) -> Result<(), Error> {
            self.$write(v.into());
            Ok(())
        }
    )*};
}

impl<'a, F: Floats> ser::Serializer for &'a mut Writer<F> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Compound<'a, F>;
    type SerializeTuple = Compound<'a, F>;
    type SerializeTupleStruct = Compound<'a, F>;
    type SerializeTupleVariant = Compound<'a, F>;
    type SerializeMap = Compound<'a, F>;
    type SerializeStruct = Compound<'a, F>;
    type SerializeStructVariant = Compound<'a, F>;

    fn serialize_bool(self, v: bool) -> Result<(), Error> {
        self.out.push_str(if v { "true" } else { "false" });
        Ok(())
    }
    integers!(
        serialize_i8(i8) => signed,
        serialize_i16(i16) => signed,
        serialize_i32(i32) => signed,
        serialize_i64(i64) => signed,
        serialize_u8(u8) => unsigned,
        serialize_u16(u16) => unsigned,
        serialize_u32(u32) => unsigned,
        serialize_u64(u64) => unsigned
    );
    fn serialize_f32(self, v: f32) -> Result<(), Error> {
        self.serialize_f64(v.into())
    }
    fn serialize_f64(self, v: f64) -> Result<(), Error> {
        if v.is_finite() {
            F::write(v, &mut self.out)
        } else {
            self.out.push_str("null")
        }
        Ok(())
    }
    fn serialize_char(self, v: char) -> Result<(), Error> {
        self.string(v.encode_utf8(&mut [0; 4]));
        Ok(())
    }
    fn serialize_str(self, v: &str) -> Result<(), Error> {
        self.string(v);
        Ok(())
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<(), Error> {
        let mut seq = Compound::open(self, "[", "]");
        for b in v {
            seq.element(b)?;
        }
        seq.close()
    }
    fn serialize_none(self) -> Result<(), Error> {
        self.serialize_unit()
    }
    fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> Result<(), Error> {
        v.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), Error> {
        self.out.push_str("null");
        Ok(())
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<(), Error> {
        self.serialize_unit()
    }
    fn serialize_unit_variant(self, _: &'static str, _: u32, variant: &'static str) -> Result<(), Error> {
        self.string(variant);
        Ok(())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, _: &'static str, v: &T) -> Result<(), Error> {
        v.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        name: &'static str,
        v: &T,
    ) -> Result<(), Error> {
        variant(self, name);
        v.serialize(&mut *self)?;
        self.out.push('}');
        Ok(())
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Compound<'a, F>, Error> {
        Ok(Compound::open(self, "[", "]"))
    }
    fn serialize_tuple(self, _: usize) -> Result<Compound<'a, F>, Error> {
        Ok(Compound::open(self, "[", "]"))
    }
    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Compound<'a, F>, Error> {
        Ok(Compound::open(self, "[", "]"))
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        name: &'static str,
        _: usize,
    ) -> Result<Compound<'a, F>, Error> {
        variant(self, name);
        Ok(Compound::open(self, "[", "]}"))
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Compound<'a, F>, Error> {
        Ok(Compound::open(self, "{", "}"))
    }
    fn serialize_struct(self, name: &'static str, _: usize) -> Result<Compound<'a, F>, Error> {
        // A raw value is its text alone, with no braces around it.
        Ok(if name == RAW_TOKEN {
            Compound { w: self, first: true, close: "" }
        } else {
            Compound::open(self, "{", "}")
        })
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        name: &'static str,
        _: usize,
    ) -> Result<Compound<'a, F>, Error> {
        variant(self, name);
        Ok(Compound::open(self, "{", "}}"))
    }
}

/// The four kinds of serde sequence, each a JSON array; `$add` is the trait's method
/// for one element.
macro_rules! arrays {
    ($($kind:ident :: $add:ident),*) => {$(
        impl<F: Floats> ser::$kind for Compound<'_, F> {
            type Ok = ();
            type Error = Error;
            fn $add<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Error> {
                self.element(v)
            }
            fn end(self) -> Result<(), Error> {
                self.close()
            }
        }
    )*};
}

arrays!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field
);

impl<F: Floats> ser::SerializeMap for Compound<'_, F> {
    type Ok = ();
    type Error = Error;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, k: &T) -> Result<(), Error> {
        self.w.next(&mut self.first);
        // JSON keys are strings: a number key is written quoted, as serde_json does.
        let at = self.w.out.len();
        k.serialize(&mut *self.w)?;
        if !self.w.out[at..].starts_with('"') {
            self.w.out.insert(at, '"');
            self.w.out.push('"');
        }
        self.w.out.push(':');
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Error> {
        v.serialize(&mut *self.w)
    }
    fn end(self) -> Result<(), Error> {
        self.close()
    }
}

/// The two kinds of serde struct, each a JSON object.
macro_rules! objects {
    ($($kind:ident),*) => {$(
        impl<F: Floats> ser::$kind for Compound<'_, F> {
            type Ok = ();
            type Error = Error;
            fn serialize_field<T: Serialize + ?Sized>(&mut self, key: &'static str, v: &T) -> Result<(), Error> {
                self.field(key, v)
            }
            fn end(self) -> Result<(), Error> {
                self.close()
            }
        }
    )*};
}

objects!(SerializeStruct, SerializeStructVariant);

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde::Serialize;

    use super::*;
    use crate::protocol::{ClientFrame, Id, Json};

    /// Bytes as serde sees a `&[u8]` field with `serialize_bytes`.
    struct Bytes(&'static [u8]);
    impl Serialize for Bytes {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_bytes(self.0)
        }
    }
    fn serde_bytes_like(b: &'static [u8]) -> Bytes {
        Bytes(b)
    }

    fn same<T: Serialize>(v: &T) {
        assert_eq!(to_string::<RustFloats, _>(v), serde_json::to_string(v).unwrap());
    }

    #[derive(Serialize)]
    #[serde(tag = "kind", rename_all = "snake_case")]
    enum Tagged {
        A { n: u32, s: String },
        B,
    }

    #[derive(Serialize)]
    enum Plain {
        Unit,
        New(i64),
        Tuple(u8, bool),
        Struct { x: Option<u16> },
    }

    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Outer {
        some_field: Vec<Plain>,
        #[serde(flatten)]
        inner: Inner,
        map: BTreeMap<u32, &'static str>,
        raw: Json,
        none: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        skipped: Option<u8>,
    }

    #[derive(Serialize)]
    struct Inner {
        escapes: &'static str,
        unit: (),
        chars: [char; 2],
    }

    #[test]
    fn writes_what_serde_json_writes() {
        same(&Tagged::A { n: 7, s: "x".into() });
        same(&Tagged::B);
        same(&vec![Plain::Unit, Plain::New(-42), Plain::Tuple(255, true), Plain::Struct { x: None }]);
        same(&Outer {
            some_field: vec![Plain::Struct { x: Some(65535) }],
            inner: Inner { escapes: "\"\\\n\r\t\u{8}\u{c}\u{1}\u{1f}/é€😀", unit: (), chars: ['"', 'z'] },
            map: [(1, "one"), (20, "twenty")].into_iter().collect(),
            raw: Json::from_text(r#"{"a": [1, 2.5, "x"]}"#).unwrap(),
            none: None,
            skipped: None,
        });
        same(&(u64::MAX, i64::MIN, 0u8, "", Vec::<u8>::new()));
        same(&serde_bytes_like(b"bytes"));
    }

    #[test]
    fn client_frames_are_written_exactly_as_serde_json_writes_them() {
        let frames = [
            r#"{"type":"hello","protocol":1,"client":"page \"1\"","token":"t"}"#,
            r#"{"type":"subscribe","id":"i-1","topics":["a","b.*"],"since":{"epoch":"e","seq":7}}"#,
            r#"{"type":"publish","id":3,"topic":"t","data":{"nested":[1,2,{"x":null}]}}"#,
            r#"{"type":"send","id":"s","to":"bob","message_type":"note","content":"\u0001","priority":"high","expires_in_ms":5}"#,
            r#"{"type":"ping","id":"hb-1"}"#,
        ];
        for text in frames {
            let frame: ClientFrame = crate::protocol::decode_client(text).expect(text);
            same(&frame);
            assert_eq!(frame.to_json(), serde_json::to_string(&frame).unwrap());
        }
        same(&Id::Num(9));
    }

    #[test]
    fn floats_are_the_callers_and_non_finite_ones_are_null() {
        struct Fixed;
        impl Floats for Fixed {
            fn write(_: f64, out: &mut String) {
                out.push_str("1.5");
            }
        }
        assert_eq!(to_string::<Fixed, _>(&[0.1, f64::NAN, f64::INFINITY]), "[1.5,null,null]");
        assert_eq!(to_string::<RustFloats, _>(&[0.1, 43.25, -2.0]), "[0.1,43.25,-2]");
    }
}
