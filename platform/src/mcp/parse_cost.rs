//! What parsing a body will cost in memory, known before the tree is built. rmcp parses a body
//! into `serde_json` values (through serde's buffered `Content` for its untagged enums), and a
//! small body can take many times its size that way: every value is a 32-byte slot, every
//! non-empty object a map of its own (~300 bytes), every string an allocation, so `[0,0,...]`
//! takes 13 times its bytes and `[{"":0},...]` 47 times (measured on the release binary, README
//! "Overload"), while the body itself is charged once. One linear scan (`memchr` between strings,
//! no tree, no allocation) counts what makes a tree large; the estimate is charged to the
//! memory budget beyond the body's own bytes, and a body whose tree would be too large for any
//! budget is refused.

/// Bytes the parsed tree takes per value (its `Value` slot, vector slack, the allocator's
/// rounding), per non-empty object (its map) and per string or key (its own allocation): fitted
/// over the measured peaks of the real path (per held 1 MB body: `[0,...]` 24 bytes a value,
/// `[[],...]` 29 a `[],`, `[[0],...]` 72 a `[0],`, `["a",...]` 32 a `"a",`, `{"k":0,...}` 75 a
/// member, `[{"":0},...]` 324 an object), so that the estimate is above each: 1.3 to 2 times.
const PER_VALUE: u64 = 48;
const PER_OBJECT: u64 = 256;
const PER_STRING: u64 = 32;

/// What a JSON body holds, counted without parsing it.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    /// Values (approximately: separators and openings, a little over for empty containers).
    pub values: u64,
    /// Objects with at least one member.
    pub objects: u64,
    /// Strings, keys included.
    pub strings: u64,
}

impl Shape {
    /// Counts the structure of `body` (valid JSON or not: this only bounds memory).
    pub fn of(body: &[u8]) -> Self {
        let mut shape = Self {
            values: 1,
            ..Self::default()
        };
        let mut at = 0;
        while at < body.len() {
            let rest = &body[at..];
            let quote = memchr::memchr(b'"', rest).unwrap_or(rest.len());
            let mut previous = 0u8;
            for &byte in &rest[..quote] {
                match byte {
                    b',' | b'[' => shape.values += 1,
                    b':' => shape.values += 1,
                    b'{' => shape.values += 1,
                    b'}' if previous != b'{' => shape.objects += 1,
                    _ => {}
                }
                if !byte.is_ascii_whitespace() {
                    previous = byte;
                }
            }
            if quote == rest.len() {
                break;
            }
            // A string: to its closing quote, past escaped ones.
            at += quote + 1;
            shape.strings += 1;
            loop {
                match memchr::memchr2(b'"', b'\\', &body[at.min(body.len())..]) {
                    Some(p) if body[at + p] == b'\\' => at += p + 2,
                    Some(p) => {
                        at += p + 1;
                        break;
                    }
                    None => return shape,
                }
            }
        }
        shape
    }

    /// The memory the parsed trees of such a body take, at most (their strings' bytes aside:
    /// those are about the body's own size, which the budget charges already).
    pub fn parsed_bytes(&self) -> u64 {
        self.values
            .saturating_mul(PER_VALUE)
            .saturating_add(self.objects.saturating_mul(PER_OBJECT))
            .saturating_add(self.strings.saturating_mul(PER_STRING))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_values_objects_and_strings_outside_strings_only() {
        let shape = Shape::of(br#"{"a":[1,2,{"b":"x,{[:"}],"c":{}}"#);
        // 8 values (the root, a's array, 1, 2, the inner object, "x,{[:", c's object and the
        // root's two members' separators count a little over); the empty object is no map.
        assert_eq!(shape.objects, 2, "{shape:?}");
        assert_eq!(shape.strings, 4, "{shape:?}");
        assert!((8..=11).contains(&shape.values), "{shape:?}");
        // Escaped quotes do not end a string.
        let escaped = Shape::of(br#"["a\"b,c,d,e", "\\", 1]"#);
        assert_eq!((escaped.strings, escaped.values), (2, 4), "{escaped:?}");
        // An unterminated string ends the count, without reading past the body.
        assert_eq!(Shape::of(br#"["abc\"#).strings, 1);
    }

    #[test]
    fn a_long_string_is_cheap_and_many_tiny_objects_are_not() {
        let text = format!(r#"{{"pad":"{}"}}"#, "x,{[".repeat(250_000));
        let plain = Shape::of(text.as_bytes());
        assert!(plain.parsed_bytes() < 2_000, "{plain:?}");
        let tiny = format!("[{}{{\"\":0}}]", r#"{"":0},"#.repeat(142_000));
        let objects = Shape::of(tiny.as_bytes());
        assert_eq!(objects.objects, 142_001);
        assert!(
            objects.parsed_bytes() > 47 * tiny.len() as u64,
            "{objects:?}"
        );
    }
}
