//! `cutover undo`: the target back exactly as it was before a run (rows inserted
//! deleted, rows updated and deleted given back every column, the key map, the
//! error rows and the checkpoint as they were), conflicts refused, resumable.

use super::util::{snapshot, write, Kind, TestDb};
use std::path::PathBuf;

const N: i64 = 300;

fn concat(db: &TestDb, a: &str, b: &str) -> String {
    match db.kind {
        Kind::Mysql => format!("CONCAT({a}, {b})"),
        _ => format!("{a} || {b}"),
    }
}

/// A legacy table, a target `items` that already holds rows before cutover
/// (one the source also has, one it has not), a child table of tags, a key map,
/// and deletions carried over.
fn setup(db: &TestDb, extra: &str) -> PathBuf {
    db.exec(
        "CREATE TABLE legacy_items (id INTEGER PRIMARY KEY, title VARCHAR(100), price DECIMAL(12,4), tags VARCHAR(100))",
    );
    let rows: Vec<String> = (1..=N)
        .map(|i| format!("({i}, 'item {i}', {i}.0125, 'red,green')"))
        .collect();
    db.exec(&format!(
        "INSERT INTO legacy_items VALUES {}",
        rows.join(", ")
    ));
    // A title too long for the target: an error row in the first run.
    db.exec(
        "UPDATE legacy_items SET title = 'a title much longer than twenty characters' WHERE id = 7",
    );
    db.exec(
        "CREATE TABLE items (id INTEGER PRIMARY KEY, title VARCHAR(20) NOT NULL, price DECIMAL(12,4), note VARCHAR(50) DEFAULT 'kept')",
    );
    db.exec("CREATE TABLE item_tags (item_id INTEGER NOT NULL, tag VARCHAR(20) NOT NULL, PRIMARY KEY (item_id, tag))");
    // Before cutover: row 5 (which the load overwrites) and row 9999 (never written).
    db.exec("INSERT INTO items VALUES (5, 'legacy five', 0.5000, 'hand-made'), (9999, 'not in the source', NULL, 'untouched')");
    let mapping = db.dir().join("items.toml");
    write(
        &mapping,
        &format!(
            "name = \"items\"\n{extra}\n[source]\nkind = \"{}\"\nurl = \"{}\"\ntable = \"legacy_items\"\nkey = [\"id\"]\n\n\
             [keymap]\nlegacy = \"value.id\"\nnew = \"value.id | uuid5('items')\"\n\n\
             [[tables]]\ntable = \"items\"\nkey = [\"id\"]\ndeletes = \"delete\"\nmax_deletes = 100\n\
             columns.id = \"value.id\"\ncolumns.title = \"value.title\"\ncolumns.price = \"value.price\"\n\n\
             [[tables]]\ntable = \"item_tags\"\nkey = [\"item_id\", \"tag\"]\nfor_each = \"value.tags | split(',')\"\ndeletes = \"delete\"\nmax_deletes = 100\n\
             columns.item_id = \"value.id\"\ncolumns.tag = \"item\"\n",
            match db.kind {
                Kind::Sqlite => "sqlite",
                Kind::Postgres => "postgres",
                Kind::Mysql => "mysql",
            },
            db.url
        ),
    );
    mapping
}

/// Everything undo puts back: both tables, the key map, the error rows.
fn state(db: &TestDb) -> Vec<Vec<Vec<Option<String>>>> {
    vec![
        snapshot(db, "items"),
        snapshot(db, "item_tags"),
        if db.table_exists("cutover_keymap") {
            let mut k = db.rows("SELECT legacy_key, new_key FROM cutover_keymap");
            k.sort();
            k
        } else {
            Vec::new()
        },
        if db.table_exists("cutover_errors") {
            db.rows("SELECT record_key, stage, resolved_at IS NULL FROM cutover_errors ORDER BY id")
        } else {
            Vec::new()
        },
    ]
}

fn change_source(db: &TestDb) {
    db.exec(&format!(
        "UPDATE legacy_items SET title = {}, price = price + 0.0001 WHERE id % 30 = 0",
        concat(db, "'changed '", "id")
    ));
    // The record that failed now loads: its error row is resolved.
    db.exec("UPDATE legacy_items SET title = 'item 7' WHERE id = 7");
    db.exec("UPDATE legacy_items SET tags = 'red' WHERE id = 11");
    db.exec("DELETE FROM legacy_items WHERE id IN (3, 4)");
    db.exec(&format!(
        "INSERT INTO legacy_items VALUES ({}, 'new one', 1.5, 'blue'), ({}, 'new two', 2.5, 'blue')",
        N + 1,
        N + 2
    ));
}

