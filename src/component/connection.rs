//! Connect and Close.

use super::args::Args;
use super::client::Client;
use super::error::CallError;
use super::session::Session;
use crate::boundary::Value;

pub fn connect(c: &mut Client, a: &mut Args) -> Result<Value, CallError> {
    let settings = a.string(0)?;
    // A new Connect replaces the previous connection, delivering what it still had pending.
    if let Some(old) = c.session.take() {
        old.close();
    }
    c.session = Some(Session::connect(settings).map_err(|e| match e {
        super::session::ConnectError::Settings(en, ru) => a.invalid(0, en, ru),
        super::session::ConnectError::Other(e) => e,
    })?);
    Ok(Value::Empty)
}

pub fn close(c: &mut Client, _: &mut Args) -> Result<Value, CallError> {
    c.message = None;
    if let Some(session) = c.session.take() {
        session.close();
    }
    Ok(Value::Empty)
}
