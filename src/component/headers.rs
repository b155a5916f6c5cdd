//! Record headers from 1C: a JSON object `{"name":"value"}` or an array of `[name, value]` pairs
//! (the array keeps duplicates). Values are strings (sent as UTF-8), numbers (sent as their plain
//! decimal text, integers exactly) or null.

use serde_json::Value as Json;

pub type Headers = Vec<(String, Option<Vec<u8>>)>;

/// Parses the headers text; `Err` holds (en, ru) details for the argument error.
pub fn parse(text: &str) -> Result<Headers, (String, String)> {
    let json: Json = serde_json::from_str(text).map_err(|e| {
        (
            format!("is not valid JSON: {e}"),
            format!("не является корректным JSON: {e}"),
        )
    })?;
    from_json(&json)
}

pub fn from_json(json: &Json) -> Result<Headers, (String, String)> {
    let shape = || {
        (
            "must be a JSON object {\"name\":\"value\"} or an array of [name, value] pairs"
                .to_string(),
            "должен быть JSON-объектом {\"имя\":\"значение\"} или массивом пар [имя, значение]"
                .to_string(),
        )
    };
    let value = |name: &str, v: &Json| match v {
        Json::Null => Ok(None),
        Json::String(s) => Ok(Some(s.as_bytes().to_vec())),
        Json::Number(n) => Ok(Some(json_number_text(n).into_bytes())),
        other => Err((
            format!("header {name:?} must have a string, number or null value, got {other}"),
            format!(
                "заголовок {name:?} должен иметь значение строку, число или null, получено {other}"
            ),
        )),
    };
    match json {
        Json::Null => Ok(Vec::new()),
        Json::Object(map) => map
            .iter()
            .map(|(k, v)| Ok((k.clone(), value(k, v)?)))
            .collect(),
        Json::Array(items) => items
            .iter()
            .map(|item| match item.as_array().map(Vec::as_slice) {
                Some([Json::String(k), v]) => Ok((k.clone(), value(k, v)?)),
                _ => Err(shape()),
            })
            .collect(),
        _ => Err(shape()),
    }
}

/// Integers as written; other numbers as their shortest plain decimal text (no exponent).
fn json_number_text(n: &serde_json::Number) -> String {
    match (n.as_i64(), n.as_u64(), n.as_f64()) {
        (Some(i), _, _) => i.to_string(),
        (_, Some(u), _) => u.to_string(),
        (_, _, Some(f)) => super::args::decimal_text(f),
        _ => n.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_keeps_order() {
        let h = parse(r#"{"b":"1","a":"2","ключ":"значение","n":null}"#).unwrap();
        let names: Vec<_> = h.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(names, ["b", "a", "ключ", "n"]);
        assert_eq!(h[2].1.as_deref(), Some("значение".as_bytes()));
        assert_eq!(h[3].1, None);
    }

    #[test]
    fn array_keeps_duplicates() {
        let h = parse(r#"[["x","1"],["x","2"],["y",null]]"#).unwrap();
        assert_eq!(h.len(), 3);
        assert_eq!(h[1], ("x".to_string(), Some(b"2".to_vec())));
    }

    #[test]
    fn numbers_are_sent_as_plain_decimal_text() {
        let h = parse(r#"{"n":42,"big":18446744073709551615,"neg":-7,"d":0.1,"e":1e21,"z":-0.0}"#)
            .unwrap();
        let texts: Vec<_> = h
            .iter()
            .map(|(_, v)| String::from_utf8(v.clone().unwrap()).unwrap())
            .collect();
        let want = [
            "42",
            "18446744073709551615",
            "-7",
            "0.1",
            "1000000000000000000000",
            "0",
        ];
        assert_eq!(texts, want);
    }

    #[test]
    fn bad_shapes_are_explained() {
        assert!(parse("[1,2").unwrap_err().0.contains("not valid JSON"));
        assert!(parse("[[1,2]]").unwrap_err().0.contains("pairs"));
        assert!(parse(r#"{"a":true}"#).unwrap_err().0.contains("\"a\""));
        assert!(parse("42").is_err());
    }

    #[test]
    fn headers_as_json() {
        let h: Headers = vec![
            ("a".into(), Some(vec![0xff])),
            ("a".into(), Some(b"x".to_vec())),
            ("n".into(), None),
        ];
        let mut text = String::new();
        let headers = h.iter().map(|(k, v)| (k.as_str(), v.as_deref()));
        super::super::json::push_json_headers(&mut text, headers);
        assert_eq!(text, r#"[["a",{"base64":"/w=="}],["a","x"],["n",null]]"#);
    }
}
