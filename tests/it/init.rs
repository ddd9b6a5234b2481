//! `cutover init`: the target schema and the mappings written from the legacy
//! source itself, then `run` and `verify` of what it wrote, as a new user would.

use super::util::{cutover, dataset, write, Kind, TestDb};
use std::path::{Path, PathBuf};

/// The mapping files `init` wrote, in the order the shell's sorted glob gives.
pub fn mapping_files(out: &Path) -> Vec<String> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(out.join("mappings"))
        .expect("OUT/mappings")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files.iter().map(|p| p.display().to_string()).collect()
}

/// `cutover init ARGS --out OUT`, which must succeed.
fn init(args: &[&str], out: &Path) -> String {
    let mut a: Vec<&str> = vec!["init"];
    a.extend_from_slice(args);
    let out_s = out.display().to_string();
    a.extend(["--out", out_s.as_str()]);
    cutover(&a, &[]).ok().stdout
}

/// `run` then `verify` of every generated mapping; each run loads every record.
pub fn run_and_verify(db: &TestDb, files: &[String], envs: &[(&str, &str)]) {
    let go = |args: &[&str]| {
        let o = db
            .cmd(args)
            .envs(envs.iter().copied())
            .output()
            .expect("run cutover");
        super::util::Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    };
    let mut args = vec!["run", "--no-progress"];
    args.extend(files.iter().map(String::as_str));
    let r = go(&args).ok();
    assert_eq!(
        r.stdout.matches(" succeeded in ").count(),
        files.len(),
        "{}",
        r.stdout
    );
    assert!(!r.stdout.contains("failures by reason"), "{}", r.stdout);
    let mut args = vec!["verify"];
    args.extend(files.iter().map(String::as_str));
    let v = go(&args);
    assert_eq!(v.code, 0, "verify\n{}\n{}", v.stdout, v.stderr);
    assert!(
        !v.stdout.contains("FAILED") && !v.stdout.contains("WARNING"),
        "{}",
        v.stdout
    );
    assert_eq!(
        v.stdout.matches("  PASSED  (").count(),
        files.len(),
        "{}",
        v.stdout
    );
}

const CHINOOK: [(&str, &str, i64); 11] = [
    ("Artist", "artist", 275),
    ("Genre", "genre", 25),
    ("MediaType", "media_type", 5),
    ("Album", "album", 347),
    ("Track", "track", 3503),
    ("Employee", "employee", 8),
    ("Customer", "customer", 59),
    ("Invoice", "invoice", 412),
    ("InvoiceLine", "invoice_line", 2240),
    ("Playlist", "playlist", 18),
    ("PlaylistTrack", "playlist_track", 8715),
];

/// A table name as the target spells it under `keep` or `snake_case`.
fn quoted(db: &TestDb, keep: bool, source: &str, snake: &str) -> String {
    match (keep, db.kind) {
        (false, _) => snake.to_string(),
        (true, Kind::Mysql) => format!("`{source}`"),
        (true, _) => format!("\"{source}\""),
    }
}

/// What a user checks after loading Chinook: every count (15,607 rows in 11
/// tables), the exact sum of the invoices, the NULL composers, and the foreign
/// keys the schema made.
pub fn assert_chinook(db: &TestDb, keep: bool) {
    let mut total = 0;
    for (source, snake, n) in CHINOOK {
        let t = quoted(db, keep, source, snake);
        assert_eq!(db.count(&format!("SELECT COUNT(*) FROM {t}")), n, "{t}");
        total += n;
    }
    assert_eq!(total, 15_607);
    let (invoice, total_col) = if keep {
        (
            quoted(db, true, "Invoice", ""),
            quoted(db, true, "Total", ""),
        )
    } else {
        ("invoice".to_string(), "total".to_string())
    };
    let sum = db
        .scalar(&format!("SELECT SUM({total_col}) FROM {invoice}"))
        .unwrap();
    assert_eq!(sum.trim_end_matches('0'), "2328.6", "sum(total) = {sum}");
    let (track, composer) = if keep {
        (
            quoted(db, true, "Track", ""),
            quoted(db, true, "Composer", ""),
        )
    } else {
        ("track".to_string(), "composer".to_string())
    };
    assert_eq!(
        db.count(&format!(
            "SELECT COUNT(*) FROM {track} WHERE {composer} IS NULL"
        )),
        977
    );
    let fks = match db.kind {
        Kind::Postgres => db.count(
            "SELECT COUNT(*) FROM information_schema.table_constraints WHERE constraint_type = 'FOREIGN KEY' AND table_schema = 'public'",
        ),
        Kind::Mysql => db.count(
            "SELECT COUNT(*) FROM information_schema.referential_constraints WHERE constraint_schema = DATABASE()",
        ),
        Kind::Sqlite => db.count(
            "SELECT COUNT(*) FROM sqlite_master m, pragma_foreign_key_list(m.name) f WHERE m.type = 'table'",
        ),
    };
    assert_eq!(fks, 11, "the 11 foreign keys of Chinook");
}

