//! The component object 1C holds: four vtable pointers (IInitDoneBase, ILanguageExtenderBase,
//! LocaleBase, UserLanguageBase) followed by our state. 1C calls interface `k` with
//! `this = object + k * pointer size`, so each entry point first steps back to the object.

#[cfg(windows)]
use std::ffi::c_uint;
use std::ffi::{c_long, c_void};
use std::mem::size_of;
use std::ptr;
use std::sync::{Mutex, PoisonError};

use super::guard;
use super::host::Host;
use super::memory::Memory;
use super::variant::{self, TVariant, Value};
use super::wstr::{self, MAX_SCAN};
use super::{AddIn, Alias};

/// Destructor slots that open every vtable: the Itanium ABI (Linux, macOS) has a complete-object
/// and a deleting destructor; MSVC has one scalar deleting destructor. Decided by OS, not toolchain.
#[cfg(unix)]
pub const DTOR_SLOTS: usize = 2;
#[cfg(windows)]
pub const DTOR_SLOTS: usize = 1;

const PTR: usize = size_of::<*const c_void>();

/// Our state behind the vtable pointers.
/// Largest string argument whose buffer is kept for the next call.
const KEPT_ARGUMENT_BYTES: usize = 64 * 1024;

struct Inner {
    addin: Option<Box<dyn AddIn>>,
    memory: Option<Memory>,
    /// The previous call's arguments: the next call decodes its strings into their buffers
    /// rather than allocating new ones.
    args: Vec<Value>,
}

#[repr(C)]
pub struct Object {
    vtables: [*const c_void; 4],
    inner: Mutex<Inner>,
}

// SAFETY: the vtable pointers point to immutable statics; the state is behind a Mutex.
unsafe impl Sync for Object {}
// SAFETY: as above; 1C may call the object from different OS threads on the server.
unsafe impl Send for Object {}

impl Object {
    pub fn new(addin: Box<dyn AddIn>) -> Box<Object> {
        Box::new(Object {
            vtables: [
                (&INIT_DONE as *const InitDoneVtbl).cast(),
                (&LANGUAGE_EXTENDER as *const LanguageExtenderVtbl).cast(),
                (&LOCALE as *const LocaleVtbl).cast(),
                (&USER_LANGUAGE as *const LocaleVtbl).cast(),
            ],
            inner: Mutex::new(Inner {
                addin: Some(addin),
                memory: None,
                args: Vec::new(),
            }),
        })
    }

    /// Stops the component's background work and drops it; the shell stays allocated.
    pub fn release(&self) {
        let addin = self
            .inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .addin
            .take();
        if let Some(mut addin) = addin {
            let _ = guard::catch(move || addin.detach());
        }
    }
}

/// Runs `f` on the object behind interface `K`, catching panics.
fn with<const K: usize, T>(this: *mut c_void, fallback: T, f: impl FnOnce(&mut Inner) -> T) -> T {
    if this.is_null() {
        return fallback;
    }
    let obj = this.cast::<u8>().wrapping_sub(K * PTR).cast::<Object>();
    // SAFETY: 1C calls interface K of an object we created with this = object + K*PTR, and the
    // object lives until DestroyObject or its deleting destructor.
    let obj = unsafe { &*obj };
    let mut inner = obj.inner.lock().unwrap_or_else(PoisonError::into_inner);
    match guard::catch(|| f(&mut inner)) {
        Ok(v) => v,
        Err(message) => {
            if let Some(addin) = inner.addin.as_mut() {
                let _ = guard::catch(|| addin.fail("panic", &message));
            }
            fallback
        }
    }
}

fn index(n: c_long) -> usize {
    // Sign-extended, so a negative number is an index no member has and `as isize` gives the
    // number 1C passed back for messages (on 32-bit Windows too, where `long` is 32 bits).
    n as isize as usize
}

fn alias(n: c_long) -> Alias {
    if n == 0 {
        Alias::English
    } else {
        Alias::Russian
    }
}

