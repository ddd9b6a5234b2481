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
    setup_n(db, extra_source, N)
}

fn setup_n(db: &TestDb, extra_source: &str, n: i64) -> PathBuf {
    db.exec(&format!(
        "CREATE TABLE legacy_items (id INTEGER PRIMARY KEY, title VARCHAR(100) NOT NULL, n INTEGER, updated_at {} {})",
        ts_type(db.kind),
        if extra_source.contains("watermark_nulls") { "" } else { "NOT NULL" }
    ));
    let rows: Vec<String> = (1..=n)
        .map(|i| format!("({i}, 'item {i}', {}, '{}')", i * 7, stamp(i)))
        .collect();
    for chunk in rows.chunks(2000) {
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
    assert_eq!(read_count(&second.stdout), 20 + 10 + 1, "{}", second.stdout);
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

/// `legacy_items` plus a `tags` column ("a,b,c") that a child table loads one
/// row per tag; both tables carry deletions over.
fn setup_deletes(db: &TestDb) -> PathBuf {
    let mapping = setup(db, "");
    db.exec("ALTER TABLE legacy_items ADD COLUMN tags VARCHAR(100)");
    db.exec("UPDATE legacy_items SET tags = 'red,green,blue'");
    let d = db.dir();
    write(
        &d.join("schema/20260101000001_tags.sql"),
        "CREATE TABLE item_tags (item_id INTEGER NOT NULL, tag VARCHAR(20) NOT NULL, PRIMARY KEY (item_id, tag));",
    );
    let text = std::fs::read_to_string(&mapping).unwrap();
    write(
        &mapping,
        &format!(
            "{}deletes = \"delete\"\nmax_deletes = \"1%\"\n\n[[tables]]\ntable = \"item_tags\"\nkey = [\"item_id\", \"tag\"]\nfor_each = \"value.tags | split(',')\"\ndeletes = \"delete\"\nmax_deletes = 100\ncolumns.item_id = \"value.id\"\ncolumns.tag = \"item\"\n",
            // The items table ends the file: its deletion settings follow its columns.
            text
        ),
    );
    mapping
}

fn tags_as_source(db: &TestDb) -> Vec<(String, String)> {
    let mut want: Vec<(String, String)> = db
        .rows("SELECT id, tags FROM legacy_items")
        .into_iter()
        .flat_map(|r| {
            let id = r[0].clone().unwrap_or_default();
            r[1].clone()
                .unwrap_or_default()
                .split(',')
                .map(|t| (id.clone(), t.to_string()))
                .collect::<Vec<_>>()
        })
        .collect();
    want.sort();
    want
}

fn tags_in_target(db: &TestDb) -> Vec<(String, String)> {
    let mut got: Vec<(String, String)> = db
        .rows("SELECT item_id, tag FROM item_tags")
        .into_iter()
        .map(|r| {
            (
                r[0].clone().unwrap_or_default(),
                r[1].clone().unwrap_or_default(),
            )
        })
        .collect();
    got.sort();
    got
}

crate::on_all_targets!(delta_pass_carries_deletions_over, |db| {
    let mapping = setup_deletes(db);
    let m = mapping.to_str().unwrap();
    db.run(&["run", m]).ok();
    assert_eq!(db.count("SELECT count(*) FROM item_tags"), 3 * N);
    // A row the mapping never wrote: never deleted.
    db.exec("INSERT INTO items VALUES (99999, 'written by hand', 0)");

    // Three records vanish, one loses an element of its array.
    db.exec("DELETE FROM legacy_items WHERE id IN (5, 6, 7)");
    db.exec(&format!(
        "UPDATE legacy_items SET tags = 'red,blue', updated_at = '{}' WHERE id = 10",
        stamp(N + 50)
    ));
    let out = db.run(&["run", m]).ok();
    assert!(out.stdout.contains("delta pass"), "{}", out.stdout);
    // Row 10 and the row at the previous high-water mark (read again: the lower
    // bound is inclusive).
    assert_eq!(read_count(&out.stdout), 2, "{}", out.stdout);
    assert!(
        out.stdout.contains("deleted 3 rows of items"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("deleted 10 rows of item_tags"),
        "{}",
        out.stdout
    );
    let mut want = db.rows("SELECT id, title, n FROM legacy_items ORDER BY id");
    want.push(vec![
        Some("99999".into()),
        Some("written by hand".into()),
        Some("0".into()),
    ]);
    assert_eq!(db.rows("SELECT id, title, n FROM items ORDER BY id"), want);
    assert_eq!(tags_in_target(db), tags_as_source(db));
    let mut deleted = db.rows("SELECT table_name, rows_deleted FROM cutover_run_deletes");
    deleted.sort();
    assert_eq!(
        deleted,
        vec![
            vec![Some("item_tags".into()), Some("10".into())],
            vec![Some("items".into()), Some("3".into())],
        ]
    );

    let status = db.run(&["status", "--json"]).ok();
    let doc: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    let runs = doc["runs"].as_array().unwrap();
    let run2 = runs.iter().find(|r| r["id"] == 2).unwrap();
    assert_eq!(run2["pass"]["kind"], "delta", "{run2}");
    assert_eq!(run2["pass"]["watermark"], "updated_at");
    assert_eq!(run2["rows_deleted"], 13, "{run2}");
    let items = run2["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["table_name"] == "items")
        .unwrap();
    assert_eq!(items["rows_deleted"], 3, "{run2}");
    let run1 = runs.iter().find(|r| r["id"] == 1).unwrap();
    assert_eq!(run1["pass"]["kind"], "full", "{run1}");
    let text = db.run(&["status"]).ok();
    assert!(
        text.stdout.contains("run 2: delta pass over updated_at"),
        "{}",
        text.stdout
    );
    assert!(text.stdout.contains("items 3 deleted"), "{}", text.stdout);

    // A mass deletion (30 % of the rows) is refused and deletes nothing.
    db.exec("DELETE FROM legacy_items WHERE id % 10 < 3");
    let left = db.count("SELECT count(*) FROM legacy_items");
    let refused = db.run(&["run", m]);
    assert_eq!(refused.code, 1, "{}\n{}", refused.stdout, refused.stderr);
    assert!(
        refused.stderr.contains("would delete"),
        "{}",
        refused.stderr
    );
    assert!(
        refused.stderr.contains("--allow-deletes"),
        "{}",
        refused.stderr
    );
    assert_eq!(db.count("SELECT count(*) FROM items"), N - 3 + 1);
    let last = db.rows("SELECT status FROM cutover_runs ORDER BY id DESC LIMIT 1");
    assert_eq!(last[0][0].as_deref(), Some("failed"));
    // Allowed: the next run finishes the pass and deletes them.
    let allowed = db.run(&["run", m, "--allow-deletes", "5000"]).ok();
    assert!(allowed.stdout.contains("deleted"), "{}", allowed.stdout);
    assert_eq!(db.count("SELECT count(*) FROM items"), left + 1);
    assert_eq!(tags_in_target(db), tags_as_source(db));
});

crate::on_all_targets!(dump_passes_delete_and_soft_delete, |db| {
    let d = db.dir();
    let dump = |ids: &[i64], tags: &dyn Fn(i64) -> &'static str| {
        let lines: Vec<String> = ids
            .iter()
            .map(|i| {
                format!(
                    r#"{{"key":"k{i}","value":{{"id":{i},"name":"n{i}","tags":{}}}}}"#,
                    tags(*i)
                )
            })
            .collect();
        write(&d.join("dump.jsonl"), &(lines.join("\n") + "\n"));
    };
    write(
        &d.join("schema/20260101000000_t.sql"),
        "CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT NOT NULL, deleted_at VARCHAR(40));
         CREATE TABLE people_tags (person_id INTEGER NOT NULL, tag VARCHAR(20) NOT NULL, PRIMARY KEY (person_id, tag));",
    );
    let mapping = d.join("people.toml");
    write(
        &mapping,
        "name = \"people\"\nschema = \"schema\"\n[source]\nkind = \"kv\"\npath = \"dump.jsonl\"\n\
         [[tables]]\ntable = \"people\"\nkey = [\"id\"]\ndeletes = \"soft\"\nsoft_delete = { column = \"deleted_at\", value = \"gone\" }\n\
         columns.id = \"value.id\"\ncolumns.name = \"value.name\"\n\
         [[tables]]\ntable = \"people_tags\"\nkey = [\"person_id\", \"tag\"]\nfor_each = \"value.tags\"\ndeletes = \"delete\"\n\
         columns.person_id = \"value.id\"\ncolumns.tag = \"item\"\n",
    );
    let m = mapping.to_str().unwrap();
    let all: Vec<i64> = (1..=100).collect();
    dump(&all, &|_| r#"["a","b"]"#);
    db.run(&["run", m]).ok();
    assert_eq!(db.count("SELECT count(*) FROM people_tags"), 200);
    // A newer dump: 5 people gone, person 50 lost tag b.
    let newer: Vec<i64> = (1..=100).filter(|i| !(20..25).contains(i)).collect();
    dump(&newer, &|i| {
        if i == 50 {
            r#"["a"]"#
        } else {
            r#"["a","b"]"#
        }
    });
    let dry = db.run(&["run", m, "--dry-run"]).ok();
    assert!(
        dry.stdout.contains("would delete 5 rows of people "),
        "{}",
        dry.stdout
    );
    assert!(
        dry.stdout.contains("would delete 11 rows of people_tags"),
        "{}",
        dry.stdout
    );
    assert_eq!(db.count("SELECT count(*) FROM people_tags"), 200);
    assert_eq!(
        db.count("SELECT count(*) FROM people WHERE deleted_at IS NOT NULL"),
        0
    );
    let out = db.run(&["run", m]).ok();
    assert!(
        out.stdout.contains("deleted 5 rows of people"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("deleted 11 rows of people_tags"),
        "{}",
        out.stdout
    );
    assert_eq!(db.count("SELECT count(*) FROM people"), 100);
    assert_eq!(
        db.rows("SELECT id FROM people WHERE deleted_at = 'gone' ORDER BY id"),
        (20..25)
            .map(|i| vec![Some(i.to_string())])
            .collect::<Vec<_>>()
    );
    assert_eq!(db.count("SELECT count(*) FROM people_tags"), 200 - 10 - 1);
    assert_eq!(
        db.count("SELECT count(*) FROM people_tags WHERE person_id = 50"),
        1
    );
    // The same dump again deletes nothing more.
    let again = db.run(&["run", m]).ok();
    assert!(!again.stdout.contains("deleted"), "{}", again.stdout);
    assert_eq!(db.count("SELECT count(*) FROM people_tags"), 189);
});

fn checkpoint(db: &TestDb) -> (i64, i64) {
    let r = db
        .rows("SELECT run_id, records_committed FROM cutover_checkpoints WHERE mapping = 'items'");
    let n = |i: usize| -> i64 {
        r.first()
            .and_then(|r| r[i].as_deref())
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
    };
    (n(0), n(1))
}

crate::on_all_targets!(killed_delta_pass_resumes_in_its_window, |db| {
    const BIG: i64 = 60_000;
    let mapping = setup_n(db, "", BIG);
    let m = mapping.to_str().unwrap();
    db.run(&["run", m, "--batch-size", "5000"]).ok();
    // Every row changes: the delta pass is long enough to be killed half way.
    db.exec(&format!(
        "UPDATE legacy_items SET n = n + 1, updated_at = '{}'",
        stamp(BIG + 10)
    ));
    let mut child = db.spawn(&["run", m, "--batch-size", "200", "--commit-every", "200"]);
    crate::it::util::wait_for(120, "the delta pass to commit some batches", || {
        if let Some(status) = child.try_wait().expect("try_wait") {
            panic!("the delta pass ended ({status}) before it was killed: make the source bigger");
        }
        let (run, n) = checkpoint(db);
        run == 2 && n >= 2_000
    });
    child.kill().expect("kill -9");
    child.wait().expect("wait");
    let (_, at_kill) = checkpoint(db);
    assert!(at_kill > 0 && at_kill < BIG, "killed at {at_kill} of {BIG}");
    // New rows arrive after the kill: the resumed pass keeps its window and
    // leaves them for the next pass.
    db.exec(&format!(
        "INSERT INTO legacy_items VALUES ({}, 'late', 1, '{}')",
        BIG + 1,
        stamp(BIG + 20)
    ));
    let out = db.run(&["run", m, "--batch-size", "5000"]).ok();
    assert!(out.stdout.contains("resumed from run 2"), "{}", out.stdout);
    assert!(out.stdout.contains("delta pass"), "{}", out.stdout);
    assert_eq!(read_count(&out.stdout), BIG - at_kill, "{}", out.stdout);
    let windows =
        db.rows("SELECT low, high FROM cutover_passes WHERE run_id IN (2, 3) ORDER BY run_id");
    assert_eq!(
        windows[0], windows[1],
        "the resumed pass read another window"
    );
    assert_eq!(db.count("SELECT count(*) FROM items WHERE id = 60001"), 0);
    // The next pass reads the late row, and again the rows at the mark the
    // killed pass read up to (every changed row shares it: the lower bound is
    // inclusive); the one after that only the late row, the new mark.
    let next = db.run(&["run", m]).ok();
    assert_eq!(read_count(&next.stdout), BIG + 1, "{}", next.stdout);
    let last = db.run(&["run", m]).ok();
    assert_eq!(read_count(&last.stdout), 1, "{}", last.stdout);
    same_as_source(db);
});
