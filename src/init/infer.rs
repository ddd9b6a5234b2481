//! kv and json sources: read `--sample N` records (streamed, through the same
//! readers `run` uses) and learn each field's type, width and nullability. A
//! [`Shape`] holds the statistics of the records (or, for an array of objects,
//! of its elements, which become a child table); [`Field::decide`] turns them
//! into a column type that holds every sampled value, with a note for what the
//! sample could not decide.

use super::error::InitError;
use super::generate::InitOptions;
use super::plan::Plan;
use super::types::TargetType;
use crate::mapping::{KvFormat, SourceKind, SourceSpec};
use crate::record::Record;
use crate::source::{dynamodb, FileSource, Source};
use crate::value::{parse_instant, Instant, TimeFormat};
use indexmap::IndexMap;
use serde_json::Value;
use std::collections::HashSet;
use std::path::PathBuf;

/// What the sample showed of one field.
#[derive(Debug, Default, Clone)]
pub struct Field {
    /// Records (or elements) where the field is present and not null.
    pub present: usize,
    pub bools: usize,
    pub ints: usize,
    /// Integers beyond 32 bits.
    pub wide_ints: usize,
    /// Numbers with a fraction but no exponent.
    pub decimals: usize,
    /// Numbers with an exponent.
    pub floats: usize,
    pub strings: usize,
    pub max_chars: usize,
    pub dates: usize,
    pub times: usize,
    pub naive_timestamps: usize,
    pub zoned_timestamps: usize,
    pub uuids: usize,
    pub objects: usize,
    /// Arrays whose elements are all objects (or empty), and what they hold.
    pub object_arrays: usize,
    pub elements: Option<Box<Shape>>,
    pub other_arrays: usize,
    /// Arrays (of objects) in which every element has an `id`, and in which
    /// those ids are unique.
    pub arrays_with_unique_ids: usize,
}

/// Records (or elements) and their fields, in the order first seen.
#[derive(Debug, Default, Clone)]
pub struct Shape {
    pub count: usize,
    pub fields: IndexMap<String, Field>,
}

/// The field that names an element when every element has one.
pub const ID_FIELDS: [&str; 3] = ["id", "_id", "Id"];

fn is_time(s: &str) -> bool {
    let b = s.as_bytes();
    let two = |i: usize| {
        b.get(i).is_some_and(u8::is_ascii_digit) && b.get(i + 1).is_some_and(u8::is_ascii_digit)
    };
    (b.len() == 5 || (b.len() >= 8 && b[5] == b':' && two(6)))
        && two(0)
        && b[2] == b':'
        && two(3)
        && (b.len() <= 8 || (b[8] == b'.' && b[9..].iter().all(u8::is_ascii_digit)))
}

fn is_date(s: &str) -> bool {
    s.len() == 10 && chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok()
}

impl Shape {
    /// Add one object's fields.
    pub fn add(&mut self, obj: &serde_json::Map<String, Value>) {
        self.count += 1;
        for (k, v) in obj {
            let f = self.fields.entry(k.clone()).or_default();
            f.add(v);
        }
    }
}

impl Field {
    fn add(&mut self, v: &Value) {
        match v {
            Value::Null => return,
            Value::Bool(_) => self.bools += 1,
            Value::Number(n) => {
                let t = n.to_string();
                if t.contains(['e', 'E']) {
                    self.floats += 1;
                } else if t.contains('.') {
                    self.decimals += 1;
                } else {
                    self.ints += 1;
                    if n.as_i64().is_none_or(|i| i32::try_from(i).is_err()) {
                        self.wide_ints += 1;
                    }
                }
            }
            Value::String(s) => {
                self.strings += 1;
                self.max_chars = self.max_chars.max(s.chars().count());
                if uuid::Uuid::parse_str(s).is_ok() && s.len() >= 32 {
                    self.uuids += 1;
                } else if is_date(s) {
                    self.dates += 1;
                } else if is_time(s) {
                    self.times += 1;
                } else if s.len() >= 10 && s.chars().any(|c| c.is_ascii_digit()) {
                    match parse_instant(v, &TimeFormat::Auto) {
                        Ok(Instant::Zoned(_)) => self.zoned_timestamps += 1,
                        Ok(Instant::Naive(_)) => self.naive_timestamps += 1,
                        Err(_) => {}
                    }
                }
            }
            Value::Object(_) => self.objects += 1,
            Value::Array(items) => {
                if items.iter().all(Value::is_object) {
                    self.object_arrays += 1;
                    let shape = self.elements.get_or_insert_with(Box::default);
                    let mut ids = HashSet::new();
                    let mut all_ids = true;
                    for it in items {
                        if let Value::Object(o) = it {
                            shape.add(o);
                            let id = ID_FIELDS
                                .iter()
                                .find_map(|k| o.get(*k))
                                .filter(|v| matches!(v, Value::String(_) | Value::Number(_)));
                            all_ids &= id.is_some_and(|id| ids.insert(id.to_string()));
                        }
                    }
                    if all_ids && !items.is_empty() {
                        self.arrays_with_unique_ids += 1;
                    }
                } else {
                    self.other_arrays += 1;
                }
            }
        }
        self.present += 1;
    }

