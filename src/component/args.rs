//! Typed access to a call's arguments; every mismatch names the method, the argument and what came.

use super::error::{CallError, TypeName};
use super::table::Method;
use crate::boundary::Value;

pub struct Args<'a> {
    pub method: &'static Method,
    pub values: &'a mut Vec<Value>,
}

impl Args<'_> {
    fn value(&self, i: usize) -> &Value {
        &self.values[i]
    }

    fn wrong(&self, i: usize, expected: &'static [TypeName]) -> CallError {
        CallError::ArgType {
            method: self.method,
            index: i,
            expected,
            got: self.values[i].clone(),
        }
    }

    /// A bad value of the right type; `en`/`ru` complete "argument N (Name) ...".
    pub fn invalid(&self, i: usize, en: impl Into<String>, ru: impl Into<String>) -> CallError {
        CallError::ArgValue {
            method: self.method,
            index: i,
            detail: (en.into(), ru.into()),
        }
    }

    pub fn string(&self, i: usize) -> Result<&str, CallError> {
        match self.value(i) {
            Value::Str(s) => Ok(s),
            _ => Err(self.wrong(i, &[TypeName::String])),
        }
    }

    /// String, or nothing when Undefined/Null.
    pub fn opt_string(&self, i: usize) -> Result<Option<&str>, CallError> {
        match self.value(i) {
            Value::Empty | Value::Null => Ok(None),
            Value::Str(s) => Ok(Some(s)),
            _ => Err(self.wrong(i, &[TypeName::String, TypeName::Undefined])),
        }
    }

    /// String (as UTF-8) or BinaryData (as is), borrowed.
    pub fn bytes_ref(&self, i: usize) -> Result<&[u8], CallError> {
        match self.value(i) {
            Value::Str(s) => Ok(s.as_bytes()),
            Value::Blob(b) => Ok(b),
            _ => Err(self.wrong(i, &[TypeName::String, TypeName::BinaryData])),
        }
    }

    /// `bytes_ref`, or nothing when Undefined/Null.
    pub fn opt_bytes_ref(&self, i: usize) -> Result<Option<&[u8]>, CallError> {
        match self.value(i) {
            Value::Empty | Value::Null => Ok(None),
            Value::Str(_) | Value::Blob(_) => self.bytes_ref(i).map(Some),
            _ => Err(self.wrong(
                i,
                &[TypeName::String, TypeName::BinaryData, TypeName::Undefined],
            )),
        }
    }

    /// `string`, moved out: no copy of a value that goes on to Kafka anyway.
    pub fn take_string(&mut self, i: usize) -> Result<String, CallError> {
        match std::mem::take(&mut self.values[i]) {
            Value::Str(s) => Ok(s),
            other => {
                self.values[i] = other; // kept for the error message
                Err(self.wrong(i, &[TypeName::String]))
            }
        }
    }

    /// `bytes`, moved out (a string's UTF-8 bytes as they are).
    pub fn take_bytes(&mut self, i: usize) -> Result<Vec<u8>, CallError> {
        match std::mem::take(&mut self.values[i]) {
            Value::Str(s) => Ok(s.into_bytes()),
            Value::Blob(b) => Ok(b),
            other => {
                self.values[i] = other;
                Err(self.wrong(i, &[TypeName::String, TypeName::BinaryData]))
            }
        }
    }

    pub fn opt_bytes(&self, i: usize) -> Result<Option<Vec<u8>>, CallError> {
        Ok(self.opt_bytes_ref(i)?.map(<[u8]>::to_vec))
    }

    /// A whole Number.
    pub fn int(&self, i: usize) -> Result<i64, CallError> {
        match self.value(i) {
            Value::Int(n) => Ok(*n),
            Value::Double(d) if d.fract() == 0.0 && d.abs() < 9.2e18 => Ok(*d as i64),
            Value::Double(d) => Err(self.invalid(
                i,
                format!("must be a whole number, got {d}"),
                format!("должен быть целым числом, получено {d}"),
            )),
            _ => Err(self.wrong(i, &[TypeName::Number])),
        }
    }

    /// A whole Number within `min..=max`.
    pub fn int_in(&self, i: usize, min: i64, max: i64) -> Result<i64, CallError> {
        let n = self.int(i)?;
        if n < min || n > max {
            return Err(self.invalid(
                i,
                format!("must be from {min} to {max}, got {n}"),
                format!("должен быть от {min} до {max}, получено {n}"),
            ));
        }
        Ok(n)
    }

    pub fn opt_int_in(&self, i: usize, min: i64, max: i64) -> Result<Option<i64>, CallError> {
        match self.value(i) {
            Value::Empty | Value::Null => Ok(None),
            Value::Int(_) | Value::Double(_) => self.int_in(i, min, max).map(Some),
            _ => Err(self.wrong(i, &[TypeName::Number, TypeName::Undefined])),
        }
    }

    pub fn raw(&self, i: usize) -> &Value {
        self.value(i)
    }

    /// For arguments taking several shapes: the standard type error listing them.
    pub fn type_error(&self, i: usize, expected: &'static [TypeName]) -> CallError {
        self.wrong(i, expected)
    }
}
