//! `cutover migrate run|revert|info`: schema migrations and their report.

use super::render::print_table;
use super::{Code, MigrateCommand};
use anyhow::Result;

pub(super) async fn migrate(cmd: MigrateCommand) -> Result<Code> {
    use cutover::migrate::{Action, State};
    let (opts, action) = match cmd {
        MigrateCommand::Run(o) => {
            let a = Action::Run {
                up_to: o.target_version,
                dry_run: o.dry_run,
            };
            (o, a)
        }
        MigrateCommand::Revert(o) => {
            let a = Action::Revert {
                down_to: o.target_version,
                dry_run: o.dry_run,
            };
            (o, a)
        }
        MigrateCommand::Info(o) => (o, Action::Info),
    };
    if !opts.source.is_dir() {
        eprintln!(
            "error: migrations folder {} does not exist (use --source DIR)",
            opts.source.display()
        );
        return Ok(2);
    }
    let t = opts.target.connect().await?;
    if let Some(file) = &opts.backup {
        if opts.dry_run {
            println!("dry run: would back up to {}", file.display());
        } else {
            match t.backup(file).await? {
                None => println!("backup written to {}", file.display()),
                Some(cmd) => println!("back up the server first with:\n  {cmd}"),
            }
        }
    }
    let report = match t
        .migrations(&opts.source, opts.layout.into(), &action)
        .await
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            t.close().await;
            return Ok(1);
        }
    };
    t.close().await;
    if opts.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(0);
    }
    let verb = if report.dry_run {
        "would apply"
    } else {
        "applied"
    };
    for (v, d) in &report.applied {
        println!("{verb} {v} {d}");
    }
    let verb = if report.dry_run {
        "would revert"
    } else {
        "reverted"
    };
    for (v, d) in &report.reverted {
        println!("{verb} {v} {d}");
    }
    for (v, sql) in &report.sql {
        println!("-- {v}\n{}", sql.trim_end());
    }
    if matches!(action, Action::Info) {
        if report.layout == Some(cutover::migrate::Layout::D1) {
            println!(
                "{}: D1 layout, history in _migrations (checksums in {})",
                opts.source.display(),
                cutover::migrate::D1_CHECKSUMS
            );
        }
        let mut rows = vec![vec![
            "version".to_string(),
            "description".into(),
            "state".into(),
            "installed".into(),
            "ms".into(),
            "reversible".into(),
        ]];
        for e in &report.entries {
            rows.push(vec![
                e.version.to_string(),
                e.description.clone(),
                match e.state {
                    State::Applied => "applied".into(),
                    State::Pending => "pending".into(),
                    State::ChecksumMismatch => "applied, FILE CHANGED (checksum mismatch)".into(),
                    State::Dirty => "DIRTY (failed half way)".into(),
                    State::Missing => "applied, no file".into(),
                },
                e.installed_on.clone().unwrap_or_default(),
                e.execution_ms
                    .map(|m| format!("{m:.1}"))
                    .unwrap_or_default(),
                if e.reversible {
                    "yes".into()
                } else {
                    "no".into()
                },
            ]);
        }
        print_table(&rows, "");
    } else if report.applied.is_empty() && report.reverted.is_empty() {
        println!("nothing to do");
    }
    Ok(0)
}
