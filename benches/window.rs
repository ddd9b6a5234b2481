//! The cutover window: a delta pass over 1 % changed rows against cutover's own
//! full pass and Sling's incremental mode, on one PostgreSQL server, in one
//! sitting.
//!
//! ```text
//! cargo bench --bench window        # CUTOVER_BENCH_RECORDS (default 1,000,000)
//! ```
//!
//! The legacy table (`id`, a title, a number, `updated_at` with an index, as a
//! real legacy table keeps its watermark) is made in a source database with
//! `generate_series`; cutover and Sling each load it into a target database of
//! their own. Cases: the first (full) pass; then 1 % of the rows change
//! (`updated_at` moves) and each tool runs its incremental pass over the same
//! change; the target is checked against the source after each. Sling is
//! installed from PyPI (`sling-linux-amd64`, which ships the binary) into a
//! virtual environment under the bench folder, and skipped with a message when
//! it cannot be had. Peak RSS is the child's `ru_maxrss` (wait4). Server:
//! CUTOVER_TEST_PG (default: the local test server).

mod common;

use common::{measured, psql, write_dumps, Measured};
use std::path::{Path, PathBuf};
use std::process::Command;

const CUTOVER: &str = env!("CARGO_BIN_EXE_cutover");

/// Sling's binary from PyPI, in a virtual environment of the bench folder.
fn sling(dir: &Path) -> Option<PathBuf> {
    let venv = dir.join("sling-venv");
    let find = || -> Option<PathBuf> {
        let lib = venv.join("lib");
        for py in std::fs::read_dir(&lib).ok()? {
            let bin = py
                .ok()?
                .path()
                .join("site-packages/sling_linux_amd64/bin/sling-linux-amd64");
            if bin.exists() {
                return Some(bin);
            }
        }
        None
    };
    if let Some(b) = find() {
        return Some(b);
    }
    let ok = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&venv)
        .status()
        .is_ok_and(|s| s.success())
        && Command::new(venv.join("bin/pip"))
            .args(["install", "-q", "sling-linux-amd64"])
            .status()
            .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("\n!!! Sling skipped: `pip install sling-linux-amd64` failed (no PyPI?)\n");
        return None;
    }
    find()
}

