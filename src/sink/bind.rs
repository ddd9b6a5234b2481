//! A mapping bound to the target's tables: every table and column exists, the
//! key is a unique constraint, the expressions' types fit the columns, and NOT
//! NULL columns are written. The result carries each column's type for the
//! writers (casts, COPY, verify).

use super::Target;
use crate::db::TargetError;
use crate::mapping::{Diagnostic, Mapping, MappingError};
use crate::transform::BoundTable;

#[derive(Debug, thiserror::Error)]
pub enum BindError {
    #[error(transparent)]
    Mapping(#[from] MappingError),
    #[error(transparent)]
    Target(#[from] TargetError),
}

/// Check a mapping against the target's tables: every table and column exists,
/// the key is a unique constraint, types can fit, NOT NULL columns are written.
pub async fn bind(target: &dyn Target, mapping: &Mapping) -> Result<Vec<BoundTable>, BindError> {
    let mut diags: Vec<Diagnostic> = Vec::new();
    let mut bound = Vec::new();
    for t in &mapping.tables {
        let Some(info) = target.describe_table(&t.table).await? else {
            diags.push(
                mapping.diagnostic(
                    &t.loc,
                    format!(
                        "table `{}` does not exist on the target {}",
                        t.table,
                        target.display_url()
                    ),
                    Some(match &mapping.schema {
                        Some(s) => format!("create it in a migration under {}", s.display()),
                        None => {
                            "create it first, or name a migrations folder with `schema = \"...\"`"
                                .into()
                        }
                    }),
                ),
            );
            continue;
        };
        let mut types = Vec::new();
        let mut declared = Vec::new();
        let mut nullable = Vec::new();
        for c in &t.columns {
            match info.column(&c.name) {
                None => {
                    let names: Vec<&str> = info.columns.iter().map(|c| c.name.as_str()).collect();
                    let close = names.iter().find(|n| {
                        n.eq_ignore_ascii_case(&c.name)
                            || crate::mapping::functions::strsim(
                                &n.to_lowercase(),
                                &c.name.to_lowercase(),
                            ) <= 2
                    });
                    diags.push(mapping.diagnostic(
                        &c.loc,
                        format!("table `{}` has no column `{}`", t.table, c.name),
                        Some(match close {
                            Some(n) => format!("did you mean `{n}`?"),
                            None => format!("its columns are: {}", names.join(", ")),
                        }),
                    ));
                }
                Some(col) => {
                    let k = c.expr.kind();
                    if col.ty.rejects(k) {
                        diags.push(mapping.diagnostic(
                            &c.loc,
                            format!(
                                "{}.{}: the expression gives {:?} values but the column is {} ({})",
                                t.table,
                                c.name,
                                k,
                                col.ty.name(),
                                col.declared
                            ),
                            Some("convert it in the expression, e.g. `| text` or `| int`".into()),
                        ));
                    }
                    types.push(col.ty.clone());
                    declared.push(col.declared.clone());
                    nullable.push(col.nullable);
                }
            }
        }
        for col in &info.columns {
            if !col.nullable && !col.has_default && !t.columns.iter().any(|c| c.name == col.name) {
                // SQLite's INTEGER PRIMARY KEY fills itself.
                let rowid = info
                    .unique_keys
                    .first()
                    .is_some_and(|k| k == &vec![col.name.clone()])
                    && col.declared.eq_ignore_ascii_case("INTEGER");
                if !rowid {
                    diags.push(mapping.diagnostic(
                        &t.loc,
                        format!(
                            "table `{}`: column `{}` is NOT NULL without a default, but the mapping does not set it",
                            t.table, col.name
                        ),
                        Some(format!("add `columns.{} = \"...\"`", col.name)),
                    ));
                }
            }
        }
        if !info.is_unique_key(&t.key) {
            diags.push(mapping.diagnostic(
                &t.key_loc,
                format!(
                    "table `{}`: key ({}) is not a primary key or unique constraint of the table",
                    t.table,
                    t.key.join(", ")
                ),
                Some(if info.unique_keys.is_empty() {
                    "the table has no unique constraint; add a PRIMARY KEY or UNIQUE index on the key columns".into()
                } else {
                    format!(
                        "its unique keys are: {}",
                        info.unique_keys
                            .iter()
                            .map(|k| format!("({})", k.join(", ")))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                }),
            ));
        }
        if types.len() == t.columns.len() {
            bound.push(BoundTable {
                key_idx: t.key_indexes(),
                journal: None,
                spec: t.clone(),
                types,
                declared,
                nullable,
            });
        }
    }
    if !diags.is_empty() {
        return Err(BindError::Mapping(MappingError::Invalid(diags)));
    }
    Ok(bound)
}
