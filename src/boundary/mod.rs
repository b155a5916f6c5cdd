//! The 1C Native API boundary: everything 1C's ABI demands and nothing about Kafka.
//!
//! - [`exports`]: the C functions 1C looks up in the library.
//! - [`object`]: the component object with its four vtables.
//! - [`variant`]: `tVariant` layout and conversion to and from [`Value`].
//! - [`memory`]: the host's memory manager (everything handed to 1C is allocated there).
//! - [`host`]: the host callbacks (AddError, ExternalEvent).
//! - [`wstr`]: UTF-16 strings.
//! - [`wide`]: text the component writes straight into 1C's memory.
//! - [`guard`]: panic catching for every entry point.
//!
//! The component behind the object implements [`AddIn`]: the boundary converts raw pointers and
//! variants into plain Rust values before calling it, so the component contains no `unsafe`.

mod exports;
mod guard;
mod host;
mod memory;
mod object;
mod variant;
mod wide;
mod wstr;

pub use host::{Host, ADDIN_E_FAIL};
pub use variant::{Date, Value};
pub use wide::{WideOut, WideText};
pub use wstr::units;

/// Which of a member's two names 1C asks for (`GetMethodName(num, alias)`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Alias {
    English,
    Russian,
}

/// What the boundary needs from a component. One object per `Новый("AddIn.X.Client")`.
///
/// Indices are the ones the component returned from `find_*`; the boundary checks nothing about
/// them, so implementations must treat unknown indices as errors, not panics.
pub trait AddIn: Send {
    /// Name 1C uses after `AddIn.<Имя>.` (returned by RegisterExtensionAs).
    fn extension_name(&self) -> &'static str;
    /// Called once the host interface is known (Init).
    fn attach(&mut self, host: Host);
    /// Called by Done: stop background work, release resources. Must be idempotent.
    fn detach(&mut self);
    fn set_locale(&mut self, locale: &str);
    fn set_interface_language(&mut self, code: &str);

    fn prop_count(&self) -> usize;
    fn find_prop(&self, name: &str) -> Option<usize>;
    fn prop_name(&self, index: usize, alias: Alias) -> Option<&'static str>;
    fn prop_readable(&self, index: usize) -> bool;
    fn prop_writable(&self, index: usize) -> bool;
    /// `None` means failure; the component has already reported why.
    fn get_prop(&mut self, index: usize) -> Option<Value>;
    fn set_prop(&mut self, index: usize, value: Value) -> bool;

    fn method_count(&self) -> usize;
    fn find_method(&self, name: &str) -> Option<usize>;
    fn method_name(&self, index: usize, alias: Alias) -> Option<&'static str>;
    fn param_count(&self, method: usize) -> usize;
    fn param_default(&self, method: usize, param: usize) -> Option<Value>;
    fn has_return(&self, method: usize) -> bool;
    /// Runs a method. `Err(())` means failure, already reported by the component.
    /// `args` may be taken from; what is left is reused for the next call's arguments.
    fn call(
        &mut self,
        method: usize,
        args: &mut Vec<Value>,
        wants_return: bool,
    ) -> Result<Value, ()>;
    /// The boundary caught a panic or met a host fault it cannot pass on as a value; the component
    /// records it as the last error and reports it to the host.
    fn fail(&mut self, context: &str, message: &str);
}

/// Creates a fresh component for one `Новый(...)`.
pub type Factory = fn() -> Box<dyn AddIn>;
