//! 1C strings are UTF-16LE with 2-byte units on every OS (never `wchar_t` on Linux).

/// Longest NUL-terminated string we scan for; names and locales are short, and a missing
/// terminator must not walk through the whole address space.
pub const MAX_SCAN: usize = 1 << 20;

/// UTF-16 units of `s` followed by a NUL.
pub fn encode_nul(s: &str) -> Vec<u16> {
    s.encode_utf16().chain(std::iter::once(0)).collect()
}

/// Decodes strictly: unpaired surrogates are an error, not silently replaced, so the caller can
/// tell the user their string was damaged instead of sending something else to Kafka.
pub fn decode(units: &[u16]) -> Result<String, BadUtf16> {
    let mut out = String::new();
    decode_into(units, &mut out)?;
    Ok(out)
}

/// `decode` into `out`, reusing its buffer (a call's arguments reuse the previous call's).
pub fn decode_into(units: &[u16], out: &mut String) -> Result<(), BadUtf16> {
    out.clear();
    // ASCII (most message bodies and all JSON keys): narrow and check in one pass without an
    // early exit, which the compiler vectorizes; an `all()` check first ran a unit at a time.
    let mut seen = 0u16;
    {
        // SAFETY: the buffer holds only ASCII when this block ends, or is cleared below before
        // anyone reads it as a str.
        let bytes = unsafe { out.as_mut_vec() };
        bytes.resize(units.len(), 0);
        for (b, &u) in bytes.iter_mut().zip(units) {
            *b = u as u8;
            seen |= u;
        }
        if seen >= 0x80 {
            bytes.clear();
        }
    }
    if seen < 0x80 {
        return Ok(());
    }
    // Other text (Cyrillic) is decoded into the same buffer.
    for c in char::decode_utf16(units.iter().copied()) {
        match c {
            Ok(c) => out.push(c),
            Err(_) => {
                out.clear();
                return Err(BadUtf16 {
                    position: first_unpaired(units),
                });
            }
        }
    }
    Ok(())
}

/// Index of the first unpaired surrogate, for the error message.
fn first_unpaired(units: &[u16]) -> usize {
    let mut i = 0;
    while i < units.len() {
        let u = units[i];
        if (0xD800..0xDC00).contains(&u) {
            if i + 1 < units.len() && (0xDC00..0xE000).contains(&units[i + 1]) {
                i += 2;
                continue;
            }
            return i;
        }
        if (0xDC00..0xE000).contains(&u) {
            return i;
        }
        i += 1;
    }
    units.len()
}

/// A string from 1C that is not valid UTF-16.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadUtf16 {
    /// Index (in UTF-16 units) of the first unpaired surrogate.
    pub position: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_cyrillic_and_astral() {
        let s = "Кафка 🚀 ok";
        let units = encode_nul(s);
        assert_eq!(*units.last().unwrap(), 0);
        assert_eq!(decode(&units[..units.len() - 1]).unwrap(), s);
    }

    #[test]
    fn unpaired_surrogates_are_reported_with_position() {
        assert_eq!(decode(&[0x41, 0xD800, 0x42]).unwrap_err().position, 1);
        assert_eq!(decode(&[0x41, 0x42, 0xDC00]).unwrap_err().position, 2);
        assert_eq!(decode(&[0xD83D]).unwrap_err().position, 0);
    }
}
