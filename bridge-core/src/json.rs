//! JSON text written for size: client frames everywhere, and in the browser
//! module also its reports, snapshots, failures and policies. Each type says
//! how it is written ([`ToJson`], mostly through
//! [`json_object!`](crate::json_object!)), into an [`Out`] that knows only
//! strings, whole numbers, floats, `true`/`false`/`null` and where commas go:
//! serde's serializers, one monomorph per value type with their `Result`
//! plumbing, weighed more in the module than the values they wrote. The text
//! is serde_json's compact form (the tests compare the two for every type,
//! and the serde derives stay for the backend), except for finite floats,
//! which the caller's [`FloatWriter`] writes: the browser hands them to the
//! engine's `String(x)`, which `JSON.parse` reads back exactly.

/// Appends a finite float to the text as a JSON number.
pub type FloatWriter = fn(f64, &mut String);

/// Rust's own shortest round-trip text (`0.1`, `43.25`, `-2`). Natively only:
/// core's float printer would weigh ~17 KB in the browser module.
pub fn rust_floats(x: f64, out: &mut String) {
    use std::fmt::Write;
    let _ = write!(out, "{x}");
}

/// For values without floats (client frames): `null`, and no float printer
/// linked in for a call that never comes.
pub fn no_floats(_: f64, out: &mut String) {
    out.push_str("null");
}

/// `value` as compact JSON, finite floats written by `floats`.
pub fn to_text(value: &dyn ToJson, floats: FloatWriter) -> String {
    let mut out = Out { text: String::new(), floats };
    value.write_json(&mut out);
    out.text
}

/// A value that can write itself as JSON.
pub trait ToJson {
    /// Appends the value to `out`.
    fn write_json(&self, out: &mut Out);
}

/// An object's members without its braces: what an enclosing object inlines
/// (serde's `flatten`) or writes after its tag (internally tagged enums).
pub trait Fields {
    /// Appends `"key":value` members to the object `out` is writing.
    fn write_fields(&self, out: &mut Out);
}

/// Whether a `"key"?:` member of [`json_fields!`](crate::json_fields!) is left
/// out: `None`, an empty `Vec`, `false` (serde's `skip_serializing_if`).
pub trait Omit {
    /// True when the member is left out.
    fn omit(&self) -> bool;
}

/// The text being written. Commas are found from the text itself: one goes
/// before a member or an element unless the object or array just opened.
#[derive(Debug)]
pub struct Out {
    text: String,
    floats: FloatWriter,
}

impl Out {
    /// A JSON string (escaped as serde_json escapes).
    #[inline(never)]
    pub fn str(&mut self, s: &str) {
        let out = &mut self.text;
        out.push('"');
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '\u{8}' => out.push_str("\\b"),
                '\u{c}' => out.push_str("\\f"),
                c if (c as u32) < 0x20 => {
                    const HEX: &[u8; 16] = b"0123456789abcdef";
                    out.push_str("\\u00");
                    out.push(HEX[(c as usize) >> 4] as char);
                    out.push(HEX[(c as usize) & 15] as char);
                }
                c => out.push(c),
            }
        }
        out.push('"');
    }

    /// Text that is JSON already, as is.
    pub fn raw(&mut self, json: &str) {
        self.text.push_str(json);
    }

    /// A whole number.
    pub fn unsigned(&mut self, v: u64) {
        crate::text::unsigned(&mut self.text, v);
    }

    /// A whole number that may be negative.
    pub fn signed(&mut self, v: i64) {
        if v < 0 {
            self.text.push('-');
        }
        self.unsigned(v.unsigned_abs());
    }

    /// `true` or `false`.
    pub fn bool(&mut self, v: bool) {
        self.raw(if v { "true" } else { "false" });
    }

    /// `null`.
    pub fn null(&mut self) {
        self.raw("null");
    }

    /// A float: the writer's text when finite, else `null` (as serde_json).
    #[inline(never)]
    pub fn float(&mut self, x: f64) {
        if x.is_finite() { (self.floats)(x, &mut self.text) } else { self.null() }
    }

    /// A comma, unless the enclosing object or array has nothing yet.
    #[inline(never)]
    pub fn comma(&mut self) {
        if !matches!(self.text.as_bytes().last(), None | Some(b'{' | b'[')) {
            self.text.push(',');
        }
    }

    /// `"key":` of the next member, after a comma when needed.
    #[inline(never)]
    pub fn key(&mut self, key: &str) {
        self.comma();
        self.str(key);
        self.text.push(':');
    }

    /// An internally tagged enum's variant: `{"tag":"name"` and `fields`' members.
    #[inline(never)]
    pub fn tagged(&mut self, tag: &str, name: &str, fields: &dyn Fields) {
        self.text.push('{');
        self.key(tag);
        self.str(name);
        fields.write_fields(self);
        self.text.push('}');
    }

    /// `[` before an array's elements (each after [`Out::comma`]).
    pub fn open_array(&mut self) {
        self.text.push('[');
    }

    /// `]` after them.
    pub fn close_array(&mut self) {
        self.text.push(']');
    }

    /// `{` before an object's members (each after [`Out::key`]).
    pub fn open_object(&mut self) {
        self.text.push('{');
    }

    /// `}` after them.
    pub fn close_object(&mut self) {
        self.text.push('}');
    }

    /// An object of `fields`' members (generic and inlined: the braces cost less than a call).
    #[inline(always)]
    pub fn object<F: Fields + ?Sized>(&mut self, fields: &F) {
        self.open_object();
        fields.write_fields(self);
        self.close_object();
    }
}

