//! Kafka core errors in the user's language.

use super::error::CallError;
use crate::kafka::error::error_name;
use crate::kafka::Error;

pub fn from_kafka(e: &Error) -> CallError {
    let en = e.to_string();
    let ru = match e {
        Error::Config { key, reason } => format!("настройка {key:?}: {}", ru_reason(reason)),
        Error::Unreachable { servers, reason } => {
            format!("брокер Kafka недоступен по адресу {servers}: {reason}")
        }
        Error::Timeout { operation, ms } => format!("{operation}: не завершено за {ms} мс"),
        Error::Broker {
            code,
            topic,
            partition,
            message,
        } => {
            let mut s = format!("ошибка брокера {} ({code})", error_name(*code));
            match (topic, partition) {
                (Some(t), Some(p)) => s.push_str(&format!(" для {t}[{p}]")),
                (Some(t), None) => s.push_str(&format!(" для темы {t}")),
                _ => {}
            }
            if let Some(m) = message.as_deref().filter(|m| !m.is_empty()) {
                s.push_str(&format!(": {m}"));
            }
            s
        }
        Error::MessageTooLarge { size, max } => {
            format!("сообщение размером {size} байт больше message.max.bytes ({max})")
        }
        Error::UnknownTopic { topic } => format!("тема {topic:?} не существует"),
        Error::UnknownPartition {
            topic,
            partition,
            count,
        } => format!("в теме {topic:?} нет раздела {partition} (разделов: {count})"),
        Error::Disconnected { broker, reason } => {
            format!("соединение с {broker} потеряно: {reason}")
        }
        Error::UnsupportedVersion {
            api,
            broker_max,
            needed,
        } => format!(
            "брокер поддерживает {api} только до версии {broker_max}, требуется Kafka 2.1+ (версия {needed})"
        ),
        Error::Closed => "клиент закрыт".to_string(),
        Error::Protocol(m) => format!("ошибка протокола: {m}"),
        Error::State(m) => m.clone(),
    };
    CallError::failed(en, ru)
}

/// The few reasons config parsing gives, in Russian; others stay as they are.
fn ru_reason(reason: &str) -> String {
    if reason == "unknown setting" {
        "неизвестная настройка".into()
    } else if reason == "is required" {
        "обязательна".into()
    } else {
        reason.to_string()
    }
}