/// Reads a NUL-terminated string from the host; `None` for NULL or invalid UTF-16.
fn read_name(p: *const u16) -> Option<String> {
    if p.is_null() {
        return None;
    }
    let mut len = 0;
    // SAFETY: the host passes NUL-terminated strings; the scan is bounded by MAX_SCAN.
    unsafe {
        while len < MAX_SCAN && *p.add(len) != 0 {
            len += 1;
        }
        wstr::decode(std::slice::from_raw_parts(p, len)).ok()
    }
}

impl Inner {
    fn addin(&mut self) -> Option<&mut Box<dyn AddIn>> {
        self.addin.as_mut()
    }

    fn fail(&mut self, context: &str, message: &str) {
        if let Some(a) = self.addin() {
            a.fail(context, message);
        }
    }

    /// Copies `s` into host memory for a name result; NULL when impossible.
    fn host_string(&mut self, s: &str) -> *mut u16 {
        match self.memory.and_then(|m| m.alloc_str(s)) {
            Some((p, _)) => p.as_ptr(),
            None => {
                self.fail(
                    "memory",
                    "the host's memory manager is not set or refused to allocate",
                );
                ptr::null_mut()
            }
        }
    }

    fn write_variant(&mut self, context: &str, out: *mut TVariant, value: &Value) -> bool {
        // SAFETY: callers checked `out` is non-null; it is the host's writable variant.
        if unsafe { variant::write(out, value, self.memory.as_ref()) } {
            true
        } else {
            self.fail(
                context,
                "the host's memory manager is not set or refused to allocate",
            );
            false
        }
    }

    /// Reads the arguments into `self.args`; false (reported) when the host passed none.
    fn read_params(&mut self, context: &str, params: *mut TVariant, n: c_long) -> bool {
        let Ok(count) = usize::try_from(n) else {
            self.fail(context, &format!("negative argument count {n}"));
            return false;
        };
        if count > 0 && params.is_null() {
            self.fail(context, "the host passed NULL for the arguments");
            return false;
        }
        self.args.resize_with(count, Value::default);
        for (i, slot) in self.args.iter_mut().enumerate() {
            // SAFETY: the host passes `n` consecutive variants at `params` (non-null when n > 0).
            unsafe { variant::read_into(params.add(i), slot) };
        }
        true
    }

    fn call(
        &mut self,
        context: &str,
        method: c_long,
        ret: Option<*mut TVariant>,
        params: *mut TVariant,
        n: c_long,
    ) -> bool {
        if !self.read_params(context, params, n) {
            return false;
        }
        let mut args = std::mem::take(&mut self.args);
        let Some(addin) = self.addin() else {
            return false;
        };
        let result = addin.call(index(method), &mut args, ret.is_some());
        // Only small strings' buffers are kept (not a ProduceBatch body, nor BinaryData), and
        // wiped: an argument may be a password in Connect's settings.
        for v in &mut args {
            match v {
                Value::Str(s) if s.capacity() <= KEPT_ARGUMENT_BYTES => {
                    let mut bytes = std::mem::take(s).into_bytes();
                    bytes.fill(0);
                    bytes.clear();
                    *s = String::from_utf8(bytes).unwrap_or_default();
                }
                _ => *v = Value::Empty,
            }
        }
        self.args = args;
        match result {
            Ok(value) => match ret {
                Some(out) => self.write_variant(context, out, &value),
                None => true,
            },
            Err(()) => false,
        }
    }
}

// ---- vtable layouts -------------------------------------------------------------------------

#[cfg(unix)]
type Dtors = [unsafe extern "C" fn(*mut c_void); 2];
#[cfg(all(windows, not(target_arch = "x86")))]
type Dtors = [unsafe extern "system" fn(*mut c_void, c_uint) -> *mut c_void; 1];
#[cfg(all(windows, target_arch = "x86"))]
type Dtors = [unsafe extern "thiscall" fn(*mut c_void, c_uint) -> *mut c_void; 1];

type This = *mut c_void;