/// Writes members into the object being written, in order: `"key": value`;
/// `"key"?: value`, left out when [`Omit`]; `..value`, a [`Fields`] value's
/// members inlined.
#[macro_export]
macro_rules! json_fields {
    ($out:ident; $(,)?) => {{}};
    ($out:ident; .. $value:expr $(, $($rest:tt)*)?) => {{
        $crate::json::Fields::write_fields(&$value, $out);
        $($crate::json_fields!($out; $($rest)*);)?
    }};
    ($out:ident; $key:literal ?: $value:expr $(, $($rest:tt)*)?) => {{
        if !$crate::json::Omit::omit(&$value) {
            $out.key($key);
            $crate::json::ToJson::write_json(&$value, $out);
        }
        $($crate::json_fields!($out; $($rest)*);)?
    }};
    ($out:ident; $key:literal : $value:expr $(, $($rest:tt)*)?) => {{
        $out.key($key);
        $crate::json::ToJson::write_json(&$value, $out);
        $($crate::json_fields!($out; $($rest)*);)?
    }};
}

/// Implements [`ToJson`] (an object) and [`Fields`] for a struct, its members
/// as in [`json_fields!`](crate::json_fields!) with `s` for the value:
/// `json_object!(Moved, |s| "from": s.from, "to": s.to);`
#[macro_export]
macro_rules! json_object {
    ($t:ty, |$s:ident| $($members:tt)*) => {
        impl $crate::json::Fields for $t {
            fn write_fields(&self, out: &mut $crate::json::Out) {
                let $s = self;
                $crate::json_fields!(out; $($members)*);
            }
        }
        impl $crate::json::ToJson for $t {
            fn write_json(&self, out: &mut $crate::json::Out) {
                out.object(self);
            }
        }
    };
}

/// Implements [`ToJson`] for a fieldless enum as its variants' names:
/// `json_names!(Priority { Low: "low", Normal: "normal", High: "high" });`
#[macro_export]
macro_rules! json_names {
    ($t:ty { $($variant:ident: $name:literal),* $(,)? }) => {
        impl $crate::json::ToJson for $t {
            fn write_json(&self, out: &mut $crate::json::Out) {
                out.str(match self {
                    $(Self::$variant => $name,)*
                });
            }
        }
    };
}

impl ToJson for str {
    fn write_json(&self, out: &mut Out) {
        out.str(self);
    }
}

impl ToJson for String {
    fn write_json(&self, out: &mut Out) {
        out.str(self);
    }
}

impl ToJson for bool {
    fn write_json(&self, out: &mut Out) {
        out.bool(*self);
    }
}

impl ToJson for f64 {
    fn write_json(&self, out: &mut Out) {
        out.float(*self);
    }
}

/// Whole numbers, each widened to the writer's one integer method.
macro_rules! integers {
    ($($t:ty => $method:ident),*) => {$(
        impl ToJson for $t {
            fn write_json(&self, out: &mut Out) {
                out.$method((*self).into());
            }
        }
    )*};
}

integers!(u8 => unsigned, u16 => unsigned, u32 => unsigned, u64 => unsigned, i32 => signed, i64 => signed);