fn read_count(stdout: &str) -> u64 {
    stdout
        .lines()
        .find(|l| l.contains("records:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
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
    let admin = std::env::var("CUTOVER_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let base = admin
        .rsplit_once('/')
        .map_or(admin.as_str(), |x| x.0)
        .to_string();
    let db = |name: &str| -> String {
        psql(
            &admin,
            &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
        );
        psql(&admin, &format!("CREATE DATABASE {name}"));
        format!("{base}/{name}")
    };
    let src = db("bench_window_src");
    psql(
        &src,
        &format!(
            "CREATE TABLE legacy (id BIGINT PRIMARY KEY, title TEXT NOT NULL, n BIGINT, updated_at TIMESTAMP(6) NOT NULL);
             INSERT INTO legacy SELECT g, 'title ' || g || ' ü', g * 7, TIMESTAMP '2026-01-01' + g * INTERVAL '1 millisecond' FROM generate_series(1, {n}) g;
             CREATE INDEX legacy_updated_at ON legacy (updated_at);
             ANALYZE legacy;"
        ),
    );
    let schema = dir.join("window-schema");
    std::fs::create_dir_all(&schema).expect("schema dir");
    std::fs::write(
        schema.join("20260101000000_items.sql"),
        "CREATE TABLE items (id BIGINT PRIMARY KEY, title TEXT NOT NULL, n BIGINT, updated_at TIMESTAMP(6) NOT NULL);",
    )
    .expect("schema");
    let mapping = dir.join("window.toml");
    std::fs::write(
        &mapping,
        format!(
            "name = \"window\"\nschema = \"window-schema\"\n[source]\nkind = \"postgres\"\nurl = \"{src}\"\ntable = \"legacy\"\nkey = [\"id\"]\nwatermark = \"updated_at\"\n\
             [[tables]]\ntable = \"items\"\nkey = [\"id\"]\ncolumns.id = \"value.id\"\ncolumns.title = \"value.title\"\ncolumns.n = \"value.n\"\ncolumns.updated_at = \"value.updated_at\"\n"
        ),
    )
    .expect("mapping");
    let dst = db("bench_window_cutover");
    let run = |what: &str| {
        measured(
            what,
            Command::new(CUTOVER)
                .current_dir(&dir)
                .arg("run")
                .arg(&mapping)
                .args(["--target", &dst, "--batch-size", "10000"]),
        )
    };
    let same = |url: &str, table: &str| {
        let q = |u: &str, t: &str| {
            psql(u, &format!("SELECT count(*), sum(n), md5(string_agg(id || title || n || updated_at, ',' ORDER BY id)) FROM {t}"))
        };
        assert_eq!(
            q(url, table),
            q(&src, "legacy"),
            "{table} differs from the source"
        );
    };
    let mut rows: Vec<(String, Measured)> = Vec::new();
    let full = run("cutover full pass");
    same(&dst, "items");
    let sling_bin = sling(&dir);
    let sling_dst = db("bench_window_sling");
    let sling_run = |what: &str, bin: &Path| {
        measured(
            what,
            Command::new(bin)
                .env("SRC_PG", format!("{src}?sslmode=disable"))
                .env("DST_PG", format!("{sling_dst}?sslmode=disable"))
                .env("SLING_HOME_DIR", dir.join("sling-home"))
                .args([
                    "run",
                    "--src-conn",
                    "SRC_PG",
                    "--src-stream",
                    "public.legacy",
                    "--tgt-conn",
                    "DST_PG",
                    "--tgt-object",
                    "public.legacy",
                    "--mode",
                    "incremental",
                    "--primary-key",
                    "id",
                    "--update-key",
                    "updated_at",
                ]),
        )
    };
    let sling_full = sling_bin.as_ref().map(|b| {
        let m = sling_run("sling incremental, first load", b);
        same(&sling_dst, "legacy");
        m
    });
    // 1 % of the rows change.
    psql(
        &src,
        "UPDATE legacy SET n = n + 1, updated_at = TIMESTAMP '2026-06-01' + id * INTERVAL '1 microsecond' WHERE id % 100 = 0",
    );
    let delta = run("cutover delta pass");
    same(&dst, "items");
    let delta_read = read_count(&delta.stdout);
    // The changed rows, and the row at the previous mark unless it changed too.
    assert!(
        delta_read == n / 100 || delta_read == n / 100 + 1,
        "{}",
        delta.stdout
    );
    let sling_delta = sling_bin.as_ref().map(|b| {
        let m = sling_run("sling incremental, after the change", b);
        same(&sling_dst, "legacy");
        m
    });

    println!("\n## The cutover window ({n} rows, PostgreSQL → PostgreSQL, 1 % changed)\n");
    println!("| case | seconds | peak RSS MB | ratio |");
    println!("|---|---:|---:|---:|");
    let full_secs = full.secs;
    rows.push(("cutover run, first (full) pass".into(), full));
    let delta_secs = delta.secs;
    rows.push((
        format!("cutover run, delta pass ({delta_read} rows read)"),
        delta,
    ));
    for (what, m) in &rows {
        println!(
            "| {what} | {:.2} | {:.0} | {:.3} × the full pass |",
            m.secs,
            m.rss_mb,
            m.secs / full_secs
        );
    }
    match (sling_full, sling_delta) {
        (Some(f), Some(d)) => {
            println!(
                "| Sling incremental, first load | {:.2} | {:.0} | |",
                f.secs, f.rss_mb
            );
            println!(
                "| Sling incremental, after the change | {:.2} | {:.0} | cutover's delta = {:.3} × Sling's |",
                d.secs,
                d.rss_mb,
                delta_secs / d.secs
            );
        }
        _ => println!("| Sling | skipped | | |"),
    }
    dumps(&dir, n);
    for name in [
        "bench_window_src",
        "bench_window_cutover",
        "bench_window_sling",
    ] {
        psql(
            &admin,
            &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
        );
    }
}

/// Passes over dumps into SQLite: the first load without and with deletions
/// carried over (the rows each pass writes are then kept in `cutover_rows`),
/// and a second pass over a newer dump with 1 % changed and 0.1 % gone.
fn dumps(dir: &Path, n: u64) {
    let first = dir.join(format!("window-kv-{n}.jsonl"));
    let changed = dir.join(format!("window-kv-{n}-changed.jsonl"));
    if !first.exists() || !changed.exists() {
        write_dumps(&first, &changed, n, 100, Some(1000))
    }
    let schema = dir.join("window-kv-schema");
    std::fs::create_dir_all(&schema).expect("schema dir");
    std::fs::write(
        schema.join("20260101000000_items.sql"),
        "CREATE TABLE items (id INTEGER PRIMARY KEY, title TEXT NOT NULL, score INTEGER, meta TEXT);",
    )
    .expect("schema");
    let mapping = |deletes: &str, path: &Path| {
        let (deletes, skip) = match deletes.strip_suffix("-no-digests") {
            Some(d) => (d, "false"),
            None => (deletes, "true"),
        };
        let m = dir.join(format!("window-kv-{deletes}-{skip}.toml"));
        std::fs::write(
            &m,
            format!(
                "name = \"kv\"\nschema = \"window-kv-schema\"\nskip_unchanged = {skip}\n[source]\nkind = \"kv\"\npath = \"{}\"\n\
                 [[tables]]\ntable = \"items\"\nkey = [\"id\"]\ndeletes = \"{deletes}\"\ncolumns.id = \"value.id\"\ncolumns.title = \"value.title\"\ncolumns.score = \"value.score\"\ncolumns.meta = \"value.meta | json\"\n",
                path.display()
            ),
        )
        .expect("mapping");
        m
    };
    let run = |what: &str, m: &Path, db: &Path| {
        measured(
            what,
            Command::new(CUTOVER)
                .current_dir(dir)
                .arg("run")
                .arg(m)
                .args([
                    "--target",
                    &format!("sqlite://{}", db.display()),
                    "--batch-size",
                    "10000",
                    "--allow-deletes",
                    "100000",
                ]),
        )
    };
    let fresh = |name: &str| {
        let db = dir.join(name);
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
        }
        db
    };
    // The load as it was before this issue: no change records at all.
    let bare_db = fresh("window-bare.db");
    let bare = run(
        "first load, deletes = keep, skip_unchanged = false",
        &mapping("keep-no-digests", &first),
        &bare_db,
    );
    let keep_db = fresh("window-keep.db");
    let keep = run(
        "first load, deletes = keep",
        &mapping("keep", &first),
        &keep_db,
    );
    let del_db = fresh("window-delete.db");
    let del = run(
        "first load, deletes = delete",
        &mapping("delete", &first),
        &del_db,
    );
    let second = run(
        "second pass over the changed dump",
        &mapping("delete", &changed),
        &del_db,
    );
    let second_keep = run(
        "second pass over the changed dump, deletes = keep",
        &mapping("keep", &changed),
        &keep_db,
    );
    let second_bare = run(
        "second pass over the changed dump, skip_unchanged = false",
        &mapping("keep-no-digests", &changed),
        &bare_db,
    );
    assert!(
        second
            .stdout
            .contains(&format!("deleted {} rows", n / 1000)),
        "{}",
        second.stdout
    );
    for (what, out) in [
        ("deletes = delete", &second),
        ("deletes = keep", &second_keep),
    ] {
        assert!(
            out.stdout
                .contains("read exactly as the pass that last wrote them"),
            "{what}: the second pass skipped nothing\n{}",
            out.stdout
        );
    }
    println!("\n## Passes over a {n}-record JSON Lines dump (SQLite)\n");
    println!("| case | seconds | peak RSS MB | ratio |");
    println!("|---|---:|---:|---:|");
    println!(
        "| first load, `skip_unchanged = false` (no change records: the load before this issue) | {:.2} | {:.0} | 1.00 |",
        bare.secs, bare.rss_mb
    );
    println!(
        "| first load, `deletes = \"keep\"` (digests kept in cutover_digests) | {:.2} | {:.0} | {:.2} × the load without |",
        keep.secs,
        keep.rss_mb,
        keep.secs / bare.secs
    );
    println!(
        "| first load, `deletes = \"delete\"` (digests, and rows kept in cutover_rows) | {:.2} | {:.0} | {:.2} × the load without |",
        del.secs,
        del.rss_mb,
        del.secs / bare.secs
    );
    println!(
        "| second pass, 1 % changed, 0.1 % gone, `deletes = \"delete\"` | {:.2} | {:.0} | {:.2} × its first load |",
        second.secs,
        second.rss_mb,
        second.secs / del.secs
    );
    println!(
        "| second pass, 1 % changed, `deletes = \"keep\"` | {:.2} | {:.0} | {:.2} × its first load |",
        second_keep.secs,
        second_keep.rss_mb,
        second_keep.secs / keep.secs
    );
    println!(
        "| second pass, 1 % changed, `skip_unchanged = false` | {:.2} | {:.0} | {:.2} × its first load |",
        second_bare.secs,
        second_bare.rss_mb,
        second_bare.secs / bare.secs
    );
}
