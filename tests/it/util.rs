//! Helpers: run the binary, make a fresh target database, query it.

#![allow(dead_code)]

use sqlx::Row;
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

/// A target database of its own for one test, removed when dropped.
pub struct TestDb {
    pub url: String,
    dir: tempfile::TempDir,
}

impl TestDb {
    pub fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}", dir.path().join("target.db").display());
        TestDb { url, dir }
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

    /// Start `cutover ARGS --target URL` in the background.
    pub fn spawn(&self, args: &[&str]) -> Child {
        self.cmd(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn cutover")
    }

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
    }

    /// Rows of a query, every cell as text (NULL as None).
    pub fn rows(&self, sql: &str) -> Vec<Vec<Option<String>>> {
        Self::rt().block_on(async {
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
            let out = rows
                .iter()
                .map(|r| {
                    (0..r.columns().len())
                        .map(|i| {
                            if let Ok(v) = r.try_get::<Option<String>, _>(i) {
                                return v;
                            }
                            if let Ok(v) = r.try_get::<Option<i64>, _>(i) {
                                return v.map(|x| x.to_string());
                            }
                            if let Ok(v) = r.try_get::<Option<f64>, _>(i) {
                                return v.map(|x| x.to_string());
                            }
                            Some("<blob>".to_string())
                        })
                        .collect()
                })
                .collect();
            pool.close().await;
            out
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
        self.scalar(sql)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("{sql} gave no integer"))
    }

    pub fn table_exists(&self, table: &str) -> bool {
        if !self.dir.path().join("target.db").exists() {
            return false;
        }
        self.count(&format!(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = '{table}'"
        )) > 0
    }
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
