//! `cutover migrate` on a folder in the D1 layout (`NNNN_name.sql` +
//! `NNNN_name.rollback.sql`, history in `_migrations`), taken over from the old
//! runner half way.

use super::util::{write, Kind, TestDb};

fn a_d1_folder_taken_over_from_the_old_runner(db: &TestDb) {
    let dir = db.dir().join("migrations");
    write(
        &dir.join("0001_create_a.sql"),
        "CREATE TABLE a (id INTEGER PRIMARY KEY, name TEXT);\n",
    );
    write(&dir.join("0001_create_a.rollback.sql"), "DROP TABLE a;\n");
    write(
        &dir.join("0002_create_b.sql"),
        "CREATE TABLE b (id INTEGER PRIMARY KEY);\n",
    );
    write(&dir.join("0002_create_b.rollback.sql"), "DROP TABLE b;\n");
    // Two statements in one file, and no rollback file (yet).
    write(
        &dir.join("0003_add_c.sql"),
        "CREATE TABLE c (id INTEGER PRIMARY KEY);\nINSERT INTO c (id) VALUES (1);\n",
    );
    let src = dir.to_str().unwrap();
    // The old runner applied the middle one and recorded it its way.
    let big = if db.kind == Kind::Sqlite {
        "INTEGER"
    } else {
        "BIGINT"
    };
    db.exec(&format!(
        "CREATE TABLE _migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at {big} NOT NULL)"
    ));
    db.exec("CREATE TABLE b (id INTEGER PRIMARY KEY)");
    db.exec(
        "INSERT INTO _migrations (version, name, applied_at) VALUES (2, 'create_b', 1700000000000)",
    );

    // info: the layout is detected; 2 applied at the runner's time, 1 and 3 pending.
    let out = db.run(&["migrate", "info", "--source", src]).ok();
    assert!(
        out.stdout.contains("D1 layout, history in _migrations"),
        "{}",
        out.stdout
    );
    let line = |v: &str, out: &str| {
        out.lines()
            .find(|l| l.starts_with(&format!("{v} ")))
            .unwrap_or_else(|| panic!("no line for {v}:\n{out}"))
            .to_string()
    };
    assert!(line("1", &out.stdout).contains("pending"), "{}", out.stdout);
    let two = line("2", &out.stdout);
    assert!(
        two.contains("applied") && two.contains("2023-11-14T22:13:20.000Z"),
        "{two}"
    );
    assert!(line("3", &out.stdout).contains("pending"), "{}", out.stdout);
    assert!(
        line("3", &out.stdout).ends_with("no"),
        "not reversible: {}",
        out.stdout
    );

    // A dry run lists 1 and 3 with their SQL and changes nothing.
    let out = db
        .run(&["migrate", "run", "--source", src, "--dry-run"])
        .ok();
    assert!(
        out.stdout.contains("would apply 1 create_a")
            && out.stdout.contains("would apply 3 add_c")
            && !out.stdout.contains("would apply 2"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("INSERT INTO c (id) VALUES (1);"),
        "{}",
        out.stdout
    );
    assert!(!db.table_exists("a"));
    assert_eq!(db.count("SELECT count(*) FROM _migrations"), 1);

    // run --target-version 1, then the rest; 2 is not applied again.
    let out = db
        .run(&["migrate", "run", "--source", src, "--target-version", "1"])
        .ok();
    assert!(
        out.stdout.contains("applied 1 create_a") && !out.stdout.contains("add_c"),
        "{}",
        out.stdout
    );
    assert!(db.table_exists("a") && !db.table_exists("c"));
    let out = db.run(&["migrate", "run", "--source", src]).ok();
    assert!(
        out.stdout.contains("applied 3 add_c") && !out.stdout.contains("create_b"),
        "{}",
        out.stdout
    );
    assert_eq!(db.count("SELECT count(*) FROM c"), 1);
    // Recorded the way the runner records: version, name, epoch milliseconds.
    let rows = db.rows("SELECT version, name FROM _migrations ORDER BY version");
    let got: Vec<(String, String)> = rows
        .iter()
        .map(|r| (r[0].clone().unwrap(), r[1].clone().unwrap()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("1".into(), "create_a".into()),
            ("2".into(), "create_b".into()),
            ("3".into(), "add_c".into())
        ]
    );
    let now_ms = chrono::Utc::now().timestamp_millis();
    let at = db.count("SELECT applied_at FROM _migrations WHERE version = 3");
    assert!(
        (now_ms - at).abs() < 120_000,
        "applied_at {at} vs now {now_ms}"
    );
    assert_eq!(
        db.count("SELECT applied_at FROM _migrations WHERE version = 2"),
        1700000000000
    );
    // Checksums beside: the runner's migration adopted, ours recorded.
    assert_eq!(db.count("SELECT count(*) FROM cutover_d1_checksums"), 3);
    assert!(!db.table_exists("_sqlx_migrations"));
    let out = db.run(&["migrate", "run", "--source", src]).ok();
    assert!(out.stdout.contains("nothing to do"), "{}", out.stdout);

    // An applied file that changed stops `run`, naming it.
    write(
        &dir.join("0001_create_a.sql"),
        "CREATE TABLE a (id INTEGER PRIMARY KEY, name TEXT, extra INTEGER);\n",
    );
    let out = db.run(&["migrate", "run", "--source", src]);
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stderr
            .contains("migration 0001_create_a.sql was applied, but the file changed since"),
        "{}",
        out.stderr
    );
    let out = db.run(&["migrate", "info", "--source", src]).ok();
    assert!(
        line("1", &out.stdout).contains("FILE CHANGED"),
        "{}",
        out.stdout
    );
    write(
        &dir.join("0001_create_a.sql"),
        "CREATE TABLE a (id INTEGER PRIMARY KEY, name TEXT);\n",
    );

    // revert --target-version 1 needs 3's rollback file: refused, naming it, nothing reverted.
    let out = db.run(&[
        "migrate",
        "revert",
        "--source",
        src,
        "--target-version",
        "1",
    ]);
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains(
            "cannot revert migration 0003_add_c.sql: its rollback file 0003_add_c.rollback.sql is missing"
        ),
        "{}",
        out.stderr
    );
    assert!(db.table_exists("b") && db.table_exists("c"));
    assert_eq!(db.count("SELECT count(*) FROM _migrations"), 3);

    // With it: the dry run lists 3 then 2; the revert drops them and forgets them.
    write(&dir.join("0003_add_c.rollback.sql"), "DROP TABLE c;\n");
    let out = db
        .run(&[
            "migrate",
            "revert",
            "--source",
            src,
            "--target-version",
            "1",
            "--dry-run",
        ])
        .ok();
    let (r3, r2) = (
        out.stdout.find("would revert 3 add_c"),
        out.stdout.find("would revert 2 create_b"),
    );
    assert!(r3.is_some() && r2.is_some() && r3 < r2, "{}", out.stdout);
    assert!(db.table_exists("c"));
    let out = db
        .run(&[
            "migrate",
            "revert",
            "--source",
            src,
            "--target-version",
            "1",
        ])
        .ok();
    assert!(
        out.stdout.contains("reverted 3 add_c") && out.stdout.contains("reverted 2 create_b"),
        "{}",
        out.stdout
    );
    assert!(db.table_exists("a") && !db.table_exists("b") && !db.table_exists("c"));
    assert_eq!(db.count("SELECT count(*) FROM _migrations"), 1);
    assert_eq!(db.count("SELECT count(*) FROM cutover_d1_checksums"), 1);
    // --json says which layout was read.
    let out = db.run(&["migrate", "info", "--source", src, "--json"]).ok();
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["layout"], "d1");
    assert_eq!(v["entries"][1]["state"], "pending");
    // The same folder read as sqlx's layout is a different history (explicit choice).
    let out = db.run(&[
        "migrate", "info", "--source", src, "--layout", "sqlx", "--json",
    ]);
    assert!(!out.stdout.contains("\"layout\": \"d1\""), "{}", out.stdout);
}

crate::on_all_targets!(a_d1_folder_taken_over_from_the_old_runner_on, |db| {
    a_d1_folder_taken_over_from_the_old_runner(db)
});