fn chinook_from_sqlite(db: Option<TestDb>, naming: &str) {
    let Some(dir) = dataset("chinook") else {
        return;
    };
    let Some(db) = db else { return };
    let out = db.dir().join("migration");
    let dialect = match db.kind {
        Kind::Postgres => "postgres",
        Kind::Mysql => "mysql",
        Kind::Sqlite => "sqlite",
    };
    let src = dir.join("Chinook_Sqlite.sqlite").display().to_string();
    let stdout = init(
        &["--source", &src, "--dialect", dialect, "--naming", naming],
        &out,
    );
    assert!(stdout.contains("11 mappings"), "{stdout}");
    assert!(!stdout.contains("TODO"), "{stdout}");
    let files = mapping_files(&out);
    assert_eq!(files.len(), 11);
    // Parents first: each mapping after the ones whose tables it references.
    let pos = |t: &str| {
        files
            .iter()
            .position(|f| f.ends_with(&format!("_{t}.toml")))
            .unwrap_or_else(|| panic!("no mapping for {t}: {files:?}"))
    };
    for (child, parent) in [
        ("album", "artist"),
        ("track", "album"),
        ("track", "genre"),
        ("track", "media_type"),
        ("customer", "employee"),
        ("invoice", "customer"),
        ("invoice_line", "invoice"),
        ("invoice_line", "track"),
        ("playlist_track", "playlist"),
        ("playlist_track", "track"),
    ] {
        assert!(
            pos(child) > pos(parent),
            "{child} after {parent}: {files:?}"
        );
    }
    run_and_verify(&db, &files, &[]);
    assert_chinook(&db, naming == "keep");
}

#[test]
fn chinook_sqlite_into_postgres() {
    chinook_from_sqlite(TestDb::postgres(), "snake_case");
}

#[test]
fn chinook_sqlite_into_postgres_keeping_names() {
    chinook_from_sqlite(TestDb::postgres(), "keep");
}

#[test]
fn chinook_sqlite_into_mariadb() {
    chinook_from_sqlite(TestDb::mysql(), "snake_case");
}

#[test]
fn chinook_sqlite_into_mariadb_keeping_names() {
    chinook_from_sqlite(TestDb::mysql(), "keep");
}

#[test]
fn chinook_sqlite_into_sqlite() {
    chinook_from_sqlite(Some(TestDb::sqlite()), "snake_case");
}

/// A legacy SQLite file with what init cannot decide alone: a table without a
/// key and a column type it has no conversion for.
fn legacy_sqlite(dir: &Path) -> PathBuf {
    let file = dir.join("legacy.db");
    let url = format!("sqlite://{}", file.display());
    let t = TestDbAt(url);
    t.exec(
        "CREATE TABLE Place (PlaceId INTEGER PRIMARY KEY, Name NVARCHAR(10) NOT NULL, Shape GEOGRAPHY);
         INSERT INTO Place VALUES (1, 'Harbour', 'POINT(1 2)'), (2, 'A name longer than ten', NULL);
         CREATE TABLE Visit (At DATETIME NOT NULL, PlaceId INTEGER REFERENCES Place (PlaceId), Note TEXT);
         INSERT INTO Visit VALUES ('2024-01-02 03:04:05', 1, 'first');",
    );
    file
}

/// Statements on a SQLite file that is not a test's target.
struct TestDbAt(String);

impl TestDbAt {
    fn exec(&self, sql: &str) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let opts: sqlx::sqlite::SqliteConnectOptions = self.0.parse().unwrap();
            let pool = sqlx::sqlite::SqlitePoolOptions::new()
                .max_connections(1)
                .connect_with(opts.create_if_missing(true))
                .await
                .unwrap();
            sqlx::raw_sql(sql).execute(&pool).await.unwrap();
            pool.close().await;
        });
    }
}

