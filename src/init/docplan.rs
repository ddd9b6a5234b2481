//! The plan of a kv or json source from its [`Sample`]: one mapping, a root
//! table (one row per record) and a child table per array of objects (one row
//! per element, `for_each`), keyed by the record's key and, for a child, the
//! element's own id when every sampled element has one, else its index. Other
//! nested values are json columns. What the sample could not decide is a
//! comment in the mapping.

use super::error::InitError;
use super::generate::InitOptions;
use super::infer::{self, Sample, Shape, ID_FIELDS};
use super::naming::{ident, NameSet, Naming};
use super::plan::{
    file_part, job_name, numbered, Check, Job, JobColumn, JobTable, Plan, Schema, SourceValue,
    TargetColumn, TargetKey, TargetTable,
};
use super::relational::{dialect_name, value_path};
use super::source::{absolute, relative};
use super::types::{self, TargetType};
use crate::mapping::{KvFormat, SourceKind};
use serde_json::Value;
use std::path::Path;

/// A path under a root (`value`, `item`) to a field.
fn path(root: &str, field: &str) -> String {
    value_path(field).replacen("value", root, 1)
}

/// One column: its target name, type, expression and comment.
struct Col {
    name: String,
    ty: TargetType,
    nullable: bool,
    expr: String,
    comment: Option<String>,
}

