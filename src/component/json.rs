//! JSON shapes shared by the methods that take or return JSON.

use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;
use serde_json::Value as Json;

/// Bytes for 1C's JSON: a string when they are UTF-8, else `{"base64": "..."}`. Serialized
/// straight into the output text (no intermediate `Value` tree: PollBatch writes thousands).
pub struct JsonBytes<'a>(pub &'a [u8]);

impl Serialize for JsonBytes<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match std::str::from_utf8(self.0) {
            Ok(text) => s.serialize_str(text),
            Err(_) => {
                let mut m = s.serialize_map(Some(1))?;
                m.serialize_entry("base64", &base64_encode(self.0))?;
                m.end()
            }
        }
    }
}

/// JSON text of a value built from the shapes above (they cannot fail to serialize).
pub fn to_text(v: &impl Serialize) -> String {
    serde_json::to_string(v).expect("JSON output shapes always serialize")
}

/// `s` as a JSON string. Most text needs no escapes: checked in one branch-free pass, so it is
/// copied whole; the rest goes through serde_json.
pub fn push_json_str(out: &mut String, s: &str) {
    let plain = s
        .bytes()
        .fold(true, |ok, b| ok & (b >= 0x20) & (b != b'"') & (b != b'\\'));
    if plain {
        out.push('"');
        out.push_str(s);
        out.push('"');
    } else {
        out.push_str(&to_text(&s));
    }
}

/// Headers as `[["name", value], ...]`, order and duplicates kept, values as
/// `push_json_bytes` writes them.
pub fn push_json_headers<'a>(
    out: &mut String,
    headers: impl IntoIterator<Item = (&'a str, Option<&'a [u8]>)>,
) {
    out.push('[');
    for (i, (name, value)) in headers.into_iter().enumerate() {
        out.push_str(if i == 0 { "[" } else { ",[" });
        push_json_str(out, name);
        out.push(',');
        push_json_bytes(out, value);
        out.push(']');
    }
    out.push(']');
}

/// Bytes as JsonBytes writes them: a string when UTF-8, else `{"base64": "..."}`; null for none.
pub fn push_json_bytes(out: &mut String, bytes: Option<&[u8]>) {
    match bytes.map(std::str::from_utf8) {
        None => out.push_str("null"),
        Some(Ok(text)) => push_json_str(out, text),
        Some(Err(_)) => out.push_str(&to_text(&JsonBytes(bytes.unwrap_or_default()))),
    }
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

pub fn base64_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (*b as u32) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let text = text.trim_end_matches('=');
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut acc = 0u32;
    let mut bits = 0;
    for c in text.bytes() {
        let v = ALPHABET.iter().position(|a| *a == c)? as u32;
        acc = acc << 6 | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

/// Bytes given in JSON: a string (UTF-8) or `{"base64": "..."}`; `None` for null.
pub fn json_to_bytes(v: &Json) -> Result<Option<Vec<u8>>, String> {
    match v {
        Json::Null => Ok(None),
        Json::String(s) => Ok(Some(s.as_bytes().to_vec())),
        Json::Object(m) if m.len() == 1 && m.contains_key("base64") => m["base64"]
            .as_str()
            .and_then(base64_decode)
            .map(Some)
            .ok_or_else(|| "invalid base64".to_string()),
        // REST Proxy's JSON embedded format sends structured values; they travel as JSON text.
        other => Ok(Some(other.to_string().into_bytes())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trip() {
        for data in [
            &b""[..],
            b"f",
            b"fo",
            b"foo",
            b"foob",
            b"\x00\xff\x10binary",
        ] {
            assert_eq!(base64_decode(&base64_encode(data)).unwrap(), data);
        }
        assert_eq!(base64_encode(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64_decode("Zm9vYg=="), Some(b"foob".to_vec()));
        assert_eq!(base64_decode("!!"), None);
    }

    #[test]
    fn bytes_json_shapes() {
        assert_eq!(to_text(&JsonBytes("тест".as_bytes())), r#""тест""#);
        assert_eq!(to_text(&JsonBytes(&[0xff])), r#"{"base64":"/w=="}"#);
        let headers: [(&str, Option<&[u8]>); 3] =
            [("h", Some(b"1")), ("h", None), ("b", Some(&[0xff]))];
        let mut text = String::new();
        push_json_headers(&mut text, headers);
        assert_eq!(text, r#"[["h","1"],["h",null],["b",{"base64":"/w=="}]]"#);
        assert_eq!(
            json_to_bytes(&serde_json::json!({"base64":"/w=="})).unwrap(),
            Some(vec![0xff])
        );
        assert_eq!(json_to_bytes(&Json::Null).unwrap(), None);
        assert_eq!(
            json_to_bytes(&serde_json::json!({"a":1})).unwrap(),
            Some(br#"{"a":1}"#.to_vec())
        );
    }
}
