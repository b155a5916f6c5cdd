//! The host's memory manager: every string or blob handed to 1C must come from it, because 1C
//! frees them with the same manager.

use std::ffi::{c_ulong, c_void};
use std::mem::MaybeUninit;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr::{self, NonNull};

use super::object::DTOR_SLOTS;
use super::wide::WideText;
use super::wstr;

#[repr(C)]
struct MemoryManagerVtbl {
    _dtors: [usize; DTOR_SLOTS],
    alloc:
        unsafe extern "system" fn(this: *mut c_void, out: *mut *mut c_void, bytes: c_ulong) -> bool,
    free: unsafe extern "system" fn(this: *mut c_void, p: *mut *mut c_void),
}

#[repr(C)]
struct MemoryManagerObj {
    vtbl: *const MemoryManagerVtbl,
}

/// Handle to the host's IMemoryManager.
#[derive(Clone, Copy)]
pub struct Memory(NonNull<MemoryManagerObj>);

// SAFETY: the host's memory manager is a process-wide object that 1C documents as usable for the
// lifetime of the component; we only call its two thread-agnostic methods.
unsafe impl Send for Memory {}

impl Memory {
    /// `None` when the host passed NULL.
    pub fn new(raw: *mut c_void) -> Option<Memory> {
        NonNull::new(raw.cast::<MemoryManagerObj>()).map(Memory)
    }

    fn alloc_bytes(&self, bytes: usize) -> Option<NonNull<u8>> {
        let bytes = c_ulong::try_from(bytes.max(1)).ok()?;
        let mut out: *mut c_void = ptr::null_mut();
        let this = self.0.as_ptr();
        // SAFETY: `this` is the non-null manager the host gave us; the vtable layout follows 1C's header.
        let ok = unsafe { ((*(*this).vtbl).alloc)(this.cast(), &mut out, bytes) };
        if ok {
            NonNull::new(out.cast::<u8>())
        } else {
            None
        }
    }

    /// `s` as NUL-terminated UTF-16 in host memory, written in place (no intermediate buffer:
    /// PollBatch answers run to megabytes); returns the pointer and the length in units.
    pub fn alloc_str(&self, s: &str) -> Option<(NonNull<u16>, usize)> {
        if s.is_ascii() {
            return self.alloc_ascii(s.as_bytes());
        }
        self.fill(wstr::units(s), |room| wstr::encode_into(s, room))
    }

    /// UTF-8 bytes as `alloc_str` writes text; invalid sequences become U+FFFD. ASCII (most
    /// message bodies) is widened after one `is_ascii` pass, with no String in between.
    pub fn alloc_text(&self, bytes: &[u8]) -> Option<(NonNull<u16>, usize)> {
        if bytes.is_ascii() {
            return self.alloc_ascii(bytes);
        }
        match std::str::from_utf8(bytes) {
            Ok(s) => self.alloc_str(s),
            Err(_) => self.alloc_str(&String::from_utf8_lossy(bytes)),
        }
    }

    fn alloc_ascii(&self, bytes: &[u8]) -> Option<(NonNull<u16>, usize)> {
        self.fill(bytes.len(), |room| wstr::widen(bytes, room))
    }

    /// A `WideText` written straight into fresh host memory, with a NUL after it.
    pub fn alloc_wide(&self, text: &WideText) -> Option<(NonNull<u16>, usize)> {
        self.fill(text.units(), |room| {
            let written = text.write_into(room);
            debug_assert_eq!(written, room.len(), "a WideText wrote other than its size");
            written
        })
    }

    /// Fresh host memory for `len` UTF-16 units and a NUL; `write` fills the units and returns
    /// how many it wrote (at most `len`), and the NUL goes after them.
    fn fill(
        &self,
        len: usize,
        write: impl FnOnce(&mut [MaybeUninit<u16>]) -> usize,
    ) -> Option<(NonNull<u16>, usize)> {
        let p = self
            .alloc_bytes(len.checked_add(1)?.checked_mul(2)?)?
            .cast::<u16>();
        // SAFETY: `p` points to `len + 1` freshly allocated, not yet initialised u16 slots
        // (host allocations are at least 2-aligned) that nothing else references yet.
        let room: &mut [MaybeUninit<u16>] =
            unsafe { std::slice::from_raw_parts_mut(p.as_ptr().cast(), len + 1) };
        // Should a writer panic, the memory goes back before the panic does.
        let Ok(written) = catch_unwind(AssertUnwindSafe(|| write(&mut room[..len]))) else {
            self.free(p.as_ptr().cast());
            return None;
        };
        let n = written.min(len);
        room[n] = MaybeUninit::new(0);
        Some((p, n))
    }

