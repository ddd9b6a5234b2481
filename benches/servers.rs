//! Server benchmark: `cutover run` into PostgreSQL and MariaDB against the
//! practical limits, in one sitting, on the rows of the load benchmark.
//!
//! ```text
//! cargo bench --bench load       # generates target/bench-data/{kv,rows}-N.*
//! cargo bench --bench servers    # this benchmark (same N: CUTOVER_BENCH_RECORDS)
//! ```
//!
//! Cases: PostgreSQL `psql -c "\copy items FROM rows.csv CSV"` (the baseline),
//! `cutover run` into an empty table and the rerun over the loaded table (workers
//! 1 and 2); psql COPY into a temporary table + one merge (first load and rerun);
//! pgloader (Debian package) when installed; MariaDB `LOAD DATA LOCAL INFILE` (the
//! baseline) and `cutover run`.
//! Every case starts from a fresh database with the same schema; row counts are
//! checked. Peak RSS is the child's `ru_maxrss` (wait4). Servers:
//! CUTOVER_TEST_PG / CUTOVER_TEST_MYSQL (defaults: the local test servers).

mod common;

use common::{measured, psql, Measured};
use std::path::{Path, PathBuf};
use std::process::Command;

const CUTOVER: &str = env!("CARGO_BIN_EXE_cutover");

const SCHEMA: &str = "CREATE TABLE items (id VARCHAR(64) PRIMARY KEY, seq BIGINT NOT NULL, score BIGINT, views BIGINT, title TEXT, created_at BIGINT, meta TEXT)";

/// `cutover run MAPPING --target URL --batch-size 10000 --workers N [extra]`, in `dir`.
fn cutover_run(dir: &Path, mapping: &Path, target: &str, workers: &str, extra: &[&str]) -> Command {
    let mut cmd = Command::new(CUTOVER);
    cmd.current_dir(dir)
        .arg("run")
        .arg(mapping)
        .args([
            "--target",
            target,
            "--batch-size",
            "10000",
            "--workers",
            workers,
        ])
        .args(extra);
    cmd
}

