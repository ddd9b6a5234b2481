//! Helpers: run the binary, make a fresh target database, query it.

#![allow(dead_code)]

use sqlx::Row;

/// A cell of any type as text (NULL as None).
macro_rules! cell_sqlite {
    ($r:expr, $i:expr) => {{
        let r = $r;
        let i = $i;
        if let Ok(v) = r.try_get::<Option<String>, _>(i) {
            v
        } else if let Ok(v) = r.try_get::<Option<i64>, _>(i) {
            v.map(|x| x.to_string())
        } else if let Ok(v) = r.try_get::<Option<f64>, _>(i) {
            v.map(|x| x.to_string())
        } else if let Ok(v) = r.try_get::<Option<Vec<u8>>, _>(i) {
            v.map(|x| String::from_utf8_lossy(&x).into_owned())
        } else {
            Some("<undecodable>".to_string())
        }
    }};
}

macro_rules! cell {
    ($r:expr, $i:expr) => {{
        let r = $r;
        let i = $i;
        if let Ok(v) = r.try_get::<Option<String>, _>(i) {
            v
        } else if let Ok(v) = r.try_get::<Option<i64>, _>(i) {
            v.map(|x| x.to_string())
        } else if let Ok(v) = r.try_get::<Option<i32>, _>(i) {
            v.map(|x| x.to_string())
        } else if let Ok(v) = r.try_get::<Option<i16>, _>(i) {
            v.map(|x| x.to_string())
        } else if let Ok(v) = r.try_get::<Option<bool>, _>(i) {
            v.map(|x| x.to_string())
        } else if let Ok(v) = r.try_get::<Option<f64>, _>(i) {
            v.map(|x| x.to_string())
        } else if let Ok(v) = r.try_get::<Option<bigdecimal::BigDecimal>, _>(i) {
            v.map(|x| x.normalized().to_plain_string())
        } else if let Ok(v) = r.try_get::<Option<chrono::NaiveDateTime>, _>(i) {
            v.map(|x| x.format("%Y-%m-%d %H:%M:%S%.f").to_string())
        } else if let Ok(v) = r.try_get::<Option<chrono::DateTime<chrono::Utc>>, _>(i) {
            v.map(|x| x.format("%Y-%m-%d %H:%M:%S%.f").to_string())
        } else if let Ok(v) = r.try_get::<Option<chrono::NaiveDate>, _>(i) {
            v.map(|x| x.to_string())
        } else if let Ok(v) = r.try_get::<Option<chrono::NaiveTime>, _>(i) {
            v.map(|x| x.to_string())
        } else if let Ok(v) = r.try_get::<Option<uuid::Uuid>, _>(i) {
            v.map(|x| x.to_string())
        } else if let Ok(v) = r.try_get::<Option<serde_json::Value>, _>(i) {
            v.map(|x| x.to_string())
        } else if let Ok(v) = r.try_get::<Option<Vec<u8>>, _>(i) {
            v.map(|x| String::from_utf8_lossy(&x).into_owned())
        } else {
            Some("<undecodable>".to_string())
        }
    }};
}
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_cutover")
}

/// `../shared/datasets/NAME` when present. Absent: skip loudly, or fail when
/// CUTOVER_REQUIRE_DATASETS=1 (CI).
pub fn dataset(name: &str) -> Option<PathBuf> {
    let p = root().join("..").join("shared").join("datasets").join(name);
    if p.exists() {
        return Some(p);
    }
    if std::env::var("CUTOVER_REQUIRE_DATASETS").as_deref() == Ok("1") {
        panic!(
            "dataset {} is required (CUTOVER_REQUIRE_DATASETS=1) but missing",
            p.display()
        );
    }
    eprintln!(
        "\n!!! SKIPPED: dataset {} not found (set CUTOVER_REQUIRE_DATASETS=1 to require it)\n",
        p.display()
    );
    None
}

/// The result of a finished command.
#[derive(Debug, Clone)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from(o: Output) -> Run {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }

    #[track_caller]
    pub fn ok(self) -> Run {
        assert_eq!(
            self.code, 0,
            "exit code\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }
}

/// Which database a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Sqlite,
    Postgres,
    Mysql,
}

