//! Load benchmark: `cutover run` against `sqlite3 .import` on the same rows.
//!
//! Run it with
//!
//! ```text
//! cargo bench --bench load                                   # 1,000,000 records
//! CUTOVER_BENCH_RECORDS=5000000 cargo bench --bench load     # 5,000,000 records
//! ```
//!
//! It is a plain `fn main()` (`harness = false`). In one sitting it:
//!
//! 1. generates, deterministically (xorshift64*, fixed seed), a KV dump `kv-N.jsonl`
//!    (`{"key":"<64 hex>","value":{...}}` per line) and the same rows as `rows-N.csv`
//!    (RFC 4180, no header) in the data directory, unless they are already there with
//!    the right count (a marker file `kv-N.ready` records count, seed, sizes and a
//!    checksum of the rows);
//! 2. writes `schema.sql` and the mapping `bench.toml` next to the data;
//! 3. times `sqlite3 DB` + `.mode csv` + `.import rows-N.csv items` into a fresh
//!    database (the baseline);
//! 4. times `cutover run bench.toml --target sqlite://DB --batch-size 10000` into a
//!    fresh database with the same schema, then a second `cutover run` over the loaded
//!    database (the rerun: an idempotent upsert pass);
//! 5. prints a markdown table: wall-clock seconds (best of the repeats), records/s,
//!    peak RSS of the child (`ru_maxrss` from `wait4`, highest of the repeats) and the
//!    time ratio to the `sqlite3 .import` baseline.
//!
//! Every load is checked: the row count must be N, and a checksum over the loaded
//! columns (sums of seq/score/views/created_at, title lengths, meta ranks) is compared
//! with the one computed while generating (a mismatch is reported as a warning).
//!
//! Environment:
//!
//! * `CUTOVER_BENCH_RECORDS` — number of records (default 1,000,000; `_` allowed).
//! * `CUTOVER_BENCH_DIR` — data directory (default `target/bench-data`, relative to
//!   the package root, which is the working directory under `cargo bench`).
//! * `CUTOVER_BENCH_REPEAT` — runs per timed case, best time reported (default 1).
//! * `CUTOVER_BENCH_ARGS` — extra arguments for `cutover run`, whitespace-split.
//! * `CUTOVER_BENCH_KEEP_DB` — if set, keep the benchmark databases (`DIR/db/`).
//!
//! Needs `sqlite3` on `PATH`. Progress goes to stderr, the table to stdout. Any
//! failure exits non-zero with the failing child's stderr shown.
//!
//! Run without `--bench` (e.g. by `cargo test --all-targets`), it does a quick smoke
//! run of 2,000 records instead, unless `CUTOVER_BENCH_RECORDS` says otherwise.

use std::env;
use std::fmt::Write as _;
use std::fs;
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::thread;
use std::time::Instant;

/// The `cutover` binary built by cargo for this bench.
const CUTOVER: &str = env!("CARGO_BIN_EXE_cutover");

/// Seed of the generator: same seed, same records, same files.
const SEED: u64 = 0x9E37_79B9_7F4A_7C15;

/// Bump when the generated data changes shape, so stale files get regenerated.
const DATA_VERSION: u32 = 1;

const DEFAULT_RECORDS_BENCH: u64 = 1_000_000;
const DEFAULT_RECORDS_SMOKE: u64 = 2_000;
const BATCH_SIZE: &str = "10000";

const SCHEMA: &str = "CREATE TABLE items (id TEXT PRIMARY KEY, seq INTEGER NOT NULL, \
score INTEGER, views INTEGER, title TEXT, created_at INTEGER, meta TEXT);\n";

/// Computed by sqlite3 over a loaded table; compared with the generator's own sums.
const CHECKSUM_SQL: &str = "SELECT count(*), sum(seq), sum(score), sum(views), \
sum(created_at), sum(length(title)), sum(json_extract(meta, '$.rank')) FROM items;";
const CHECKSUM_FIELDS: &str =
    "count|sum(seq)|sum(score)|sum(views)|sum(created_at)|sum(length(title))|sum(meta.rank)";