/// The key columns every table of the record carries.
fn key_columns(o: &InitOptions, kind: SourceKind, s: &Sample) -> Result<Vec<Col>, InitError> {
    let key_col = |name: &str, expr: String, ty: TargetType| Col {
        name: o.naming.apply(name),
        ty,
        nullable: false,
        expr,
        comment: None,
    };
    let field_key = |k: &String| -> Result<Col, InitError> {
        let f = s.shape.fields.get(k).ok_or_else(|| {
            InitError::Usage(format!(
                "--key {k}: no sampled record has a field {k}; they have: {}",
                s.shape
                    .fields
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })?;
        let (ty, cast, _) = f.decide();
        let ty = match ty {
            TargetType::Text => infer::varchar(f.max_chars),
            t => t,
        };
        let mut expr = format!("{} | required", path("value", k));
        if let Some(c) = cast.filter(|c| *c != "text") {
            expr.push_str(&format!(" | {c}"));
        }
        Ok(key_col(k, expr, ty))
    };
    if !o.key.is_empty() {
        return o.key.iter().map(field_key).collect();
    }
    if kind == SourceKind::Kv {
        return Ok(vec![key_col(
            "key",
            "key | required".into(),
            TargetType::Varchar(512),
        )]);
    }
    if s.one_per_file && !s.captures.is_empty() {
        return Ok(s
            .captures
            .iter()
            .map(|c| key_col(c, format!("file.{c}"), TargetType::Varchar(255)))
            .collect());
    }
    let unique_id = ID_FIELDS.iter().find(|k| {
        s.shape
            .fields
            .get(**k)
            .is_some_and(|f| f.present == s.shape.count && f.strings + f.ints == f.present)
    });
    if let Some(k) = unique_id {
        return field_key(&k.to_string()).map(|c| vec![c]);
    }
    Ok(vec![key_col(
        "record",
        "key | required".into(),
        TargetType::Varchar(1024),
    )])
}

/// The columns of the fields of a shape (children aside), under `root`.
fn field_columns(
    shape: &Shape,
    root: &str,
    naming: Naming,
    taken: &[String],
    skip: &[String],
) -> Vec<Col> {
    let mut out = Vec::new();
    let mut used: Vec<String> = taken.to_vec();
    for (name, f) in &shape.fields {
        if (f.is_child() && root == "value") || skip.contains(name) {
            continue;
        }
        let (ty, cast, note) = f.decide();
        let nullable = f.present < shape.count;
        let mut expr = path(root, name);
        if !nullable {
            expr.push_str(" | required");
        }
        if let Some(c) = cast {
            expr.push_str(&format!(" | {c}"));
        }
        let base = naming.apply(name);
        let mut cname = base.clone();
        let mut n = 2;
        while used.iter().any(|u| u.eq_ignore_ascii_case(&cname)) {
            cname = format!("{base}_{n}");
            n += 1;
        }
        used.push(cname.clone());
        let mut notes: Vec<String> = note.into_iter().collect();
        if nullable && f.present > 0 {
            notes.push(format!(
                "missing or null in {} of {} sampled",
                shape.count - f.present,
                shape.count
            ));
        }
        if f.is_child() {
            notes.push("an array of objects inside an array: kept as JSON".into());
        }
        out.push(Col {
            name: cname,
            ty,
            nullable,
            expr,
            comment: (!notes.is_empty()).then(|| notes.join("; ")),
        });
    }
    out
}

/// The root table's name: --name, the DynamoDB table, or the source's folder.
fn root_name(o: &InitOptions, spec_path: &Path) -> String {
    if let Some(n) = &o.name {
        return n.clone();
    }
    if o.format == Some(KvFormat::Dynamodb) {
        let summary = spec_path.join("manifest-summary.json");
        if let Some(t) = std::fs::read_to_string(summary)
            .ok()
            .and_then(|t| serde_json::from_str::<Value>(&t).ok())
            .and_then(|v| v.get("tableArn")?.as_str().map(str::to_string))
            .and_then(|arn| arn.rsplit('/').next().map(str::to_string))
        {
            return t;
        }
    }
    let fixed: Vec<&str> = o
        .source
        .split('/')
        .take_while(|p| !p.contains(['{', '*']))
        .filter(|p| !p.is_empty() && *p != "." && *p != "..")
        .collect();
    let last = fixed.last().copied().unwrap_or("records");
    last.split('.').next().unwrap_or(last).to_string()
}

/// The DynamoDB export's item count (its manifest), when the sample saw only part.
fn manifest_count(o: &InitOptions) -> Option<u64> {
    let text = std::fs::read_to_string(Path::new(&o.source).join("manifest-summary.json")).ok()?;
    serde_json::from_str::<Value>(&text)
        .ok()?
        .get("itemCount")?
        .as_u64()
}

fn table(
    name: String,
    cols: &[Col],
    key: &[String],
    comments: Vec<String>,
    names: &mut NameSet,
    d: crate::dialect::Dialect,
) -> TargetTable {
    TargetTable {
        primary_key: Some(TargetKey {
            name: names.unique(&format!("{name}_pkey")),
            columns: key.to_vec(),
        }),
        columns: cols
            .iter()
            .map(|c| TargetColumn {
                name: c.name.clone(),
                ty: c.ty.clone(),
                nullable: c.nullable,
                default: None,
                comment: c.comment.clone().or_else(|| types::render(&c.ty, d).1),
            })
            .collect(),
        comments,
        uniques: Vec::new(),
        foreign_keys: Vec::new(),
        indexes: Vec::new(),
        name,
    }
}

fn job_columns(cols: &[Col]) -> Vec<JobColumn> {
    cols.iter()
        .map(|c| JobColumn {
            name: c.name.clone(),
            expr: c.expr.clone(),
            comment: c.comment.clone(),
        })
        .collect()
}

pub fn plan(o: &InitOptions, kind: SourceKind) -> Result<Plan, InitError> {
    if kind == SourceKind::Json && o.format.is_some() {
        return Err(InitError::Usage("--format is for kv sources".into()));
    }
    if o.format == Some(KvFormat::Dynamodb) && o.key.is_empty() {
        return Err(InitError::Usage(
            "a dynamodb source needs --key, the table's key attributes (e.g. --key name)".into(),
        ));
    }
    let spec = infer::spec(o, kind);
    let s = infer::sample(&spec, o.sample)?;
    if s.shape.count == 0 {
        return Err(InitError::Usage(format!(
            "{}: no record could be read to sample ({} unreadable{})",
            o.source,
            s.unreadable,
            s.first_error
                .as_ref()
                .map(|e| format!("; the first: {e}"))
                .unwrap_or_default()
        )));
    }
    let d = o.dialect;
    let root = o.naming.apply(&root_name(o, Path::new(&o.source)));
    let keys = key_columns(o, kind, &s)?;
    let key_names: Vec<String> = keys.iter().map(|c| c.name.clone()).collect();
    let mut root_cols = keys;
    // A --key field is a key column already.
    root_cols.extend(field_columns(
        &s.shape, "value", o.naming, &key_names, &o.key,
    ));
    let origin = format!(
        "{} {}",
        match (kind, o.format) {
            (SourceKind::Kv, Some(KvFormat::Dynamodb)) => "the DynamoDB export".to_string(),
            (SourceKind::Kv, _) => "the kv dump".to_string(),
            _ => "the JSON files".to_string(),
        },
        o.source
    );
    let sampled = if s.complete {
        format!("all {} records of the source were sampled", s.shape.count)
    } else {
        format!(
            "the first {} records were sampled: a later record that does not fit fails with its reason (an error row)",
            s.shape.count
        )
    };
    let mut names = NameSet::default();
    names.reserve(&root);
    let mut tables = vec![table(
        root.clone(),
        &root_cols,
        &key_names,
        vec![format!("One row per record of {origin}; {sampled}.")],
        &mut names,
        d,
    )];
    let root_count = if s.complete {
        Some(s.shape.count as u64)
    } else {
        manifest_count(o)
    };
    let mut job_tables = vec![JobTable {
        comments: vec![format!("One row per record; {sampled}.")],
        table: root.clone(),
        key: key_names.clone(),
        for_each: None,
        columns: job_columns(&root_cols),
    }];
    let mut checks: Vec<Check> = root_count
        .map(|n| Check {
            name: format!("{root} rows"),
            sql: format!("SELECT COUNT(*) FROM {}", ident(d, &root)),
            expect: n,
        })
        .into_iter()
        .collect();
    let mut check_comments = vec![if s.complete {
        "The row counts of the whole source (every record was sampled).".to_string()
    } else if root_count.is_some() {
        "The export's item count (its manifest); the child tables' counts are not known from a sample.".to_string()
    } else {
        "No row-count checks: the sample did not cover the source.".to_string()
    }];
    for (fname, f) in s.shape.fields.iter().filter(|(_, f)| f.is_child()) {
        let Some(el) = &f.elements else { continue };
        let child = names.unique(&format!("{root}_{}", o.naming.apply(fname)));
        let mut cols: Vec<Col> = root_cols[..key_names.len()]
            .iter()
            .map(|k| Col {
                name: k.name.clone(),
                ty: k.ty.clone(),
                nullable: false,
                expr: k.expr.clone(),
                comment: None,
            })
            .collect();
        let id = ID_FIELDS
            .iter()
            .find(|k| el.fields.contains_key(**k))
            .filter(|_| f.arrays_with_unique_ids == f.object_arrays);
        let mut key = key_names.clone();
        let mut taken = key_names.clone();
        let element_cols = field_columns(el, "item", o.naming, &taken, &[]);
        let how = match id {
            Some(k) => {
                let name = o.naming.apply(k);
                key.push(
                    element_cols
                        .iter()
                        .find(|c| c.expr.starts_with(&path("item", k)))
                        .map_or(name, |c| c.name.clone()),
                );
                format!(
                    "its element's own `{k}` (every sampled element has one, unique in its record)"
                )
            }
            None => {
                let mut seq = "seq".to_string();
                while el.fields.keys().any(|k| o.naming.apply(k) == seq) {
                    seq.push('_');
                }
                taken.push(seq.clone());
                cols.push(Col {
                    name: seq.clone(),
                    ty: TargetType::Integer,
                    nullable: false,
                    expr: "index".into(),
                    comment: Some("the element's position in the array, from 0".into()),
                });
                key.push(seq);
                "the element's position (index): not every sampled element has an own id".into()
            }
        };
        cols.extend(element_cols);
        let comment = format!(
            "One row per element of `{fname}` ({} elements in the sample), keyed by the record's key and {how}.",
            el.count
        );
        tables.push(table(
            child.clone(),
            &cols,
            &key,
            vec![comment.clone()],
            &mut names,
            d,
        ));
        if s.complete {
            checks.push(Check {
                name: format!("{child} rows"),
                sql: format!("SELECT COUNT(*) FROM {}", ident(d, &child)),
                expect: el.count as u64,
            });
        }
        job_tables.push(JobTable {
            comments: vec![comment],
            table: child,
            key,
            for_each: Some(path("value", fname)),
            columns: job_columns(&cols),
        });
    }
    if s.unreadable > 0 {
        check_comments.push(format!(
            "{} sampled records could not be read: `run` gives them error rows.",
            s.unreadable
        ));
    }
    let base = absolute(&o.out).join("mappings");
    let src_path = relative(&absolute(Path::new(&o.source)), &base);
    let mut source = vec![
        (
            "kind".to_string(),
            SourceValue::Text(crate::mapping::kind_name(kind).into()),
            Vec::new(),
        ),
        (
            "path".to_string(),
            SourceValue::Text(src_path.display().to_string()),
            Vec::new(),
        ),
    ];
    if kind == SourceKind::Kv {
        let f = match o.format.unwrap_or_default() {
            KvFormat::Jsonl => "jsonl",
            KvFormat::Object => "object",
            KvFormat::Dynamodb => "dynamodb",
        };
        source.push(("format".into(), SourceValue::Text(f.into()), Vec::new()));
        if o.format == Some(KvFormat::Dynamodb) {
            source.push(("key".into(), SourceValue::List(o.key.clone()), Vec::new()));
        }
    }
    let job = Job {
        file_stem: numbered(0, 1, &file_part(&root)),
        name: job_name(&file_part(&root)),
        description: format!(
            "{origin} -> {} ({})",
            tables
                .iter()
                .map(|t| t.name.as_str())
                .collect::<Vec<_>>()
                .join(" + "),
            dialect_name(d)
        ),
        comments: vec![
            format!("Inferred from a sample of {origin}: {sampled}."),
            "Each column's type holds every sampled value; arrays of objects are child tables \
             (for_each), other nested values json columns."
                .into(),
        ],
        source,
        tables: job_tables,
        checks,
        check_comments,
    };
    Ok(Plan {
        schema: Schema { dialect: d, tables },
        jobs: vec![job],
        todos: Vec::new(),
        notes: Vec::new(),
        password_env: None,
        origin,
    })
}
