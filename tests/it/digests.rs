//! Passes over sources without a watermark: a record read exactly as the pass
//! that last wrote it read it is skipped (not transformed, nothing written);
//! what changed is written, what vanished is deleted; `--full`, an emptied
//! table and `undo` make the skipped records be written again.

use super::util::{write, TestDb};
use std::path::{Path, PathBuf};

/// The records a run of one mapping skipped.
fn unchanged(stdout: &str) -> i64 {
    super::util::skipped(stdout).first().copied().unwrap_or(0)
}

fn dump(dir: &Path, records: &[(i64, String, &str)]) {
    let lines: Vec<String> = records
        .iter()
        .map(|(i, name, tags)| {
            format!(r#"{{"key":"k{i}","value":{{"id":"{i}","name":"{name}","tags":{tags}}}}}"#)
        })
        .collect();
    write(&dir.join("dump.jsonl"), &(lines.join("\n") + "\n"));
}

fn setup(db: &TestDb) -> PathBuf {
    let d = db.dir();
    write(
        &d.join("schema/20260101000000_t.sql"),
        "CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
         CREATE TABLE people_tags (person_id INTEGER NOT NULL, tag VARCHAR(20) NOT NULL, PRIMARY KEY (person_id, tag));",
    );
    let mapping = d.join("people.toml");
    write(
        &mapping,
        "name = \"people\"\nschema = \"schema\"\n[source]\nkind = \"kv\"\npath = \"dump.jsonl\"\n\
         [[tables]]\ntable = \"people\"\nkey = [\"id\"]\ndeletes = \"delete\"\n\
         columns.id = \"value.id | int\"\ncolumns.name = \"value.name\"\n\
         [[tables]]\ntable = \"people_tags\"\nkey = [\"person_id\", \"tag\"]\nfor_each = \"value.tags\"\ndeletes = \"delete\"\n\
         columns.person_id = \"value.id | int\"\ncolumns.tag = \"item\"\n",
    );
    mapping
}

fn people(db: &TestDb) -> Vec<Vec<Option<String>>> {
    db.rows("SELECT id, name FROM people ORDER BY id")
}

fn expected(records: &[(i64, String, &str)]) -> Vec<Vec<Option<String>>> {
    let mut v: Vec<(i64, String)> = records.iter().map(|r| (r.0, r.1.clone())).collect();
    v.sort();
    v.into_iter()
        .map(|(i, n)| vec![Some(i.to_string()), Some(n)])
        .collect()
}

crate::on_all_targets!(a_second_pass_writes_only_what_changed, |db| {
    let d = db.dir();
    let mapping = setup(db);
    let m = mapping.to_str().unwrap();
    let mut recs: Vec<(i64, String, &str)> = (1..=100)
        .map(|i| (i, format!("n{i}"), r#"["a","b"]"#))
        .collect();
    dump(d, &recs);
    let first = db.run(&["run", m]).ok();
    assert_eq!(unchanged(&first.stdout), 0, "{}", first.stdout);
    assert_eq!(people(db), expected(&recs));

    // The same dump again: nothing is written. A row changed by hand in the
    // target shows it: the skipped record does not overwrite it...
    db.exec("UPDATE people SET name = 'by hand' WHERE id = 3");
    let again = db.run(&["run", m]).ok();
    assert_eq!(unchanged(&again.stdout), 100, "{}", again.stdout);
    assert!(!again.stdout.contains("deleted"), "{}", again.stdout);
    assert_eq!(
        db.count("SELECT count(*) FROM people WHERE name = 'by hand'"),
        1
    );
    assert_eq!(db.count("SELECT count(*) FROM people_tags"), 200);
    // ...and `--full` writes every record again.
    let full = db.run(&["run", m, "--full"]).ok();
    assert_eq!(unchanged(&full.stdout), 0, "{}", full.stdout);
    assert_eq!(people(db), expected(&recs));

    // A newer dump: 7 renamed, 8 gone, 9 lost tag b, 101 new, 10 fails.
    recs[6].1 = "renamed".into();
    recs[8].2 = r#"["a"]"#;
    recs.retain(|r| r.0 != 8);
    recs.push((101, "n101".into(), r#"["a"]"#));
    let mut lines = recs.clone();
    lines.retain(|r| r.0 != 10);
    dump(d, &lines);
    let body = std::fs::read_to_string(d.join("dump.jsonl")).unwrap();
    write(
        &d.join("dump.jsonl"),
        &format!(
            "{body}{}\n",
            r#"{"key":"k10","value":{"id":"ten","name":"n10","tags":["a","b"]}}"#
        ),
    );
    let newer = db.run(&["run", m]).ok();
    // 100 records: 96 read as before; 7, 9, 101 written; 10 failed.
    assert_eq!(unchanged(&newer.stdout), 96, "{}", newer.stdout);
    assert!(newer.stdout.contains("1 failed"), "{}", newer.stdout);
    assert!(
        newer.stdout.contains("deleted 1 rows of people "),
        "{}",
        newer.stdout
    );
    assert!(
        newer.stdout.contains("deleted 3 rows of people_tags"),
        "{}",
        newer.stdout
    );
    // Record 10 failed: its rows stay as the last good pass wrote them.
    assert_eq!(people(db), expected(&recs));
    assert_eq!(
        db.count("SELECT count(*) FROM people_tags WHERE person_id = 9"),
        1
    );
    assert_eq!(
        db.count("SELECT count(*) FROM people_tags"),
        200 - 2 - 1 + 1
    );
    // A record that failed is read again next time (it has no digest).
    let failing = db.run(&["run", m]).ok();
    assert_eq!(unchanged(&failing.stdout), 99, "{}", failing.stdout);
    assert!(failing.stdout.contains("1 failed"), "{}", failing.stdout);

    // Undo the pass that read the newer dump (and the one after it): the
    // records it wrote are written again by the next pass, and 8 is deleted again.
    let undo = db.run(&["undo", m, "--run", "4"]);
    assert_eq!(undo.code, 0, "{}\n{}", undo.stdout, undo.stderr);
    assert_eq!(db.count("SELECT count(*) FROM people WHERE id = 8"), 1);
    assert_eq!(
        db.count("SELECT count(*) FROM people WHERE name = 'renamed'"),
        0
    );
    let redo = db.run(&["run", m]).ok();
    assert_eq!(unchanged(&redo.stdout), 96, "{}", redo.stdout);
    assert_eq!(people(db), expected(&recs));
    assert_eq!(db.count("SELECT count(*) FROM people_tags"), 198);

    // A table emptied since (a rehearsal target reset): every record is written again.
    db.exec("DELETE FROM people_tags");
    db.exec("DELETE FROM people");
    let reset = db.run(&["run", m]).ok();
    assert_eq!(unchanged(&reset.stdout), 0, "{}", reset.stdout);
    // Record 10 still fails: its rows are not there any more.
    assert_eq!(people(db), expected(&lines));
    assert_eq!(db.count("SELECT count(*) FROM people_tags"), 196);
});

#[test]
fn a_json_tree_file_unchanged_since_the_last_pass_is_not_parsed_again() {
    let db = TestDb::sqlite();
    let d = db.dir();
    write(
        &d.join("schema/20260101000000_t.sql"),
        "CREATE TABLE docs (season TEXT NOT NULL, name TEXT NOT NULL, title TEXT, PRIMARY KEY (season, name));",
    );
    for (season, name) in [("2024", "a"), ("2024", "b"), ("2025", "a")] {
        write(
            &d.join(format!("tree/{season}/{name}.json")),
            &format!(r#"{{"title": "{season} {name}"}}"#),
        );
    }
    let mapping = d.join("docs.toml");
    write(
        &mapping,
        "name = \"docs\"\nschema = \"schema\"\n[source]\nkind = \"json\"\npath = \"tree/{season}/{name}.json\"\n\
         [[tables]]\ntable = \"docs\"\nkey = [\"season\", \"name\"]\ndeletes = \"delete\"\nmax_deletes = 5\n\
         columns.season = \"file.season\"\ncolumns.name = \"file.name\"\ncolumns.title = \"value.title\"\n",
    );
    let m = mapping.to_str().unwrap();
    db.run(&["run", m]).ok();
    assert_eq!(db.count("SELECT count(*) FROM docs"), 3);
    // One file changed, one removed, one added; the unchanged file is skipped
    // before it is parsed.
    write(&d.join("tree/2024/a.json"), r#"{"title": "changed"}"#);
    std::fs::remove_file(d.join("tree/2025/a.json")).unwrap();
    write(&d.join("tree/2026/c.json"), r#"{"title": "2026 c"}"#);
    let out = db.run(&["run", m]).ok();
    assert_eq!(unchanged(&out.stdout), 1, "{}", out.stdout);
    assert!(
        out.stdout.contains("deleted 1 rows of docs"),
        "{}",
        out.stdout
    );
    assert_eq!(
        db.rows("SELECT season, name, title FROM docs ORDER BY season, name"),
        vec![
            vec![
                Some("2024".into()),
                Some("a".into()),
                Some("changed".into())
            ],
            vec![Some("2024".into()), Some("b".into()), Some("2024 b".into())],
            vec![Some("2026".into()), Some("c".into()), Some("2026 c".into())],
        ]
    );
    // A file copied to another place is another record: its path is part of it.
    std::fs::copy(d.join("tree/2024/b.json"), d.join("tree/2027/b.json"))
        .or_else(|_| {
            std::fs::create_dir_all(d.join("tree/2027"))?;
            std::fs::copy(d.join("tree/2024/b.json"), d.join("tree/2027/b.json"))
        })
        .unwrap();
    let copied = db.run(&["run", m]).ok();
    assert_eq!(unchanged(&copied.stdout), 3, "{}", copied.stdout);
    assert_eq!(
        db.count("SELECT count(*) FROM docs WHERE season = '2027'"),
        1
    );
}

#[test]
fn skip_unchanged_false_keeps_no_digest_and_sends_every_record() {
    let db = TestDb::sqlite();
    let mapping = setup(&db);
    let text = std::fs::read_to_string(&mapping).unwrap();
    write(
        &mapping,
        &text.replacen("schema = ", "skip_unchanged = false\nschema = ", 1),
    );
    let m = mapping.to_str().unwrap();
    let recs: Vec<(i64, String, &str)> =
        (1..=10).map(|i| (i, format!("n{i}"), r#"["a"]"#)).collect();
    dump(db.dir(), &recs);
    db.run(&["run", m]).ok();
    let again = db.run(&["run", m]).ok();
    assert_eq!(unchanged(&again.stdout), 0, "{}", again.stdout);
    // Every row sent again and found equal: 10 people + 10 tags.
    assert_eq!(
        db.count("SELECT rows_unchanged FROM cutover_runs WHERE id = 2"),
        20
    );
    assert_eq!(db.count("SELECT count(*) FROM cutover_digests"), 0);
    assert_eq!(people(&db), expected(&recs));
}

#[test]
fn a_mapping_pointed_at_a_newer_dump_file_skips_what_it_read_before() {
    let db = TestDb::sqlite();
    let mapping = setup(&db);
    let m = mapping.to_str().unwrap();
    let recs: Vec<(i64, String, &str)> =
        (1..=10).map(|i| (i, format!("n{i}"), r#"["a"]"#)).collect();
    dump(db.dir(), &recs);
    db.run(&["run", m]).ok();
    // The operator takes a newer dump under another name and edits the path.
    std::fs::rename(db.dir().join("dump.jsonl"), db.dir().join("dump-2.jsonl")).unwrap();
    let text = std::fs::read_to_string(&mapping).unwrap();
    write(&mapping, &text.replace("dump.jsonl", "dump-2.jsonl"));
    let out = db.run(&["run", m]).ok();
    assert_eq!(unchanged(&out.stdout), 10, "{}", out.stdout);
    assert_eq!(people(&db), expected(&recs));
    // A mapping that reads the file's path makes the path part of each record.
    let text = std::fs::read_to_string(&mapping).unwrap();
    write(
        &mapping,
        &text.replace(
            "columns.name = \"value.name\"",
            "columns.name = \"file.path\"",
        ),
    );
    db.run(&["run", m]).ok();
    std::fs::rename(db.dir().join("dump-2.jsonl"), db.dir().join("dump-3.jsonl")).unwrap();
    let text = std::fs::read_to_string(&mapping).unwrap();
    write(&mapping, &text.replace("dump-2.jsonl", "dump-3.jsonl"));
    let out = db.run(&["run", m]).ok();
    assert_eq!(unchanged(&out.stdout), 0, "{}", out.stdout);
    assert_eq!(
        db.count("SELECT count(*) FROM people WHERE name = 'dump-3.jsonl'"),
        10
    );
}
