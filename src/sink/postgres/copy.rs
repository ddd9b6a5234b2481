//! First loads by `COPY ... FROM STDIN`: while a table that was empty when the
//! run described it has had no conflict, a batch's rows go in with COPY under a
//! savepoint; any COPY error on data rolls back to it, and the batch and the
//! rest of the run take the upsert.

use super::error::classify;
use super::upsert::{wire, PgTx, Wire};
use crate::db::pg_text;
use crate::db::DbFailure;
use crate::dialect::{quote_ident, quote_table, Dialect};
use crate::transform::BoundTable;
use crate::value::SqlValue;

/// Append `s` to a COPY text-format row, escaped.
fn copy_escaped(buf: &mut Vec<u8>, s: &str) {
    for b in s.bytes() {
        match b {
            b'\\' => buf.extend_from_slice(b"\\\\"),
            b'\n' => buf.extend_from_slice(b"\\n"),
            b'\r' => buf.extend_from_slice(b"\\r"),
            b'\t' => buf.extend_from_slice(b"\\t"),
            _ => buf.push(b),
        }
    }
}

/// Append bytes as a bytea literal of COPY's text format (`\\x` and hex digits),
/// without an intermediate string.
fn copy_bytea(buf: &mut Vec<u8>, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    buf.reserve(3 + 2 * bytes.len());
    buf.extend_from_slice(b"\\\\x");
    for b in bytes {
        buf.push(HEX[usize::from(b >> 4)]);
        buf.push(HEX[usize::from(b & 0x0f)]);
    }
}

/// Rows in COPY's text format, each field exactly what the upsert would bind
/// (a value of another kind than the column's wire type is NULL there too).
pub fn copy_rows(table: &BoundTable, rows: &[&[SqlValue]]) -> Vec<u8> {
    use std::io::Write;
    let wires: Vec<Wire> = table.types.iter().map(wire).collect();
    let mut buf = Vec::with_capacity(rows.len() * 64 * wires.len().max(1));
    let mut ints = itoa::Buffer::new();
    for r in rows {
        for (i, w) in wires.iter().enumerate() {
            if i > 0 {
                buf.push(b'\t');
            }
            let v = &r[i];
            match (w, v) {
                (_, SqlValue::Null) => buf.extend_from_slice(b"\\N"),
                (Wire::Int, SqlValue::Int(n)) => buf.extend_from_slice(ints.format(*n).as_bytes()),
                (Wire::Float, SqlValue::Float(f)) => {
                    let _ = write!(buf, "{f}");
                }
                (Wire::Float, SqlValue::Int(n)) => {
                    let _ = write!(buf, "{}", *n as f64);
                }
                (Wire::Bool, SqlValue::Bool(b)) => buf.push(if *b { b't' } else { b'f' }),
                (Wire::Uuid, SqlValue::Uuid(u)) => {
                    let _ = write!(buf, "{}", u.hyphenated());
                }
                (Wire::Bytes, SqlValue::Bytes(b)) => copy_bytea(&mut buf, b),
                (Wire::Bytes, other) => match other.to_text() {
                    Some(t) => copy_bytea(&mut buf, t.as_bytes()),
                    None => buf.extend_from_slice(b"\\N"),
                },
                (Wire::Text, SqlValue::Text(t) | SqlValue::Json(t) | SqlValue::Decimal(t)) => {
                    copy_escaped(&mut buf, t)
                }
                (Wire::Text, other) => match pg_text(other) {
                    Some(t) => copy_escaped(&mut buf, &t),
                    None => buf.extend_from_slice(b"\\N"),
                },
                _ => buf.extend_from_slice(b"\\N"),
            }
        }
        buf.push(b'\n');
    }
    buf
}

impl PgTx {
    /// Rows in by COPY under a savepoint. `Ok(false)`: the COPY failed on data
    /// and was rolled back (the caller upserts instead).
    pub(super) async fn try_copy(
        &mut self,
        table: &BoundTable,
        rows: &[&[SqlValue]],
    ) -> Result<bool, DbFailure> {
        let d = Dialect::Postgres;
        let cols: Vec<String> = table.column_names().map(|c| quote_ident(d, c)).collect();
        let stmt = format!(
            "COPY {} ({}) FROM STDIN",
            quote_table(d, &table.spec.table),
            cols.join(", ")
        );
        let data = copy_rows(table, rows);
        let exec = |sql: &'static str| sqlx::query(sql);
        exec("SAVEPOINT cutover_copy")
            .execute(&mut *self.tx)
            .await
            .map_err(|e| classify(&e))?;
        let copied = async {
            let mut copy = self.tx.copy_in_raw(&stmt).await?;
            if let Err(e) = copy.send(data).await {
                let _ = copy.abort("cutover: sending rows failed").await;
                return Err(e);
            }
            copy.finish().await
        }
        .await;
        match copied {
            Ok(_) => {
                exec("RELEASE SAVEPOINT cutover_copy")
                    .execute(&mut *self.tx)
                    .await
                    .map_err(|e| classify(&e))?;
                Ok(true)
            }
            Err(e) => {
                let f = classify(&e);
                if !f.data {
                    return Err(f);
                }
                tracing::info!(
                    table = %table.spec.table,
                    "COPY into {} stopped ({}); the batch and the rest of the run go in by upsert",
                    table.spec.table,
                    f.message
                );
                if let Ok(mut t) = self.copy_tables.lock() {
                    t.remove(&table.spec.table);
                }
                exec("ROLLBACK TO SAVEPOINT cutover_copy")
                    .execute(&mut *self.tx)
                    .await
                    .map_err(|e| classify(&e))?;
                exec("RELEASE SAVEPOINT cutover_copy")
                    .execute(&mut *self.tx)
                    .await
                    .map_err(|e| classify(&e))?;
                Ok(false)
            }
        }
    }
}
