//! Source formats end to end: JSON arrays (streamed), path patterns with
//! captures, gzip, JSON Lines, one-object KV dumps, DynamoDB type fixtures.

use super::util::{write, TestDb};
use std::io::Write;
use std::path::Path;

fn gzip(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let f = std::fs::File::create(path).unwrap();
    let mut gz = flate2::write::GzEncoder::new(f, flate2::Compression::default());
    gz.write_all(text.as_bytes()).unwrap();
    gz.finish().unwrap();
}

const SCHEMA: &str = "CREATE TABLE events (user_id TEXT NOT NULL, seq INTEGER NOT NULL, action TEXT, at TIMESTAMP, source TEXT, PRIMARY KEY (user_id, seq));";

#[test]
fn json_tree_with_captures_arrays_jsonl_and_gzip() {
    let db = TestDb::sqlite();
    let d = db.dir();
    // Three users, three layouts: a plain array, a gzipped array, JSON Lines.
    write(
        &d.join("data/users/u1/log.json"),
        r#"[{"action":"login","at":"2024-01-01T10:00:00Z"}, {"action":"logout","at":"2024-01-01T11:00:00Z"}]"#,
    );
    gzip(
        &d.join("data/users/u2/log.json.gz"),
        "[\n {\"action\": \"login\", \"at\": \"2024-02-01 09:00:00\"}\n]\n",
    );
    write(
        &d.join("data/users/u3/log.jsonl"),
        "{\"action\":\"a\",\"at\":\"2024-03-01\"}\n\n{\"action\":\"b\",\"at\":\"2024-03-02\"}\r\n",
    );
    write(&d.join("data/users/u4/other.json"), "[]");
    write(&d.join("schema/20260101000000_events.sql"), SCHEMA);
    write(
        &d.join("events.toml"),
        r#"name = "events"
schema = "schema"
[source]
kind = "json"
path = "data/users/{user_id}/log.*"
[[tables]]
table = "events"
key = ["user_id", "seq"]
columns.user_id = "file.user_id"
columns.seq = "key | regex_replace('^.*(\\[|line )', '') | regex_replace('\\]$', '') | int"
columns.action = "value.action | upper"
columns.at = "value.at | timestamp"
columns.source = "file.path"
"#,
    );
    let out = db
        .run(&["run", d.join("events.toml").to_str().unwrap()])
        .ok();
    assert!(
        out.stdout
            .contains("5 read, 5 written, 0 filtered, 0 failed"),
        "{}",
        out.stdout
    );
    let rows = db.rows("SELECT user_id, seq, action, at, source FROM events ORDER BY user_id, seq");
    let flat: Vec<Vec<String>> = rows
        .into_iter()
        .map(|r| r.into_iter().map(|c| c.unwrap_or_default()).collect())
        .collect();
    assert_eq!(
        flat,
        vec![
            vec!["u1", "0", "LOGIN", "2024-01-01 10:00:00", "u1/log.json"],
            vec!["u1", "1", "LOGOUT", "2024-01-01 11:00:00", "u1/log.json"],
            vec!["u2", "0", "LOGIN", "2024-02-01 09:00:00", "u2/log.json.gz"],
            vec!["u3", "1", "A", "2024-03-01 00:00:00", "u3/log.jsonl"],
            vec!["u3", "3", "B", "2024-03-02 00:00:00", "u3/log.jsonl"],
        ]
    );
}

#[test]
fn kv_object_dump_and_bad_member() {
    let db = TestDb::sqlite();
    let d = db.dir();
    write(
        &d.join("dump.json"),
        r#"{"user:1": {"name": "Ann", "age": 31}, "user:2": {"name": "Bob", "age": "x"}, "user:3": {"name": "Cy", "age": null}}"#,
    );
    write(
        &d.join("schema/20260101000000_p.sql"),
        "CREATE TABLE people (k VARCHAR(20) PRIMARY KEY, name TEXT NOT NULL, age INTEGER);",
    );
    write(
        &d.join("people.toml"),
        r#"name = "people"
schema = "schema"
[source]
kind = "kv"
format = "object"
path = "dump.json"
[[tables]]
table = "people"
key = ["k"]
columns.k = "key"
columns.name = "value.name"
columns.age = "value.age"
"#,
    );
    let out = db
        .run(&["run", d.join("people.toml").to_str().unwrap()])
        .ok();
    assert!(
        out.stdout
            .contains("3 read, 2 written, 0 filtered, 1 failed"),
        "{}",
        out.stdout
    );
    assert_eq!(
        db.scalar("SELECT name FROM people WHERE k = 'user:1'")
            .as_deref(),
        Some("Ann")
    );
    assert_eq!(db.scalar("SELECT age FROM people WHERE k = 'user:3'"), None);
    let e = &db.rows("SELECT record_key, column_name, message FROM cutover_errors")[0];
    assert_eq!(e[0].as_deref(), Some("user:2"));
    assert_eq!(e[1].as_deref(), Some("people.age"));
    assert_eq!(e[2].as_deref(), Some("'x' is not an integer"));
}

