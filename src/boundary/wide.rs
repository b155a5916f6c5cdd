//! Text the component writes itself, straight into the UTF-16 string 1C receives: for answers
//! that run to hundreds of megabytes (Flush after a million ProduceAsync calls), where building
//! a String first and converting it doubled the memory touched.

use std::fmt;
use std::mem::MaybeUninit;
use std::sync::Arc;

use super::wstr;

type Writer = dyn Fn(&mut WideOut<'_>) + Send + Sync;

/// A string of `len` UTF-16 units that `write` produces on demand.
#[derive(Clone)]
pub struct WideText {
    len: usize,
    write: Arc<Writer>,
}

impl WideText {
    /// `write` must put exactly `len` units into the `WideOut` it is given; more are cut off
    /// and fewer make a shorter string.
    pub fn new(len: usize, write: impl Fn(&mut WideOut<'_>) + Send + Sync + 'static) -> WideText {
        WideText {
            len,
            write: Arc::new(write),
        }
    }

    /// Its length in UTF-16 units.
    pub fn units(&self) -> usize {
        self.len
    }

    /// Writes into `room` (at least `len` units); returns how many units were written.
    pub fn write_into(&self, room: &mut [MaybeUninit<u16>]) -> usize {
        let mut out = WideOut { room, at: 0 };
        (self.write)(&mut out);
        out.at
    }

    /// The text as a Rust string (tests and diagnostics).
    pub fn to_units(&self) -> Vec<u16> {
        let mut room = vec![MaybeUninit::uninit(); self.len];
        let n = self.write_into(&mut room);
        room[..n]
            .iter()
            // SAFETY: `write_into` initialised the first `n` units.
            .map(|u| unsafe { u.assume_init() })
            .collect()
    }
}

impl fmt::Debug for WideText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", String::from_utf16_lossy(&self.to_units()))
    }
}

impl PartialEq for WideText {
    fn eq(&self, other: &WideText) -> bool {
        self.to_units() == other.to_units()
    }
}

/// Where a `WideText` writes: fixed room, filled from the front. Writing past the end is cut
/// off rather than a panic, so a miscounted length cannot leave host memory half-owned.
pub struct WideOut<'a> {
    room: &'a mut [MaybeUninit<u16>],
    at: usize,
}

impl WideOut<'_> {
    /// Appends `s` (as much as there is room for; never half a surrogate pair).
    pub fn push_str(&mut self, s: &str) {
        self.at += wstr::encode_into(s, &mut self.room[self.at..]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_what_it_was_sized_for_and_cuts_off_the_rest() {
        let parts = ["ab", "–Ж", "🙂", "z"];
        let len: usize = parts.iter().map(|p| wstr::units(p)).sum();
        assert_eq!(len, 2 + 2 + 2 + 1);
        let text = WideText::new(len, move |out| parts.iter().for_each(|p| out.push_str(p)));
        assert_eq!(String::from_utf16(&text.to_units()).unwrap(), "ab–Ж🙂z");
        let short = WideText::new(3, |out| {
            out.push_str("abcd");
            out.push_str("e");
        });
        assert_eq!(short.to_units(), "abc".encode_utf16().collect::<Vec<_>>());
        assert_eq!(short, WideText::new(3, |out| out.push_str("abc")));
        assert!(WideText::new(0, |_| {}).to_units().is_empty());
    }
}
