//! Segment checksums: the rows of a table split into [`BUCKETS`] segments by
//! the MD5 of their key, and per segment a count and two 64-bit sums of the
//! rows' MD5 halves. The target computes its side in SQL (PostgreSQL,
//! MySQL/MariaDB) or cutover reads an embedded SQLite table once; the source
//! side is summed as the mapping produces rows. Only segments whose sums differ
//! are compared row by row.

use super::canon::{self, BUCKETS};
use crate::db::{Arg, Cell};
use crate::dialect::Dialect;
use crate::sink::{Target, TargetError};
use crate::transform::BoundTable;

/// One segment's count and sums.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sums {
    pub n: u64,
    pub s1: u64,
    pub s2: u64,
}

impl Sums {
    pub fn add(&mut self, row_md5: &[u8; 16]) {
        let (a, b) = canon::halves(row_md5);
        self.n += 1;
        self.s1 = self.s1.wrapping_add(a);
        self.s2 = self.s2.wrapping_add(b);
    }
}

fn bad(table: &str, what: &str) -> TargetError {
    TargetError::Db {
        context: format!("computing the segment checksums of table {table}"),
        message: what.to_string(),
        retryable: false,
    }
}

/// A server's sum as text (PostgreSQL sums signed halves into a numeric,
/// MariaDB unsigned ones into a decimal), modulo 2^64.
fn sum_of(cell: Option<&Cell>, table: &str) -> Result<u64, TargetError> {
    match cell {
        Some(Cell::Text(t)) => t
            .parse::<i128>()
            .map(|v| v as u64)
            .map_err(|e| bad(table, &format!("sum {t:?}: {e}"))),
        Some(Cell::Int(i)) => Ok(*i as u64),
        Some(Cell::Null) | None => Ok(0),
        Some(other) => Err(bad(table, &format!("sum read as {other:?}"))),
    }
}

/// Every row of an embedded SQLite table in rowid order, with its segment and
/// row MD5 over the exact forms of its values, and its columns as read.
async fn scan_sqlite(
    target: &dyn Target,
    t: &BoundTable,
    mut each: impl FnMut(usize, &[u8; 16], Vec<Option<String>>),
) -> Result<(), TargetError> {
    let mut after = i64::MIN;
    loop {
        let (rows, last) = target.scan_rows(t, after, 20_000).await?;
        for r in rows {
            let texts: Vec<Option<String>> = r
                .iter()
                .enumerate()
                .map(|(i, x)| {
                    canon::exact(Dialect::Sqlite, &t.types[i], &t.declared[i], x.as_deref())
                })
                .collect();
            let (km, rm) = canon::digest_row(t, &texts);
            each(canon::bucket_of(&km), &rm, r);
        }
        match last {
            Some(l) => after = l,
            None => return Ok(()),
        }
    }
}

/// The target's segment sums of a table.
pub async fn target_sums(target: &dyn Target, t: &BoundTable) -> Result<Vec<Sums>, TargetError> {
    let mut out = vec![Sums::default(); BUCKETS];
    let name = t.spec.table.as_str();
    match target.dialect() {
        Dialect::Sqlite => {
            scan_sqlite(target, t, |b, rm, _| out[b].add(rm)).await?;
        }
        d => {
            let sql = canon::segments_sql(d, t).map_err(|e| bad(name, &e))?;
            let rows = target
                .exec()
                .fetch(&sql, &[])
                .await
                .map_err(|f| f.into_target("computing segment checksums"))?;
            for r in &rows {
                let b = match r.cell("b") {
                    Some(Cell::Text(b)) => usize::from_str_radix(b, 16)
                        .map_err(|e| bad(name, &format!("segment {b:?}: {e}")))?,
                    other => return Err(bad(name, &format!("segment read as {other:?}"))),
                };
                let n = r
                    .int("n")
                    .map_err(|f| f.into_target("computing segment checksums"))?;
                let slot = out
                    .get_mut(b)
                    .ok_or_else(|| bad(name, &format!("segment {b} out of range")))?;
                *slot = Sums {
                    n: n.max(0) as u64,
                    s1: sum_of(r.cell("s1"), name)?,
                    s2: sum_of(r.cell("s2"), name)?,
                };
            }
        }
    }
    Ok(out)
}

/// A target row's segment and its columns as text (only the key columns
/// filled where the server lists the keys).
pub type SegmentRow = (usize, Vec<Option<String>>);

/// The keys of the target's rows in some segments, each as the key columns'
/// text (read as `fetch_by_keys` reads them), for the rows no record produces.
pub async fn target_keys(
    target: &dyn Target,
    t: &BoundTable,
    segments: &[usize],
) -> Result<Vec<SegmentRow>, TargetError> {
    let mut out = Vec::new();
    if segments.is_empty() {
        return Ok(out);
    }
    let name = t.spec.table.as_str();
    let wanted: std::collections::HashSet<usize> = segments.iter().copied().collect();
    match target.dialect() {
        Dialect::Sqlite => {
            scan_sqlite(target, t, |b, _, row| {
                if wanted.contains(&b) {
                    out.push((b, row));
                }
            })
            .await?;
        }
        d => {
            let hexes: Vec<String> = segments
                .iter()
                .map(|b| format!("{b:0width$x}", width = canon::BUCKET_HEX))
                .collect();
            for chunk in hexes.chunks(500) {
                let sql = canon::segment_keys_sql(d, t, chunk.len()).map_err(|e| bad(name, &e))?;
                let args: Vec<Arg> = chunk.iter().map(|h| Arg::Text(h)).collect();
                let rows = target
                    .exec()
                    .fetch(&sql, &args)
                    .await
                    .map_err(|f| f.into_target("reading the keys of differing segments"))?;
                for r in &rows {
                    // The key columns in their places, the rest empty.
                    let mut row = vec![None; t.spec.columns.len()];
                    for &i in &t.key_idx {
                        row[i] = match r.cell(&t.spec.columns[i].name) {
                            Some(Cell::Text(s)) => Some(s.clone()),
                            Some(Cell::Int(v)) => Some(v.to_string()),
                            _ => None,
                        };
                    }
                    let b = match r.cell("cutover_segment_") {
                        Some(Cell::Text(b)) => usize::from_str_radix(b, 16)
                            .map_err(|e| bad(name, &format!("segment {b:?}: {e}")))?,
                        other => return Err(bad(name, &format!("segment read as {other:?}"))),
                    };
                    out.push((b, row));
                }
            }
        }
    }
    Ok(out)
}