#[repr(C)]
struct InitDoneVtbl {
    dtors: Dtors,
    init: unsafe extern "system" fn(This, *mut c_void) -> bool,
    set_mem_manager: unsafe extern "system" fn(This, *mut c_void) -> bool,
    get_info: unsafe extern "system" fn(This) -> c_long,
    done: unsafe extern "system" fn(This),
}

#[repr(C)]
struct LanguageExtenderVtbl {
    dtors: Dtors,
    register_extension_as: unsafe extern "system" fn(This, *mut *mut u16) -> bool,
    get_n_props: unsafe extern "system" fn(This) -> c_long,
    find_prop: unsafe extern "system" fn(This, *const u16) -> c_long,
    get_prop_name: unsafe extern "system" fn(This, c_long, c_long) -> *const u16,
    get_prop_val: unsafe extern "system" fn(This, c_long, *mut TVariant) -> bool,
    set_prop_val: unsafe extern "system" fn(This, c_long, *mut TVariant) -> bool,
    is_prop_readable: unsafe extern "system" fn(This, c_long) -> bool,
    is_prop_writable: unsafe extern "system" fn(This, c_long) -> bool,
    get_n_methods: unsafe extern "system" fn(This) -> c_long,
    find_method: unsafe extern "system" fn(This, *const u16) -> c_long,
    get_method_name: unsafe extern "system" fn(This, c_long, c_long) -> *const u16,
    get_n_params: unsafe extern "system" fn(This, c_long) -> c_long,
    get_param_def_value: unsafe extern "system" fn(This, c_long, c_long, *mut TVariant) -> bool,
    has_ret_val: unsafe extern "system" fn(This, c_long) -> bool,
    call_as_proc: unsafe extern "system" fn(This, c_long, *mut TVariant, c_long) -> bool,
    call_as_func:
        unsafe extern "system" fn(This, c_long, *mut TVariant, *mut TVariant, c_long) -> bool,
}

/// LocaleBase and UserLanguageBase share a shape: one method taking a string.
#[repr(C)]
struct LocaleVtbl {
    dtors: Dtors,
    set: unsafe extern "system" fn(This, *const u16),
}

static INIT_DONE: InitDoneVtbl = InitDoneVtbl {
    dtors: dtors::<0>(),
    init,
    set_mem_manager,
    get_info,
    done,
};

static LANGUAGE_EXTENDER: LanguageExtenderVtbl = LanguageExtenderVtbl {
    dtors: dtors::<1>(),
    register_extension_as,
    get_n_props,
    find_prop,
    get_prop_name,
    get_prop_val,
    set_prop_val,
    is_prop_readable,
    is_prop_writable,
    get_n_methods,
    find_method,
    get_method_name,
    get_n_params,
    get_param_def_value,
    has_ret_val,
    call_as_proc,
    call_as_func,
};

static LOCALE: LocaleVtbl = LocaleVtbl {
    dtors: dtors::<2>(),
    set: set_locale,
};

static USER_LANGUAGE: LocaleVtbl = LocaleVtbl {
    dtors: dtors::<3>(),
    set: set_user_interface_language_code,
};

// ---- destructors ----------------------------------------------------------------------------
// Some hosts (OneScript) delete the object through its virtual destructor instead of calling
// DestroyObject, so the slots are real functions.

fn object_of<const K: usize>(this: *mut c_void) -> *mut Object {
    this.cast::<u8>().wrapping_sub(K * PTR).cast()
}

/// Releases the component without freeing the object (complete-object destructor).
fn destruct<const K: usize>(this: *mut c_void) {
    if !this.is_null() {
        // SAFETY: `this` is interface K of a live object of ours.
        guard::or((), || unsafe { (*object_of::<K>(this)).release() });
    }
}

/// Releases and frees the object (deleting destructor).
fn delete<const K: usize>(this: *mut c_void) {
    if !this.is_null() {
        guard::or((), || {
            super::exports::destroy(object_of::<K>(this));
        });
    }
}

#[cfg(unix)]
const fn dtors<const K: usize>() -> Dtors {
    [dtor_complete::<K>, dtor_deleting::<K>]
}

#[cfg(unix)]
unsafe extern "C" fn dtor_complete<const K: usize>(this: *mut c_void) {
    destruct::<K>(this)
}