/// Title words: unicode (precomposed), a comma and a quote to exercise CSV quoting
/// and JSON escaping.
const WORDS: &[&str] = &[
    "Zürich",
    "naïve",
    "café",
    "東京",
    "Ωmega",
    "São Paulo",
    "Kraków",
    "résumé",
    "über",
    "niño",
    "Ελλάδα",
    "Москва",
    "crème brûlée",
    "Smith, Jr.",
    "\"quoted\"",
    "alpha",
    "bravo",
    "delta",
    "harbor",
    "ledger",
    "migration",
    "quarterly",
    "report",
    "legacy",
    "vendor",
    "invoice",
    "archive",
    "summit",
];

const TAGS: &[&str] = &["a", "b", "c", "legacy", "vip"];

fn main() {
    let bench_mode = env::args().skip(1).any(|a| a == "--bench");
    let default_records = if bench_mode {
        DEFAULT_RECORDS_BENCH
    } else {
        DEFAULT_RECORDS_SMOKE
    };
    let n = env_u64("CUTOVER_BENCH_RECORDS", default_records);
    if n == 0 {
        die("CUTOVER_BENCH_RECORDS must be at least 1");
    }
    let repeat = env_u64("CUTOVER_BENCH_REPEAT", 1).max(1);
    let extra_args: Vec<String> = env::var("CUTOVER_BENCH_ARGS")
        .unwrap_or_default()
        .split_whitespace()
        .map(String::from)
        .collect();
    let keep_db = env::var_os("CUTOVER_BENCH_KEEP_DB").is_some_and(|v| !v.is_empty());

    let dir_raw = env::var_os("CUTOVER_BENCH_DIR")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target/bench-data"));
    fs::create_dir_all(&dir_raw)
        .unwrap_or_else(|e| die(format!("cannot create {}: {e}", dir_raw.display())));
    let dir = fs::canonicalize(&dir_raw)
        .unwrap_or_else(|e| die(format!("cannot resolve {}: {e}", dir_raw.display())));

    // Tools first: fail before generating gigabytes if something is missing.
    let sqlite_version = match Command::new("sqlite3").arg("-version").output() {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout)
            .split_whitespace()
            .next()
            .unwrap_or("?")
            .to_string(),
        Ok(o) => die(format!(
            "`sqlite3 -version` failed ({}): {}",
            o.status,
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Err(e) => die(format!("cannot run sqlite3 (is it on PATH?): {e}")),
    };
    if !Path::new(CUTOVER).is_file() {
        die(format!("cutover binary not found at {CUTOVER}"));
    }

    eprintln!(
        "[bench] {} records, repeat {repeat}, data in {}, sqlite3 {sqlite_version}, {} cpu(s){}",
        group(n),
        dir.display(),
        thread::available_parallelism()
            .map(|p| p.get())
            .unwrap_or(1),
        if bench_mode {
            ""
        } else {
            " (smoke run: no --bench argument)"
        }
    );
    eprintln!("[bench] cutover: {CUTOVER}");
    if !extra_args.is_empty() {
        eprintln!("[bench] extra cutover args: {}", extra_args.join(" "));
    }

    // 1. Data.
    let kv_name = format!("kv-{n}.jsonl");
    let csv_name = format!("rows-{n}.csv");
    let kv_path = dir.join(&kv_name);
    let csv_path = dir.join(&csv_name);
    let marker_path = dir.join(format!("kv-{n}.ready"));
    let checksum = match load_marker(&marker_path, &kv_path, &csv_path, n) {
        Some(c) => {
            eprintln!(
                "[data] reusing {kv_name} and {csv_name} (marker {})",
                marker_path.display()
            );
            c
        }
        None => {
            eprintln!(
                "[data] generating {kv_name} and {csv_name} ({} records)",
                group(n)
            );
            generate(&dir, n, &kv_path, &csv_path, &marker_path)
                .unwrap_or_else(|e| die(format!("generating data in {}: {e}", dir.display())))
        }
    };

    // 2. Schema and mapping.
    let schema_path = dir.join("schema.sql");
    let mapping_path = dir.join("bench.toml");
    write_file(&schema_path, SCHEMA);
    write_file(&mapping_path, &mapping_toml(&kv_name));
    eprintln!(
        "[data] wrote {} and {}",
        schema_path.display(),
        mapping_path.display()
    );

    let db_dir = dir.join("db");
    fs::create_dir_all(&db_dir)
        .unwrap_or_else(|e| die(format!("cannot create {}: {e}", db_dir.display())));
    let mut cases: Vec<Case> = Vec::new();
    let mut checks: Vec<(&'static str, bool)> = Vec::new();

    // 3. Baseline: sqlite3 .import of the CSV.
    let base_db = db_dir.join("sqlite3-import.db");
    let import_script = format!(".mode csv\n.import {csv_name} items\n");
    let mut case = Case::new("sqlite3 .import (csv)");
    for i in 1..=repeat {
        fresh_db(&base_db);
        eprintln!(
            "[sqlite3 .import] run {i}/{repeat}: .import {csv_name} into {}",
            base_db.display()
        );
        let mut cmd = Command::new("sqlite3");
        cmd.current_dir(&dir).arg("-bail").arg(&base_db);
        let out = run_checked("sqlite3 .import", &mut cmd, Some(import_script.as_bytes()));
        if !out.stderr.is_empty() {
            eprintln!("[sqlite3 .import] warning: sqlite3 wrote to stderr:");
            eprint_tail(&out.stderr, 20);
        }
        check_count("sqlite3 .import", &base_db, n);
        case.record(&out);
    }
    checks.push((
        "sqlite3 .import",
        verify_checksum("sqlite3 .import", &base_db, &checksum),
    ));
    cases.push(case);

    // 4. cutover: first load into a fresh database, then a rerun over the loaded one.
    let cut_db = db_dir.join("cutover.db");
    let mut case = Case::new("cutover run (fresh db)");
    for i in 1..=repeat {
        fresh_db(&cut_db);
        eprintln!(
            "[cutover load] run {i}/{repeat}: {kv_name} into {}",
            cut_db.display()
        );
        let mut cmd = cutover_cmd(&dir, &mapping_path, &cut_db, &extra_args);
        let out = run_checked("cutover run (fresh db)", &mut cmd, None);
        eprint_child_summary(&out);
        check_count("cutover run (fresh db)", &cut_db, n);
        case.record(&out);
    }
    checks.push((
        "cutover run",
        verify_checksum("cutover run", &cut_db, &checksum),
    ));
    cases.push(case);

    let mut case = Case::new("cutover rerun (loaded db, upsert)");
    for i in 1..=repeat {
        eprintln!(
            "[cutover rerun] run {i}/{repeat}: {kv_name} over {}",
            cut_db.display()
        );
        let mut cmd = cutover_cmd(&dir, &mapping_path, &cut_db, &extra_args);
        let out = run_checked("cutover rerun (loaded db)", &mut cmd, None);
        eprint_child_summary(&out);
        check_count("cutover rerun (loaded db)", &cut_db, n);
        case.record(&out);
    }
    checks.push((
        "cutover rerun",
        verify_checksum("cutover rerun", &cut_db, &checksum),
    ));
    cases.push(case);

    // 5. Report.
    let base_secs = cases[0].best_secs().max(1e-9);
    println!();
    println!(
        "cutover load bench: {} records, best of {repeat}, batch size {BATCH_SIZE}, sqlite3 {sqlite_version}{}",
        group(n),
        if extra_args.is_empty() { String::new() } else { format!(", args: {}", extra_args.join(" ")) }
    );
    println!();
    println!("| case | records | seconds | records/s | peak RSS MB | ratio to sqlite3 .import |");
    println!("|---|---:|---:|---:|---:|---:|");
    for c in &cases {
        let secs = c.best_secs().max(1e-9);
        println!(
            "| {} | {} | {:.2} | {} | {:.1} | {:.2}x |",
            c.name,
            group(n),
            secs,
            group((n as f64 / secs).round() as u64),
            c.max_rss_kib() as f64 / 1024.0,
            secs / base_secs
        );
    }
    println!();
    println!(
        "seconds: wall clock, best of {repeat}; peak RSS: ru_maxrss of the child (wait4), highest of {repeat}; \
ratio: seconds / sqlite3 .import seconds (lower is better)."
    );
    let checks_text: Vec<String> = checks
        .iter()
        .map(|(name, ok)| format!("{name} {}", if *ok { "ok" } else { "MISMATCH" }))
        .collect();
    println!(
        "row count: {} in every case; checksum: {}.",
        group(n),
        checks_text.join(", ")
    );

    if keep_db {
        eprintln!("[bench] keeping databases in {}", db_dir.display());
    } else if let Err(e) = fs::remove_dir_all(&db_dir) {
        eprintln!("[bench] warning: cannot remove {}: {e}", db_dir.display());
    }
}

// ---------------------------------------------------------------------------------
// Cases and children
// ---------------------------------------------------------------------------------

/// One timed case: all its runs as (seconds, peak RSS KiB).
struct Case {
    name: &'static str,
    runs: Vec<(f64, i64)>,
}

impl Case {
    fn new(name: &'static str) -> Self {
        Case {
            name,
            runs: Vec::new(),
        }
    }

    fn record(&mut self, out: &Outcome) {
        eprintln!(
            "  -> {:.2} s, peak RSS {:.1} MB",
            out.secs,
            out.maxrss_kib as f64 / 1024.0
        );
        self.runs.push((out.secs, out.maxrss_kib));
    }

    fn best_secs(&self) -> f64 {
        self.runs.iter().map(|r| r.0).fold(f64::INFINITY, f64::min)
    }

    fn max_rss_kib(&self) -> i64 {
        self.runs.iter().map(|r| r.1).max().unwrap_or(0)
    }
}

/// What a finished child left behind.
struct Outcome {
    secs: f64,
    /// `ru_maxrss` of the child, KiB on Linux.
    maxrss_kib: i64,
    status: ExitStatus,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

fn cutover_cmd(dir: &Path, mapping: &Path, db: &Path, extra: &[String]) -> Command {
    let mut cmd = Command::new(CUTOVER);
    cmd.current_dir(dir)
        .arg("run")
        .arg(mapping)
        .arg("--target")
        .arg(format!("sqlite://{}", db.display()))
        .arg("--batch-size")
        .arg(BATCH_SIZE)
        .args(extra);
    cmd
}

/// Spawns `cmd`, feeds it `stdin_data` (or /dev/null), collects stdout and stderr on
/// threads, and reaps it with `wait4` to get its own peak RSS. Wall clock from just
/// before the spawn to the reap.
///
/// `ru_maxrss` of a child also covers the memory image it started from (the kernel
/// carries the old mm's high-water mark across exec), so this process keeps its own
/// footprint small: it streams everything and holds no data in memory.
fn run_measured(cmd: &mut Command, stdin_data: Option<&[u8]>) -> io::Result<Outcome> {
    cmd.stdin(if stdin_data.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = cmd.spawn()?;
    let stdout_reader = drain(child.stdout.take());
    let stderr_reader = drain(child.stderr.take());
    if let (Some(data), Some(mut stdin)) = (stdin_data, child.stdin.take()) {
        // A child that exits early closes the pipe (EPIPE here); its exit status
        // tells the story, so the write error itself is not interesting.
        let _ = stdin.write_all(data);
        // `stdin` is dropped here: EOF for the child.
    }

    let pid = child.id() as libc::pid_t;
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain old data; all-zero is a valid value.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: pid is our own unreaped child; both pointers are valid for writes.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
        if r == pid {
            break;
        }
        if r == -1 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(err);
        }
        return Err(io::Error::other(format!(
            "wait4({pid}) returned unexpected pid {r}"
        )));
    }
    let secs = started.elapsed().as_secs_f64();
    // The child is reaped; `child` must not be waited on again (it is just dropped).
    drop(child);

    let stdout = stdout_reader.join().unwrap_or_default();
    let stderr = stderr_reader.join().unwrap_or_default();
    Ok(Outcome {
        secs,
        maxrss_kib: ru.ru_maxrss as i64,
        status: ExitStatus::from_raw(status),
        stdout,
        stderr,
    })
}

/// `run_measured`, exiting non-zero (with the child's output shown) unless it succeeded.
fn run_checked(what: &str, cmd: &mut Command, stdin_data: Option<&[u8]>) -> Outcome {
    let out = match run_measured(cmd, stdin_data) {
        Ok(out) => out,
        Err(e) => die(format!("{what}: cannot run {cmd:?}: {e}")),
    };
    if !out.status.success() {
        eprintln!("[{what}] command: {cmd:?}");
        if !out.stdout.is_empty() {
            eprintln!("[{what}] --- stdout (tail) ---");
            eprint_tail(&out.stdout, 40);
        }
        eprintln!("[{what}] --- stderr ---");
        eprint_tail(&out.stderr, 400);
        die(format!("{what} failed: {}", out.status));
    }
    out
}

fn drain<R: Read + Send + 'static>(pipe: Option<R>) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut buf);
        }
        buf
    })
}