impl<T: ToJson + ?Sized> ToJson for &T {
    fn write_json(&self, out: &mut Out) {
        (**self).write_json(out);
    }
}

impl<T: ToJson> ToJson for Option<T> {
    fn write_json(&self, out: &mut Out) {
        match self {
            Some(v) => v.write_json(out),
            None => out.null(),
        }
    }
}

impl<T: ToJson> ToJson for [T] {
    fn write_json(&self, out: &mut Out) {
        out.open_array();
        for v in self {
            out.comma();
            v.write_json(out);
        }
        out.close_array();
    }
}

impl<T: ToJson> ToJson for Vec<T> {
    fn write_json(&self, out: &mut Out) {
        self.as_slice().write_json(out);
    }
}

impl<T: ToJson, const N: usize> ToJson for [T; N] {
    fn write_json(&self, out: &mut Out) {
        self.as_slice().write_json(out);
    }
}

/// Tuples are arrays, as in serde.
impl<A: ToJson, B: ToJson> ToJson for (A, B) {
    fn write_json(&self, out: &mut Out) {
        let items: [&dyn ToJson; 2] = [&self.0, &self.1];
        items.write_json(out);
    }
}

impl<A: ToJson, B: ToJson, C: ToJson> ToJson for (A, B, C) {
    fn write_json(&self, out: &mut Out) {
        let items: [&dyn ToJson; 3] = [&self.0, &self.1, &self.2];
        items.write_json(out);
    }
}

impl<T> Omit for Option<T> {
    fn omit(&self) -> bool {
        self.is_none()
    }
}

impl<T> Omit for Vec<T> {
    fn omit(&self) -> bool {
        self.is_empty()
    }
}

impl<T: Omit + ?Sized> Omit for &T {
    fn omit(&self) -> bool {
        (**self).omit()
    }
}

impl Omit for bool {
    fn omit(&self) -> bool {
        !self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(v: &dyn ToJson) -> String {
        to_text(v, rust_floats)
    }

    struct Point {
        x: u32,
        label: Option<String>,
        tags: Vec<&'static str>,
        on: bool,
    }

    crate::json_object!(Point, |s| "x": s.x, "label"?: s.label, "tags"?: s.tags, "on"?: s.on);

    struct Outer {
        point: Point,
        n: i64,
    }

    crate::json_object!(Outer, |s| "n": s.n, ..s.point, "again": s.point);

    #[test]
    fn members_are_written_in_order_with_omissions_and_inlined_fields() {
        let p = Point { x: 1, label: None, tags: vec![], on: false };
        assert_eq!(text(&p), r#"{"x":1}"#);
        let p = Point { x: 0, label: Some("a\"\\\n\u{1}é".into()), tags: vec!["t", "u"], on: true };
        assert_eq!(text(&p), r#"{"x":0,"label":"a\"\\\n\u0001é","tags":["t","u"],"on":true}"#);
        let o = Outer { point: Point { x: 2, label: None, tags: vec![], on: true }, n: -5 };
        assert_eq!(text(&o), r#"{"n":-5,"x":2,"on":true,"again":{"x":2,"on":true}}"#);
    }

    #[test]
    fn strings_are_escaped_as_serde_json_escapes_them() {
        let every_ascii: String = (0..128u8).map(char::from).collect();
        for s in [every_ascii.as_str(), "", "é€😀\u{0}x\u{1f}", "\"\"", "plain"] {
            assert_eq!(text(&s), serde_json::to_string(s).unwrap());
        }
    }

    #[test]
    fn containers_and_numbers() {
        assert_eq!(text(&(u64::MAX, i64::MIN, "")), format!("[{},{},\"\"]", u64::MAX, i64::MIN));
        assert_eq!(text(&Vec::<Vec<u8>>::from([vec![], vec![7]])), "[[],[7]]");
        assert_eq!(text(&[Some(1u8), None]), "[1,null]");
    }

    #[test]
    fn floats_are_the_writers_and_non_finite_ones_are_null() {
        fn fixed(_: f64, out: &mut String) {
            out.push_str("1.5");
        }
        assert_eq!(to_text(&[0.1, f64::NAN, f64::INFINITY, f64::NEG_INFINITY], fixed), "[1.5,null,null,null]");
        assert_eq!(text(&[0.1, 43.25, -2.0]), "[0.1,43.25,-2]");
        assert_eq!(to_text(&[1.0], no_floats), "[null]");
    }
}