#[cfg(unix)]
unsafe extern "C" fn dtor_deleting<const K: usize>(this: *mut c_void) {
    delete::<K>(this)
}

#[cfg(windows)]
const fn dtors<const K: usize>() -> Dtors {
    [dtor_scalar_deleting::<K>]
}

/// MSVC scalar deleting destructor: frees when bit 0 of `flags` is set; returns `this`.
#[cfg(all(windows, not(target_arch = "x86")))]
unsafe extern "system" fn dtor_scalar_deleting<const K: usize>(
    this: *mut c_void,
    flags: c_uint,
) -> *mut c_void {
    scalar_deleting::<K>(this, flags)
}

#[cfg(all(windows, target_arch = "x86"))]
unsafe extern "thiscall" fn dtor_scalar_deleting<const K: usize>(
    this: *mut c_void,
    flags: c_uint,
) -> *mut c_void {
    scalar_deleting::<K>(this, flags)
}

#[cfg(windows)]
fn scalar_deleting<const K: usize>(this: *mut c_void, flags: c_uint) -> *mut c_void {
    if flags & 1 != 0 {
        delete::<K>(this);
    } else {
        destruct::<K>(this);
    }
    this
}

// ---- IInitDoneBase --------------------------------------------------------------------------

unsafe extern "system" fn init(this: This, host: *mut c_void) -> bool {
    with::<0, _>(this, false, |inner| {
        match (Host::new(host), inner.addin()) {
            (Some(host), Some(addin)) => {
                addin.attach(host);
                true
            }
            _ => false,
        }
    })
}

unsafe extern "system" fn set_mem_manager(this: This, mem: *mut c_void) -> bool {
    with::<0, _>(this, false, |inner| {
        inner.memory = Memory::new(mem);
        inner.memory.is_some()
    })
}

unsafe extern "system" fn get_info(_this: This) -> c_long {
    // Native API version 2.0.
    2000
}

unsafe extern "system" fn done(this: This) {
    with::<0, _>(this, (), |inner| {
        if let Some(addin) = inner.addin() {
            addin.detach();
        }
    })
}

// ---- ILanguageExtenderBase ------------------------------------------------------------------

unsafe extern "system" fn register_extension_as(this: This, out: *mut *mut u16) -> bool {
    with::<1, _>(this, false, |inner| {
        if out.is_null() {
            return false;
        }
        let Some(name) = inner.addin().map(|a| a.extension_name()) else {
            return false;
        };
        let p = inner.host_string(name);
        // SAFETY: `out` is the host's non-null out-pointer.
        unsafe { *out = p };
        !p.is_null()
    })
}

unsafe extern "system" fn get_n_props(this: This) -> c_long {
    with::<1, _>(this, 0, |inner| {
        inner.addin().map_or(0, |a| a.prop_count() as c_long)
    })
}

unsafe extern "system" fn find_prop(this: This, name: *const u16) -> c_long {
    with::<1, _>(this, -1, |inner| {
        let Some(name) = read_name(name) else {
            return -1;
        };
        inner
            .addin()
            .and_then(|a| a.find_prop(&name))
            .map_or(-1, |i| i as c_long)
    })
}

unsafe extern "system" fn get_prop_name(this: This, num: c_long, alias_: c_long) -> *const u16 {
    with::<1, _>(this, ptr::null(), |inner| {
        match inner
            .addin()
            .and_then(|a| a.prop_name(index(num), alias(alias_)))
        {
            Some(name) => inner.host_string(name),
            None => ptr::null_mut(),
        }
    })
}

unsafe extern "system" fn get_prop_val(this: This, num: c_long, out: *mut TVariant) -> bool {
    with::<1, _>(this, false, |inner| {
        if out.is_null() {
            inner.fail("GetPropVal", "the host passed NULL for the value");
            return false;
        }
        match inner.addin().and_then(|a| a.get_prop(index(num))) {
            Some(value) => inner.write_variant("GetPropVal", out, &value),
            None => false,
        }
    })
}