/// The last `max_lines` lines of a child's output, indented, on stderr.
fn eprint_tail(bytes: &[u8], max_lines: usize) {
    let text = String::from_utf8_lossy(bytes);
    let lines: Vec<&str> = text.lines().collect();
    let skip = lines.len().saturating_sub(max_lines);
    if skip > 0 {
        eprintln!("  | ... ({skip} earlier lines)");
    }
    for line in &lines[skip..] {
        eprintln!("  | {line}");
    }
}

/// A successful cutover run: the last couple of lines it printed, for context.
fn eprint_child_summary(out: &Outcome) {
    for bytes in [&out.stdout, &out.stderr] {
        let text = String::from_utf8_lossy(bytes);
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        let skip = lines.len().saturating_sub(2);
        for line in &lines[skip..] {
            eprintln!("  | {line}");
        }
    }
}

// ---------------------------------------------------------------------------------
// sqlite3 helpers
// ---------------------------------------------------------------------------------

/// Removes the database (and its journal files) and creates the schema in a new one.
fn fresh_db(db: &Path) {
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut p = db.as_os_str().to_owned();
        p.push(suffix);
        match fs::remove_file(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => die(format!("cannot remove {}: {e}", Path::new(&p).display())),
        }
    }
    let mut cmd = Command::new("sqlite3");
    cmd.arg("-bail").arg(db);
    run_checked("create schema", &mut cmd, Some(SCHEMA.as_bytes()));
}

