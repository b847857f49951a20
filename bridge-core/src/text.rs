//! Messages without `core::fmt`, for the code the browser module runs
//! (failures, refusals, policy and breaker errors, protocol rules, ids): the
//! formatter machinery and its integer printers would otherwise be compiled
//! into the module for a few dozen short sentences. [`text!`](crate::text!)
//! joins pieces (strings, characters, whole numbers) into a `String`.
//!
//! ```
//! use bridge_core::text;
//! assert_eq!(text!("gave up after ", 3u32, " attempts"), "gave up after 3 attempts");
//! ```

/// Something [`text!`](crate::text!) can append.
pub trait Piece {
    /// Appends itself to `out`.
    fn push_to(&self, out: &mut String);
}

impl Piece for str {
    fn push_to(&self, out: &mut String) {
        out.push_str(self);
    }
}

impl Piece for String {
    fn push_to(&self, out: &mut String) {
        out.push_str(self);
    }
}

impl Piece for char {
    fn push_to(&self, out: &mut String) {
        out.push(*self);
    }
}

impl<T: Piece + ?Sized> Piece for &T {
    fn push_to(&self, out: &mut String) {
        (**self).push_to(out);
    }
}

macro_rules! unsigned_pieces {
    ($($t:ty),*) => {$(
        impl Piece for $t {
            fn push_to(&self, out: &mut String) {
                unsigned(out, *self as u64);
            }
        }
    )*};
}

unsigned_pieces!(u8, u16, u32, u64, usize);

impl Piece for i64 {
    fn push_to(&self, out: &mut String) {
        if *self < 0 {
            out.push('-');
        }
        unsigned(out, self.unsigned_abs());
    }
}

/// Appends `v` in decimal.
#[inline(never)]
pub fn unsigned(out: &mut String, mut v: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    for &d in &digits[i..] {
        out.push(d as char);
    }
}

/// Joins its pieces (anything [`Piece`]: `&str`, `String`, `char`, whole numbers) into a `String`.
#[macro_export]
macro_rules! text {
    ($($piece:expr),* $(,)?) => {{
        #[allow(unused_mut)]
        let mut out = ::std::string::String::new();
        $( $crate::text::Piece::push_to(&$piece, &mut out); )*
        out
    }};
}

#[cfg(test)]
mod tests {
    #[test]
    fn pieces_join_as_format_would_write_them() {
        assert_eq!(
            text!("a", 'b', String::from("c"), 0u8, 65535u16, u64::MAX, -7i64, 12usize),
            format!("abc065535{}-712", u64::MAX)
        );
        assert_eq!(text!(), "");
    }
}
