//! The `Client` object: state, dispatch through the member table, error reporting.

use super::args::Args;
use super::error::{CallError, TypeName};
use super::lang::Lang;
use super::session::{Message, Session};
use super::table::{self, Default, METHODS, PROPS};
use crate::boundary::{AddIn, Alias, Host, Value};

/// Source name shown by 1C next to our error messages.
const ERROR_SOURCE: &str = "kafka1c";
/// HRESULT E_FAIL, passed as AddError's scode.
const E_FAIL: i32 = 0x8000_4005_u32 as i32;

#[derive(Default)]
pub struct Client {
    pub lang: Lang,
    host: Option<Host>,
    pub last_error: String,
    /// The Kafka side, present between Connect and Close.
    pub session: Option<Session>,
    /// The message the last successful Poll returned.
    pub message: Option<Message>,
}

impl Client {
    /// The connected session, or the error telling the user to call Connect first.
    pub fn session(&mut self) -> Result<&mut Session, CallError> {
        self.session.as_mut().ok_or_else(|| {
            CallError::failed(
                "not connected: call Connect(Settings) first",
                "не выполнено подключение: сначала вызовите Подключить(Настройки)",
            )
        })
    }

    /// Records and reports a failure (LastError + AddError).
    fn report(&mut self, error: &CallError) {
        self.report_text(error.text(self.lang));
    }

    fn report_text(&mut self, text: String) {
        if let Some(host) = &self.host {
            host.add_error(crate::boundary::ADDIN_E_FAIL, ERROR_SOURCE, &text, E_FAIL);
        }
        self.last_error = text;
    }
}

impl AddIn for Client {
    fn extension_name(&self) -> &'static str {
        "Client"
    }

    fn attach(&mut self, host: Host) {
        self.host = Some(host);
    }

    fn detach(&mut self) {
        if let Some(session) = self.session.take() {
            session.close();
        }
        self.host = None;
    }

    fn set_locale(&mut self, locale: &str) {
        self.lang = Lang::from_code(locale);
    }

    fn set_interface_language(&mut self, code: &str) {
        self.lang = Lang::from_code(code);
    }

    fn prop_count(&self) -> usize {
        PROPS.len()
    }

    fn find_prop(&self, name: &str) -> Option<usize> {
        table::find_prop(name)
    }

    fn prop_name(&self, index: usize, alias: Alias) -> Option<&'static str> {
        PROPS.get(index).map(|p| match alias {
            Alias::English => p.en,
            Alias::Russian => p.ru,
        })
    }

    fn prop_readable(&self, index: usize) -> bool {
        index < PROPS.len()
    }

    fn prop_writable(&self, _index: usize) -> bool {
        false
    }

    fn get_prop(&mut self, index: usize) -> Option<Value> {
        match PROPS.get(index) {
            Some(p) => Some((p.get)(self)),
            None => {
                self.report(&CallError::UnknownProp(index));
                None
            }
        }
    }

    fn set_prop(&mut self, index: usize, _value: Value) -> bool {
        let error = match PROPS.get(index) {
            Some(p) => CallError::ReadOnlyProp(p.en, p.ru),
            None => CallError::UnknownProp(index),
        };
        self.report(&error);
        false
    }

    fn method_count(&self) -> usize {
        METHODS.len()
    }

    fn find_method(&self, name: &str) -> Option<usize> {
        table::find_method(name)
    }

    fn method_name(&self, index: usize, alias: Alias) -> Option<&'static str> {
        METHODS.get(index).map(|m| match alias {
            Alias::English => m.en,
            Alias::Russian => m.ru,
        })
    }

    fn param_count(&self, method: usize) -> usize {
        METHODS.get(method).map_or(0, |m| m.params.len())
    }

    fn param_default(&self, method: usize, param: usize) -> Option<Value> {
        let default = METHODS.get(method)?.params.get(param)?.default?;
        Some(match default {
            Default::Undefined => Value::Empty,
            Default::Number(n) => Value::Int(n),
        })
    }

    fn has_return(&self, method: usize) -> bool {
        METHODS.get(method).is_some_and(|m| m.returns)
    }

    fn call(
        &mut self,
        index: usize,
        values: &mut Vec<Value>,
        _wants_return: bool,
    ) -> Result<Value, ()> {
        self.last_error.clear();
        let Some(method) = METHODS.get(index) else {
            self.report(&CallError::UnknownMethod(index));
            return Err(());
        };
        if values.len() != method.params.len() {
            self.report(&CallError::ArgCount {
                method,
                got: values.len(),
            });
            return Err(());
        }
        // A damaged string is refused whatever the method would do with it.
        if let Some(index) = values
            .iter()
            .position(|v| matches!(v, Value::BadString { .. }))
        {
            let error = CallError::ArgType {
                method,
                index,
                expected: &[TypeName::String],
                got: values[index].clone(),
            };
            self.report(&error);
            return Err(());
        }
        let mut args = Args { method, values };
        match (method.run)(self, &mut args) {
            Ok(v) => Ok(v),
            Err(e) => {
                self.report(&e.in_method(method));
                Err(())
            }
        }
    }

    fn fail(&mut self, context: &str, message: &str) {
        let text = match self.lang {
            Lang::En => format!("internal error in {context}: {message}"),
            Lang::Ru => format!("внутренняя ошибка в {context}: {message}"),
        };
        self.report_text(text);
    }
}
