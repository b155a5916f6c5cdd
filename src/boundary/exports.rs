//! The C functions 1C looks up in the library (cdecl on every platform).

use std::collections::HashSet;
use std::ffi::{c_int, c_long, c_void};
use std::sync::{Mutex, OnceLock, PoisonError};

use super::guard;
use super::object::Object;
use super::wstr;

/// Objects handed to the host and not yet destroyed, so a repeated or foreign DestroyObject is
/// refused instead of freeing memory twice.
static LIVE: Mutex<Option<HashSet<usize>>> = Mutex::new(None);

fn live() -> std::sync::MutexGuard<'static, Option<HashSet<usize>>> {
    LIVE.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Frees an object we created. Returns false if it is not (or no longer) ours.
pub(super) fn destroy(obj: *mut Object) -> bool {
    let known = live()
        .get_or_insert_with(HashSet::new)
        .remove(&(obj as usize));
    if known {
        // SAFETY: the address was registered by GetClassObject from Box::into_raw and is removed
        // from the registry exactly once, so it is freed exactly once.
        let obj = unsafe { Box::from_raw(obj) };
        obj.release();
    }
    known
}

/// `|`-separated class names, NUL-terminated, alive for the whole process (the host never frees it).
#[no_mangle]
pub extern "C" fn GetClassNames() -> *const u16 {
    static NAMES: OnceLock<Vec<u16>> = OnceLock::new();
    guard::or(std::ptr::null(), || {
        NAMES
            .get_or_init(|| {
                let names: Vec<&str> = crate::ADDIN_CLASSES.iter().map(|(n, _)| *n).collect();
                wstr::encode_nul(&names.join("|"))
            })
            .as_ptr()
    })
}

/// Creates the object for `name`; returns nonzero on success.
///
/// # Safety
/// `name` must be NULL or NUL-terminated UTF-16; `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn GetClassObject(name: *const u16, out: *mut *mut c_void) -> c_long {
    guard::or(0, || {
        if name.is_null() || out.is_null() {
            return 0;
        }
        let mut len = 0;
        // SAFETY: NUL-terminated host string, scan bounded by MAX_SCAN.
        let units = unsafe {
            while len < wstr::MAX_SCAN && *name.add(len) != 0 {
                len += 1;
            }
            std::slice::from_raw_parts(name, len)
        };
        let Ok(name) = wstr::decode(units) else {
            return 0;
        };
        let Some((_, factory)) = crate::ADDIN_CLASSES
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(&name))
        else {
            return 0;
        };
        let obj = Box::into_raw(Object::new(factory()));
        live().get_or_insert_with(HashSet::new).insert(obj as usize);
        // SAFETY: `out` is the host's non-null out-pointer.
        unsafe { *out = obj.cast() };
        1
    })
}

/// Frees an object from GetClassObject and clears the host's pointer. 0 = success.
///
/// # Safety
/// `p` must be NULL or point to a pointer the host got from GetClassObject.
#[no_mangle]
pub unsafe extern "C" fn DestroyObject(p: *mut *mut c_void) -> c_long {
    guard::or(-1, || {
        if p.is_null() {
            return -1;
        }
        // SAFETY: non-null host pointer to the object pointer.
        let obj = unsafe { *p };
        if obj.is_null() || !destroy(obj.cast()) {
            return -1;
        }
        // SAFETY: as above.
        unsafe { *p = std::ptr::null_mut() };
        0
    })
}

/// Returns the highest capability level we support (eAppCapabilities3).
#[no_mangle]
pub extern "C" fn SetPlatformCapabilities(_capabilities: c_int) -> c_int {
    3
}

/// 3 = the add-in may be attached both isolated and in the host process.
#[no_mangle]
pub extern "C" fn GetAttachType() -> c_int {
    3
}
