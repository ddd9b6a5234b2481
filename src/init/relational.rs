//! A SQL source's [`Catalog`] into a [`Plan`]: tables in foreign-key order
//! (parents first, otherwise the source's order), names by `--naming`, every
//! column converted by the [`types`] table, constraint and index names made
//! unique, and one mapping per table that reads it by its key, maps every
//! column with its cast and checks the source's row count.

use super::catalog::{Catalog, Default, SourceDialect, Table};
use super::naming::{ident, NameSet, Naming};
use super::plan::{
    file_part, job_name, numbered, Check, Job, JobColumn, JobTable, Plan, Schema, SourceValue,
    TargetColumn, TargetFk, TargetKey, TargetTable,
};
use super::types::{self, TargetType};
use crate::dialect::Dialect;
use std::collections::{HashMap, HashSet};

/// How the generated mappings reach the source.
#[derive(Debug, Clone)]
pub struct SqlSource {
    /// The `url` written in the mappings: no password; SQLite's path relative to
    /// the mappings' folder.
    pub url: String,
    pub password_env: Option<String>,
}

/// The choices of `init` that shape the plan.
#[derive(Debug, Clone)]
pub struct Options {
    pub dialect: Dialect,
    pub naming: Naming,
    /// Job names are `PREFIX_table`.
    pub prefix: String,
    /// What was read, for the first line of every file.
    pub origin: String,
}

/// Table indexes in load order: a table after the tables it references
/// (self-references aside); the source's order otherwise. A cycle is broken at
/// its first table in source order and named in the notes.
fn load_order(cat: &Catalog, notes: &mut Vec<String>) -> Vec<usize> {
    let index: HashMap<(Option<&str>, &str), usize> = cat
        .tables
        .iter()
        .enumerate()
        .map(|(i, t)| ((t.schema.as_deref(), t.name.as_str()), i))
        .collect();
    let parents: Vec<HashSet<usize>> = cat
        .tables
        .iter()
        .enumerate()
        .map(|(i, t)| {
            t.foreign_keys
                .iter()
                .filter_map(|fk| {
                    let schema = fk.ref_schema.as_deref().or(t.schema.as_deref());
                    index.get(&(schema, fk.ref_table.as_str())).copied()
                })
                .filter(|&p| p != i)
                .collect()
        })
        .collect();
    let mut placed = vec![false; cat.tables.len()];
    let mut order = Vec::new();
    while order.len() < cat.tables.len() {
        let next =
            (0..cat.tables.len()).find(|&i| !placed[i] && parents[i].iter().all(|&p| placed[p]));
        let i = match next {
            Some(i) => i,
            None => {
                let i = (0..cat.tables.len()).find(|&i| !placed[i]).unwrap_or(0);
                let waiting: Vec<String> = parents[i]
                    .iter()
                    .filter(|&&p| !placed[p])
                    .map(|&p| cat.tables[p].qualified())
                    .collect();
                notes.push(format!(
                    "{} and {} reference each other (a foreign-key cycle): whichever loads first \
                     has rows whose parents are not there yet. Load it with the foreign key \
                     dropped, or make the constraint DEFERRABLE and load both in one transaction",
                    cat.tables[i].qualified(),
                    waiting.join(", ")
                ));
                i
            }
        };
        placed[i] = true;
        order.push(i);
    }
    order
}

/// A source column as a path under `value`: `value.Name`, or `value['odd name']`.
pub fn value_path(name: &str) -> String {
    let plain = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if plain {
        format!("value.{name}")
    } else {
        format!(
            "value['{}']",
            name.replace('\\', "\\\\").replace('\'', "\\'")
        )
    }
}