crate::on_all_targets!(undo_puts_every_table_back_as_it_was, |db| {
    let mapping = setup(db, "");
    let m = mapping.to_str().unwrap();
    let s0 = state(db);

    let first = db.run(&["run", m, "--no-progress"]);
    assert_eq!(first.code, 0, "{}{}", first.stdout, first.stderr);
    let s1 = state(db);
    assert_eq!(
        db.count("SELECT count(*) FROM items"),
        N,
        "the load (record 7 failed) plus row 9999"
    );
    assert_eq!(
        db.scalar("SELECT title FROM items WHERE id = 5").as_deref(),
        Some("item 5")
    );

    change_source(db);
    db.run(&["run", m, "--no-progress"]).ok();
    let s2 = state(db);
    assert_ne!(s1, s2);
    assert_eq!(db.count("SELECT count(*) FROM items WHERE id IN (3, 4)"), 0);

    // --dry-run says what would change and changes nothing.
    let dry = db.run(&["undo", m, "--dry-run"]).ok();
    assert!(dry.stdout.contains("would undo run(s) 2"), "{}", dry.stdout);
    assert!(dry.stdout.contains("items"), "{}", dry.stdout);
    assert_eq!(state(db), s2, "a dry run changed the target");

    // Undo the last run: every table as after run 1, value for value.
    let undo = db.run(&["undo", m]).ok();
    assert!(undo.stdout.contains("undid run(s) 2"), "{}", undo.stdout);
    assert_eq!(
        state(db),
        s1,
        "undo of run 2 did not give back the state after run 1"
    );
    let status = db.run(&["status", "--mapping", "items"]).ok();
    assert!(status.stdout.contains("undone"), "{}", status.stdout);

    // A second undo of the same run changes nothing.
    let again = db.run(&["undo", m, "--run", "2"]).ok();
    assert!(again.stdout.contains("nothing to undo"), "{}", again.stdout);
    assert_eq!(state(db), s1);

    // Undo run 1: as before cutover ran (row 5 has its hand-made values back,
    // row 9999 was never touched), no key map, no error rows.
    db.run(&["undo", m, "--run", "1"]).ok();
    assert_eq!(
        state(db),
        s0,
        "undo of run 1 did not give back the state before it"
    );

    // The next run behaves as the first one did: a full load.
    let rerun = db.run(&["run", m, "--no-progress"]).ok();
    assert!(
        rerun.stdout.contains("300 read, 300 written"),
        "{}",
        rerun.stdout
    );
    assert_eq!(snapshot(db, "items").len() as i64, N + 1);
});

crate::on_all_targets!(undo_refuses_rows_changed_since_unless_forced, |db| {
    let mapping = setup(db, "");
    let m = mapping.to_str().unwrap();
    let s0 = state(db);
    db.run(&["run", m, "--no-progress"]).ok();
    // Someone edits a loaded row by hand after the run.
    db.exec("UPDATE items SET title = 'edited by hand' WHERE id = 42");
    let edited = state(db);
    let refused = db.run(&["undo", m]);
    assert_eq!(refused.code, 1, "{}{}", refused.stdout, refused.stderr);
    assert!(
        refused.stdout.contains("items (42)") && refused.stdout.contains("columns title"),
        "the conflict names the key and the column: {}",
        refused.stdout
    );
    assert!(refused.stdout.contains("--force"), "{}", refused.stdout);
    assert_eq!(state(db), edited, "a refused undo changed the target");

    let forced = db.run(&["undo", m, "--force"]).ok();
    assert!(
        forced.stdout.contains("restored anyway"),
        "{}",
        forced.stdout
    );
    assert_eq!(state(db), s0);
});