#[test]
fn todos_keyless_tables_and_refusals() {
    let db = TestDb::sqlite();
    let src = legacy_sqlite(db.dir()).display().to_string();
    let out = db.dir().join("out");
    let out_s = out.display().to_string();
    let args = [
        "init",
        "--source",
        &src,
        "--dialect",
        "sqlite",
        "--out",
        &out_s,
    ];
    let r = cutover(&args, &[]).ok();
    // The unknown type is named with its table and column, and listed at the end.
    assert!(
        r.stdout
            .contains("TODO (2): fix these in the generated files:"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("Place.Shape: no conversion for GEOGRAPHY (SQLite): written as text"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("Visit: no primary key or unique constraint"),
        "{}",
        r.stdout
    );
    let files = mapping_files(&out);
    assert_eq!(files.len(), 2);
    let sql_dir = out.join("sql");
    let place_sql = std::fs::read_dir(&sql_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.display().to_string().ends_with("_create_place.up.sql"))
        .expect("the place migration");
    let ddl = std::fs::read_to_string(place_sql).unwrap();
    assert!(ddl.contains("shape TEXT"), "{ddl}");
    assert!(
        ddl.contains("-- TODO: no conversion for GEOGRAPHY"),
        "{ddl}"
    );
    // SQLite does not enforce NVARCHAR(10): the column is as wide as the data.
    assert!(ddl.contains("name VARCHAR(22) NOT NULL"), "{ddl}");

    // The keyless table's mapping is refused by plan and run, with the reason.
    let visit = files.iter().find(|f| f.ends_with("_visit.toml")).unwrap();
    let text = std::fs::read_to_string(visit).unwrap();
    let flat = text.replace("\n# ", " ");
    assert!(
        flat.contains("TODO: Visit has no primary key or unique constraint"),
        "{text}"
    );
    assert!(flat.contains("(NOT NULL candidates: At)"), "{text}");
    let p = db.run(&["plan", visit]);
    assert_eq!(p.code, 2, "{}\n{}", p.stdout, p.stderr);
    assert!(
        p.stderr.contains("`key` must name at least one column"),
        "{}",
        p.stderr
    );
    assert!(
        p.stderr.contains("cutover init` lists the candidates"),
        "{}",
        p.stderr
    );
    let r = db.run(&["run", visit]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    // The other mapping loads, the unknown type as its text.
    let place = files.iter().find(|f| f.ends_with("_place.toml")).unwrap();
    db.run(&["run", place]).ok();
    assert_eq!(
        db.scalar("SELECT shape FROM place WHERE place_id = 1")
            .as_deref(),
        Some("POINT(1 2)")
    );
    // Once the user sets the key (and its PRIMARY KEY), the mapping loads.
    let fixed =
        text.replacen("key = []", "key = [\"At\"]", 1)
            .replacen("key = []", "key = [\"at\"]", 1);
    write(Path::new(visit), &fixed);
    db.exec("CREATE UNIQUE INDEX visit_at ON visit (at)");
    db.run(&["run", visit]).ok();
    assert_eq!(db.count("SELECT COUNT(*) FROM visit"), 1);

    // An existing OUT is refused without --force (exit 2), replaced with it.
    let again = cutover(&args, &[]);
    assert_eq!(again.code, 2, "{}", again.stderr);
    assert!(again.stderr.contains("already exists"), "{}", again.stderr);
    assert_eq!(
        std::fs::read_to_string(visit).unwrap(),
        fixed,
        "nothing was overwritten"
    );
    let mut forced = args.to_vec();
    forced.push("--force");
    cutover(&forced, &[]).ok();
    assert_eq!(std::fs::read_to_string(visit).unwrap(), text);
}

#[test]
fn bad_sources_and_names() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out").display().to_string();
    let missing = dir.path().join("nope.sqlite").display().to_string();
    let r = cutover(
        &[
            "init",
            "--source",
            &missing,
            "--dialect",
            "postgres",
            "--out",
            &out,
        ],
        &[],
    );
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("cannot reach the source") && r.stderr.contains("nope.sqlite"),
        "{}",
        r.stderr
    );
    let Some(chinook) = dataset("chinook") else {
        return;
    };
    let src = chinook.join("Chinook_Sqlite.sqlite").display().to_string();
    let r = cutover(
        &[
            "init",
            "--source",
            &src,
            "--dialect",
            "postgres",
            "--out",
            &out,
            "--tables",
            "Artist,Nope",
        ],
        &[],
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("has no table Nope; it has: Album, Artist"),
        "{}",
        r.stderr
    );
    let r = cutover(
        &[
            "init",
            "--source",
            "../dump/",
            "--dialect",
            "postgres",
            "--out",
            &out,
        ],
        &[],
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("give --kind"), "{}", r.stderr);
    assert!(!Path::new(&out).exists(), "a failed init writes nothing");
    // --tables keeps a foreign key only to a table it was asked for.
    let r = cutover(
        &[
            "init",
            "--source",
            &src,
            "--dialect",
            "postgres",
            "--out",
            &out,
            "--tables",
            "Album",
        ],
        &[],
    )
    .ok();
    assert!(
        r.stdout
            .contains("references Artist, which init was not asked for"),
        "{}",
        r.stdout
    );
}