/// A default spelled for a target column, or why it is not carried over.
pub fn render_default(
    d: Dialect,
    default: &Default,
    ty: &TargetType,
    rendered: &str,
) -> Result<String, String> {
    let mysql_blob = d == Dialect::Mysql
        && (rendered.contains("TEXT") || rendered.contains("BLOB") || rendered == "JSON");
    match default {
        Default::Number(n) if *ty == TargetType::Bool => Ok(match (d, n.as_str()) {
            (Dialect::Sqlite, "0") => "0".into(),
            (Dialect::Sqlite, _) => "1".into(),
            (_, "0") => "FALSE".into(),
            _ => "TRUE".into(),
        }),
        Default::Number(n) => Ok(n.clone()),
        Default::Text(_) | Default::Bool(_) | Default::CurrentTimestamp if mysql_blob => {
            Err("MySQL cannot give a TEXT, BLOB or JSON column a literal default".into())
        }
        Default::Text(s) => Ok(format!("'{}'", s.replace('\'', "''"))),
        Default::Bool(b) => Ok(match (d, b) {
            (Dialect::Sqlite, true) => "1".into(),
            (Dialect::Sqlite, false) => "0".into(),
            (_, true) => "TRUE".into(),
            (_, false) => "FALSE".into(),
        }),
        Default::CurrentTimestamp => match ty {
            TargetType::Date => Ok("CURRENT_DATE".into()),
            TargetType::Timestamp(p) | TargetType::TimestampTz(p) if d == Dialect::Mysql => {
                Ok(match p {
                    Some(p) if *p > 0 => format!("CURRENT_TIMESTAMP({})", (*p).min(6)),
                    _ => "CURRENT_TIMESTAMP".into(),
                })
            }
            TargetType::Timestamp(_) | TargetType::TimestampTz(_) => Ok("CURRENT_TIMESTAMP".into()),
            _ => Err("the current time only goes into date and timestamp columns".into()),
        },
        Default::Other(expr) => Err(format!("the source's default {expr} is not portable")),
    }
}

/// Target names of one table's columns (unique within the table).
fn column_names(t: &Table, naming: Naming) -> HashMap<String, String> {
    let mut used = HashSet::new();
    let mut out = HashMap::new();
    for c in &t.columns {
        let base = naming.apply(&c.name);
        let mut name = base.clone();
        let mut n = 2;
        while !used.insert(name.to_ascii_lowercase()) {
            name = format!("{base}_{n}");
            n += 1;
        }
        out.insert(c.name.clone(), name);
    }
    out
}