/// A target database of its own for one test, dropped when the test ends.
pub struct TestDb {
    pub kind: Kind,
    pub url: String,
    /// Server databases: the admin URL and the database name to drop.
    admin: Option<(String, String)>,
    dir: tempfile::TempDir,
}

fn unique_name() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "t_{}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst),
        nanos % 100_000
    )
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// A server is required in CI (CUTOVER_REQUIRE_SERVERS=1); elsewhere its tests skip loudly.
fn server_missing(what: &str, url: &str, err: &dyn std::fmt::Display) -> Option<TestDb> {
    if std::env::var("CUTOVER_REQUIRE_SERVERS").as_deref() == Ok("1") {
        panic!(
            "{what} at {url} is required (CUTOVER_REQUIRE_SERVERS=1) but does not answer: {err}"
        );
    }
    eprintln!("\n!!! SKIPPED: {what} at {url} does not answer ({err}); set CUTOVER_REQUIRE_SERVERS=1 to require it\n");
    None
}

fn with_db(url: &str, db: &str) -> String {
    match url.rfind('/') {
        Some(i) if i > url.find("://").map_or(0, |j| j + 2) => format!("{}/{db}", &url[..i]),
        _ => format!("{}/{db}", url.trim_end_matches('/')),
    }
}

impl TestDb {
    pub fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}", dir.path().join("target.db").display());
        TestDb {
            kind: Kind::Sqlite,
            url,
            admin: None,
            dir,
        }
    }

    pub fn postgres() -> Option<TestDb> {
        let admin = std::env::var("CUTOVER_TEST_PG")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        let name = unique_name();
        let made = rt().block_on(async {
            let pool = sqlx::postgres::PgPoolOptions::new()
                .max_connections(1)
                .acquire_timeout(Duration::from_secs(5))
                .connect(&admin)
                .await?;
            sqlx::query(&format!("CREATE DATABASE {name}"))
                .execute(&pool)
                .await?;
            pool.close().await;
            Ok::<_, sqlx::Error>(())
        });
        if let Err(e) = made {
            return server_missing("PostgreSQL", &admin, &e);
        }
        Some(TestDb {
            kind: Kind::Postgres,
            url: with_db(&admin, &name),
            admin: Some((admin, name)),
            dir: tempfile::tempdir().expect("tempdir"),
        })
    }

    pub fn mysql() -> Option<TestDb> {
        let admin = std::env::var("CUTOVER_TEST_MYSQL")
            .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".into());
        let name = unique_name();
        let made = rt().block_on(async {
            let pool = sqlx::mysql::MySqlPoolOptions::new()
                .max_connections(1)
                .acquire_timeout(Duration::from_secs(5))
                .connect(&admin)
                .await?;
            sqlx::query(&format!(
                "CREATE DATABASE {name} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
            ))
            .execute(&pool)
            .await?;
            pool.close().await;
            Ok::<_, sqlx::Error>(())
        });
        if let Err(e) = made {
            return server_missing("MariaDB/MySQL", &admin, &e);
        }
        Some(TestDb {
            kind: Kind::Mysql,
            url: with_db(&admin, &name),
            admin: Some((admin, name)),
            dir: tempfile::tempdir().expect("tempdir"),
        })
    }

    pub fn of(kind: Kind) -> Option<TestDb> {
        match kind {
            Kind::Sqlite => Some(TestDb::sqlite()),
            Kind::Postgres => TestDb::postgres(),
            Kind::Mysql => TestDb::mysql(),
        }
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(bin());
        c.args(args)
            .arg("--target")
            .arg(&self.url)
            .current_dir(root());
        c.env_remove("CUTOVER_TARGET")
            .env_remove("DATABASE_URL")
            .env_remove("RUST_LOG");
        c
    }

    /// Run `cutover ARGS --target URL` to completion.
    pub fn run(&self, args: &[&str]) -> Run {
        Run::from(self.cmd(args).output().expect("run cutover"))
    }

    /// [`TestDb::run`] with environment variables set (keys of `encrypt()`).
    pub fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut c = self.cmd(args);
        for (k, v) in env {
            c.env(k, v);
        }
        Run::from(c.output().expect("run cutover"))
    }

    /// Start `cutover ARGS --target URL` in the background.
    pub fn spawn(&self, args: &[&str]) -> Child {
        self.cmd(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn cutover")
    }

    /// Execute a statement on the target.
    pub fn exec(&self, sql: &str) {
        rt().block_on(async {
            match self.kind {
                Kind::Sqlite => {
                    let opts: sqlx::sqlite::SqliteConnectOptions = self.url.parse().expect("url");
                    let pool = sqlx::sqlite::SqlitePoolOptions::new()
                        .max_connections(1)
                        .connect_with(opts.create_if_missing(true))
                        .await
                        .expect("connect");
                    sqlx::raw_sql(sql)
                        .execute(&pool)
                        .await
                        .unwrap_or_else(|e| panic!("{sql}: {e}"));
                    pool.close().await;
                }
                Kind::Postgres => {
                    let pool = sqlx::postgres::PgPoolOptions::new()
                        .max_connections(1)
                        .connect(&self.url)
                        .await
                        .expect("connect");
                    sqlx::raw_sql(sql)
                        .execute(&pool)
                        .await
                        .unwrap_or_else(|e| panic!("{sql}: {e}"));
                    pool.close().await;
                }
                Kind::Mysql => {
                    let pool = sqlx::mysql::MySqlPoolOptions::new()
                        .max_connections(1)
                        .connect(&self.url)
                        .await
                        .expect("connect");
                    sqlx::raw_sql(sql)
                        .execute(&pool)
                        .await
                        .unwrap_or_else(|e| panic!("{sql}: {e}"));
                    pool.close().await;
                }
            }
        })
    }

    /// Close the server connections of the loader under test (all connections to
    /// this test's database but the one asking); returns how many.
    pub fn kill_loader_connections(&self) -> i64 {
        let dbname = self.url.rsplit('/').next().unwrap_or_default().to_string();
        match self.kind {
            Kind::Sqlite => 0,
            Kind::Postgres => self.count(&format!(
                "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                 WHERE datname = '{dbname}' AND application_name = 'cutover' AND pid <> pg_backend_pid()) t"
            )),
            Kind::Mysql => {
                let ids = self.rows(&format!(
                    "SELECT ID FROM information_schema.PROCESSLIST WHERE DB = '{dbname}' AND ID <> CONNECTION_ID()"
                ));
                let mut n = 0;
                for id in ids.into_iter().filter_map(|r| r[0].clone()) {
                    // A connection may have closed by itself meanwhile.
                    let killed = rt().block_on(async {
                        let pool = sqlx::mysql::MySqlPoolOptions::new()
                            .max_connections(1)
                            .connect(&self.url)
                            .await
                            .expect("connect");
                        let r = sqlx::raw_sql(&format!("KILL CONNECTION {id}")).execute(&pool).await;
                        pool.close().await;
                        r.is_ok()
                    });
                    n += i64::from(killed);
                }
                n
            }
        }
    }

    /// Rows of a query, every cell as text (NULL as None).
    pub fn rows(&self, sql: &str) -> Vec<Vec<Option<String>>> {
        rt().block_on(async {
            match self.kind {
                Kind::Sqlite => {
                    let opts: sqlx::sqlite::SqliteConnectOptions = self.url.parse().expect("url");
                    let pool = sqlx::sqlite::SqlitePoolOptions::new()
                        .max_connections(1)
                        .connect_with(opts.busy_timeout(Duration::from_secs(30)))
                        .await
                        .expect("connect");
                    let rows = sqlx::query(sql)
                        .fetch_all(&pool)
                        .await
                        .unwrap_or_else(|e| panic!("{sql}: {e}"));
                    pool.close().await;
                    rows.iter()
                        .map(|r| (0..r.len()).map(|i| cell_sqlite!(r, i)).collect())
                        .collect()
                }
                Kind::Postgres => {
                    let pool = sqlx::postgres::PgPoolOptions::new()
                        .max_connections(1)
                        .connect(&self.url)
                        .await
                        .expect("connect");
                    let rows = sqlx::query(sql)
                        .fetch_all(&pool)
                        .await
                        .unwrap_or_else(|e| panic!("{sql}: {e}"));
                    pool.close().await;
                    rows.iter()
                        .map(|r| (0..r.len()).map(|i| cell!(r, i)).collect())
                        .collect()
                }
                Kind::Mysql => {
                    let pool = sqlx::mysql::MySqlPoolOptions::new()
                        .max_connections(1)
                        .connect(&self.url)
                        .await
                        .expect("connect");
                    let rows = sqlx::query(sql)
                        .fetch_all(&pool)
                        .await
                        .unwrap_or_else(|e| panic!("{sql}: {e}"));
                    pool.close().await;
                    rows.iter()
                        .map(|r| (0..r.len()).map(|i| cell!(r, i)).collect())
                        .collect()
                }
            }
        })
    }

    pub fn scalar(&self, sql: &str) -> Option<String> {
        self.rows(sql)
            .into_iter()
            .next()
            .and_then(|r| r.into_iter().next())
            .flatten()
    }

    pub fn count(&self, sql: &str) -> i64 {
        let s = self
            .scalar(sql)
            .unwrap_or_else(|| panic!("{sql} gave no value"));
        s.parse::<i64>()
            .ok()
            .or_else(|| s.strip_suffix(".0").and_then(|t| t.parse().ok()))
            .unwrap_or_else(|| panic!("{sql} gave {s}, not an integer"))
    }

    pub fn table_exists(&self, table: &str) -> bool {
        match self.kind {
            Kind::Sqlite => {
                if !self.dir.path().join("target.db").exists() {
                    return false;
                }
                self.count(&format!("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = '{table}'")) > 0
            }
            Kind::Postgres => self.count(&format!("SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename = '{table}'")) > 0,
            Kind::Mysql => self.count(&format!("SELECT count(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = '{table}'")) > 0,
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some((admin, name)) = self.admin.clone() else {
            return;
        };
        let kind = self.kind;
        let _ = rt().block_on(async move {
            match kind {
                Kind::Postgres => {
                    let pool = sqlx::postgres::PgPoolOptions::new()
                        .max_connections(1)
                        .connect(&admin)
                        .await?;
                    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .execute(&pool)
                        .await?;
                    pool.close().await;
                }
                _ => {
                    let pool = sqlx::mysql::MySqlPoolOptions::new()
                        .max_connections(1)
                        .connect(&admin)
                        .await?;
                    sqlx::query(&format!("DROP DATABASE IF EXISTS {name}"))
                        .execute(&pool)
                        .await?;
                    pool.close().await;
                }
            }
            Ok::<_, sqlx::Error>(())
        });
    }
}

/// Run a test body on SQLite, PostgreSQL and MariaDB: `on_all_targets!(name, |db| { ... });`
#[macro_export]
macro_rules! on_all_targets {
    ($name:ident, $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            fn body(db: &$crate::it::util::TestDb) {
                let f: &dyn Fn(&$crate::it::util::TestDb) = &$body;
                f(db)
            }
            #[test]
            fn sqlite() {
                body(&$crate::it::util::TestDb::sqlite());
            }
            #[test]
            fn postgres() {
                if let Some(db) = $crate::it::util::TestDb::postgres() {
                    body(&db);
                }
            }
            #[test]
            fn mysql() {
                if let Some(db) = $crate::it::util::TestDb::mysql() {
                    body(&db);
                }
            }
        }
    };
}