    /// A copy of `bytes` in host memory (at least one byte is allocated so the pointer is never NULL).
    pub fn alloc_blob(&self, bytes: &[u8]) -> Option<NonNull<u8>> {
        let p = self.alloc_bytes(bytes.len())?;
        // SAFETY: `p` points to at least `bytes.len()` freshly allocated bytes.
        unsafe { ptr::copy_nonoverlapping(bytes.as_ptr(), p.as_ptr(), bytes.len()) };
        Some(p)
    }

    /// Gives back memory that came from this manager.
    pub fn free(&self, p: *mut c_void) {
        if p.is_null() {
            return;
        }
        let mut p = p;
        let this = self.0.as_ptr();
        // SAFETY: `p` was allocated by this host manager (callers only free host-owned variant payloads).
        unsafe { ((*(*this).vtbl).free)(this.cast(), &mut p) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::alloc::{alloc, dealloc, Layout};

    const HEADER: usize = 16;

    /// A host memory manager over the Rust allocator, the size kept in front of each block.
    unsafe extern "system" fn fake_alloc(
        _: *mut c_void,
        out: *mut *mut c_void,
        n: c_ulong,
    ) -> bool {
        let layout = Layout::from_size_align(n as usize + HEADER, HEADER).unwrap();
        // SAFETY: the layout is non-zero; the header holds the size for `fake_free`.
        unsafe {
            let p = alloc(layout);
            p.cast::<usize>().write(n as usize);
            *out = p.add(HEADER).cast();
        }
        true
    }

    unsafe extern "system" fn fake_free(_: *mut c_void, p: *mut *mut c_void) {
        // SAFETY: `*p` came from `fake_alloc`, which put the size in front of it.
        unsafe {
            let block = (*p).cast::<u8>().sub(HEADER);
            let n = block.cast::<usize>().read();
            dealloc(block, Layout::from_size_align(n + HEADER, HEADER).unwrap());
        }
    }

    static VTBL: MemoryManagerVtbl = MemoryManagerVtbl {
        _dtors: [0; DTOR_SLOTS],
        alloc: fake_alloc,
        free: fake_free,
    };

    #[test]
    fn text_is_written_into_exactly_the_room_it_needs() {
        let mut obj = MemoryManagerObj { vtbl: &VTBL };
        let memory = Memory::new((&mut obj as *mut MemoryManagerObj).cast()).unwrap();
        let cases: [(&[u8], &str); 6] = [
            (b"plain ascii", "plain ascii"),
            ("Привет, мир".as_bytes(), "Привет, мир"),
            ("clef 𝄞!".as_bytes(), "clef 𝄞!"),
            (b"A\xffB", "A\u{FFFD}B"),
            (b"cut \xd0", "cut \u{FFFD}"),
            (b"", ""),
        ];
        for (bytes, want) in cases {
            let (p, n) = memory.alloc_text(bytes).unwrap();
            // SAFETY: `alloc_text` wrote `n` units and a NUL at `p`.
            let got = unsafe { std::slice::from_raw_parts(p.as_ptr(), n + 1) };
            assert_eq!(&got[..n], want.encode_utf16().collect::<Vec<_>>(), "{want}");
            assert_eq!(got[n], 0);
            // SAFETY: `fake_alloc` keeps the block's size in front of it.
            let size = unsafe { p.as_ptr().cast::<u8>().sub(HEADER).cast::<usize>().read() };
            assert_eq!(
                size,
                (n + 1) * 2,
                "{want}: room for the units and the NUL only"
            );
            memory.free(p.as_ptr().cast());
        }
    }
}