#[test]
fn a_truncated_json_array_fails_the_run_and_keeps_what_loaded() {
    let db = TestDb::sqlite();
    let d = db.dir();
    write(&d.join("a.json"), r#"[{"id": 1}, {"id": 2}, {"id": 3"#);
    write(
        &d.join("schema/20260101000000_t.sql"),
        "CREATE TABLE t (id INTEGER PRIMARY KEY);",
    );
    write(&d.join("t.toml"), "name = \"t\"\nschema = \"schema\"\n[source]\nkind = \"json\"\npath = \"a.json\"\n[[tables]]\ntable = \"t\"\nkey = [\"id\"]\ncolumns.id = \"value.id\"\n");
    let out = db.run(&[
        "run",
        d.join("t.toml").to_str().unwrap(),
        "--batch-size",
        "1",
    ]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("a.json") && out.stderr.contains("unexpected end of file"),
        "{}",
        out.stderr
    );
    assert_eq!(db.count("SELECT count(*) FROM t"), 2);
    assert_eq!(
        db.scalar("SELECT status FROM cutover_runs").as_deref(),
        Some("failed")
    );
}

#[test]
fn dynamodb_type_fixtures_unwrap_to_plain_json() {
    let Some(fixtures) = super::util::dataset("kv/dynamodb-type-fixtures") else {
        return;
    };
    let db = TestDb::sqlite();
    let d = db.dir();
    // Package the hand-written fixture as an export folder with a manifest.
    let lines = std::fs::read_to_string(fixtures.join("users-dynamodb.jsonl")).unwrap();
    gzip(&d.join("export/AWSDynamoDB/1-x/data/part.json.gz"), &lines);
    write(
        &d.join("export/AWSDynamoDB/1-x/manifest-files.json"),
        "{\"itemCount\":2,\"dataFileS3Key\":\"AWSDynamoDB/1-x/data/part.json.gz\"}\n",
    );
    write(&d.join("schema/20260101000000_u.sql"), "CREATE TABLE users (user_id TEXT PRIMARY KEY, doc TEXT NOT NULL, age INTEGER, score NUMERIC);");
    write(
        &d.join("users.toml"),
        "name = \"users\"\nschema = \"schema\"\n[source]\nkind = \"kv\"\nformat = \"dynamodb\"\nkey = [\"userId\"]\npath = \"export/AWSDynamoDB/1-x\"\n\
         [[tables]]\ntable = \"users\"\nkey = [\"user_id\"]\ncolumns.user_id = \"key\"\ncolumns.doc = \"value | json\"\ncolumns.age = \"value.age\"\ncolumns.score = \"value.score | decimal\"\n",
    );
    db.run(&["run", d.join("users.toml").to_str().unwrap()])
        .ok();
    let normal: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixtures.join("users-normal.json")).unwrap())
            .unwrap();
    for want in normal.as_array().unwrap() {
        let id = want["userId"].as_str().unwrap();
        let doc = db
            .scalar(&format!("SELECT doc FROM users WHERE user_id = '{id}'"))
            .unwrap();
        let got: serde_json::Value = serde_json::from_str(&doc).unwrap();
        // Numbers compare by value (N keeps its digits: 95.7 stays 95.7).
        assert_eq!(
            got.to_string().replace(".0,", ","),
            want.to_string().replace(".0,", ","),
            "{id}"
        );
    }
    assert_eq!(
        db.scalar("SELECT age FROM users WHERE user_id = 'user-001'")
            .as_deref(),
        Some("28")
    );
}