/// Poll until `f` is true (or panic after `secs`).
pub fn wait_for(secs: u64, what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(secs) {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("timed out after {secs}s waiting for {what}");
}

/// Write a file, making its folder first.
pub fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().expect("a file in a folder")).expect("create the folder");
    std::fs::write(path, text).expect("write the file");
}

/// Write a JSON Lines KV dump of `n` records and a mapping + schema for it.
/// Returns the mapping path. Records: key `item-<i>`, value {id, name, score, tags}.
pub fn kv_job(dir: &Path, name: &str, n: usize) -> PathBuf {
    use std::io::Write;
    let data = dir.join(format!("{name}.jsonl"));
    let mut f = std::io::BufWriter::new(std::fs::File::create(&data).expect("create dump"));
    for i in 0..n {
        writeln!(
            f,
            r#"{{"key":"item-{i}","value":{{"id":{i},"name":"name {i} ü","score":{},"tags":["t{}","x"]}}}}"#,
            (i * 7) % 1000,
            i % 5
        )
        .expect("write");
    }
    f.flush().expect("flush");
    let schema = dir.join(format!("{name}-schema"));
    std::fs::create_dir_all(&schema).expect("schema dir");
    std::fs::write(
        schema.join("20260101000000_items.sql"),
        "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL, score INTEGER, tags TEXT);\n\
         CREATE TABLE item_tags (item_id INTEGER NOT NULL, pos INTEGER NOT NULL, tag TEXT, PRIMARY KEY (item_id, pos));\n",
    )
    .expect("schema");
    let mapping = dir.join(format!("{name}.toml"));
    std::fs::write(
        &mapping,
        format!(
            r#"name = "{name}"
schema = "{name}-schema"

[source]
kind = "kv"
path = "{name}.jsonl"

[[tables]]
table = "items"
key = ["id"]
columns.id = "value.id | required"
columns.name = "value.name"
columns.score = "value.score"
columns.tags = "value.tags | json"

[[tables]]
table = "item_tags"
for_each = "value.tags"
key = ["item_id", "pos"]
columns.item_id = "value.id"
columns.pos = "index"
columns.tag = "item"
"#
        ),
    )
    .expect("mapping");
    mapping
}

