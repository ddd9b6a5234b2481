//! Verify inside the window: `cutover verify` after a 1,000,000-row load,
//! against the load's own time and against `reladiff` (the maintained fork of
//! data-diff) comparing the loaded table with a copy, on PostgreSQL and
//! MariaDB, and against the load into SQLite; one sitting.
//!
//! ```text
//! cargo bench --bench verify        # CUTOVER_BENCH_RECORDS (default 1,000,000)
//! ```
//!
//! The legacy table is the 7-column bench table (a 64-hex key, three bigints,
//! a unicode title, a `jsonb` object, a timestamp) made in a PostgreSQL source
//! database with `generate_series`; one mapping loads it into a PostgreSQL,
//! a MariaDB and a SQLite target. reladiff 0.6 is installed from PyPI into a
//! virtual environment under the bench folder and skipped with a message when
//! it cannot be had; on PostgreSQL it compares the source table with the loaded
//! one (a copy in another database on the same server), on MariaDB the loaded
//! table with a copy made by `CREATE TABLE … AS SELECT` in another database.
//! Peak RSS is the child's `ru_maxrss` (wait4). Servers: CUTOVER_TEST_PG and
//! CUTOVER_TEST_MYSQL (default: the local test servers).

mod common;

use common::{measured, measured_exit, psql, Measured};
use std::path::{Path, PathBuf};
use std::process::Command;

const CUTOVER: &str = env!("CARGO_BIN_EXE_cutover");
const COLUMNS: [&str; 6] = ["n", "m", "score", "title", "meta", "created"];

/// reladiff from PyPI, in a virtual environment of the bench folder.
fn reladiff(dir: &Path) -> Option<PathBuf> {
    let venv = dir.join("reladiff-venv");
    let bin = venv.join("bin/reladiff");
    if bin.exists() {
        return Some(bin);
    }
    let ok = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&venv)
        .status()
        .is_ok_and(|s| s.success())
        && Command::new(venv.join("bin/pip"))
            .args(["install", "-q", "reladiff[mysql,postgresql]==0.6.0"])
            .status()
            .is_ok_and(|s| s.success());
    if !ok || !bin.exists() {
        eprintln!("\n!!! reladiff skipped: `pip install reladiff` failed (no PyPI?)\n");
        return None;
    }
    Some(bin)
}

