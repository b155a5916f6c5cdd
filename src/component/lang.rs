//! Interface language of messages: Russian when the host says so, English otherwise.

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Lang {
    #[default]
    En,
    Ru,
}

impl Lang {
    /// From a locale (`ru_RU`, `ru-RU.UTF-8`) or a language code (`ru`, `RU`).
    pub fn from_code(code: &str) -> Lang {
        let code = code.trim();
        if code.len() >= 2 && code[..2].eq_ignore_ascii_case("ru") {
            Lang::Ru
        } else {
            Lang::En
        }
    }

    /// Picks the text for this language.
    pub fn pick<'a>(self, en: &'a str, ru: &'a str) -> &'a str {
        match self {
            Lang::En => en,
            Lang::Ru => ru,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes() {
        assert_eq!(Lang::from_code("ru_RU"), Lang::Ru);
        assert_eq!(Lang::from_code("RU"), Lang::Ru);
        assert_eq!(Lang::from_code("en"), Lang::En);
        assert_eq!(Lang::from_code(""), Lang::En);
        assert_eq!(Lang::from_code("р"), Lang::En);
    }
}
