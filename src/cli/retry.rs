//! `cutover retry`: reload the records that failed before and print what happened.

use super::load::load_all;
use super::render::print_run_error;
use super::{Code, TargetOpts};
use anyhow::Result;
use cutover::pipeline::{self, RunOptions};
use std::path::PathBuf;

pub(super) async fn retry(
    paths: &[PathBuf],
    target: &TargetOpts,
    batch_size: usize,
) -> Result<Code> {
    let mappings = match load_all(paths) {
        Ok(m) => m,
        Err(e) => {
            print_run_error(&e);
            return Ok(e.exit_code());
        }
    };
    let t = target.connect().await?;
    let opts = RunOptions {
        batch_size,
        ..RunOptions::default()
    };
    let mut code = 0;
    for m in mappings {
        match pipeline::retry_mapping(t.as_ref(), m, &opts).await {
            Ok(s) => {
                println!(
                    "{}  retry run {}: {} records with unresolved errors, {} loaded (errors resolved), {} filtered, {} failed again",
                    s.mapping, s.run_id, s.records, s.loaded, s.filtered, s.failed
                );
                for k in &s.not_found {
                    println!(
                        "  {k}: no record at its stored position any more (the source changed?)"
                    );
                }
                for e in &s.first_errors {
                    println!("  {e}");
                }
            }
            Err(e) => {
                print_run_error(&e);
                code = e.exit_code();
                break;
            }
        }
    }
    t.close().await;
    Ok(code)
}