/// Build the plan of a SQL catalog.
pub fn plan(cat: &Catalog, src: &SqlSource, opts: &Options) -> Plan {
    let d = opts.dialect;
    let mut notes = Vec::new();
    let mut todos = Vec::new();
    let order = load_order(cat, &mut notes);

    // Table names first (unique; constraint names must not repeat them either).
    let mut names = NameSet::default();
    let mut table_names: HashMap<(Option<String>, String), String> = HashMap::new();
    for t in &cat.tables {
        let name = names.unique(&opts.naming.apply(&t.name));
        table_names.insert((t.schema.clone(), t.name.clone()), name);
    }
    let cols_of: Vec<HashMap<String, String>> = cat
        .tables
        .iter()
        .map(|t| column_names(t, opts.naming))
        .collect();
    let position: HashMap<(Option<String>, String), usize> = cat
        .tables
        .iter()
        .enumerate()
        .map(|(i, t)| ((t.schema.clone(), t.name.clone()), i))
        .collect();
    let map_cols = |cols: &HashMap<String, String>, list: &[String]| -> Vec<String> {
        list.iter()
            .map(|c| cols.get(c).cloned().unwrap_or_else(|| opts.naming.apply(c)))
            .collect()
    };
    // A generated constraint name: `table_col1_col2_suffix`.
    let generated = |table: &str, cols: &[String], suffix: &str| -> String {
        let mut parts = vec![table.to_string()];
        parts.extend(cols.iter().cloned());
        parts.push(suffix.to_string());
        parts.join("_")
    };
    let source_or = |name: &Option<String>, fallback: String| -> String {
        match name {
            Some(n) if !n.starts_with("sqlite_autoindex") => opts.naming.apply(n),
            _ => fallback,
        }
    };

    let mut tables = Vec::new();
    let mut jobs = Vec::new();
    for (step, &ti) in order.iter().enumerate() {
        let t = &cat.tables[ti];
        let tname = table_names[&(t.schema.clone(), t.name.clone())].clone();
        let cols = &cols_of[ti];
        let mut comments = vec![format!(
            "{} {}: {} rows at `init` time.",
            cat.dialect.name(),
            t.qualified(),
            t.rows
        )];
        let mut columns = Vec::new();
        let mut job_columns = Vec::new();
        let mut hex_columns = Vec::new();
        for c in &t.columns {
            let cname = cols[&c.name].clone();
            let mut conv = types::convert(cat.dialect, &c.ty);
            let mut notes_c: Vec<String> = Vec::new();
            // SQLite does not enforce declared lengths: make room for what is there.
            if let (Some(found), TargetType::Varchar(n)) = (c.max_len_found, &conv.ty) {
                if found > u64::from(*n) {
                    notes_c.push(format!(
                        "the source holds values of {found} characters (SQLite does not enforce declared lengths)"
                    ));
                    conv.ty = u32::try_from(found).map_or(TargetType::Text, TargetType::Varchar);
                }
            }
            let (rendered, dialect_note) = types::render(&conv.ty, d);
            if let Some(n) = &conv.note {
                notes_c.push(n.clone());
            }
            if let Some(n) = dialect_note {
                notes_c.push(n);
            }
            if conv.todo {
                todos.push(format!(
                    "{}.{}: no conversion for {} ({}): written as text",
                    t.qualified(),
                    c.name,
                    c.ty.declared,
                    cat.dialect.name()
                ));
            }
            let mut default = c.default.clone();
            if let Some(def) = &c.default {
                if let Err(why) = render_default(d, def, &conv.ty, &rendered) {
                    notes_c.push(format!("no default: {why}"));
                    default = None;
                }
            }
            if c.identity {
                notes_c.push(
                    "an identity column in the source: the target takes the source's values".into(),
                );
            }
            let same = rendered
                .replace(' ', "")
                .eq_ignore_ascii_case(&c.ty.declared.replace(' ', ""));
            let mut comment = if same {
                None
            } else {
                Some(c.ty.declared.clone())
            };
            if !notes_c.is_empty() {
                let text = notes_c.join("; ");
                comment = Some(match comment {
                    Some(s) if !conv.todo => format!("{s}: {text}"),
                    _ => text,
                });
            }
            columns.push(TargetColumn {
                name: cname.clone(),
                ty: conv.ty.clone(),
                nullable: c.nullable,
                default,
                comment: comment.clone(),
            });
            let mut expr = value_path(&c.name);
            if !c.nullable {
                expr.push_str(" | required");
            }
            if let Some(cast) = conv.cast {
                expr.push_str(" | ");
                expr.push_str(cast);
            }
            if cat.dialect == SourceDialect::Mysql && conv.cast == Some("from_hex") {
                hex_columns.push(c.name.clone());
            }
            job_columns.push(JobColumn {
                name: cname,
                expr,
                comment: conv
                    .todo
                    .then(|| format!("TODO: {} has no conversion: loaded as text", c.ty.declared)),
            });
        }

        let key = t.row_key();
        let primary_key = key.map(|k| {
            let kc = map_cols(cols, &k.columns);
            TargetKey {
                name: names.unique(&match &t.primary_key {
                    Some(pk) if pk == k => source_or(&pk.name, format!("{tname}_pkey")),
                    _ => format!("{tname}_pkey"),
                }),
                columns: kc,
            }
        });
        let uniques: Vec<TargetKey> = t
            .uniques
            .iter()
            .filter(|u| Some(*u) != key)
            .map(|u| {
                let uc = map_cols(cols, &u.columns);
                TargetKey {
                    name: names.unique(&source_or(&u.name, generated(&tname, &uc, "key"))),
                    columns: uc,
                }
            })
            .collect();
        if let (Some(k), None) = (key, &t.primary_key) {
            comments.push(format!(
                "No primary key in the source: the unique key ({}) is the primary key here.",
                k.columns.join(", ")
            ));
        }
        let mut foreign_keys = Vec::new();
        let mut parents = Vec::new();
        for fk in &t.foreign_keys {
            let ref_key = (
                fk.ref_schema.clone().or_else(|| t.schema.clone()),
                fk.ref_table.clone(),
            );
            let Some(&pi) = position.get(&ref_key) else {
                notes.push(format!(
                    "{}: the foreign key ({}) references {}, which init was not asked for: not created",
                    t.qualified(),
                    fk.columns.join(", "),
                    fk.ref_table
                ));
                continue;
            };
            let fc = map_cols(cols, &fk.columns);
            let rc = map_cols(&cols_of[pi], &fk.ref_columns);
            let ref_table = table_names[&ref_key].clone();
            if pi == ti {
                comments.push(format!(
                    "{} references {} itself: rows are read in key order, so a row must come \
                     after the row it references (make the constraint DEFERRABLE, or load the \
                     column in a second pass, when it does not).",
                    fc.join(", "),
                    tname
                ));
                notes.push(format!(
                    "{tname}.{} references its own table: it loads when every row comes after the row it references in key order",
                    fc.join(", ")
                ));
            }
            parents.push(format!(
                "{} -> {}.{}",
                fc.join(", "),
                ref_table,
                rc.join(", ")
            ));
            foreign_keys.push(TargetFk {
                name: names.unique(&source_or(&fk.name, generated(&tname, &fc, "fkey"))),
                columns: fc,
                ref_table,
                ref_columns: rc,
                on_delete: fk.on_delete.clone(),
                on_update: fk.on_update.clone(),
            });
        }
        let covered: Vec<&Vec<String>> = primary_key
            .iter()
            .map(|k| &k.columns)
            .chain(uniques.iter().map(|u| &u.columns))
            .collect();
        let indexes: Vec<TargetKey> = t
            .indexes
            .iter()
            .map(|ix| (ix, map_cols(cols, &ix.columns)))
            .filter(|(_, ic)| !covered.contains(&ic))
            .map(|(ix, ic)| TargetKey {
                name: names.unique(&source_or(&ix.name, generated(&tname, &ic, "idx"))),
                columns: ic,
            })
            .collect();

        // The mapping.
        let stem = numbered(step, order.len(), &file_part(&tname));
        let mut job_comments = vec![
            format!(
                "{} {} -> {} ({}), step {} of {} in foreign-key order (parents first).",
                cat.dialect.name(),
                t.qualified(),
                tname,
                dialect_name(d),
                step + 1,
                order.len()
            ),
            format!(
                "Source rows at `init` time: {}. NOT NULL columns are `required`; each value \
                 is cast to its column's type.",
                t.rows
            ),
        ];
        if parents.is_empty() {
            job_comments.push("Foreign keys: none.".into());
        } else {
            job_comments.push(format!("Foreign keys: {}.", parents.join("; ")));
        }
        let mut source = vec![
            (
                "kind".to_string(),
                SourceValue::Text(cat.dialect.kind().into()),
                Vec::new(),
            ),
            (
                "url".to_string(),
                SourceValue::Text(src.url.clone()),
                Vec::new(),
            ),
        ];
        if let Some(env) = &src.password_env {
            source.push((
                "password_env".into(),
                SourceValue::Text(env.clone()),
                vec!["The password is read from this environment variable.".into()],
            ));
        }
        if hex_columns.is_empty() {
            source.push(("table".into(), SourceValue::Text(t.qualified()), Vec::new()));
        } else {
            let list: Vec<String> = t
                .columns
                .iter()
                .map(|c| {
                    let q = crate::dialect::quote_ident(Dialect::Mysql, &c.name);
                    if hex_columns.contains(&c.name) {
                        format!("HEX({q}) AS {q}")
                    } else {
                        q
                    }
                })
                .collect();
            source.push((
                "query".into(),
                SourceValue::Text(format!(
                    "SELECT {} FROM {}",
                    list.join(", "),
                    crate::dialect::quote_table(Dialect::Mysql, &t.qualified())
                )),
                vec![format!(
                    "Binary columns ({}) are read as HEX(...): the MySQL reader gives bytes that happen to be UTF-8 as text.",
                    hex_columns.join(", ")
                )],
            ));
        }
        let mut table_comments = Vec::new();
        let (source_key, target_key) = match key {
            Some(k) => (k.columns.clone(), map_cols(cols, &k.columns)),
            None => {
                let candidates: Vec<String> = t
                    .columns
                    .iter()
                    .filter(|c| !c.nullable)
                    .map(|c| c.name.clone())
                    .collect();
                let why = format!(
                    "TODO: {} has no primary key or unique constraint, so there is no key to read \
                     it in pages and to upsert by. Set `key` here and in [[tables]] to columns \
                     that identify a row ({}), and add that PRIMARY KEY to its CREATE TABLE.",
                    t.qualified(),
                    if candidates.is_empty() {
                        "every column is nullable".to_string()
                    } else {
                        format!("NOT NULL candidates: {}", candidates.join(", "))
                    }
                );
                todos.push(format!(
                    "{}: no primary key or unique constraint: choose the mapping's key (`plan` and `run` refuse it until then)",
                    t.qualified()
                ));
                table_comments.push(
                    "TODO: set `key` to the target names of the columns chosen in [source].".into(),
                );
                source.push(("key".into(), SourceValue::List(Vec::new()), vec![why]));
                comments.push(
                    "TODO: no primary key or unique constraint in the source: add the PRIMARY KEY \
                     the mapping's key names (cutover upserts by it)."
                        .into(),
                );
                (Vec::new(), Vec::new())
            }
        };
        if !source_key.is_empty() {
            source.push(("key".into(), SourceValue::List(source_key), Vec::new()));
        }
        jobs.push(Job {
            file_stem: stem,
            name: job_name(&format!("{}_{}", opts.prefix, file_part(&tname))),
            description: format!(
                "{} {} -> {} ({})",
                cat.dialect.name(),
                t.qualified(),
                tname,
                dialect_name(d)
            ),
            comments: job_comments,
            source,
            tables: vec![JobTable {
                comments: table_comments,
                table: tname.clone(),
                key: target_key,
                for_each: None,
                columns: job_columns,
            }],
            checks: vec![Check {
                name: format!("{tname} rows"),
                sql: format!("SELECT COUNT(*) FROM {}", ident(d, &tname)),
                expect: t.rows,
            }],
            check_comments: vec![
                "The source's row count at `init` time; verify runs it after comparing the rows."
                    .into(),
            ],
        });
        tables.push(TargetTable {
            name: tname,
            comments,
            columns,
            primary_key,
            uniques,
            foreign_keys,
            indexes,
        });
    }
    Plan {
        schema: Schema { dialect: d, tables },
        jobs,
        todos,
        notes,
        password_env: src.password_env.clone(),
        origin: opts.origin.clone(),
    }
}

pub fn dialect_name(d: Dialect) -> &'static str {
    match d {
        Dialect::Postgres => "PostgreSQL",
        Dialect::Mysql => "MySQL/MariaDB",
        Dialect::Sqlite => "SQLite",
    }
}

#[cfg(test)]
#[path = "relational_tests.rs"]
mod tests;
