//! The keyset SQL of the sqlx dialects: a page after a key, the row of one key,
//! and PostgreSQL's probe for NULL keys.

use super::keys::KeyType;
use crate::dialect::{quote_ident, Dialect};

/// The `n`-th (1-based) parameter, typed for the column.
pub(crate) fn placeholder(d: Dialect, ty: &KeyType, n: usize) -> String {
    match (d, ty) {
        (Dialect::Postgres, KeyType::PgCast(t)) => format!("${n}::{t}"),
        (Dialect::Postgres, KeyType::PgBytes) => format!("decode(${n}, 'base64')"),
        (Dialect::Postgres, _) => format!("${n}"),
        _ => "?".into(),
    }
}

pub(crate) fn key_refs(d: Dialect, keys: &[String]) -> Vec<String> {
    keys.iter()
        .map(|k| format!("q.{}", quote_ident(d, k)))
        .collect()
}

/// A keyset page: the SQL, and for each parameter in order the index of the key
/// value it binds. PostgreSQL compares rows (`(a, b) > ($1, $2)`, which its
/// btree indexes serve); MySQL and SQLite get the expanded form
/// `a > ? OR (a = ? AND b > ?)`.
pub(crate) fn page_sql(
    d: Dialect,
    relation: &str,
    keys: &[String],
    types: &[KeyType],
    after: bool,
    limit: usize,
) -> (String, Vec<usize>) {
    let refs = key_refs(d, keys);
    let mut order = Vec::new();
    let mut sql = format!("SELECT * FROM {relation}");
    if after {
        let ty = |i: usize| types.get(i).unwrap_or(&KeyType::Text);
        if d == Dialect::Postgres {
            let params: Vec<String> = (0..keys.len())
                .map(|i| placeholder(d, ty(i), i + 1))
                .collect();
            order.extend(0..keys.len());
            if keys.len() == 1 {
                sql.push_str(&format!(" WHERE {} > {}", refs[0], params[0]));
            } else {
                sql.push_str(&format!(
                    " WHERE ({}) > ({})",
                    refs.join(", "),
                    params.join(", ")
                ));
            }
        } else {
            let mut ors = Vec::new();
            for i in 0..refs.len() {
                let mut ands = Vec::new();
                for (j, key) in refs.iter().enumerate().take(i) {
                    order.push(j);
                    ands.push(format!("{key} = {}", placeholder(d, ty(j), order.len())));
                }
                order.push(i);
                ands.push(format!(
                    "{} > {}",
                    refs[i],
                    placeholder(d, ty(i), order.len())
                ));
                ors.push(format!("({})", ands.join(" AND ")));
            }
            sql.push_str(&format!(" WHERE {}", ors.join(" OR ")));
        }
    }
    sql.push_str(&format!(" ORDER BY {} LIMIT {limit}", refs.join(", ")));
    (sql, order)
}

/// The one row with the given key (`cutover retry`).
pub(crate) fn lookup_sql(d: Dialect, relation: &str, keys: &[String], types: &[KeyType]) -> String {
    let conds: Vec<String> = key_refs(d, keys)
        .iter()
        .enumerate()
        .map(|(i, k)| {
            let t = types.get(i).unwrap_or(&KeyType::Text);
            format!("{k} = {}", placeholder(d, t, i + 1))
        })
        .collect();
    format!(
        "SELECT * FROM {relation} WHERE {} LIMIT 1",
        conds.join(" AND ")
    )
}

