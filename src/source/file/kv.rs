//! `kv` dumps: a JSON Lines `{"key": ..., "value": ...}` line, or a `"key": value`
//! member of one top-level object, decoded into the record's key and value.

use crate::source::{key_text, parse_json, raw_text};
use serde_json::Value;

/// A decoded payload: (key text, key value, value); or why it is not a record
/// and the record as far as it could be read (for the error row).
pub(crate) type Parts = Result<(String, Value, Value), (String, Value)>;

/// A JSON Lines `{"key": ..., "value": ...}` line.
pub(crate) fn decode_line(bytes: &[u8]) -> Parts {
    let v = parse_json(bytes).map_err(|m| (m, raw_text(bytes)))?;
    match v {
        Value::Object(mut m) if m.contains_key("key") && m.contains_key("value") => {
            let key_value = m.shift_remove("key").unwrap_or(Value::Null);
            let value = m.shift_remove("value").unwrap_or(Value::Null);
            if key_value.is_null() {
                return Err((
                    "the line's \"key\" is null".into(),
                    serde_json::json!({"key": null, "value": value}),
                ));
            }
            Ok((key_text(&key_value), key_value, value))
        }
        other => Err((
            "the line is JSON but not a {\"key\": ..., \"value\": ...} pair".into(),
            other,
        )),
    }
}

/// A `"key": value` member of a top-level object (as the splitter cut it).
pub(crate) fn decode_member(bytes: &[u8]) -> Parts {
    let mut wrapped = Vec::with_capacity(bytes.len() + 2);
    wrapped.push(b'{');
    wrapped.extend_from_slice(bytes);
    wrapped.push(b'}');
    let v = parse_json(&wrapped).map_err(|m| (m, raw_text(bytes)))?;
    match v {
        Value::Object(m) => match m.into_iter().next() {
            Some((k, v)) => Ok((k.clone(), Value::String(k), v)),
            None => Err(("empty member".into(), Value::Null)),
        },
        other => Err(("not an object member".into(), other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lines_and_members() {
        assert_eq!(
            decode_line(br#"{"key": 7, "value": {"a": 1}}"#).unwrap(),
            ("7".to_string(), json!(7), json!({"a": 1}))
        );
        let (m, _) = decode_line(br#"{"key": null, "value": 1}"#).unwrap_err();
        assert!(m.contains("is null"), "{m}");
        let (m, _) = decode_line(b"[1]").unwrap_err();
        assert!(m.contains("not a {\"key\""), "{m}");
        let (m, raw) = decode_line(b"{\"key\": ").unwrap_err();
        assert!(m.starts_with("invalid JSON"), "{m}");
        assert_eq!(raw, json!("{\"key\":"));
        assert_eq!(
            decode_member(br#""k":[1]"#).unwrap(),
            ("k".to_string(), json!("k"), json!([1]))
        );
        assert!(decode_member(b"").is_err());
    }
}