    /// Whether this field becomes a child table (an array of objects, always).
    pub fn is_child(&self) -> bool {
        self.object_arrays > 0 && self.object_arrays == self.present && self.elements.is_some()
    }

    /// A column type that holds every sampled value, its cast, and a note for
    /// what the sample could not decide.
    pub fn decide(&self) -> (TargetType, Option<&'static str>, Option<String>) {
        let p = self.present;
        let only = |n: usize| n == p && p > 0;
        if p == 0 {
            return (
                TargetType::Text,
                None,
                Some("always null or missing in the sample: typed text".into()),
            );
        }
        if only(self.bools) {
            return (TargetType::Bool, Some("bool"), None);
        }
        if only(self.ints) {
            let t = if self.wide_ints > 0 {
                TargetType::BigInt
            } else {
                TargetType::Integer
            };
            return (t, Some("int"), None);
        }
        if only(self.ints + self.decimals) {
            return (TargetType::Numeric(None), Some("decimal"), None);
        }
        if only(self.ints + self.decimals + self.floats) {
            return (TargetType::Double, Some("float"), None);
        }
        if only(self.strings) {
            if only(self.uuids) {
                return (TargetType::Uuid, Some("uuid"), None);
            }
            if only(self.dates) {
                return (TargetType::Date, Some("date"), None);
            }
            if only(self.times) {
                return (TargetType::Time(None), None, None);
            }
            if only(self.zoned_timestamps) {
                return (TargetType::TimestampTz(None), Some("timestamp"), None);
            }
            if only(self.naive_timestamps) {
                return (TargetType::Timestamp(None), Some("timestamp"), None);
            }
            return (varchar(self.max_chars), None, None);
        }
        if only(self.objects + self.other_arrays + self.object_arrays) {
            return (TargetType::Json, Some("json"), None);
        }
        (
            TargetType::Text,
            Some("text"),
            Some(format!(
                "mixed in the sample ({}): kept as text",
                self.kinds().join(", ")
            )),
        )
    }

    fn kinds(&self) -> Vec<String> {
        [
            (self.bools, "booleans"),
            (self.ints + self.decimals + self.floats, "numbers"),
            (self.strings, "strings"),
            (self.objects, "objects"),
            (self.object_arrays + self.other_arrays, "arrays"),
        ]
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!("{n} {what}"))
        .collect()
    }
}

/// A varchar with room to spare: twice the longest sampled value, rounded up
/// to a power of two (at least 16); beyond 4000 characters, text.
pub fn varchar(longest: usize) -> TargetType {
    let want = (longest * 2).max(16).next_power_of_two();
    if want > 4096 {
        TargetType::Text
    } else {
        TargetType::Varchar(u32::try_from(want).unwrap_or(4096))
    }
}

/// The sample: records' shape, and what names them.
pub struct Sample {
    pub shape: Shape,
    /// Whether every record of the source was read.
    pub complete: bool,
    /// Records that could not be decoded (not in the shape), and the first one's reason.
    pub unreadable: usize,
    pub first_error: Option<String>,
    /// Whether each record was a whole file (so `file.*` captures name it).
    pub one_per_file: bool,
    /// `{name}` captures of the path pattern.
    pub captures: Vec<String>,
}

