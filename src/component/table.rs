//! The Client's members as data: adding a method is one entry here plus its handler.

use std::fmt;

use super::args::Args;
use super::client::Client;
use super::error::CallError;
use super::{admin, connection, consume, produce, props};
use crate::boundary::Value;

pub type Handler = fn(&mut Client, &mut Args) -> Result<Value, CallError>;
pub type Getter = fn(&Client) -> Value;

/// Default of an optional parameter (what 1C passes when BSL omits it).
#[derive(Clone, Copy, Debug)]
pub enum Default {
    Undefined,
    Number(i64),
}

pub struct Param {
    pub en: &'static str,
    pub ru: &'static str,
    /// `None`: the argument is required.
    pub default: Option<Default>,
}

pub struct Method {
    pub en: &'static str,
    pub ru: &'static str,
    pub params: &'static [Param],
    pub returns: bool,
    pub run: Handler,
}

pub struct Prop {
    pub en: &'static str,
    pub ru: &'static str,
    pub get: Getter,
}

impl fmt::Debug for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.en)
    }
}

const fn req(en: &'static str, ru: &'static str) -> Param {
    Param {
        en,
        ru,
        default: None,
    }
}

const fn opt(en: &'static str, ru: &'static str) -> Param {
    Param {
        en,
        ru,
        default: Some(Default::Undefined),
    }
}

const fn num(en: &'static str, ru: &'static str, n: i64) -> Param {
    Param {
        en,
        ru,
        default: Some(Default::Number(n)),
    }
}

const PRODUCE_PARAMS: &[Param] = &[
    req("Topic", "Тема"),
    req("Value", "Значение"),
    opt("Key", "Ключ"),
    opt("Headers", "Заголовки"),
    opt("Partition", "Раздел"),
];

pub static METHODS: &[Method] = &[
    Method {
        en: "Connect",
        ru: "Подключить",
        params: &[req("Settings", "Настройки")],
        returns: false,
        run: connection::connect,
    },
    Method {
        en: "Produce",
        ru: "Отправить",
        params: PRODUCE_PARAMS,
        returns: true,
        run: produce::produce,
    },
    Method {
        en: "ProduceAsync",
        ru: "ОтправитьАсинхронно",
        params: PRODUCE_PARAMS,
        returns: true,
        run: produce::produce_async,
    },
    Method {
        en: "Flush",
        ru: "ДождатьсяОтправки",
        params: &[num("TimeoutMs", "Таймаут", 30_000)],
        returns: true,
        run: produce::flush,
    },
    Method {
        en: "ProduceBatch",
        ru: "ОтправитьПакет",
        params: &[req("Topic", "Тема"), req("RecordsJSON", "ЗаписиJSON")],
        returns: true,
        run: produce::produce_batch,
    },
    Method {
        en: "CreateTopic",
        ru: "СоздатьТему",
        params: &[
            req("Name", "Имя"),
            num("Partitions", "КоличествоРазделов", 1),
            num("ReplicationFactor", "ФакторРепликации", -1),
            opt("ConfigJSON", "НастройкиJSON"),
        ],
        returns: false,
        run: admin::create_topic,
    },
    Method {
        en: "DeleteTopic",
        ru: "УдалитьТему",
        params: &[req("Name", "Имя")],
        returns: false,
        run: admin::delete_topic,
    },
    Method {
        en: "ListTopics",
        ru: "СписокТем",
        params: &[],
        returns: true,
        run: admin::list_topics,
    },
    Method {
        en: "Subscribe",
        ru: "Подписаться",
        params: &[req("Topics", "Темы"), opt("Group", "Группа")],
        returns: false,
        run: consume::subscribe,
    },
    Method {
        en: "Poll",
        ru: "Получить",
        params: &[num("TimeoutMs", "Таймаут", 1_000)],
        returns: true,
        run: consume::poll,
    },
    Method {
        en: "PollBatch",
        ru: "ПолучитьПакет",
        params: &[
            num("MaxMessages", "Количество", 100),
            num("TimeoutMs", "Таймаут", 1_000),
        ],
        returns: true,
        run: consume::poll_batch,
    },
    Method {
        en: "Commit",
        ru: "Зафиксировать",
        params: &[],
        returns: false,
        run: consume::commit,
    },
    Method {
        en: "CommitOffsets",
        ru: "ЗафиксироватьСмещения",
        params: &[req("OffsetsJSON", "СмещенияJSON")],
        returns: false,
        run: consume::commit_offsets,
    },
    Method {
        en: "Seek",
        ru: "Перейти",
        params: &[
            req("Topic", "Тема"),
            req("Partition", "Раздел"),
            req("Position", "Позиция"),
        ],
        returns: false,
        run: consume::seek,
    },
    Method {
        en: "Assignment",
        ru: "Назначение",
        params: &[],
        returns: true,
        run: consume::assignment,
    },
    Method {
        en: "Close",
        ru: "Закрыть",
        params: &[],
        returns: false,
        run: connection::close,
    },
];