/// Run a test body on PostgreSQL and MariaDB only.
#[macro_export]
macro_rules! on_server_targets {
    ($name:ident, $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            fn body(db: &$crate::it::util::TestDb) {
                let f: &dyn Fn(&$crate::it::util::TestDb) = &$body;
                f(db)
            }
            #[test]
            fn postgres() {
                if let Some(db) = $crate::it::util::TestDb::postgres() {
                    body(&db);
                }
            }
            #[test]
            fn mysql() {
                if let Some(db) = $crate::it::util::TestDb::mysql() {
                    body(&db);
                }
            }
        }
    };
}

/// Every row of a table, every cell as text, sorted (to compare two states).
pub fn snapshot(db: &TestDb, table: &str) -> Vec<Vec<Option<String>>> {
    let mut rows = db.rows(&format!("SELECT * FROM {table}"));
    rows.sort();
    rows
}

/// The error rows of a run: (mapping, record_key, stage, column_name, message), by id.
pub fn run_errors(db: &TestDb, run: i64) -> Vec<Vec<Option<String>>> {
    db.rows(&format!(
        "SELECT mapping, record_key, stage, column_name, message FROM cutover_errors WHERE run_id = {run} ORDER BY id"
    ))
}

/// A second `run` of the same mappings (runs `first..first+n` were the first
/// pass, `first+n..first+2n` the second, in the same order) changed nothing:
/// per mapping the rerun read, wrote, filtered and failed the same records,
/// rewrote no row, counted every row the first pass wrote as unchanged (in
/// total and per table), and failed the same records with the same errors.
#[track_caller]
pub fn assert_rerun_changed_nothing(db: &TestDb, first: i64, n: i64) {
    let run = |id: i64| {
        let r = db.rows(&format!(
            "SELECT mapping, status, records_read, records_written, records_filtered, records_failed, rows_written, rows_unchanged FROM cutover_runs WHERE id = {id}"
        ));
        assert_eq!(r.len(), 1, "run {id} exists");
        r.into_iter()
            .next()
            .unwrap()
            .into_iter()
            .map(|c| c.unwrap_or_default())
            .collect::<Vec<String>>()
    };
    let tables = |id: i64| {
        db.rows(&format!(
            "SELECT table_name, rows_written, rows_unchanged FROM cutover_run_tables WHERE run_id = {id} ORDER BY table_name"
        ))
    };
    for i in 0..n {
        let (a, b) = (first + i, first + n + i);
        let (one, two) = (run(a), run(b));
        assert_eq!(two[0], one[0], "run {b} reruns the mapping of run {a}");
        assert_eq!(two[1], "succeeded", "run {b}");
        assert_eq!(
            two[2..6],
            one[2..6],
            "{}: run {b} read/wrote/filtered/failed the same records as run {a}",
            one[0]
        );
        assert_eq!(two[6], "0", "{}: the rerun (run {b}) rewrote rows", one[0]);
        assert_eq!(
            two[7], one[6],
            "{}: the rerun counts every row of run {a} as unchanged",
            one[0]
        );
        let (ta, tb) = (tables(a), tables(b));
        assert_eq!(ta.len(), tb.len(), "{}: tables of runs {a} and {b}", one[0]);
        for (x, y) in ta.iter().zip(&tb) {
            assert_eq!(y[0], x[0]);
            assert_eq!(
                y[1].as_deref(),
                Some("0"),
                "{:?}: run {b} rewrote rows",
                x[0]
            );
            assert_eq!(
                y[2], x[1],
                "{:?}: unchanged in run {b} = written in run {a}",
                x[0]
            );
        }
        assert_eq!(
            run_errors(db, a).len().to_string(),
            one[5],
            "{}: one error row per failed record of run {a}",
            one[0]
        );
        assert_eq!(
            run_errors(db, b),
            run_errors(db, a),
            "{}: the same records fail again, with the same errors",
            one[0]
        );
    }
    assert_eq!(
        db.count(&format!(
            "SELECT count(*) FROM cutover_runs WHERE id >= {first}"
        )),
        2 * n,
        "no other runs"
    );
}

