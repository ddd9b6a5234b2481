//! DynamoDB "Export to S3" folders: `manifest-files.json` names the gzipped
//! DynamoDB-JSON data files; every type descriptor is unwrapped into plain JSON.

use super::kv::Parts;
use super::{Decoder, FileSource, Layout, SourceFile};
use crate::mapping::SourceSpec;
use crate::record::FileInfo;
use crate::source::{key_text, parse_json, raw_text, SourceError};
use base64::Engine;
use serde_json::{Map, Number, Value};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Unwrap one DynamoDB-JSON attribute value (`{"S": "x"}`, `{"N": "1.5"}`, ...).
///
/// `N` keeps its exact digits (no f64 on the way), `B`/`BS` stay base64 text,
/// sets become arrays in their stored order, `NULL` becomes null.
pub fn unwrap_attr(v: Value) -> Result<Value, String> {
    let Value::Object(m) = v else {
        return Err(format!(
            "expected a DynamoDB type descriptor object, found {v}"
        ));
    };
    if m.len() != 1 {
        return Err(format!(
            "a DynamoDB attribute value has exactly one type descriptor, found {} ({})",
            m.len(),
            m.keys().cloned().collect::<Vec<_>>().join(", ")
        ));
    }
    let Some((t, inner)) = m.into_iter().next() else {
        return Err("empty attribute value".into());
    };
    let number = |s: &Value| -> Result<Value, String> {
        let text = s
            .as_str()
            .ok_or_else(|| format!("N must be a string of digits, found {s}"))?;
        serde_json::from_str::<Number>(text.trim())
            .map(Value::Number)
            .map_err(|_| format!("N value '{text}' is not a number"))
    };
    let b64 = |s: &Value| -> Result<Value, String> {
        let text = s
            .as_str()
            .ok_or_else(|| format!("B must be base64 text, found {s}"))?;
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(|_| format!("B value '{text}' is not base64"))?;
        Ok(Value::String(text.to_string()))
    };
    match t.as_str() {
        "S" => match inner {
            Value::String(_) => Ok(inner),
            other => Err(format!("S must be a string, found {other}")),
        },
        "N" => number(&inner),
        "B" => b64(&inner),
        "BOOL" => match inner {
            Value::Bool(_) => Ok(inner),
            other => Err(format!("BOOL must be true or false, found {other}")),
        },
        "NULL" => Ok(Value::Null),
        "M" => unwrap_map(inner),
        "L" => match inner {
            Value::Array(a) => a
                .into_iter()
                .map(unwrap_attr)
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array),
            other => Err(format!("L must be an array, found {other}")),
        },
        "SS" | "NS" | "BS" => match inner {
            Value::Array(a) => a
                .iter()
                .map(|x| match t.as_str() {
                    "SS" => x
                        .as_str()
                        .map(|s| Value::String(s.to_string()))
                        .ok_or_else(|| format!("SS holds a non-string {x}")),
                    "NS" => number(x),
                    _ => b64(x),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array),
            other => Err(format!("{t} must be an array, found {other}")),
        },
        other => Err(format!("unknown DynamoDB type descriptor '{other}'")),
    }
}

/// Unwrap a map of attribute name → typed value.
pub fn unwrap_map(v: Value) -> Result<Value, String> {
    let Value::Object(m) = v else {
        return Err(format!("M must be an object, found {v}"));
    };
    let mut out = Map::with_capacity(m.len());
    for (k, v) in m {
        let u = unwrap_attr(v).map_err(|e| format!("attribute `{k}`: {e}"))?;
        out.insert(k, u);
    }
    Ok(Value::Object(out))
}

/// Unwrap one export line: `{"Item": {...}}` gives the item; an incremental
/// line (`Keys`, `NewImage`, `OldImage`, `Metadata`) keeps its parts, unwrapped.
pub fn unwrap_line(v: Value) -> Result<Value, String> {
    let Value::Object(mut m) = v else {
        return Err("an export line must be a JSON object".into());
    };
    if let Some(item) = m.shift_remove("Item") {
        return unwrap_map(item);
    }
    if m.contains_key("Keys") || m.contains_key("NewImage") || m.contains_key("OldImage") {
        let mut out = Map::new();
        for (k, v) in m {
            out.insert(k.clone(), unwrap_map(v).map_err(|e| format!("{k}: {e}"))?);
        }
        return Ok(Value::Object(out));
    }
    Err(
        "the line has neither \"Item\" nor \"Keys\"/\"NewImage\" (not a DynamoDB export line)"
            .into(),
    )
}

