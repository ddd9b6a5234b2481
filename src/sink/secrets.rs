//! Secret columns on a rerun. `encrypt` and `hash_password` give another value
//! on every call, so the upsert alone would rewrite every such row on every
//! pass. Before a table's upsert, the writer reads (in the batch transaction)
//! the stored values of the rows whose keys the batch writes, and where the
//! stored value still opens to the record's clear text (decrypts to it, or
//! verifies against it with the same costs), it writes that stored value
//! instead of the new one: the upsert then finds the row unchanged.

use super::{BatchTx, DbFailure};
use crate::mapping::functions::{secret_of, Secret};
use crate::transform::{BoundTable, SecretCell};
use crate::value::{comparable_text, SqlValue};
use rayon::prelude::*;
use std::collections::HashMap;
use std::sync::Arc;

/// One stored value to check: (how it is protected, stored, clear).
pub type Opening = (Arc<Secret>, String, String);

/// Whether each stored value opens to its clear text. Hash checks cost what
/// hashing costs (argon2id ~20 ms each), so they run on rayon, not on the
/// async thread that awaits them.
pub async fn opens_all(checks: Vec<Opening>) -> Vec<bool> {
    let n = checks.len();
    if checks
        .iter()
        .all(|(s, _, _)| matches!(**s, Secret::Fernet { .. }))
    {
        return checks.iter().map(|(s, st, c)| s.opens(st, c)).collect();
    }
    let (tx, rx) = tokio::sync::oneshot::channel();
    rayon::spawn(move || {
        let r: Vec<bool> = checks.par_iter().map(|(s, st, c)| s.opens(st, c)).collect();
        let _ = tx.send(r);
    });
    // A lost answer only costs a rewrite of the rows.
    rx.await.unwrap_or_else(|_| vec![false; n])
}

/// The secret columns of a table: (column index, how it is protected).
pub fn secret_columns(t: &BoundTable) -> Vec<(usize, Arc<Secret>)> {
    t.spec
        .columns
        .iter()
        .enumerate()
        .filter_map(|(i, c)| secret_of(&c.expr).map(|(_, s)| (i, s.clone())))
        .collect()
}

/// For each row (its values and the clear text of its secret columns), the row
/// to write instead, where the target holds values that still open to the
/// clear text: those stored values in place of the new ones.
pub(super) async fn keep_stored(
    tx: &mut dyn BatchTx,
    t: &BoundTable,
    rows: &[(&[SqlValue], Vec<&SecretCell>)],
) -> Result<Vec<Option<Vec<SqlValue>>>, DbFailure> {
    let mut out = vec![None; rows.len()];
    let secrets: HashMap<usize, Arc<Secret>> = secret_columns(t).into_iter().collect();
    let with: Vec<usize> = (0..rows.len()).filter(|&i| !rows[i].1.is_empty()).collect();
    if with.is_empty() || secrets.is_empty() {
        return Ok(out);
    }
    let keys: Vec<Vec<SqlValue>> = with
        .iter()
        .map(|&i| t.key_idx.iter().map(|&k| rows[i].0[k].clone()).collect())
        .collect();
    let found = tx.fetch_by_keys(t, &keys).await?;
    let stored: HashMap<String, &Vec<Option<String>>> =
        found.iter().map(|r| (t.row_key(r), r)).collect();
    let mut checks = Vec::new();
    let mut at = Vec::new();
    for &i in &with {
        let (values, cells) = &rows[i];
        let text: Vec<Option<String>> = values.iter().map(comparable_text).collect();
        let Some(got) = stored.get(&t.row_key(&text)) else {
            continue;
        };
        for c in cells {
            let (Some(Some(s)), Some(secret)) = (got.get(c.col), secrets.get(&c.col)) else {
                continue;
            };
            checks.push((secret.clone(), s.clone(), c.clear.clone()));
            at.push((i, c.col));
        }
    }
    let opened = opens_all(checks.clone()).await;
    for (((i, col), ok), (_, s, _)) in at.into_iter().zip(opened).zip(checks) {
        if ok {
            let row = out[i].get_or_insert_with(|| rows[i].0.to_vec());
            row[col] = SqlValue::Text(s);
        }
    }
    Ok(out)
}