/// PostgreSQL sorts NULLs after every value, where `WHERE key > last` never
/// reaches them: look for one before reading.
pub(crate) fn null_probe_sql(relation: &str, keys: &[String]) -> String {
    let d = Dialect::Postgres;
    let refs = key_refs(d, keys);
    let cols: Vec<String> = refs
        .iter()
        .zip(keys)
        .map(|(r, k)| format!("({r} IS NULL) AS {}", quote_ident(d, k)))
        .collect();
    let conds: Vec<String> = refs.iter().map(|r| format!("{r} IS NULL")).collect();
    format!(
        "SELECT {} FROM {relation} WHERE {} LIMIT 1",
        cols.join(", "),
        conds.join(" OR ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(n: usize) -> Vec<String> {
        ["a", "b", "c"][..n].iter().map(|s| s.to_string()).collect()
    }

    fn pg_types(n: usize) -> Vec<KeyType> {
        ["pg_catalog.uuid", "pg_catalog.text", "pg_catalog.int4"][..n]
            .iter()
            .map(|t| KeyType::PgCast(t.to_string()))
            .collect()
    }

    #[test]
    fn first_page_has_no_condition() {
        for d in [Dialect::Sqlite, Dialect::Postgres, Dialect::Mysql] {
            let (sql, order) = page_sql(d, "t AS q", &keys(2), &[], false, 11);
            assert!(order.is_empty());
            let q = if d == Dialect::Mysql { '`' } else { '"' };
            assert_eq!(
                sql,
                format!("SELECT * FROM t AS q ORDER BY q.{q}a{q}, q.{q}b{q} LIMIT 11")
            );
        }
    }

    #[test]
    fn postgres_pages_compare_rows_with_typed_parameters() {
        let page = |n| page_sql(Dialect::Postgres, "t AS q", &keys(n), &pg_types(n), true, 4);
        assert_eq!(
            page(1),
            (
                "SELECT * FROM t AS q WHERE q.\"a\" > $1::pg_catalog.uuid ORDER BY q.\"a\" LIMIT 4"
                    .to_string(),
                vec![0]
            )
        );
        assert_eq!(
            page(2),
            (
                "SELECT * FROM t AS q WHERE (q.\"a\", q.\"b\") > ($1::pg_catalog.uuid, $2::pg_catalog.text) ORDER BY q.\"a\", q.\"b\" LIMIT 4"
                    .to_string(),
                vec![0, 1]
            )
        );
        assert_eq!(
            page(3),
            (
                "SELECT * FROM t AS q WHERE (q.\"a\", q.\"b\", q.\"c\") > ($1::pg_catalog.uuid, $2::pg_catalog.text, $3::pg_catalog.int4) ORDER BY q.\"a\", q.\"b\", q.\"c\" LIMIT 4"
                    .to_string(),
                vec![0, 1, 2]
            )
        );
        let (sql, _) = page_sql(
            Dialect::Postgres,
            "t AS q",
            &keys(1),
            &[KeyType::PgBytes],
            true,
            2,
        );
        assert!(sql.contains("q.\"a\" > decode($1, 'base64')"), "{sql}");
    }

    #[test]
    fn mysql_and_sqlite_pages_expand_the_comparison() {
        for (d, q) in [(Dialect::Mysql, '`'), (Dialect::Sqlite, '"')] {
            let t = vec![KeyType::Text; 3];
            let (a, b, c) = (
                format!("q.{q}a{q}"),
                format!("q.{q}b{q}"),
                format!("q.{q}c{q}"),
            );
            let (sql, order) = page_sql(d, "t AS q", &keys(1), &t[..1], true, 4);
            assert_eq!(
                sql,
                format!("SELECT * FROM t AS q WHERE ({a} > ?) ORDER BY {a} LIMIT 4")
            );
            assert_eq!(order, vec![0]);
            let (sql, order) = page_sql(d, "t AS q", &keys(2), &t[..2], true, 4);
            assert_eq!(
                sql,
                format!("SELECT * FROM t AS q WHERE ({a} > ?) OR ({a} = ? AND {b} > ?) ORDER BY {a}, {b} LIMIT 4")
            );
            assert_eq!(order, vec![0, 0, 1]);
            let (sql, order) = page_sql(d, "t AS q", &keys(3), &t, true, 4);
            assert_eq!(
                sql,
                format!("SELECT * FROM t AS q WHERE ({a} > ?) OR ({a} = ? AND {b} > ?) OR ({a} = ? AND {b} = ? AND {c} > ?) ORDER BY {a}, {b}, {c} LIMIT 4")
            );
            assert_eq!(order, vec![0, 0, 1, 0, 1, 2]);
        }
    }

    #[test]
    fn lookups_and_null_probes() {
        assert_eq!(
            lookup_sql(Dialect::Postgres, "t AS q", &keys(2), &pg_types(2)),
            "SELECT * FROM t AS q WHERE q.\"a\" = $1::pg_catalog.uuid AND q.\"b\" = $2::pg_catalog.text LIMIT 1"
        );
        assert_eq!(
            lookup_sql(
                Dialect::Mysql,
                "t AS q",
                &keys(2),
                &[KeyType::Int, KeyType::Text]
            ),
            "SELECT * FROM t AS q WHERE q.`a` = ? AND q.`b` = ? LIMIT 1"
        );
        assert_eq!(
            null_probe_sql("t AS q", &keys(2)),
            "SELECT (q.\"a\" IS NULL) AS \"a\", (q.\"b\" IS NULL) AS \"b\" FROM t AS q WHERE q.\"a\" IS NULL OR q.\"b\" IS NULL LIMIT 1"
        );
    }
}