/// The records a run skipped, per mapping in the order of its output: the
/// `N read exactly as the pass that last wrote them` lines of its summaries
/// (a summary without that line skipped none and is not listed).
pub fn skipped(stdout: &str) -> Vec<i64> {
    stdout
        .lines()
        .filter(|l| l.contains("read exactly as the pass that last wrote them"))
        .map(|l| {
            l.split_whitespace()
                .nth(4)
                .and_then(|n| n.replace(',', "").parse().ok())
                .unwrap_or(-1)
        })
        .collect()
}

/// A rerun over the same source (runs `first..first+n`, printing `stdout`)
/// skipped the records the pass before it wrote: per mapping it skipped
/// `skips[i]` records as read exactly as before, wrote no row, compared only
/// the rows of the records it did not skip (the caller checks how many), and
/// the records that failed failed again with one error row each (a failed
/// record is never skipped).
#[track_caller]
pub fn assert_rerun_skipped(db: &TestDb, first: i64, stdout: &str, skips: &[i64]) {
    assert_eq!(
        skipped(stdout),
        skips,
        "records skipped per mapping\n{stdout}"
    );
    for (i, &n) in skips.iter().enumerate() {
        let id = first + i as i64;
        let r = &db.rows(&format!(
            "SELECT status, records_read, records_written, records_failed, rows_written, rows_unchanged FROM cutover_runs WHERE id = {id}"
        ))[0];
        let r: Vec<i64> = r[1..]
            .iter()
            .map(|c| c.as_deref().unwrap_or("").parse().unwrap_or(-1))
            .collect();
        assert!(
            n <= r[1] && r[3] == 0,
            "run {id}: {n} of {} written records skipped, {} rows written",
            r[1],
            r[3]
        );
        if n == r[1] {
            assert_eq!(r[4], 0, "run {id}: every record skipped, no row compared");
        }
        assert_eq!(
            run_errors(db, id).len() as i64,
            r[2],
            "run {id}: one error row per failed record"
        );
    }
}

/// `cutover ARGS` with no `--target` added (the test passes its own) and
/// none of the target or log variables inherited.
pub fn cutover(args: &[&str], envs: &[(&str, &str)]) -> Run {
    let mut c = Command::new(bin());
    c.args(args)
        .current_dir(root())
        .env_remove("CUTOVER_TARGET")
        .env_remove("DATABASE_URL")
        .env_remove("RUST_LOG");
    c.envs(envs.iter().copied());
    Run::from(c.output().expect("run cutover"))
}
