//! The host interface 1C passes to Init (IAddInDefBase): error reports and external events.

use std::ffi::{c_long, c_void};
use std::ptr::NonNull;

use super::object::DTOR_SLOTS;
use super::wstr::encode_nul;

#[repr(C)]
struct AddInDefBaseVtbl {
    _dtors: [usize; DTOR_SLOTS],
    add_error: unsafe extern "system" fn(
        this: *mut c_void,
        code: u16,
        source: *const u16,
        descr: *const u16,
        scode: c_long,
    ) -> bool,
    _read: usize,
    _write: usize,
    _register_profile_as: usize,
    set_event_buffer_depth: unsafe extern "system" fn(this: *mut c_void, depth: c_long) -> bool,
    _get_event_buffer_depth: usize,
    external_event: unsafe extern "system" fn(
        this: *mut c_void,
        source: *mut u16,
        message: *mut u16,
        data: *mut u16,
    ) -> bool,
}

#[repr(C)]
struct AddInDefBaseObj {
    vtbl: *const AddInDefBaseVtbl,
}

/// AddError message code for a failure that 1C turns into an exception (ADDIN_E_FAIL).
pub const ADDIN_E_FAIL: u16 = 1006;

/// Handle to the host's IAddInDefBase, valid between Init and Done.
#[derive(Clone, Copy)]
pub struct Host(NonNull<AddInDefBaseObj>);

// SAFETY: 1C documents ExternalEvent as callable from add-in threads; AddError is only called from
// the thread 1C is calling us on. The pointer stays valid until Done, after which we drop it.
unsafe impl Send for Host {}

// ExternalEvent and its queue depth are offered to components; Client raises no events yet.
#[allow(dead_code)]
impl Host {
    pub(super) fn new(raw: *mut c_void) -> Option<Host> {
        NonNull::new(raw.cast::<AddInDefBaseObj>()).map(Host)
    }

    fn this(&self) -> *mut AddInDefBaseObj {
        self.0.as_ptr()
    }

    /// Reports an error to 1C. The strings stay ours: 1C copies them.
    pub fn add_error(&self, code: u16, source: &str, description: &str, scode: i32) -> bool {
        let source = encode_nul(source);
        let description = encode_nul(description);
        let this = self.this();
        // SAFETY: host pointer from Init; strings are NUL-terminated and outlive the call.
        unsafe {
            ((*(*this).vtbl).add_error)(
                this.cast(),
                code,
                source.as_ptr(),
                description.as_ptr(),
                scode as c_long,
            )
        }
    }

    /// Raises an external event in 1C (not delivered on the server, see 1C docs).
    pub fn external_event(&self, source: &str, message: &str, data: &str) -> bool {
        let mut source = encode_nul(source);
        let mut message = encode_nul(message);
        let mut data = encode_nul(data);
        let this = self.this();
        // SAFETY: host pointer from Init; the buffers are NUL-terminated and outlive the call.
        unsafe {
            ((*(*this).vtbl).external_event)(
                this.cast(),
                source.as_mut_ptr(),
                message.as_mut_ptr(),
                data.as_mut_ptr(),
            )
        }
    }

    /// The default queue depth is 1, which drops bursts of events.
    pub fn set_event_buffer_depth(&self, depth: i32) -> bool {
        let this = self.this();
        // SAFETY: host pointer from Init.
        unsafe { ((*(*this).vtbl).set_event_buffer_depth)(this.cast(), depth as c_long) }
    }
}
