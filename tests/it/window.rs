//! The cutover window: delta passes over a watermark column read only the rows
//! that changed since the last succeeded pass (boundary rows included), keep the
//! source's precision, refuse a high-water mark that went backwards, and say
//! which kind of pass ran.

use super::util::{write, Kind, TestDb};
use std::path::PathBuf;

const N: i64 = 2000;

fn ts_type(kind: Kind) -> &'static str {
    match kind {
        Kind::Sqlite => "TEXT",
        Kind::Postgres => "TIMESTAMP(6)",
        Kind::Mysql => "DATETIME(6)",
    }
}

fn source_kind(kind: Kind) -> &'static str {
    match kind {
        Kind::Sqlite => "sqlite",
        Kind::Postgres => "postgres",
        Kind::Mysql => "mysql",
    }
}

/// `2026-01-01 00:00:00` plus `s` seconds and `s` microseconds.
fn stamp(s: i64) -> String {
    let t = chrono::NaiveDate::from_ymd_opt(2026, 1, 1)
        .unwrap()
        .and_hms_opt(0, 0, 0)
        .unwrap()
        + chrono::Duration::seconds(s)
        + chrono::Duration::microseconds(s % 1_000_000);
    t.format("%Y-%m-%d %H:%M:%S%.6f").to_string()
}

/// A legacy table `legacy_items` in the test database and a mapping that loads
/// it into `items` with `watermark = "updated_at"`.
fn setup(db: &TestDb, extra_source: &str) -> PathBuf {
    db.exec(&format!(
        "CREATE TABLE legacy_items (id INTEGER PRIMARY KEY, title VARCHAR(100) NOT NULL, n INTEGER, updated_at {} {})",
        ts_type(db.kind),
        if extra_source.contains("watermark_nulls") { "" } else { "NOT NULL" }
    ));
    let rows: Vec<String> = (1..=N)
        .map(|i| format!("({i}, 'item {i}', {}, '{}')", i * 7, stamp(i)))
        .collect();
    for chunk in rows.chunks(500) {
        db.exec(&format!(
            "INSERT INTO legacy_items VALUES {}",
            chunk.join(", ")
        ));
    }
    let d = db.dir();
    write(
        &d.join("schema/20260101000000_items.sql"),
        "CREATE TABLE items (id INTEGER PRIMARY KEY, title VARCHAR(100) NOT NULL, n INTEGER);",
    );
    let mapping = d.join("items.toml");
    write(
        &mapping,
        &format!(
            "name = \"items\"\nschema = \"schema\"\n[source]\nkind = \"{}\"\nurl = \"{}\"\ntable = \"legacy_items\"\nkey = [\"id\"]\nwatermark = \"updated_at\"\n{extra_source}\n\
             [[tables]]\ntable = \"items\"\nkey = [\"id\"]\ncolumns.id = \"value.id\"\ncolumns.title = \"value.title\"\ncolumns.n = \"value.n\"\n",
            source_kind(db.kind),
            db.url
        ),
    );
    mapping
}

fn same_as_source(db: &TestDb) {
    let want = db.rows("SELECT id, title, n FROM legacy_items ORDER BY id");
    let got = db.rows("SELECT id, title, n FROM items ORDER BY id");
    assert_eq!(got.len(), want.len());
    assert_eq!(got, want, "the target differs from the source");
}

fn read_count(stdout: &str) -> i64 {
    let line = stdout
        .lines()
        .find(|l| l.contains("records:"))
        .unwrap_or_else(|| panic!("no records line in {stdout}"));
    line.split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count in {line}"))
}