unsafe extern "system" fn set_prop_val(this: This, num: c_long, value: *mut TVariant) -> bool {
    with::<1, _>(this, false, |inner| {
        if value.is_null() {
            inner.fail("SetPropVal", "the host passed NULL for the value");
            return false;
        }
        // SAFETY: non-null host variant.
        let value = unsafe { variant::read(value) };
        inner.addin().is_some_and(|a| a.set_prop(index(num), value))
    })
}

unsafe extern "system" fn is_prop_readable(this: This, num: c_long) -> bool {
    with::<1, _>(this, false, |inner| {
        inner.addin().is_some_and(|a| a.prop_readable(index(num)))
    })
}

unsafe extern "system" fn is_prop_writable(this: This, num: c_long) -> bool {
    with::<1, _>(this, false, |inner| {
        inner.addin().is_some_and(|a| a.prop_writable(index(num)))
    })
}

unsafe extern "system" fn get_n_methods(this: This) -> c_long {
    with::<1, _>(this, 0, |inner| {
        inner.addin().map_or(0, |a| a.method_count() as c_long)
    })
}

unsafe extern "system" fn find_method(this: This, name: *const u16) -> c_long {
    with::<1, _>(this, -1, |inner| {
        let Some(name) = read_name(name) else {
            return -1;
        };
        inner
            .addin()
            .and_then(|a| a.find_method(&name))
            .map_or(-1, |i| i as c_long)
    })
}

unsafe extern "system" fn get_method_name(this: This, num: c_long, alias_: c_long) -> *const u16 {
    with::<1, _>(this, ptr::null(), |inner| {
        match inner
            .addin()
            .and_then(|a| a.method_name(index(num), alias(alias_)))
        {
            Some(name) => inner.host_string(name),
            None => ptr::null_mut(),
        }
    })
}

unsafe extern "system" fn get_n_params(this: This, num: c_long) -> c_long {
    with::<1, _>(this, 0, |inner| {
        inner
            .addin()
            .map_or(0, |a| a.param_count(index(num)) as c_long)
    })
}

unsafe extern "system" fn get_param_def_value(
    this: This,
    method: c_long,
    param: c_long,
    out: *mut TVariant,
) -> bool {
    with::<1, _>(this, false, |inner| {
        if out.is_null() {
            return false;
        }
        match inner
            .addin()
            .and_then(|a| a.param_default(index(method), index(param)))
        {
            Some(value) => inner.write_variant("GetParamDefValue", out, &value),
            None => false,
        }
    })
}

unsafe extern "system" fn has_ret_val(this: This, method: c_long) -> bool {
    with::<1, _>(this, false, |inner| {
        inner.addin().is_some_and(|a| a.has_return(index(method)))
    })
}

unsafe extern "system" fn call_as_proc(
    this: This,
    method: c_long,
    params: *mut TVariant,
    n: c_long,
) -> bool {
    with::<1, _>(this, false, |inner| {
        inner.call("CallAsProc", method, None, params, n)
    })
}

unsafe extern "system" fn call_as_func(
    this: This,
    method: c_long,
    ret: *mut TVariant,
    params: *mut TVariant,
    n: c_long,
) -> bool {
    with::<1, _>(this, false, |inner| {
        if ret.is_null() {
            inner.fail("CallAsFunc", "the host passed NULL for the return value");
            return false;
        }
        inner.call("CallAsFunc", method, Some(ret), params, n)
    })
}

// ---- LocaleBase / UserLanguageBase ----------------------------------------------------------

unsafe extern "system" fn set_locale(this: This, locale: *const u16) {
    with::<2, _>(this, (), |inner| {
        if let (Some(locale), Some(addin)) = (read_name(locale), inner.addin()) {
            addin.set_locale(&locale);
        }
    })
}

unsafe extern "system" fn set_user_interface_language_code(this: This, code: *const u16) {
    with::<3, _>(this, (), |inner| {
        if let (Some(code), Some(addin)) = (read_name(code), inner.addin()) {
            addin.set_interface_language(&code);
        }
    })
}
