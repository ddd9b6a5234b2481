//! The undo journal's cost and undo's speed: a JSON Lines dump of 1,000,000
//! records loaded with and without the journal (`undo = false`), a pass over a
//! newer dump that changes 10 % of the rows with and without it, and the undo of
//! the first load against the load's own time; on SQLite and PostgreSQL, in one
//! sitting, interleaved (without, with, without, with).
//!
//! ```text
//! cargo bench --bench undo        # CUTOVER_BENCH_RECORDS (default 1,000,000)
//! ```
//!
//! Peak RSS is the child's `ru_maxrss` (wait4). PostgreSQL: CUTOVER_TEST_PG
//! (default: the local test server), skipped with a message when it does not answer.

mod common;

use common::{measured, psql, write_dumps, Measured};
use std::path::{Path, PathBuf};
use std::process::Command;

const CUTOVER: &str = env!("CARGO_BIN_EXE_cutover");

/// A target's name and how to make a fresh database on it (its URL).
type Fresh = Box<dyn Fn(&str) -> String>;

struct Case {
    without: Measured,
    with: Measured,
}

fn main() {
    let n: u64 = std::env::var("CUTOVER_BENCH_RECORDS")
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(1_000_000);
    let dir = PathBuf::from(
        std::env::var("CUTOVER_BENCH_DIR").unwrap_or_else(|_| "target/bench-data".into()),
    );
    std::fs::create_dir_all(&dir).expect("bench dir");
    let dir = dir.canonicalize().expect("bench dir");
    let first = dir.join(format!("undo-kv-{n}.jsonl"));
    let changed = dir.join(format!("undo-kv-{n}-changed.jsonl"));
    if !first.exists() || !changed.exists() {
        write_dumps(&first, &changed, n, 10, None)
    }
    let schema = dir.join("undo-schema");
    std::fs::create_dir_all(&schema).expect("schema dir");
    std::fs::write(
        schema.join("20260101000000_items.sql"),
        "CREATE TABLE items (id BIGINT PRIMARY KEY, title TEXT NOT NULL, score BIGINT, meta TEXT);",
    )
    .expect("schema");
    let mapping = |undo: bool, path: &Path| {
        let m = dir.join(format!(
            "undo-{undo}-{}.toml",
            path.file_stem().and_then(|s| s.to_str()).unwrap_or("x")
        ));
        std::fs::write(
            &m,
            format!(
                "name = \"kv\"\nschema = \"undo-schema\"\nundo = {undo}\n[source]\nkind = \"kv\"\npath = \"{}\"\n\
                 [[tables]]\ntable = \"items\"\nkey = [\"id\"]\ncolumns.id = \"value.id\"\ncolumns.title = \"value.title\"\ncolumns.score = \"value.score\"\ncolumns.meta = \"value.meta | json\"\n",
                path.display()
            ),
        )
        .expect("mapping");
        m
    };
    let admin = std::env::var("CUTOVER_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let pg_up = Command::new("pg_isready")
        .args(["-d", &admin, "-q"])
        .status()
        .is_ok_and(|s| s.success());
    let mut targets: Vec<(&str, Fresh)> = Vec::new();
    let sqlite_dir = dir.clone();
    targets.push((
        "SQLite",
        Box::new(move |name: &str| {
            let db = sqlite_dir.join(format!("{name}.db"));
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
            }
            format!("sqlite://{}", db.display())
        }),
    ));
    if pg_up {
        let admin = admin.clone();
        targets.push((
            "PostgreSQL",
            Box::new(move |name: &str| {
                psql(
                    &admin,
                    &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
                );
                psql(&admin, &format!("CREATE DATABASE {name}"));
                let base = admin.rsplit_once('/').map_or(admin.as_str(), |x| x.0);
                format!("{base}/{name}")
            }),
        ));
    } else {
        eprintln!("\n!!! PostgreSQL skipped: {admin} does not answer\n");
    }
    let run = |what: &str, m: &Path, url: &str, args: &[&str]| {
        measured(
            what,
            Command::new(CUTOVER)
                .current_dir(&dir)
                .arg(args[0])
                .arg(m)
                .args(&args[1..])
                .args(["--target", url]),
        )
    };
    for (name, fresh) in &targets {
        let mut loads: Vec<Case> = Vec::new();
        let mut passes: Vec<Case> = Vec::new();
        let mut undos: Vec<Measured> = Vec::new();
        for round in 0..2 {
            let one = |undo: bool| -> (Measured, Measured, String) {
                let url = fresh(&format!("bench_undo_{round}_{undo}"));
                let load = run(
                    "first load",
                    &mapping(undo, &first),
                    &url,
                    &["run", "--batch-size", "10000", "--no-progress"],
                );
                let pass = run(
                    "pass changing 10 %",
                    &mapping(undo, &changed),
                    &url,
                    &["run", "--batch-size", "10000", "--no-progress"],
                );
                (load, pass, url)
            };
            let (l0, p0, _) = one(false);
            let (l1, p1, url) = one(true);
            // Undo the changing pass, then the first load (timed).
            run("undo the pass", &mapping(true, &changed), &url, &["undo"]);
            let u = run(
                "undo the first load",
                &mapping(true, &first),
                &url,
                &["undo", "--run", "1"],
            );
            assert!(u.stdout.contains("undid run(s) 1"), "{}", u.stdout);
            undos.push(u);
            loads.push(Case {
                without: l0,
                with: l1,
            });
            passes.push(Case {
                without: p0,
                with: p1,
            });
        }
        let med = |v: Vec<f64>| -> f64 {
            let mut v = v;
            v.sort_by(|a, b| a.total_cmp(b));
            v[v.len() / 2]
        };
        let rss = |v: &[&Measured]| v.iter().map(|m| m.rss_mb).fold(0.0, f64::max);
        let lw = med(loads.iter().map(|c| c.with.secs).collect());
        let lo = med(loads.iter().map(|c| c.without.secs).collect());
        let pw = med(passes.iter().map(|c| c.with.secs).collect());
        let po = med(passes.iter().map(|c| c.without.secs).collect());
        let us = med(undos.iter().map(|m| m.secs).collect());
        println!("\n## Undo journal, {n} records, {name} (best of 2 rounds: the larger of two, interleaved)\n");
        println!("| case | seconds | peak RSS MB | ratio |");
        println!("|---|---:|---:|---:|");
        println!(
            "| first load, `undo = false` | {lo:.2} | {:.0} | 1.00 |",
            rss(&loads.iter().map(|c| &c.without).collect::<Vec<_>>())
        );
        println!(
            "| first load with the journal | {lw:.2} | {:.0} | {:.2} × without |",
            rss(&loads.iter().map(|c| &c.with).collect::<Vec<_>>()),
            lw / lo
        );
        println!(
            "| pass changing 10 %, `undo = false` | {po:.2} | {:.0} | 1.00 |",
            rss(&passes.iter().map(|c| &c.without).collect::<Vec<_>>())
        );
        println!(
            "| pass changing 10 % with the journal | {pw:.2} | {:.0} | {:.2} × without |",
            rss(&passes.iter().map(|c| &c.with).collect::<Vec<_>>()),
            pw / po
        );
        println!(
            "| undo of the first load | {us:.2} | {:.0} | {:.2} × the load |",
            rss(&undos.iter().collect::<Vec<_>>()),
            us / lw
        );
    }
    if pg_up {
        for round in 0..2 {
            for undo in [false, true] {
                psql(
                    &admin,
                    &format!("DROP DATABASE IF EXISTS bench_undo_{round}_{undo} WITH (FORCE)"),
                );
            }
        }
    }
}