#[test]
fn undo_resumes_after_kill_9() {
    let db = TestDb::sqlite();
    db.exec("CREATE TABLE legacy_items (id INTEGER PRIMARY KEY, title TEXT)");
    let rows: Vec<String> = (1..=20_000).map(|i| format!("({i}, 'item {i}')")).collect();
    for c in rows.chunks(5000) {
        db.exec(&format!("INSERT INTO legacy_items VALUES {}", c.join(", ")));
    }
    db.exec("CREATE TABLE items (id INTEGER PRIMARY KEY, title TEXT NOT NULL)");
    db.exec("INSERT INTO items SELECT id, 'old ' || id FROM legacy_items WHERE id % 2 = 0");
    let before = snapshot(&db, "items");
    let mapping = db.dir().join("items.toml");
    write(
        &mapping,
        &format!(
            "name = \"items\"\n[source]\nkind = \"sqlite\"\nurl = \"{}\"\ntable = \"legacy_items\"\nkey = [\"id\"]\n[[tables]]\ntable = \"items\"\nkey = [\"id\"]\ncolumns.id = \"value.id\"\ncolumns.title = \"value.title\"\n",
            db.url
        ),
    );
    let m = mapping.to_str().unwrap();
    db.run(&[
        "run",
        m,
        "--no-progress",
        "--batch-size",
        "20",
        "--commit-every",
        "20",
    ])
    .ok();
    let entries = db.count("SELECT count(*) FROM cutover_journal");
    assert!(entries >= 1000, "one journal entry per batch: {entries}");
    let mut child = db.spawn(&["undo", m]);
    super::util::wait_for(60, "the undo to take back a part of the run", || {
        db.count("SELECT count(*) FROM cutover_journal") < entries - 20
    });
    child.kill().expect("kill -9 the undo");
    let _ = child.wait();
    let left = db.count("SELECT count(*) FROM cutover_journal");
    assert!(
        left > 0,
        "the undo finished before it was killed; nothing was tested"
    );
    let resumed = db.run(&["undo", m]).ok();
    assert!(
        resumed.stdout.contains("finished the undo of run(s) 1"),
        "{}",
        resumed.stdout
    );
    assert_eq!(snapshot(&db, "items"), before);
    assert_eq!(db.count("SELECT count(*) FROM cutover_journal"), 0);
    let again = db.run(&["undo", m]).ok();
    assert!(again.stdout.contains("nothing to undo"), "{}", again.stdout);
    assert_eq!(snapshot(&db, "items"), before);
}

#[test]
fn undo_false_keeps_no_journal_and_undo_refuses_with_the_reason() {
    let db = TestDb::sqlite();
    let mapping = setup(&db, "undo = false");
    let m = mapping.to_str().unwrap();
    db.run(&["run", m, "--no-progress"]).ok();
    assert_eq!(db.count("SELECT count(*) FROM cutover_journal"), 0);
    let before = state(&db);
    let r = db.run(&["undo", m, "--run", "1"]);
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("undo = false"), "{}", r.stderr);
    assert_eq!(state(&db), before);
}

crate::on_all_targets!(undo_of_a_parent_after_its_lookup_child, |db| {
    let parent = setup(db, "");
    db.exec("CREATE TABLE item_refs (id INTEGER PRIMARY KEY, item_uuid VARCHAR(36) NOT NULL)");
    let child = db.dir().join("refs.toml");
    write(
        &child,
        &format!(
            "name = \"refs\"\n[source]\nkind = \"{}\"\nurl = \"{}\"\ntable = \"legacy_items\"\nkey = [\"id\"]\n\
             [[tables]]\ntable = \"item_refs\"\nkey = [\"id\"]\ncolumns.id = \"value.id\"\ncolumns.item_uuid = \"value.id | lookup('items')\"\n",
            match db.kind {
                Kind::Sqlite => "sqlite",
                Kind::Postgres => "postgres",
                Kind::Mysql => "mysql",
            },
            db.url
        ),
    );
    let (p, c) = (parent.to_str().unwrap(), child.to_str().unwrap());
    let all = |db: &TestDb| {
        let mut s = state(db);
        s.push(snapshot(db, "item_refs"));
        s
    };
    let before = all(db);
    db.run(&["run", p, c, "--no-progress"]).ok();
    let loaded = all(db);
    assert_eq!(
        db.count("SELECT count(*) FROM item_refs"),
        N - 1,
        "every record but the failed one found its parent's id"
    );
    // The child first, then its parent.
    db.run(&["undo", c]).ok();
    assert_eq!(db.count("SELECT count(*) FROM item_refs"), 0);
    db.run(&["undo", p]).ok();
    assert_eq!(all(db), before);
    // Both in one command: undone children first (the reverse of the command line).
    db.run(&["run", p, c, "--no-progress"]).ok();
    assert_eq!(
        all(db),
        loaded,
        "the reload after the undo is the same load"
    );
    let both = db.run(&["undo", p, c]).ok();
    let (ci, pi) = (
        both.stdout
            .find("refs  undid")
            .expect("the child was undone"),
        both.stdout
            .find("items  undid")
            .expect("the parent was undone"),
    );
    assert!(
        ci < pi,
        "the child is undone before its parent: {}",
        both.stdout
    );
    assert_eq!(all(db), before);
});