fn mariadb(args: &[&str], sql: &str) -> String {
    let out = Command::new("mariadb")
        .args(args)
        .args(["-N", "-e", sql])
        .output()
        .expect("mariadb");
    assert!(
        out.status.success(),
        "{sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn main() {
    let n: u64 = std::env::var("CUTOVER_BENCH_RECORDS")
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(1_000_000);
    let dir = PathBuf::from(
        std::env::var("CUTOVER_BENCH_DIR").unwrap_or_else(|_| "target/bench-data".into()),
    );
    let kv = dir.join(format!("kv-{n}.jsonl"));
    let csv = dir.join(format!("rows-{n}.csv"));
    if !kv.exists() || !csv.exists() {
        eprintln!(
            "no data for {n} records in {}: run `cargo bench --bench load` first",
            dir.display()
        );
        return;
    }
    let dir = dir.canonicalize().expect("data dir");
    let csv = csv.canonicalize().expect("csv");
    let mapping = dir.join("bench.toml");
    let mut rows: Vec<(String, Measured, Option<f64>)> = Vec::new();

    // PostgreSQL
    let pg_admin = std::env::var("CUTOVER_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let pg_db = |name: &str| -> String {
        psql(
            &pg_admin,
            &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
        );
        psql(&pg_admin, &format!("CREATE DATABASE {name}"));
        let url = format!(
            "{}/{name}",
            pg_admin.rsplit_once('/').map_or(pg_admin.as_str(), |x| x.0)
        );
        psql(&url, SCHEMA);
        url
    };
    let url = pg_db("bench_copy");
    let base = measured(
        "psql \\copy",
        Command::new("psql").args([
            url.as_str(),
            "-qc",
            &format!("\\copy items FROM '{}' CSV", csv.display()),
        ]),
    );
    assert_eq!(psql(&url, "SELECT count(*) FROM items"), n.to_string());
    let pg_base = base.secs;
    rows.push(("PostgreSQL: psql \\copy (csv)".into(), base, Some(1.0)));
    for workers in ["1", "2"] {
        let url = pg_db("bench_cutover");
        let m = measured(
            "cutover → pg",
            &mut cutover_run(&dir, &mapping, &url, workers, &[]),
        );
        assert_eq!(psql(&url, "SELECT count(*) FROM items"), n.to_string());
        let ratio = m.secs / pg_base;
        rows.push((
            format!("PostgreSQL: cutover run, --workers {workers}"),
            m,
            Some(ratio),
        ));
        let m = measured(
            "cutover rerun → pg",
            &mut cutover_run(&dir, &mapping, &url, workers, &[]),
        );
        let ratio = m.secs / pg_base;
        rows.push((
            format!("PostgreSQL: cutover rerun (nothing changes), --workers {workers}"),
            m,
            Some(ratio),
        ));
    }
    // The other method: COPY into a temporary table, then one merge statement. psql
    // alone, no parsing or transformation: a lower bound for that method.
    let merge = "INSERT INTO items SELECT * FROM tmp ON CONFLICT (id) DO UPDATE SET seq = EXCLUDED.seq, \
        score = EXCLUDED.score, views = EXCLUDED.views, title = EXCLUDED.title, created_at = EXCLUDED.created_at, \
        meta = EXCLUDED.meta WHERE (items.seq, items.score, items.views, items.title, items.created_at, items.meta) \
        IS DISTINCT FROM (EXCLUDED.seq, EXCLUDED.score, EXCLUDED.views, EXCLUDED.title, EXCLUDED.created_at, EXCLUDED.meta)";
    let url = pg_db("bench_merge");
    for pass in ["first load", "rerun"] {
        let m = measured(
            "psql COPY + merge",
            Command::new("psql").args([
                url.as_str(),
                "-q",
                "-c",
                "CREATE TEMP TABLE tmp (LIKE items)",
                "-c",
                &format!("\\copy tmp FROM '{}' CSV", csv.display()),
                "-c",
                merge,
            ]),
        );
        assert_eq!(psql(&url, "SELECT count(*) FROM items"), n.to_string());
        let ratio = m.secs / pg_base;
        rows.push((
            format!("PostgreSQL: psql COPY into a temp table + INSERT … ON CONFLICT, {pass}"),
            m,
            Some(ratio),
        ));
    }
    // pgloader (Debian package), when installed, on the same CSV.
    if Command::new("pgloader")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        let url = pg_db("bench_pgloader");
        let cmd = dir.join("pgloader.load");
        std::fs::write(
            &cmd,
            format!(
                "LOAD CSV FROM '{}' (id, seq, score, views, title, created_at, meta)\n\
                 INTO {url}?items (id, seq, score, views, title, created_at, meta)\n\
                 WITH fields optionally enclosed by '\"', fields escaped by double-quote, fields terminated by ','\n\
                 SET client_encoding to 'utf8';\n",
                csv.display()
            ),
        )
        .expect("pgloader command file");
        let m = measured("pgloader", Command::new("pgloader").arg(&cmd));
        assert_eq!(psql(&url, "SELECT count(*) FROM items"), n.to_string());
        let ratio = m.secs / pg_base;
        rows.push(("PostgreSQL: pgloader (csv)".into(), m, Some(ratio)));
    } else {
        eprintln!("[pgloader] not installed (apt-get install pgloader): case skipped");
    }

    // PostgreSQL → PostgreSQL (SQL source, keyset pages) vs a \copy pipe. `url`
    // is the database the last cutover case loaded.
    let src_url = url.clone();
    let pipe_url = pg_db("bench_pipe");
    let pipe = format!(
        "psql '{src_url}' -qc '\\copy (SELECT * FROM items) TO STDOUT' | psql '{pipe_url}' -qc '\\copy items FROM STDIN'"
    );
    let base = measured("psql \\copy pipe", Command::new("sh").args(["-c", &pipe]));
    assert_eq!(psql(&pipe_url, "SELECT count(*) FROM items"), n.to_string());
    let pipe_base = base.secs;
    rows.push((
        "PostgreSQL→PostgreSQL: psql \\copy TO STDOUT piped to \\copy FROM STDIN".into(),
        base,
        Some(1.0),
    ));
    let dst_url = pg_db("bench_pg2pg");
    let pg_mapping = dir.join("bench-pg.toml");
    let text = format!(
        "name = \"bench_pg2pg\"\n[source]\nkind = \"postgres\"\nurl = \"{src_url}\"\ntable = \"items\"\nkey = [\"id\"]\n\
         [[tables]]\ntable = \"items\"\nkey = [\"id\"]\ncolumns.id = \"value.id\"\ncolumns.seq = \"value.seq\"\ncolumns.score = \"value.score\"\n\
         columns.views = \"value.views\"\ncolumns.title = \"value.title\"\ncolumns.created_at = \"value.created_at\"\ncolumns.meta = \"value.meta\"\n"
    );
    std::fs::write(&pg_mapping, text).expect("mapping");
    for workers in ["1", "2"] {
        psql(&dst_url, "TRUNCATE items");
        let m = measured(
            "cutover pg → pg",
            &mut cutover_run(&dir, &pg_mapping, &dst_url, workers, &["--restart"]),
        );
        assert_eq!(psql(&dst_url, "SELECT count(*) FROM items"), n.to_string());
        let ratio = m.secs / pipe_base;
        rows.push((
            format!("PostgreSQL→PostgreSQL: cutover (postgres source), --workers {workers}"),
            m,
            Some(ratio),
        ));
    }
    for db in [
        "bench_copy",
        "bench_cutover",
        "bench_merge",
        "bench_pgloader",
        "bench_pipe",
        "bench_pg2pg",
    ] {
        psql(
            &pg_admin,
            &format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"),
        );
    }

    // MariaDB
    let my_args = ["-h", "127.0.0.1", "-P", "3306", "-u", "root"];
    let my_db = |name: &str| {
        mariadb(&my_args, &format!("DROP DATABASE IF EXISTS {name}; CREATE DATABASE {name} CHARACTER SET utf8mb4; USE {name}; {SCHEMA}"));
    };
    my_db("bench_load");
    let load = format!(
        "LOAD DATA LOCAL INFILE '{}' INTO TABLE items CHARACTER SET utf8mb4 FIELDS TERMINATED BY ',' OPTIONALLY ENCLOSED BY '\"' ESCAPED BY '' LINES TERMINATED BY '\\n'",
        csv.display()
    );
    let base = measured(
        "LOAD DATA",
        Command::new("mariadb")
            .args(my_args)
            .args(["--local-infile=1", "bench_load", "-e", &load]),
    );
    assert_eq!(
        mariadb(&my_args, "SELECT count(*) FROM bench_load.items"),
        n.to_string()
    );
    let my_base = base.secs;
    rows.push((
        "MariaDB: LOAD DATA LOCAL INFILE (csv)".into(),
        base,
        Some(1.0),
    ));
    for workers in ["1", "2"] {
        my_db("bench_cutover");
        let m = measured(
            "cutover → mariadb",
            &mut cutover_run(
                &dir,
                &mapping,
                "mysql://root@127.0.0.1:3306/bench_cutover",
                workers,
                &[],
            ),
        );
        assert_eq!(
            mariadb(&my_args, "SELECT count(*) FROM bench_cutover.items"),
            n.to_string()
        );
        let ratio = m.secs / my_base;
        rows.push((
            format!("MariaDB: cutover run, --workers {workers}"),
            m,
            Some(ratio),
        ));
    }
    mariadb(
        &my_args,
        "DROP DATABASE IF EXISTS bench_load; DROP DATABASE IF EXISTS bench_cutover",
    );

    println!("\nserver bench: {n} records, batch size 10000\n");
    println!("| case | seconds | records/s | peak RSS MB | ratio to the baseline |");
    println!("|---|---:|---:|---:|---:|");
    for (case, m, ratio) in rows {
        println!(
            "| {case} | {:.2} | {:.0} | {:.1} | {} |",
            m.secs,
            n as f64 / m.secs,
            m.rss_mb,
            ratio.map_or(String::new(), |r| format!("{r:.2}x"))
        );
    }
}
