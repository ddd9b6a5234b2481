//! Reading a table's rows back as text, for `verify` and for the writer that
//! matches the stored values of secret columns: the column expressions of each
//! dialect, the key filter, and the decoding that names the column it fails on.

use super::*;

/// A failure reading rows back: the table and column it happened in.
pub(crate) fn read_failure(table: &BoundTable, f: DbFailure) -> TargetError {
    match &f.column {
        Some(c) => TargetError::Db {
            context: format!("reading table {} (column {c}) as text", table.spec.table),
            message: f.message.clone(),
            retryable: false,
        },
        None => f.into_target("reading rows"),
    }
}

/// `SELECT <columns as text> FROM t WHERE (keys) IN ((...), ...)` for `n` keys,
/// with `?` placeholders: each column read as text, each key value bound as
/// [`Arg::Value`](crate::db::Arg) (PostgreSQL reads it as text, cast to the
/// column's declared type).
pub fn fetch_sql(d: Dialect, table: &BoundTable, n: usize) -> String {
    format!(
        "SELECT {} FROM {} WHERE {}",
        fetch_columns(d, table).join(", "),
        quote_table(d, &table.spec.table),
        key_in(d, table, n)
    )
}

/// Each mapped column read as text (`<expr> AS <column>`), in the table's
/// order: bytes as hex, the same on every dialect (as text they need not be
/// UTF-8); SQLite floats with 17 digits, which give their bits back (its own
/// text form keeps 15).
pub fn fetch_columns(d: Dialect, table: &BoundTable) -> Vec<String> {
    let cast = |c: String| match d {
        Dialect::Postgres => format!("{c}::text"),
        Dialect::Mysql => format!("CAST({c} AS CHAR)"),
        Dialect::Sqlite => format!("CAST({c} AS TEXT)"),
    };
    table
        .column_names()
        .enumerate()
        .map(|(i, c)| {
            let q = quote_ident(d, c);
            let read = match (table.types.get(i), d) {
                (Some(ColumnType::Bytes), Dialect::Postgres) => format!("encode({q}, 'hex')"),
                (Some(ColumnType::Bytes), _) => format!("LOWER(HEX({q}))"),
                (Some(ColumnType::Float), Dialect::Sqlite) => format!(
                    "CASE WHEN typeof({q}) = 'real' THEN printf('%!.17g', {q}) ELSE CAST({q} AS TEXT) END"
                ),
                _ => cast(q.clone()),
            };
            format!("{read} AS {q}")
        })
        .collect()
}

/// `(k1, k2) IN ((?, ?), ...)` for `n` keys of a table, each value bound as
/// text or as [`Arg::Value`](crate::db::Arg): PostgreSQL casts it to the
/// column's declared type, MySQL and SQLite compare by the column's type.
pub fn key_in(d: Dialect, table: &BoundTable, n: usize) -> String {
    let param = |c: usize| match d {
        Dialect::Postgres => format!(
            "?::text::{}",
            table
                .declared
                .get(c)
                .filter(|t| !t.is_empty())
                .map_or("text", String::as_str)
        ),
        Dialect::Mysql | Dialect::Sqlite => "?".to_string(),
    };
    let key: Vec<String> = table.spec.key.iter().map(|k| quote_ident(d, k)).collect();
    let one = format!(
        "({})",
        table
            .key_idx
            .iter()
            .map(|&c| param(c))
            .collect::<Vec<_>>()
            .join(", ")
    );
    format!(
        "({}) IN ({})",
        key.join(", "),
        vec![one.as_str(); n].join(", ")
    )
}

/// Rows of a table for the given key values, every mapped column as text, over
/// any connection: the pool (`verify`) or a batch transaction (secret columns).
pub(crate) async fn fetch_rows(
    exec: &mut dyn Exec,
    table: &BoundTable,
    keys: &[Vec<SqlValue>],
) -> Result<Vec<Vec<Option<String>>>, DbFailure> {
    let d = exec.dialect();
    let max_binds = match d {
        Dialect::Sqlite => 32_766,
        Dialect::Postgres | Dialect::Mysql => 65_535,
    };
    let per = (max_binds / table.key_idx.len().max(1)).clamp(1, 500);
    let mut out = Vec::with_capacity(keys.len());
    for chunk in keys.chunks(per) {
        let sql = fetch_sql(d, table, chunk.len());
        let args: Vec<crate::db::Arg> = chunk.iter().flatten().map(crate::db::Arg::Value).collect();
        let rows = exec.fetch(&sql, &args).await?;
        for r in &rows {
            out.push(text_cells(r, table).map_err(|e| DbFailure {
                data: false,
                message: e.to_string(),
                column: None,
            })?);
        }
    }
    Ok(out)
}

/// The mapped columns of a fetched row as text; a value that does not decode
/// is an error naming the table and column (never taken for a NULL, which
/// verify would report as a difference).
pub(super) fn text_cells(
    row: &crate::db::Row,
    table: &BoundTable,
) -> Result<Vec<Option<String>>, TargetError> {
    table
        .column_names()
        .enumerate()
        .map(|(i, name)| match row.at(i) {
            Some(crate::db::Cell::Null) => Ok(None),
            Some(crate::db::Cell::Text(s)) => Ok(Some(s.clone())),
            other => Err(TargetError::Db {
                context: format!("reading table {} (column {name}) as text", table.spec.table),
                message: format!("expected text, found {other:?}"),
                retryable: false,
            }),
        })
        .collect()
}
