//! The host's memory manager: every string or blob handed to 1C must come from it, because 1C
//! frees them with the same manager.

use std::ffi::{c_ulong, c_void};
use std::mem::MaybeUninit;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr::{self, NonNull};

use super::object::DTOR_SLOTS;
use super::wide::WideText;

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
            self.alloc_units(s.len(), s.bytes().map(u16::from))
        } else {
            self.alloc_units(s.encode_utf16().count(), s.encode_utf16())
        }
    }

    /// UTF-8 bytes as `alloc_str` writes text; invalid sequences become U+FFFD. ASCII (most
    /// message bodies) is widened after one `is_ascii` pass, with no String in between.
    pub fn alloc_text(&self, bytes: &[u8]) -> Option<(NonNull<u16>, usize)> {
        if bytes.is_ascii() {
            return self.alloc_units(bytes.len(), bytes.iter().map(|&b| u16::from(b)));
        }
        match std::str::from_utf8(bytes) {
            Ok(s) => self.alloc_str(s),
            Err(_) => self.alloc_str(&String::from_utf8_lossy(bytes)),
        }
    }

    /// A `WideText` written straight into fresh host memory, with a NUL after it.
    pub fn alloc_wide(&self, text: &WideText) -> Option<(NonNull<u16>, usize)> {
        let len = text.units();
        let p = self
            .alloc_bytes(len.checked_add(1)?.checked_mul(2)?)?
            .cast::<u16>();
        // SAFETY: `p` points to `len + 1` freshly allocated, not yet initialised u16 slots
        // (host allocations are at least 2-aligned) that nothing else references yet.
        let room = unsafe { std::slice::from_raw_parts_mut(p.as_ptr().cast(), len + 1) };
        // The writer is the component's code: should it panic, the memory goes back first.
        let written = catch_unwind(AssertUnwindSafe(|| text.write_into(&mut room[..len])));
        let Ok(written) = written else {
            self.free(p.as_ptr().cast());
            return None;
        };
        room[written] = MaybeUninit::new(0);
        Some((p, written))
    }

    /// `len` UTF-16 units from `units` and a NUL in fresh host memory.
    fn alloc_units(
        &self,
        len: usize,
        units: impl Iterator<Item = u16>,
    ) -> Option<(NonNull<u16>, usize)> {
        let p = self
            .alloc_bytes(len.checked_add(1)?.checked_mul(2)?)?
            .cast::<u16>();
        // SAFETY: `p` points to `len + 1` freshly allocated u16 slots (host allocations are at
        // least 2-aligned) that nothing else references yet.
        let out = unsafe { std::slice::from_raw_parts_mut(p.as_ptr(), len + 1) };
        // For ASCII a plain widening loop, which the compiler vectorizes.
        for (o, u) in out.iter_mut().zip(units) {
            *o = u;
        }
        out[len] = 0;
        Some((p, len))
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