crate::on_all_targets!(delta_pass_reads_only_what_changed, |db| {
    let mapping = setup(db, "");
    let m = mapping.to_str().unwrap();
    let first = db.run(&["run", m]).ok();
    assert!(first.stdout.contains("full pass"), "{}", first.stdout);
    assert_eq!(read_count(&first.stdout), N);
    same_as_source(db);

    // 1 % of the rows change, new rows arrive, one of them at exactly the
    // previous high-water mark (committed after the first pass had read it).
    db.exec(
        &format!(
        "UPDATE legacy_items SET title = 'changed ' || id, updated_at = '{}' WHERE id % 100 = 0",
        stamp(N + 100)
    )
        .replace(
            "'changed ' || id",
            if db.kind == Kind::Mysql {
                "CONCAT('changed ', id)"
            } else {
                "'changed ' || id"
            },
        ),
    );
    let new: Vec<String> = (1..=10)
        .map(|i| format!("({}, 'new {i}', {i}, '{}')", N + i, stamp(N + 200 + i)))
        .collect();
    db.exec(&format!(
        "INSERT INTO legacy_items VALUES {}",
        new.join(", ")
    ));
    db.exec(&format!(
        "INSERT INTO legacy_items VALUES ({}, 'at the boundary', 0, '{}')",
        N + 500,
        stamp(N)
    ));

    let second = db.run(&["run", m]).ok();
    assert!(
        second.stdout.contains("delta pass: updated_at from"),
        "{}",
        second.stdout
    );
    // 20 changed + 10 new + the newcomer at the boundary (the lower bound is
    // inclusive; row N, which held the mark, is one of the changed rows).
    assert_eq!(
        read_count(&second.stdout),
        20 + 10 + 1,
        "{}",
        second.stdout
    );
    same_as_source(db);

    // Nothing changed since: only the rows at the high-water mark are read again.
    let third = db.run(&["run", m]).ok();
    assert!(third.stdout.contains("delta pass"), "{}", third.stdout);
    assert_eq!(read_count(&third.stdout), 1, "{}", third.stdout);
    same_as_source(db);
    let passes = db.rows("SELECT kind FROM cutover_passes ORDER BY run_id");
    let kinds: Vec<&str> = passes
        .iter()
        .map(|r| r[0].as_deref().unwrap_or(""))
        .collect();
    assert_eq!(kinds, ["full", "delta", "delta"]);

    // The column was reset (a restore): the pass refuses and names --full.
    db.exec(&format!(
        "UPDATE legacy_items SET updated_at = '{}'",
        stamp(-86_400)
    ));
    let back = db.run(&["run", m]);
    assert_eq!(back.code, 1, "{}\n{}", back.stdout, back.stderr);
    assert!(back.stderr.contains("went backwards"), "{}", back.stderr);
    assert!(back.stderr.contains("--full"), "{}", back.stderr);
    let full = db.run(&["run", m, "--full"]).ok();
    assert!(full.stdout.contains("full pass"), "{}", full.stdout);
    assert_eq!(read_count(&full.stdout), N + 11);
    same_as_source(db);
});

crate::on_all_targets!(nullable_watermark_needs_a_choice, |db| {
    let mapping = setup(db, "# watermark_nulls unset");
    db.exec("INSERT INTO legacy_items (id, title, n) VALUES (9001, 'no stamp', 1)");
    let out = db.run(&["run", mapping.to_str().unwrap()]);
    assert_eq!(out.code, 2, "{}\n{}", out.stdout, out.stderr);
    assert!(out.stderr.contains("items.toml:8:"), "{}", out.stderr);
    assert!(out.stderr.contains("watermark_nulls"), "{}", out.stderr);
    assert_eq!(db.count("SELECT count(*) FROM items"), 0);

    // With `include`, rows without a watermark are read on every pass.
    let text = std::fs::read_to_string(&mapping).unwrap();
    write(
        &mapping,
        &text.replace("# watermark_nulls unset", "watermark_nulls = \"include\""),
    );
    db.run(&["run", mapping.to_str().unwrap()]).ok();
    db.exec("UPDATE legacy_items SET title = 'no stamp, changed' WHERE id = 9001");
    let delta = db.run(&["run", mapping.to_str().unwrap()]).ok();
    assert!(delta.stdout.contains("delta pass"), "{}", delta.stdout);
    assert_eq!(read_count(&delta.stdout), 2, "{}", delta.stdout);
    same_as_source(db);
});