fn mysql(url_db: Option<&str>, sql: &str) {
    let mut cmd = Command::new("mysql");
    cmd.args(["-uroot", "-h127.0.0.1", "-P3306"]);
    if let Some(db) = url_db {
        cmd.arg(db);
    }
    let out = cmd.args(["-e", sql]).output().expect("mysql client");
    assert!(
        out.status.success(),
        "{sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
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
    let my_base = std::env::var("CUTOVER_TEST_MYSQL")
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".into())
        .rsplit_once('/')
        .map(|x| x.0.to_string())
        .unwrap_or_default();
    let base = admin
        .rsplit_once('/')
        .map_or(admin.as_str(), |x| x.0)
        .to_string();
    let pg_db = |name: &str| -> String {
        psql(
            &admin,
            &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
        );
        psql(&admin, &format!("CREATE DATABASE {name}"));
        format!("{base}/{name}")
    };
    let src = pg_db("bench_verify_src");
    psql(
        &src,
        &format!(
            "CREATE TABLE legacy (key TEXT PRIMARY KEY, n BIGINT NOT NULL, m BIGINT, score BIGINT, title TEXT NOT NULL, meta JSONB, created TIMESTAMP(6) NOT NULL);
             INSERT INTO legacy SELECT md5(g::text) || md5((g + 1)::text), g, g * 7, g % 1000, 'title ' || g || ' ü — naïve café',
               jsonb_build_object('a', g % 97, 'tags', jsonb_build_array('x', 'y')), TIMESTAMP '2026-01-01' + g * INTERVAL '1 millisecond'
             FROM generate_series(1, {n}) g;
             ANALYZE legacy;"
        ),
    );
    let mapping = |dialect: &str, ddl: &str| -> PathBuf {
        let schema = dir.join(format!("verify-schema-{dialect}"));
        std::fs::create_dir_all(&schema).expect("schema dir");
        std::fs::write(schema.join("20260101000000_items.sql"), ddl).expect("schema");
        let m = dir.join(format!("verify-{dialect}.toml"));
        let cols: String = std::iter::once("key")
            .chain(COLUMNS)
            .map(|c| format!("columns.{c} = \"value.{c}\"\n"))
            .collect();
        std::fs::write(
            &m,
            format!(
                "name = \"verify\"\nschema = \"verify-schema-{dialect}\"\n[source]\nkind = \"postgres\"\nurl = \"{src}\"\ntable = \"legacy\"\nkey = [\"key\"]\n\
                 [[tables]]\ntable = \"items\"\nkey = [\"key\"]\n{cols}"
            ),
        )
        .expect("mapping");
        m
    };
    let cutover = |what: &str, cmd: &str, m: &Path, target: &str| -> Measured {
        measured(
            what,
            Command::new(CUTOVER)
                .current_dir(&dir)
                .arg(cmd)
                .arg(m)
                .args(["--target", target, "--batch-size", "10000"]),
        )
    };
    let passed = |m: &Measured| {
        assert!(
            m.stdout.contains("verify  PASSED"),
            "verify did not pass:\n{}",
            m.stdout
        );
    };
    let tool = reladiff(&dir);
    // reladiff cannot key a MySQL table by a text column ("Cannot use a column
    // of type Text() as a key"): there it keys by the unique bigint `n` and
    // compares `key` as a column.
    let reladiff_run = |what: &str, a: &str, ta: &str, b: &str, tb: &str| -> Option<Measured> {
        let key = if a.starts_with("mysql") { "n" } else { "key" };
        let bin = tool.as_ref()?;
        let mut cmd = Command::new(bin);
        cmd.args([a, ta, b, tb, "-k", key, "-s"]);
        for c in std::iter::once("key").chain(COLUMNS).filter(|c| *c != key) {
            cmd.args(["-c", c]);
        }
        let m = measured(what, &mut cmd);
        // reladiff reports a bad URL on stderr and still exits 0.
        assert!(
            m.stdout.contains("rows unchanged"),
            "{what} compared nothing:\n{}",
            m.stdout
        );
        Some(m)
    };
    // reladiff's scheme for PostgreSQL.
    let pg_scheme = |u: &str| u.replacen("postgres://", "postgresql://", 1);
    let mut table: Vec<String> = Vec::new();
    let row = |t: &mut Vec<String>, what: &str, m: &Measured, ratio: String| {
        t.push(format!(
            "| {what} | {:.2} | {:.0} | {ratio} |",
            m.secs, m.rss_mb
        ))
    };

    // PostgreSQL.
    let dst = pg_db("bench_verify_cutover");
    let m = mapping(
        "postgres",
        "CREATE TABLE items (key TEXT PRIMARY KEY, n BIGINT NOT NULL, m BIGINT, score BIGINT, title TEXT NOT NULL, meta JSONB, created TIMESTAMP(6) NOT NULL);",
    );
    let load = cutover("PostgreSQL: cutover run", "run", &m, &dst);
    let ver = cutover("PostgreSQL: cutover verify", "verify", &m, &dst);
    passed(&ver);
    let rd = reladiff_run(
        "PostgreSQL: reladiff",
        &pg_scheme(&src),
        "legacy",
        &pg_scheme(&dst),
        "items",
    );
    row(
        &mut table,
        "PostgreSQL: cutover run (load)",
        &load,
        "1.00".into(),
    );
    row(
        &mut table,
        "PostgreSQL: cutover verify",
        &ver,
        format!(
            "{:.2} × the load{}",
            ver.secs / load.secs,
            rd.as_ref().map_or(String::new(), |r| format!(
                ", {:.2} × reladiff",
                ver.secs / r.secs
            ))
        ),
    );
    match &rd {
        Some(r) => row(
            &mut table,
            "PostgreSQL: reladiff 0.6, source vs loaded table",
            r,
            String::new(),
        ),
        None => table.push("| PostgreSQL: reladiff | skipped | | |".into()),
    }
    // One value changed: found, only its segment compared row by row.
    psql(
        &dst,
        "UPDATE items SET title = title || '!' WHERE n = 123457",
    );
    let one = measured_exit(
        "PostgreSQL: verify, one value changed",
        Command::new(CUTOVER)
            .current_dir(&dir)
            .arg("verify")
            .arg(&m)
            .args(["--target", &dst, "--batch-size", "10000", "--json"]),
        &[1],
    );
    assert!(
        one.stdout.contains("\"different\":1") && one.stdout.contains("\"title\""),
        "the changed title was not found:\n{}",
        one.stdout
    );

    // MariaDB.
    let my_db = "bench_verify_cutover";
    mysql(None, &format!("DROP DATABASE IF EXISTS {my_db}; CREATE DATABASE {my_db} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin; DROP DATABASE IF EXISTS bench_verify_copy; CREATE DATABASE bench_verify_copy CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"));
    let my_url = format!("{my_base}/{my_db}");
    let m = mapping(
        "mysql",
        "CREATE TABLE items (`key` VARCHAR(64) PRIMARY KEY, n BIGINT NOT NULL, m BIGINT, score BIGINT, title TEXT NOT NULL, meta JSON, created DATETIME(6) NOT NULL);",
    );
    let load = cutover("MariaDB: cutover run", "run", &m, &my_url);
    let ver = cutover("MariaDB: cutover verify", "verify", &m, &my_url);
    passed(&ver);
    mysql(
        None,
        "CREATE TABLE bench_verify_copy.items (`key` VARCHAR(64) PRIMARY KEY, n BIGINT NOT NULL, m BIGINT, score BIGINT, title TEXT NOT NULL, meta JSON, created DATETIME(6) NOT NULL); INSERT INTO bench_verify_copy.items SELECT * FROM bench_verify_cutover.items",
    );
    let rd = reladiff_run(
        "MariaDB: reladiff",
        &format!("{my_base}/{my_db}"),
        "items",
        &format!("{my_base}/bench_verify_copy"),
        "items",
    );
    row(
        &mut table,
        "MariaDB: cutover run (load)",
        &load,
        "1.00".into(),
    );
    row(
        &mut table,
        "MariaDB: cutover verify",
        &ver,
        format!(
            "{:.2} × the load{}",
            ver.secs / load.secs,
            rd.as_ref().map_or(String::new(), |r| format!(
                ", {:.2} × reladiff",
                ver.secs / r.secs
            ))
        ),
    );
    match &rd {
        Some(r) => row(
            &mut table,
            "MariaDB: reladiff 0.6, loaded table vs a copy",
            r,
            String::new(),
        ),
        None => table.push("| MariaDB: reladiff | skipped | | |".into()),
    }
    mysql(
        None,
        &format!("DROP DATABASE IF EXISTS {my_db}; DROP DATABASE IF EXISTS bench_verify_copy"),
    );

    // SQLite.
    let db = dir.join("verify.db");
    let _ = std::fs::remove_file(&db);
    let lite = format!("sqlite://{}", db.display());
    let m = mapping(
        "sqlite",
        "CREATE TABLE items (key TEXT PRIMARY KEY, n INTEGER NOT NULL, m INTEGER, score INTEGER, title TEXT NOT NULL, meta JSON, created TIMESTAMP NOT NULL);",
    );
    let load = cutover("SQLite: cutover run", "run", &m, &lite);
    let ver = cutover("SQLite: cutover verify", "verify", &m, &lite);
    passed(&ver);
    row(
        &mut table,
        "SQLite: cutover run (load)",
        &load,
        "1.00".into(),
    );
    row(
        &mut table,
        "SQLite: cutover verify",
        &ver,
        format!("{:.2} × the load", ver.secs / load.secs),
    );

    println!("\n## Verify after a load ({n} rows, a PostgreSQL source)\n");
    println!("| case | seconds | peak RSS MB | ratio |");
    println!("|---|---:|---:|---:|");
    for l in &table {
        println!("{l}");
    }
    println!(
        "\nPostgreSQL, one title changed: verify {:.2} s, {:.0} MB: {}",
        one.secs,
        one.rss_mb,
        one.stdout
            .lines()
            .next()
            .unwrap_or("")
            .chars()
            .take(300)
            .collect::<String>()
    );
    for name in ["bench_verify_src", "bench_verify_cutover"] {
        psql(
            &admin,
            &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
        );
    }
}
