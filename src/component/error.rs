//! Errors a method call can end with, and their texts in both languages.

use super::lang::Lang;
use super::table::Method;
use crate::boundary::Value;

/// A failed call; turned into text only when reported, in the language in force then.
#[derive(Debug)]
pub enum CallError {
    /// Argument `index` (0-based) has the wrong type.
    ArgType {
        method: &'static Method,
        index: usize,
        expected: &'static [TypeName],
        got: Value,
    },
    /// Argument has the right type but a bad value; `detail` is (en, ru).
    ArgValue {
        method: &'static Method,
        index: usize,
        detail: (String, String),
    },
    ArgCount {
        method: &'static Method,
        got: usize,
    },
    UnknownMethod(usize),
    UnknownProp(usize),
    ReadOnlyProp(&'static str, &'static str),
    /// Something the method itself reports; (en, ru).
    Failed {
        method: Option<&'static Method>,
        text: (String, String),
    },
}

/// 1C type names as a 1C developer reads them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TypeName {
    String,
    Number,
    Boolean,
    Date,
    BinaryData,
    Undefined,
}

impl TypeName {
    fn name(self, lang: Lang) -> &'static str {
        match self {
            TypeName::String => lang.pick("String", "Строка"),
            TypeName::Number => lang.pick("Number", "Число"),
            TypeName::Boolean => lang.pick("Boolean", "Булево"),
            TypeName::Date => lang.pick("Date", "Дата"),
            TypeName::BinaryData => lang.pick("BinaryData", "ДвоичныеДанные"),
            TypeName::Undefined => lang.pick("Undefined", "Неопределено"),
        }
    }
}

/// What a received value was, in words.
pub fn describe(value: &Value, lang: Lang) -> String {
    match value {
        Value::Empty => TypeName::Undefined.name(lang).to_string(),
        Value::Null => "Null".to_string(),
        Value::Bool(_) => TypeName::Boolean.name(lang).to_string(),
        Value::Int(_) | Value::Double(_) => TypeName::Number.name(lang).to_string(),
        Value::Date(_) => TypeName::Date.name(lang).to_string(),
        Value::Str(_) | Value::Text(_) | Value::Wide(_) => TypeName::String.name(lang).to_string(),
        Value::Blob(_) => TypeName::BinaryData.name(lang).to_string(),
        Value::BadString { position } => match lang {
            Lang::En => format!(
                "a String with an unpaired UTF-16 surrogate at position {}",
                position + 1
            ),
            Lang::Ru => format!(
                "Строка с непарным суррогатом UTF-16 в позиции {}",
                position + 1
            ),
        },
        Value::Other(vt) => match lang {
            Lang::En => format!("an unsupported value (variant type {vt})"),
            Lang::Ru => format!("неподдерживаемое значение (тип варианта {vt})"),
        },
    }
}

impl CallError {
    /// Shorthand for a method's own failure with texts in both languages.
    pub fn failed(en: impl Into<String>, ru: impl Into<String>) -> CallError {
        CallError::Failed {
            method: None,
            text: (en.into(), ru.into()),
        }
    }

    pub fn text(&self, lang: Lang) -> String {
        match self {
            CallError::ArgType {
                method,
                index,
                expected,
                got,
            } => {
                let names: Vec<&str> = expected.iter().map(|t| t.name(lang)).collect();
                let param = &method.params[*index];
                match lang {
                    Lang::En => format!(
                        "{}: argument {} ({}) must be {}, got {}",
                        method.en,
                        index + 1,
                        param.en,
                        names.join(" or "),
                        describe(got, lang)
                    ),
                    Lang::Ru => format!(
                        "{}: аргумент {} ({}) должен быть {}, получено {}",
                        method.ru,
                        index + 1,
                        param.ru,
                        names.join(" или "),
                        describe(got, lang)
                    ),
                }
            }
            CallError::ArgValue {
                method,
                index,
                detail,
            } => {
                let param = &method.params[*index];
                match lang {
                    Lang::En => format!(
                        "{}: argument {} ({}) {}",
                        method.en,
                        index + 1,
                        param.en,
                        detail.0
                    ),
                    Lang::Ru => format!(
                        "{}: аргумент {} ({}) {}",
                        method.ru,
                        index + 1,
                        param.ru,
                        detail.1
                    ),
                }
            }
            CallError::ArgCount { method, got } => match lang {
                Lang::En => format!(
                    "{}: expected {} arguments, got {}",
                    method.en,
                    method.params.len(),
                    got
                ),
                Lang::Ru => format!(
                    "{}: ожидалось аргументов: {}, передано: {}",
                    method.ru,
                    method.params.len(),
                    got
                ),
            },
            CallError::UnknownMethod(i) => match lang {
                Lang::En => format!("unknown method number {}", *i as isize),
                Lang::Ru => format!("неизвестный метод с номером {}", *i as isize),
            },
            CallError::UnknownProp(i) => match lang {
                Lang::En => format!("unknown property number {}", *i as isize),
                Lang::Ru => format!("неизвестное свойство с номером {}", *i as isize),
            },
            CallError::ReadOnlyProp(en, ru) => match lang {
                Lang::En => format!("property {en} is read-only"),
                Lang::Ru => format!("свойство {ru} только для чтения"),
            },
            CallError::Failed { method, text } => {
                let body = lang.pick(&text.0, &text.1);
                match method {
                    Some(m) => format!("{}: {}", lang.pick(m.en, m.ru), body),
                    None => body.to_string(),
                }
            }
        }
    }

    /// Attaches the method name to a failure that has none yet.
    pub fn in_method(self, m: &'static Method) -> CallError {
        match self {
            CallError::Failed { method: None, text } => CallError::Failed {
                method: Some(m),
                text,
            },
            other => other,
        }
    }
}