fn try_query(db: &Path, sql: &str) -> Result<String, String> {
    let mut cmd = Command::new("sqlite3");
    cmd.arg("-bail").arg(db).arg(sql);
    let out = run_measured(&mut cmd, None).map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{cmd:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn check_count(what: &str, db: &Path, n: u64) {
    let sql = "select count(*) from items";
    let text = try_query(db, sql).unwrap_or_else(|e| die(format!("{what}: counting rows: {e}")));
    let count: u64 = text
        .parse()
        .unwrap_or_else(|_| die(format!("{what}: `{sql}` printed {text:?}, not a number")));
    if count != n {
        panic!(
            "{what}: expected {n} rows in items after the load, found {count} (database {})",
            db.display()
        );
    }
}

/// Compares sums over the loaded table with the generator's; warns on a mismatch.
fn verify_checksum(what: &str, db: &Path, expected: &str) -> bool {
    match try_query(db, CHECKSUM_SQL) {
        Ok(got) if got == expected => true,
        Ok(got) => {
            eprintln!("[{what}] warning: checksum mismatch in {}", db.display());
            eprintln!("  fields:   {CHECKSUM_FIELDS}");
            eprintln!("  expected: {expected}");
            eprintln!("  got:      {got}");
            false
        }
        Err(e) => {
            eprintln!("[{what}] warning: checksum query failed: {e}");
            false
        }
    }
}

// ---------------------------------------------------------------------------------
// Data generation
// ---------------------------------------------------------------------------------

/// xorshift64* (Vigna): full period 2^64 - 1, so the first word of every key is
/// distinct and so are the keys.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// Sums over the generated rows, in the shape `CHECKSUM_SQL` prints them.
#[derive(Default)]
struct Sums {
    count: u64,
    seq: i64,
    score: i64,
    views: i64,
    created_at: i64,
    title_chars: i64,
    rank: i64,
}

impl Sums {
    fn render(&self) -> String {
        format!(
            "{}|{}|{}|{}|{}|{}|{}",
            self.count,
            self.seq,
            self.score,
            self.views,
            self.created_at,
            self.title_chars,
            self.rank
        )
    }
}

/// Writes `kv-N.jsonl` and `rows-N.csv` (through temporary files renamed into place),
/// then the marker. Returns the checksum line.
fn generate(
    dir: &Path,
    n: u64,
    kv_path: &Path,
    csv_path: &Path,
    marker: &Path,
) -> io::Result<String> {
    match fs::remove_file(marker) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let kv_tmp = tempfile::NamedTempFile::new_in(dir)?;
    let csv_tmp = tempfile::NamedTempFile::new_in(dir)?;
    let mut kv = BufWriter::with_capacity(1 << 20, kv_tmp.as_file());
    let mut csv = BufWriter::with_capacity(1 << 20, csv_tmp.as_file());

    let mut rng = Rng(SEED);
    let mut sums = Sums::default();
    let mut key = String::with_capacity(64);
    let mut title = String::with_capacity(96);
    let mut meta = String::with_capacity(96);
    let started = Instant::now();
    let progress_every = 1_000_000u64;

    for seq in 0..n {
        key.clear();
        for _ in 0..4 {
            write!(key, "{:016x}", rng.next_u64()).expect("write to String");
        }
        let score = rng.below(2_000_001) as i64 - 1_000_000;
        let views = rng.below(1_000_000_001) as i64;
        // 2010-01-01 .. 2026-01-01, epoch seconds.
        let created_at = 1_262_304_000 + rng.below(16 * 365 * 86_400) as i64;

        title.clear();
        let mut title_chars = 0usize;
        let target_chars = 34 + rng.below(10) as usize;
        while title_chars < target_chars {
            let word = WORDS[rng.below(WORDS.len() as u64) as usize];
            if !title.is_empty() {
                title.push(' ');
                title_chars += 1;
            }
            title.push_str(word);
            title_chars += word.chars().count();
        }

        let rank = rng.below(1000) as i64;
        let flag = rng.next_u64() & 1 == 1;
        let ntags = rng.below(4) as usize;
        meta.clear();
        meta.push_str("{\"tags\":[");
        for t in 0..ntags {
            if t > 0 {
                meta.push(',');
            }
            meta.push('"');
            meta.push_str(TAGS[rng.below(TAGS.len() as u64) as usize]);
            meta.push('"');
        }
        write!(meta, "],\"rank\":{rank},\"flag\":{flag}}}").expect("write to String");

        // JSONL: {"key":"..","value":{"id":"..",...,"meta":{...}}}
        write!(
            kv,
            "{{\"key\":\"{key}\",\"value\":{{\"id\":\"{key}\",\"seq\":{seq},\"score\":{score},\"views\":{views},\"title\":"
        )?;
        serde_json::to_writer(&mut kv, title.as_str()).map_err(io::Error::from)?;
        writeln!(kv, ",\"created_at\":{created_at},\"meta\":{meta}}}}}")?;

        // CSV: id,seq,score,views,title,created_at,meta
        write!(csv, "{key},{seq},{score},{views},")?;
        write_csv_field(&mut csv, &title)?;
        write!(csv, ",{created_at},")?;
        write_csv_field(&mut csv, &meta)?;
        csv.write_all(b"\n")?;

        sums.count += 1;
        sums.seq += seq as i64;
        sums.score += score;
        sums.views += views;
        sums.created_at += created_at;
        sums.title_chars += title_chars as i64;
        sums.rank += rank;

        let done = seq + 1;
        if done % progress_every == 0 && done < n {
            eprintln!(
                "[data] {} / {} records ({:.1} s)",
                group(done),
                group(n),
                started.elapsed().as_secs_f64()
            );
        }
    }
    kv.flush()?;
    csv.flush()?;
    drop(kv);
    drop(csv);
    kv_tmp.as_file().sync_all()?;
    csv_tmp.as_file().sync_all()?;
    kv_tmp.persist(kv_path).map_err(|e| e.error)?;
    csv_tmp.persist(csv_path).map_err(|e| e.error)?;

    let kv_bytes = fs::metadata(kv_path)?.len();
    let csv_bytes = fs::metadata(csv_path)?.len();
    let checksum = sums.render();
    let marker_text = format!(
        "version={DATA_VERSION}\nrecords={n}\nseed={SEED}\nkv_bytes={kv_bytes}\ncsv_bytes={csv_bytes}\nchecksum={checksum}\n"
    );
    fs::write(marker, marker_text)?;
    eprintln!(
        "[data] wrote {} records in {:.1} s: {} ({:.1} MB), {} ({:.1} MB)",
        group(n),
        started.elapsed().as_secs_f64(),
        kv_path.display(),
        kv_bytes as f64 / 1e6,
        csv_path.display(),
        csv_bytes as f64 / 1e6
    );
    Ok(checksum)
}

/// RFC 4180: quote a field containing a comma, quote or line break; double inner quotes.
fn write_csv_field<W: Write>(w: &mut W, field: &str) -> io::Result<()> {
    let needs_quotes = field
        .bytes()
        .any(|b| matches!(b, b',' | b'"' | b'\n' | b'\r'));
    if !needs_quotes {
        return w.write_all(field.as_bytes());
    }
    w.write_all(b"\"")?;
    for (i, part) in field.split('"').enumerate() {
        if i > 0 {
            w.write_all(b"\"\"")?;
        }
        w.write_all(part.as_bytes())?;
    }
    w.write_all(b"\"")
}

/// The checksum line if the marker matches this generator, count and the files on
/// disk; `None` means (re)generate.
fn load_marker(marker: &Path, kv_path: &Path, csv_path: &Path, n: u64) -> Option<String> {
    let text = fs::read_to_string(marker).ok()?;
    let field = |key: &str| -> Option<String> {
        text.lines().find_map(|line| {
            let (k, v) = line.split_once('=')?;
            (k == key).then(|| v.to_string())
        })
    };
    if field("version")? != DATA_VERSION.to_string()
        || field("records")? != n.to_string()
        || field("seed")? != SEED.to_string()
    {
        return None;
    }
    let kv_bytes: u64 = field("kv_bytes")?.parse().ok()?;
    let csv_bytes: u64 = field("csv_bytes")?.parse().ok()?;
    if fs::metadata(kv_path).ok()?.len() != kv_bytes
        || fs::metadata(csv_path).ok()?.len() != csv_bytes
    {
        return None;
    }
    let checksum = field("checksum")?;
    if checksum.split('|').count() != 7 {
        return None;
    }
    Some(checksum)
}

// ---------------------------------------------------------------------------------
// Small things
// ---------------------------------------------------------------------------------

fn mapping_toml(kv_name: &str) -> String {
    format!(
        r#"name = "bench_items"

[source]
kind = "kv"
path = "{kv_name}"
format = "jsonl"

[[tables]]
table = "items"
key = ["id"]
on_conflict = "update"
columns.id = "key"
columns.seq = "value.seq"
columns.score = "value.score"
columns.views = "value.views"
columns.title = "value.title"
columns.created_at = "value.created_at"
columns.meta = "value.meta | json"
"#
    )
}

fn write_file(path: &Path, contents: &str) {
    fs::write(path, contents)
        .unwrap_or_else(|e| die(format!("cannot write {}: {e}", path.display())));
}

fn env_u64(name: &str, default: u64) -> u64 {
    match env::var(name) {
        Ok(raw) if !raw.trim().is_empty() => raw
            .trim()
            .replace('_', "")
            .parse::<u64>()
            .unwrap_or_else(|e| die(format!("{name}={raw:?}: {e}"))),
        _ => default,
    }
}

/// 1234567 -> "1,234,567".
fn group(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn die(msg: impl std::fmt::Display) -> ! {
    eprintln!("bench load: error: {msg}");
    std::process::exit(1)
}