pub static PROPS: &[Prop] = &[
    Prop {
        en: "Version",
        ru: "Версия",
        get: props::version,
    },
    Prop {
        en: "LastError",
        ru: "ОписаниеОшибки",
        get: props::last_error,
    },
    Prop {
        en: "Topic",
        ru: "Тема",
        get: props::topic,
    },
    Prop {
        en: "Partition",
        ru: "Раздел",
        get: props::partition,
    },
    Prop {
        en: "Offset",
        ru: "Смещение",
        get: props::offset,
    },
    Prop {
        en: "Key",
        ru: "Ключ",
        get: props::key,
    },
    Prop {
        en: "KeyBinary",
        ru: "КлючДвоичный",
        get: props::key_binary,
    },
    Prop {
        en: "Value",
        ru: "Значение",
        get: props::value,
    },
    Prop {
        en: "ValueBinary",
        ru: "ЗначениеДвоичное",
        get: props::value_binary,
    },
    Prop {
        en: "Headers",
        ru: "Заголовки",
        get: props::headers,
    },
    Prop {
        en: "Timestamp",
        ru: "Время",
        get: props::timestamp,
    },
    Prop {
        en: "TimestampMs",
        ru: "ВремяМс",
        get: props::timestamp_ms,
    },
];

/// 1C names are case-insensitive, Cyrillic included.
pub fn same_name(a: &str, b: &str) -> bool {
    a.chars()
        .flat_map(char::to_lowercase)
        .eq(b.chars().flat_map(char::to_lowercase))
}

pub fn find_method(name: &str) -> Option<usize> {
    METHODS
        .iter()
        .position(|m| same_name(m.en, name) || same_name(m.ru, name))
}

pub fn find_prop(name: &str) -> Option<usize> {
    PROPS
        .iter()
        .position(|p| same_name(p.en, name) || same_name(p.ru, name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_in_any_case_and_both_languages() {
        assert_eq!(find_method("produce"), find_method("ОТПРАВИТЬ"));
        assert_eq!(find_method("оТпРаВиТь"), Some(1));
        assert_eq!(find_prop("версия"), Some(0));
        assert_eq!(find_prop("LASTERROR"), find_prop("описаниеошибки"));
        assert_eq!(find_method("nope"), None);
    }

    #[test]
    fn names_are_unique() {
        for (i, m) in METHODS.iter().enumerate() {
            assert_eq!(find_method(m.en), Some(i), "{}", m.en);
            assert_eq!(find_method(m.ru), Some(i), "{}", m.ru);
        }
        for (i, p) in PROPS.iter().enumerate() {
            assert_eq!(find_prop(p.en), Some(i), "{}", p.en);
            assert_eq!(find_prop(p.ru), Some(i), "{}", p.ru);
        }
    }

    #[test]
    fn required_params_come_first() {
        for m in METHODS {
            let first_opt = m.params.iter().position(|p| p.default.is_some());
            if let Some(k) = first_opt {
                assert!(
                    m.params[k..].iter().all(|p| p.default.is_some()),
                    "{}",
                    m.en
                );
            }
        }
    }
}