/// Read up to `n` records of a file source.
pub fn sample(spec: &SourceSpec, n: usize) -> Result<Sample, InitError> {
    let mut src: Box<dyn Source> =
        if spec.format == KvFormat::Dynamodb && spec.kind == SourceKind::Kv {
            Box::new(dynamodb::open(spec)?)
        } else {
            Box::new(FileSource::open(spec)?)
        };
    let mut shape = Shape::default();
    let mut unreadable = 0;
    let mut first_error = None;
    let mut seen = 0;
    let mut complete = false;
    let mut files = HashSet::new();
    let mut one_per_file = true;
    let mut captures = Vec::new();
    while seen < n {
        let batch = src.next_batch((n - seen).min(1000))?;
        if batch.is_empty() {
            complete = true;
            break;
        }
        for raw in batch {
            seen += 1;
            let rec: Record = match raw.decode() {
                Ok(r) => r,
                Err(e) => {
                    unreadable += 1;
                    first_error.get_or_insert_with(|| format!("{}: {}", e.key, e.message));
                    continue;
                }
            };
            one_per_file &= files.insert(rec.position.file);
            if captures.is_empty() {
                captures = rec.file.captures.iter().map(|(k, _)| k.clone()).collect();
            }
            match &rec.value {
                Value::Object(o) => shape.add(o),
                other => {
                    let mut m = serde_json::Map::new();
                    m.insert("value".into(), other.clone());
                    shape.add(&m);
                }
            }
        }
    }
    if !complete && src.next_batch(1)?.is_empty() {
        complete = true;
    }
    Ok(Sample {
        shape,
        complete,
        unreadable,
        first_error,
        one_per_file,
        captures,
    })
}

/// The source spec `init` samples through (paths as given, from the CWD).
pub fn spec(o: &InitOptions, kind: SourceKind) -> SourceSpec {
    SourceSpec {
        watermark: None,
        filter: None,
        paging_prefix: 0,
        kind,
        path: Some(PathBuf::from(&o.source)),
        path_text: Some(o.source.clone()),
        format: o.format.unwrap_or_default(),
        key: o.key.clone(),
        url: None,
        password_env: None,
        table: None,
        query: None,
        trust_server_certificate: false,
        dir: PathBuf::from("."),
    }
}

/// Build the plan of a kv or json source.
pub async fn plan(o: &InitOptions, kind: SourceKind) -> Result<Plan, InitError> {
    super::docplan::plan(o, kind)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn field(values: &[Value]) -> Field {
        let mut f = Field::default();
        for v in values {
            f.add(v);
        }
        f
    }

    #[test]
    fn types_hold_every_sampled_value() {
        let d = |v: &[Value]| field(v).decide().0;
        assert_eq!(d(&[json!(1), json!(2)]), TargetType::Integer);
        assert_eq!(d(&[json!(1), json!(5_000_000_000_i64)]), TargetType::BigInt);
        assert_eq!(d(&[json!(1), json!(1.25)]), TargetType::Numeric(None));
        assert_eq!(d(&[json!(true), Value::Null]), TargetType::Bool);
        assert_eq!(
            d(&[json!("2024-05-04"), json!("2023-01-31")]),
            TargetType::Date
        );
        assert_eq!(
            d(&[json!("20:00"), json!("12:30:15")]),
            TargetType::Time(None)
        );
        assert_eq!(
            d(&[json!("Sat, 04 May 2024 04:44:31 GMT")]),
            TargetType::TimestampTz(None)
        );
        assert_eq!(
            d(&[json!("2024-05-04 04:44:31")]),
            TargetType::Timestamp(None)
        );
        assert_eq!(
            d(&[json!("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")]),
            TargetType::Uuid
        );
        assert_eq!(d(&[json!("Zane7509"), json!("x")]), TargetType::Varchar(16));
        assert_eq!(d(&[json!("a".repeat(40))]), TargetType::Varchar(128));
        assert_eq!(d(&[json!({"ft": [1, 0]})]), TargetType::Json);
        assert_eq!(d(&[json!([1, 2])]), TargetType::Json);
        let (t, cast, note) = field(&[json!(1), json!("one")]).decide();
        assert_eq!((t, cast), (TargetType::Text, Some("text")));
        assert!(note.unwrap().contains("1 numbers, 1 strings"));
        let (t, _, note) = field(&[Value::Null]).decide();
        assert_eq!(t, TargetType::Text);
        assert!(note.unwrap().contains("always null"));
        // A date and other text are not one type: a varchar twice the longest.
        assert_eq!(
            d(&[json!("2024-05-04"), json!("x")]),
            TargetType::Varchar(32)
        );
    }

    #[test]
    fn arrays_of_objects_become_children_with_their_ids() {
        let f = field(&[
            json!([{"id": 1, "a": "x"}, {"id": 2, "a": "y"}]),
            json!([{"id": 3}]),
        ]);
        assert!(f.is_child());
        assert_eq!(f.arrays_with_unique_ids, 2);
        let el = f.elements.as_ref().unwrap();
        assert_eq!(el.count, 3);
        assert_eq!(el.fields["a"].present, 2);
        let f = field(&[json!([{"id": 1}, {"id": 1}])]);
        assert_eq!(f.arrays_with_unique_ids, 0, "repeated ids are no key");
        let f = field(&[json!([{"a": 1}]), json!([1])]);
        assert!(!f.is_child(), "not every array holds objects");
    }
}
