//! Typed access to a call's arguments; every mismatch names the method, the argument and what came.

use std::borrow::Cow;

use super::error::{CallError, TypeName};
use super::table::Method;
use crate::boundary::Value;

const KEY_TYPES: &[TypeName] = &[
    TypeName::String,
    TypeName::BinaryData,
    TypeName::Number,
    TypeName::Undefined,
];

/// A Number's plain decimal text: no digit grouping, no locale, no exponent; integers exact.
pub fn number_text(v: &Value) -> Option<String> {
    match v {
        Value::Int(n) => Some(n.to_string()),
        Value::Double(d) => Some(decimal_text(*d)),
        _ => None,
    }
}

/// `f64` as the shortest decimal text that reads back as the same number (Rust's `Display`
/// never uses an exponent); `-0` is `0`, as 1C shows it.
pub fn decimal_text(d: f64) -> String {
    if d == 0.0 {
        "0".to_string()
    } else {
        d.to_string()
    }
}

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

    /// A record key: String (UTF-8), BinaryData, a Number as its plain decimal text (`42`,
    /// `-0.5`: what a 1C developer passes for a document number), or nothing when Undefined/Null.
    pub fn opt_key(&self, i: usize) -> Result<Option<Cow<'_, [u8]>>, CallError> {
        match self.value(i) {
            Value::Int(_) | Value::Double(_) => {
                Ok(number_text(self.value(i)).map(|t| Cow::Owned(t.into_bytes())))
            }
            Value::Empty | Value::Null | Value::Str(_) | Value::Blob(_) => {
                self.opt_bytes_ref(i).map(|k| k.map(Cow::Borrowed))
            }
            _ => Err(self.wrong(i, KEY_TYPES)),
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_as_plain_decimal_text() {
        let cases = [
            (Value::Int(42), "42"),
            (Value::Int(i64::MIN), "-9223372036854775808"),
            (Value::Double(12345.67), "12345.67"),
            (Value::Double(0.1), "0.1"),
            (Value::Double(-0.0), "0"),
            (Value::Double(1e-7), "0.0000001"),
            (Value::Double(1e21), "1000000000000000000000"),
            (Value::Double(100.0), "100"),
        ];
        for (v, want) in cases {
            assert_eq!(number_text(&v).as_deref(), Some(want), "{v:?}");
        }
        assert_eq!(number_text(&Value::Bool(true)), None);
    }
}