/// One export line as a record: the item unwrapped, named by its key attributes
/// (`Keys`, else `NewImage`, else the item itself); several make an array key.
pub(crate) fn decode_item(bytes: &[u8], key_attrs: &[String]) -> Parts {
    let v = parse_json(bytes).map_err(|m| (m, raw_text(bytes)))?;
    let value = unwrap_line(v.clone()).map_err(|m| (m, v.clone()))?;
    let image = value
        .get("Keys")
        .or_else(|| value.get("NewImage"))
        .unwrap_or(&value);
    let parts: Vec<Value> = key_attrs
        .iter()
        .map(|a| image.get(a).cloned().unwrap_or(Value::Null))
        .collect();
    if let Some(missing) = key_attrs.iter().zip(&parts).find(|(_, p)| p.is_null()) {
        return Err((
            format!("the item has no key attribute `{}`", missing.0),
            value.clone(),
        ));
    }
    let (key, key_value) = if parts.len() == 1 {
        (key_text(&parts[0]), parts[0].clone())
    } else {
        let text = key_attrs
            .iter()
            .zip(&parts)
            .map(|(a, p)| format!("{a}={}", key_text(p)))
            .collect::<Vec<_>>()
            .join(",");
        (text, Value::Array(parts))
    };
    Ok((key, key_value, value))
}

/// The bucket root: the ancestor of the export folder against which the
/// manifest's `dataFileS3Key`s resolve.
fn resolve_data_file(export: &Path, key: &str) -> Option<PathBuf> {
    let mut dir = Some(export);
    while let Some(d) = dir {
        let p = d.join(key);
        if p.is_file() {
            return Some(p);
        }
        dir = d.parent();
    }
    None
}

pub fn open(spec: &SourceSpec) -> Result<FileSource, SourceError> {
    let export = spec
        .path
        .clone()
        .ok_or_else(|| SourceError::Other("the dynamodb source has no path".into()))?;
    let manifest = export.join("manifest-files.json");
    let text = std::fs::read_to_string(&manifest).map_err(|source| SourceError::Io {
        path: manifest.clone(),
        source,
    })?;
    let mut files = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let fail = |message: String| SourceError::Format {
            path: manifest.clone(),
            message: format!("line {}: {message}", i + 1),
        };
        let v: Value = serde_json::from_str(line).map_err(|e| fail(e.to_string()))?;
        let key = v
            .get("dataFileS3Key")
            .and_then(Value::as_str)
            .ok_or_else(|| fail("no dataFileS3Key".into()))?;
        let path = resolve_data_file(&export, key).ok_or_else(|| {
            fail(format!(
                "data file {key} was not found under {}",
                export.display()
            ))
        })?;
        let meta = std::fs::metadata(&path).map_err(|source| SourceError::Io {
            path: path.clone(),
            source,
        })?;
        let modified = meta
            .modified()
            .ok()
            .and_then(|m| m.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_secs() as i64);
        let name = Path::new(key)
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_else(|| key.to_string());
        files.push(SourceFile {
            path,
            info: Arc::new(FileInfo {
                path: format!("data/{name}"),
                captures: Vec::new(),
            }),
            size: meta.len(),
            modified,
        });
    }
    if files.is_empty() {
        return Err(SourceError::NoFiles {
            pattern: manifest.display().to_string(),
        });
    }
    Ok(FileSource::from_files(
        files,
        Decoder::Dynamo(Arc::new(spec.key.clone())),
        Some(Layout::Lines),
        crate::mapping::SourceKind::Kv,
        format!(
            "dynamodb export {}",
            spec.path_text.clone().unwrap_or_default()
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unwraps_every_descriptor() {
        let line: Value = serde_json::from_str(
            r#"{"Item":{"s":{"S":"x"},"n":{"N":"123456789012345678901234.5"},"b":{"B":"aGk="},
            "t":{"BOOL":true},"z":{"NULL":true},"m":{"M":{"a":{"N":"1"}}},"l":{"L":[{"S":"a"},{"N":"2"}]},
            "ss":{"SS":["a","b"]},"ns":{"NS":["4.5","5.0"]},"bs":{"BS":["aGk="]}}}"#,
        )
        .unwrap();
        let v = unwrap_line(line).unwrap();
        assert_eq!(v["s"], json!("x"));
        assert_eq!(v["n"].to_string(), "123456789012345678901234.5");
        assert_eq!(v["b"], json!("aGk="));
        assert_eq!(v["t"], json!(true));
        assert_eq!(v["z"], Value::Null);
        assert_eq!(v["m"]["a"].to_string(), "1");
        assert_eq!(v["l"].to_string(), "[\"a\",2]");
        assert_eq!(v["ss"], json!(["a", "b"]));
        assert_eq!(v["ns"].to_string(), "[4.5,5.0]");
        assert_eq!(v["bs"], json!(["aGk="]));
    }

    #[test]
    fn bad_descriptors_are_errors() {
        assert!(unwrap_line(json!({"Item": {"a": {"X": 1}}}))
            .unwrap_err()
            .contains("unknown DynamoDB type descriptor 'X'"));
        assert!(unwrap_line(json!({"Item": {"a": {"N": "abc"}}}))
            .unwrap_err()
            .contains("'abc' is not a number"));
        assert!(unwrap_line(json!({"foo": 1})).is_err());
    }
}
