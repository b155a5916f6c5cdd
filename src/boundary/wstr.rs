//! 1C strings are UTF-16LE with 2-byte units on every OS (never `wchar_t` on Linux).

use std::mem::MaybeUninit;

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
    // Other text (Cyrillic) is encoded into the same buffer by hand: char by char through
    // `String::push` took three times as long.
    let mut bytes = std::mem::take(out).into_bytes();
    // Three bytes per unit is the most any takes (a pair's four bytes come from two units);
    // writing by index into room sized once beat pushing byte by byte.
    bytes.clear();
    bytes.resize(units.len() * 3, 0);
    let (mut i, mut n) = (0, 0);
    while i < units.len() {
        let u = u32::from(units[i]);
        i += 1;
        if u < 0x80 {
            bytes[n] = u as u8;
            n += 1;
        } else if u < 0x800 {
            bytes[n] = 0xC0 | (u >> 6) as u8;
            bytes[n + 1] = 0x80 | (u & 0x3F) as u8;
            n += 2;
        } else if !(0xD800..0xE000).contains(&u) {
            bytes[n] = 0xE0 | (u >> 12) as u8;
            bytes[n + 1] = 0x80 | (u >> 6 & 0x3F) as u8;
            bytes[n + 2] = 0x80 | (u & 0x3F) as u8;
            n += 3;
        } else {
            let low = units.get(i).map_or(0, |&l| u32::from(l));
            if u >= 0xDC00 || !(0xDC00..0xE000).contains(&low) {
                return Err(BadUtf16 {
                    position: first_unpaired(units),
                });
            }
            i += 1;
            let c = 0x10000 + ((u - 0xD800) << 10) + (low - 0xDC00);
            bytes[n] = 0xF0 | (c >> 18) as u8;
            bytes[n + 1] = 0x80 | (c >> 12 & 0x3F) as u8;
            bytes[n + 2] = 0x80 | (c >> 6 & 0x3F) as u8;
            bytes[n + 3] = 0x80 | (c & 0x3F) as u8;
            n += 4;
        }
    }
    bytes.truncate(n);
    // SAFETY: every unit above became its scalar value's UTF-8 sequence (surrogates only in
    // pairs, which form scalars above U+FFFF), so `bytes` is valid UTF-8.
    *out = unsafe { String::from_utf8_unchecked(bytes) };
    Ok(())
}

/// Writes `s` as UTF-16 into `out`, as much as there is room for (never half a surrogate
/// pair; `units(s)` is room for all); returns the units written. By hand: `encode_utf16` went
/// a char at a time through a generic iterator.
pub fn encode_into(s: &str, out: &mut [MaybeUninit<u16>]) -> usize {
    if s.is_ascii() {
        return widen(s.as_bytes(), out);
    }
    let b = s.as_bytes();
    let (mut i, mut n) = (0, 0);
    while i < b.len() && n < out.len() {
        let lead = u32::from(b[i]);
        // `s` is valid UTF-8, so a lead byte's continuation bytes are there.
        let (c, len) = if lead < 0x80 {
            (lead, 1)
        } else if lead < 0xE0 {
            ((lead & 0x1F) << 6 | cont(b[i + 1]), 2)
        } else if lead < 0xF0 {
            (
                (lead & 0x0F) << 12 | cont(b[i + 1]) << 6 | cont(b[i + 2]),
                3,
            )
        } else {
            let c =
                (lead & 0x07) << 18 | cont(b[i + 1]) << 12 | cont(b[i + 2]) << 6 | cont(b[i + 3]);
            (c, 4)
        };
        i += len;
        if c < 0x10000 {
            out[n].write(c as u16);
            n += 1;
        } else if n + 1 < out.len() {
            let c = c - 0x10000;
            out[n].write(0xD800 | (c >> 10) as u16);
            out[n + 1].write(0xDC00 | (c & 0x3FF) as u16);
            n += 2;
        } else {
            break;
        }
    }
    n
}

/// ASCII `bytes` as UTF-16 into `out`, as many as fit; returns the units written.
pub fn widen(bytes: &[u8], out: &mut [MaybeUninit<u16>]) -> usize {
    // A plain widening loop, which the compiler vectorizes.
    for (o, &b) in out.iter_mut().zip(bytes) {
        o.write(u16::from(b));
    }
    bytes.len().min(out.len())
}

/// UTF-16 units of `s`: one per character, two for those above U+FFFF (4-byte sequences).
pub fn units(s: &str) -> usize {
    // Counted in u8 per chunk of 255 bytes, which the compiler vectorizes; a usize sum per
    // byte did not.
    let (mut continuation, mut four) = (0, 0);
    for chunk in s.as_bytes().chunks(255) {
        let (mut c, mut f) = (0u8, 0u8);
        for &b in chunk {
            c += u8::from((b as i8) < -64);
            f += u8::from(b >= 0xF0);
        }
        continuation += usize::from(c);
        four += usize::from(f);
    }
    s.len() - continuation + four
}

fn cont(b: u8) -> u32 {
    u32::from(b & 0x3F)
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

    /// Text of every UTF-8 length, and surrogate pairs, in both directions against std's
    /// conversions.
    #[test]
    fn hand_conversions_agree_with_std() {
        let pieces = [
            "a",
            "~",
            "\u{7f}",
            "\u{80}",
            "ж",
            "\u{7ff}",
            "\u{800}",
            "€",
            "\u{d7ff}",
            "\u{e000}",
            "\u{fffd}",
            "\u{ffff}",
            "\u{10000}",
            "🙂",
            "\u{10ffff}",
        ];
        let mut seed = 7u64;
        for len in 0..200 {
            let s: String = (0..len)
                .map(|_| {
                    seed = seed
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    pieces[(seed >> 33) as usize % pieces.len()]
                })
                .collect();
            let units: Vec<u16> = s.encode_utf16().collect();
            assert_eq!(decode(&units).unwrap(), s);
            let mut room = vec![MaybeUninit::uninit(); s.len()];
            let n = encode_into(&s, &mut room);
            // SAFETY: `encode_into` wrote the first `n` units.
            let got: Vec<u16> = room[..n]
                .iter()
                .map(|u| unsafe { u.assume_init() })
                .collect();
            assert_eq!(got, units, "{s:?}");
            assert_eq!(super::units(&s), units.len(), "{s:?}");
        }
    }

    #[test]
    fn unpaired_surrogates_are_reported_with_position() {
        assert_eq!(decode(&[0x41, 0xD800, 0x42]).unwrap_err().position, 1);
        assert_eq!(decode(&[0x41, 0x42, 0xDC00]).unwrap_err().position, 2);
        assert_eq!(decode(&[0xD83D]).unwrap_err().position, 0);
    }
}
