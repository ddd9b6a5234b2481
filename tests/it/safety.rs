//! The operator's safety commands: migrate, run --dry-run, verify, retry.

use super::util::{write, TestDb};

fn migrations_apply_revert_and_catch_an_edit(db: &TestDb) {
    let dir = db.dir().join("sql");
    write(
        &dir.join("1_create_a.sql"),
        "CREATE TABLE a (id INTEGER PRIMARY KEY);\n",
    );
    write(
        &dir.join("2_create_b.up.sql"),
        "CREATE TABLE b (id INTEGER PRIMARY KEY, n INTEGER);\n",
    );
    write(&dir.join("2_create_b.down.sql"), "DROP TABLE b;\n");
    let src = dir.to_str().unwrap();
    // Dry run: lists and prints, changes nothing.
    let out = db
        .run(&["migrate", "run", "--source", src, "--dry-run"])
        .ok();
    assert!(
        out.stdout.contains("would apply 1 create a")
            && out.stdout.contains("would apply 2 create b"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("CREATE TABLE b (id INTEGER PRIMARY KEY, n INTEGER);"),
        "{}",
        out.stdout
    );
    assert!(!db.table_exists("a") && !db.table_exists("_sqlx_migrations"));
    // Up to a version, then the rest.
    let out = db
        .run(&["migrate", "run", "--source", src, "--target-version", "1"])
        .ok();
    assert!(
        out.stdout.contains("applied 1 create a") && !out.stdout.contains("create b"),
        "{}",
        out.stdout
    );
    assert!(db.table_exists("a") && !db.table_exists("b"));
    let out = db.run(&["migrate", "info", "--source", src]).ok();
    assert!(
        out.stdout
            .lines()
            .any(|l| l.starts_with("1 ") && l.contains("applied")),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .lines()
            .any(|l| l.starts_with("2 ") && l.contains("pending")),
        "{}",
        out.stdout
    );
    db.run(&["migrate", "run", "--source", src]).ok();
    assert!(db.table_exists("b"));
    // Revert the latest, then apply it again.
    let out = db.run(&["migrate", "revert", "--source", src]).ok();
    assert!(out.stdout.contains("reverted 2 create b"), "{}", out.stdout);
    assert!(!db.table_exists("b") && db.table_exists("a"));
    db.run(&["migrate", "run", "--source", src]).ok();
    assert!(db.table_exists("b"));
    // An applied migration whose file was edited stops `run`, naming the file.
    write(
        &dir.join("1_create_a.sql"),
        "CREATE TABLE a (id INTEGER PRIMARY KEY, extra INTEGER);\n",
    );
    write(
        &dir.join("3_create_c.sql"),
        "CREATE TABLE c (id INTEGER PRIMARY KEY);\n",
    );
    let out = db.run(&["migrate", "run", "--source", src]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains(
            "migration 1_create_a.sql was applied, but the file changed since (checksum mismatch)"
        ),
        "{}",
        out.stderr
    );
    assert!(!db.table_exists("c"), "nothing applied after the mismatch");
    let out = db.run(&["migrate", "info", "--source", src]).ok();
    assert!(out.stdout.contains("FILE CHANGED"), "{}", out.stdout);
}

crate::on_all_targets!(migrations, |db| migrations_apply_revert_and_catch_an_edit(
    db
));

#[test]
fn sqlite_backup_before_migrating() {
    let db = TestDb::sqlite();
    let dir = db.dir().join("sql");
    write(
        &dir.join("1_create_a.sql"),
        "CREATE TABLE a (id INTEGER PRIMARY KEY);\n",
    );
    let backup = db.dir().join("before.db");
    let out = db
        .run(&[
            "migrate",
            "run",
            "--source",
            dir.to_str().unwrap(),
            "--backup",
            backup.to_str().unwrap(),
        ])
        .ok();
    assert!(out.stdout.contains("backup written to"), "{}", out.stdout);
    assert!(backup.exists());
}

fn dry_run_writes_nothing_and_reports_every_failure(db: &TestDb) {
    // The schema exists (a dry run does not apply migrations either).
    db.run(&["migrate", "run", "--source", "sql/forge"]).ok();
    let out = db
        .run(&["run", "mappings/forge_signatures_dirty.toml", "--dry-run"])
        .ok();
    assert!(out.stdout.contains("dry run"), "{}", out.stdout);
    assert!(
        out.stdout
            .contains("55 read, 46 written, 0 filtered, 9 failed"),
        "{}",
        out.stdout
    );
    // Every one of the nine bad records, grouped by reason, with its key.
    for reason in [
        "1 × read: invalid JSON: EOF while parsing a string at line 1 column 246  (e.g. signature-dirty.jsonl:line 7)",
        "1 × read: invalid JSON: expected value at line 1 column 1  (e.g. signature-dirty.jsonl:line 4)",
        "1 × read: the line is JSON but not a {\"key\": ..., \"value\": ...} pair  (e.g. signature-dirty.jsonl:line 11)",
        "1 × transform: contract.created_at: <value> is not epoch milliseconds  (e.g. signature-570f58425537ecd59dd8b22426473d2f28179c2c7cf461d1156363b921f3905e)",
        "1 × transform: contract.hash: required value value.hash is missing or null  (e.g. signature-8ef389f8b47397c84f5df9a80757135d419484cc5a4c2eb6998c7525222db114)",
        "1 × transform: contract.page_id: <value> is not an integer  (e.g. signature-a248fc02e28e3836a0bf9af755c8cc255b34d390bb588327d6fb2075792b2f8d)",
        "1 × transform: signature.account_id: required value item.accountId is missing or null  (e.g. signature-d137ce191c21dcfe4bc8d802e6d2001dd69b26a90f78f4d3ab196460b243fd55)",
        "1 × transform: signature.signed_at: <value> is not epoch milliseconds  (e.g. signature-7a2e19fa3cd7bfcf9c397fb71258cde7a3a560e9318a3e30abdcae550925506c)",
    ] {
        assert!(out.stdout.contains(reason), "{reason}\n{}", out.stdout);
    }
    assert!(
        out.stdout
            .contains("1 × transform: signature.for_each: for_each expects an array")
            && out.stdout.contains(
                "(e.g. signature-118b724e21c37369eb248fd966cfbf4937425eadf8bde65cf183098052fbcec6)"
            ),
        "{}",
        out.stdout
    );
    assert_eq!(
        out.stdout
            .lines()
            .filter(|l| l.starts_with("    1 × "))
            .count(),
        9,
        "{}",
        out.stdout
    );
    // The duplicate key of the dirty file is reported.
    assert!(
        out.stdout.contains("contract: 1 rows repeat a key"),
        "{}",
        out.stdout
    );
    assert_eq!(db.count("SELECT count(*) FROM contract"), 0);
    assert!(
        !db.table_exists("cutover_runs") && !db.table_exists("cutover_errors"),
        "no tracking tables"
    );
    // Exit code as a real run.
    let out = db.run(&[
        "run",
        "mappings/forge_signatures_dirty.toml",
        "--dry-run",
        "--max-errors",
        "2",
    ]);
    assert_eq!(out.code, 3);
}

crate::on_all_targets!(dry_run, |db| {
    dry_run_writes_nothing_and_reports_every_failure(db)
});

fn verify_passes_then_names_what_changed(db: &TestDb) {
    db.run(&["run", "mappings/forge_signatures.toml"]).ok();
    let out = db.run(&["verify", "mappings/forge_signatures.toml"]);
    assert_eq!(out.code, 0, "{}", out.stdout);
    assert!(
        out.stdout.contains("forge_signatures  PASSED"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .lines()
            .any(|l| l.trim_start().starts_with("contract   500       500")),
        "{}",
        out.stdout
    );
    // Delete two rows, alter one.
    db.exec("DELETE FROM contract WHERE hash IN ('003862d2b96b0993aa436036c94e1aaf26550c1f67107396ff078c459c0403c7', '884fd22a69d97adc286dc2bf7a3d80c2eb7388056b7b8a49d5460ae566907372')");
    db.exec("UPDATE contract SET page_id = 42 WHERE hash = 'ff6f2a8a6d5f059967e81c1cb416438385f13d04640e0d6bb1fd193c88c5e5c4'");
    let out = db.run(&["verify", "mappings/forge_signatures.toml"]);
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert!(
        out.stdout.contains("forge_signatures  FAILED"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("key (003862d2b96b0993aa436036c94e1aaf26550c1f67107396ff078c459c0403c7) record signature-003862d2b96b0993aa436036c94e1aaf26550c1f67107396ff078c459c0403c7: missing"), "{}", out.stdout);
    assert!(out.stdout.contains("key (ff6f2a8a6d5f059967e81c1cb416438385f13d04640e0d6bb1fd193c88c5e5c4) record signature-ff6f2a8a6d5f059967e81c1cb416438385f13d04640e0d6bb1fd193c88c5e5c4: different in page_id"), "{}", out.stdout);
    let out = db.run(&["verify", "mappings/forge_signatures.toml", "--json"]);
    let v: serde_json::Value = serde_json::from_str(out.stdout.trim()).unwrap();
    assert_eq!(v["tables"][0]["missing"], 2);
    assert_eq!(v["tables"][0]["different"], 1);
    assert_eq!(v["checks"][0]["verdict"], "FAILED");
    // A sample says so.
    let out = db.run(&["verify", "mappings/forge_signatures.toml", "--sample", "10"]);
    assert!(out.stdout.contains("10 (sample)"), "{}", out.stdout);
}

crate::on_all_targets!(verify, |db| verify_passes_then_names_what_changed(db));

/// A key that comes back in a later record (and a later batch) is compared as
/// the load left it: the last occurrence with `update`, the first with `ignore`.
fn verify_follows_repeated_keys_across_batches(db: &TestDb) {
    let d = db.dir();
    write(
        &d.join("schema/20260101000000_t.sql"),
        "CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER NOT NULL); CREATE TABLE u (id INTEGER PRIMARY KEY, n INTEGER NOT NULL);",
    );
    let data = "{\"key\":\"a\",\"value\":{\"id\":1,\"n\":1}}\n{\"key\":\"b\",\"value\":{\"id\":2,\"n\":2}}\n{\"key\":\"a2\",\"value\":{\"id\":1,\"n\":10}}\n{\"key\":\"c\",\"value\":{\"id\":3,\"n\":3}}\n";
    write(&d.join("data.jsonl"), data);
    let mapping = d.join("t.toml");
    write(&mapping, "name = \"t\"\nschema = \"schema\"\n[source]\nkind = \"kv\"\npath = \"data.jsonl\"\n[[tables]]\ntable = \"t\"\nkey = [\"id\"]\ncolumns.id = \"value.id\"\ncolumns.n = \"value.n | int\"\n[[tables]]\ntable = \"u\"\nkey = [\"id\"]\non_conflict = \"ignore\"\ncolumns.id = \"value.id\"\ncolumns.n = \"value.n | int\"\n");
    let m = mapping.to_str().unwrap();
    db.run(&["run", m, "--batch-size", "1"]).ok();
    assert_eq!(db.count("SELECT n FROM t WHERE id = 1"), 10);
    assert_eq!(db.count("SELECT n FROM u WHERE id = 1"), 1);
    for args in [
        &["--batch-size", "1"][..],
        &["--sample", "2", "--batch-size", "1"][..],
    ] {
        let out = db.run(&[&["verify", m][..], args].concat());
        assert_eq!(out.code, 0, "{}", out.stdout);
        assert!(out.stdout.contains("t  PASSED"), "{}", out.stdout);
        assert!(
            !out.stdout.contains("different in") && !out.stdout.contains(": missing"),
            "{}",
            out.stdout
        );
    }
    // A row no record produces: a warning, with the count in `extra`.
    db.exec("INSERT INTO t (id, n) VALUES (99, 99)");
    let out = db.run(&["verify", m, "--json"]);
    assert_eq!(out.code, 0, "{}", out.stdout);
    let v: serde_json::Value = serde_json::from_str(out.stdout.trim()).unwrap();
    assert_eq!(v["verdict"], "WARNING");
    assert_eq!(v["tables"][0]["expected"], 3);
    assert_eq!(v["tables"][0]["found"], 4);
    assert_eq!(v["tables"][0]["extra"], 1);
    assert_eq!(v["tables"][1]["verdict"], "PASSED");
    // A record that fails today but has no error row is not explained: the
    // target holds what an earlier mapping or source made of it.
    write(
        &d.join("data.jsonl"),
        &data.replace("\"n\":3", "\"n\":\"x\""),
    );
    let out = db.run(&["verify", m]);
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert!(
        out.stdout
            .contains("t  FAILED  (4 records read, 1 fail to transform (1 without an error row"),
        "{}",
        out.stdout
    );
}

crate::on_all_targets!(verify_repeated_keys, |db| {
    verify_follows_repeated_keys_across_batches(db)
});

#[test]
fn verify_warns_when_records_failed() {
    let db = TestDb::sqlite();
    db.run(&["run", "mappings/forge_signatures_dirty.toml"])
        .ok();
    let out = db.run(&["verify", "mappings/forge_signatures_dirty.toml"]);
    assert_eq!(out.code, 0, "{}", out.stdout);
    assert!(
        out.stdout.contains("forge_signatures_dirty  WARNING"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("9 fail to transform, 9 unresolved error rows"),
        "{}",
        out.stdout
    );
}

fn retry_reloads_exactly_the_failed_records(db: &TestDb) {
    let d = db.dir();
    write(
        &d.join("schema/20260101000000_t.sql"),
        "CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER NOT NULL);",
    );
    write(
        &d.join("data.jsonl"),
        "{\"key\":\"a\",\"value\":{\"id\":1,\"n\":\"12a\"}}\n{\"key\":\"b\",\"value\":{\"id\":2,\"n\":2}}\nnot json\n{\"key\":\"c\",\"value\":{\"id\":3,\"n\":\"x9\"}}\n{\"key\":\"d\",\"value\":{\"id\":4,\"n\":null}}\n",
    );
    let mapping = d.join("t.toml");
    let text = "name = \"t\"\nschema = \"schema\"\n[source]\nkind = \"kv\"\npath = \"data.jsonl\"\n[[tables]]\ntable = \"t\"\nkey = [\"id\"]\ncolumns.id = \"value.id\"\ncolumns.n = \"value.n | int\"\n";
    write(&mapping, text);
    let m = mapping.to_str().unwrap();
    let out = db.run(&["run", m]).ok();
    assert!(
        out.stdout
            .contains("5 read, 1 written, 0 filtered, 4 failed"),
        "{}",
        out.stdout
    );
    let e = db.rows("SELECT message FROM cutover_errors WHERE record_key = 'd'");
    assert_eq!(
        e[0][0].as_deref(),
        Some("the column is NOT NULL but `value.n | int` gave null")
    );
    // Fix the mapping: digits only, and a default.
    write(
        &mapping,
        &text.replace(
            "value.n | int",
            "value.n | regex_replace('[^0-9]', '') | int | default(0)",
        ),
    );
    let out = db.run(&["retry", m]).ok();
    assert!(out.stdout.contains("4 records with unresolved errors, 3 loaded (errors resolved), 0 filtered, 1 failed again"), "{}", out.stdout);
    assert!(
        out.stdout.contains("data.jsonl:line 3: invalid JSON"),
        "{}",
        out.stdout
    );
    let rows: Vec<String> = db
        .rows("SELECT id, n FROM t ORDER BY id")
        .into_iter()
        .map(|r| format!("{}={}", r[0].clone().unwrap(), r[1].clone().unwrap()))
        .collect();
    assert_eq!(rows, vec!["1=12", "2=2", "3=9", "4=0"]);
    assert_eq!(
        db.count("SELECT count(*) FROM cutover_errors WHERE resolved_at IS NOT NULL"),
        3
    );
    assert_eq!(db.count("SELECT count(*) FROM cutover_errors WHERE resolved_at IS NULL AND record_key = 'data.jsonl:line 3'"), 2);
    let retry = &db.rows(
        "SELECT records_read, records_written, records_failed FROM cutover_runs WHERE id = 2",
    )[0];
    assert_eq!(
        retry.iter().map(|c| c.clone().unwrap()).collect::<Vec<_>>(),
        ["4", "3", "1"]
    );
    // The checkpoint did not move: it still belongs to run 1.
    assert_eq!(
        db.count("SELECT run_id FROM cutover_checkpoints WHERE mapping = 't'"),
        1
    );
    // Now fix the source: line 3 becomes a record. Its errors were named by the
    // line (it could not be decoded); loaded now under its own key, they resolve.
    let data = std::fs::read_to_string(d.join("data.jsonl")).unwrap();
    write(
        &d.join("data.jsonl"),
        &data.replace("not json", "{\"key\":\"e\",\"value\":{\"id\":5,\"n\":5}}"),
    );
    let out = db.run(&["retry", m]).ok();
    assert!(
        out.stdout
            .contains("1 records with unresolved errors, 1 loaded (errors resolved), 0 filtered, 0 failed again"),
        "{}",
        out.stdout
    );
    assert_eq!(
        db.count("SELECT count(*) FROM cutover_errors WHERE resolved_at IS NULL"),
        0
    );
    assert_eq!(db.count("SELECT n FROM t WHERE id = 5"), 5);
    // A record whose stored position now holds another record is not loaded
    // blindly: insert a line before line 3 and break the mapping for `e` again.
    write(
        &d.join("data.jsonl"),
        &format!(
            "{{\"key\":\"z\",\"value\":{{\"id\":9,\"n\":\"bad\"}}}}\n{}",
            std::fs::read_to_string(d.join("data.jsonl")).unwrap()
        ),
    );
    db.run(&["run", m, "--restart"]).ok();
    assert_eq!(
        db.count(
            "SELECT count(*) FROM cutover_errors WHERE resolved_at IS NULL AND record_key = 'z'"
        ),
        1
    );
    write(
        &d.join("data.jsonl"),
        &std::fs::read_to_string(d.join("data.jsonl"))
            .unwrap()
            .replacen(
                "{\"key\":\"z\",\"value\":{\"id\":9,\"n\":\"bad\"}}\n",
                "",
                1,
            ),
    );
    let out = db.run(&["retry", m]).ok();
    assert!(
        out.stdout
            .contains("z: no record at its stored position any more"),
        "{}",
        out.stdout
    );
    assert_eq!(db.count("SELECT count(*) FROM t WHERE id = 9"), 0);
}

/// A retry between a stopped run and the next run does not hide the stop: the
/// next run still resumes from the checkpoint.
#[test]
fn a_retry_does_not_turn_a_resume_into_a_full_pass() {
    let db = TestDb::sqlite();
    let d = db.dir();
    // Two good elements, a bad one (a transform error), then the file ends
    // inside an element: the run fails after committing the first batches.
    write(
        &d.join("a.json"),
        r#"[{"id": 1}, {"id": 2}, {"id": "x"}, {"id": 4}, {"id": 5"#,
    );
    write(
        &d.join("schema/20260101000000_t.sql"),
        "CREATE TABLE t (id INTEGER PRIMARY KEY);",
    );
    let mapping = d.join("t.toml");
    write(&mapping, "name = \"t\"\nschema = \"schema\"\n[source]\nkind = \"json\"\npath = \"a.json\"\n[[tables]]\ntable = \"t\"\nkey = [\"id\"]\ncolumns.id = \"value.id | int\"\n");
    let m = mapping.to_str().unwrap();
    let out = db.run(&["run", m, "--batch-size", "1"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert_eq!(db.count("SELECT count(*) FROM t"), 3);
    let out = db.run(&["retry", m]).ok();
    assert!(
        out.stdout
            .contains("1 records with unresolved errors, 0 loaded"),
        "{}",
        out.stdout
    );
    let out = db.run(&["run", m, "--batch-size", "1"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    let options = db
        .scalar("SELECT options FROM cutover_runs WHERE id = 3")
        .unwrap_or_default();
    assert!(options.contains("\"resumed_from_run\":1"), "{options}");
    assert_eq!(
        db.scalar("SELECT records_read FROM cutover_runs WHERE id = 3")
            .as_deref(),
        Some("0")
    );
}

crate::on_all_targets!(retry, |db| retry_reloads_exactly_the_failed_records(db));

/// A dry run of a parent and a child mapping checks the child's lookups against
/// the key map the parent would record, and still writes nothing.
fn dry_run_checks_lookups_of_earlier_mappings(db: &TestDb) {
    let d = db.dir();
    write(
        &d.join("schema/20260101000000_t.sql"),
        "CREATE TABLE users (id VARCHAR(36) PRIMARY KEY, name TEXT NOT NULL);
         CREATE TABLE orders (id INTEGER PRIMARY KEY, user_id VARCHAR(36) NOT NULL);",
    );
    write(
        &d.join("users.jsonl"),
        "{\"key\":\"u1\",\"value\":{\"id\":\"u1\",\"name\":\"Ann\"}}\n{\"key\":\"u2\",\"value\":{\"id\":\"u2\",\"name\":\"Bo\"}}\n",
    );
    write(
        &d.join("orders.jsonl"),
        "{\"key\":\"o1\",\"value\":{\"id\":1,\"user\":\"u1\"}}\n{\"key\":\"o2\",\"value\":{\"id\":2,\"user\":\"u2\"}}\n{\"key\":\"o3\",\"value\":{\"id\":3,\"user\":\"u9\"}}\n",
    );
    write(&d.join("users.toml"), "name = \"users\"\n[source]\nkind = \"kv\"\npath = \"users.jsonl\"\n[keymap]\nlegacy = \"value.id\"\nnew = \"value.id | uuid5('test:users')\"\n[[tables]]\ntable = \"users\"\nkey = [\"id\"]\ncolumns.id = \"value.id | uuid5('test:users')\"\ncolumns.name = \"value.name\"\n");
    write(&d.join("orders.toml"), "name = \"orders\"\n[source]\nkind = \"kv\"\npath = \"orders.jsonl\"\n[[tables]]\ntable = \"orders\"\nkey = [\"id\"]\ncolumns.id = \"value.id\"\ncolumns.user_id = \"value.user | lookup('users')\"\n");
    db.run(&[
        "migrate",
        "run",
        "--source",
        d.join("schema").to_str().unwrap(),
    ])
    .ok();
    let users = d.join("users.toml");
    let orders = d.join("orders.toml");
    let out = db
        .run(&[
            "run",
            "--dry-run",
            users.to_str().unwrap(),
            orders.to_str().unwrap(),
        ])
        .ok();
    assert!(
        out.stdout
            .contains("2 read, 2 written, 0 filtered, 0 failed"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("3 read, 2 written, 0 filtered, 1 failed"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("orders.user_id: legacy id 'u9' was not found in the key map of mapping 'users'  (e.g. o3)"),
        "{}",
        out.stdout
    );
    assert_eq!(db.count("SELECT count(*) FROM users"), 0);
    assert!(!db.table_exists("cutover_keymap"), "no tracking tables");
}

crate::on_all_targets!(dry_run_lookups, |db| {
    dry_run_checks_lookups_of_earlier_mappings(db)
});

/// `run A B`: B's mistakes against tables that exist stop the run before A
/// writes anything.
#[test]
fn a_later_mapping_that_does_not_fit_stops_the_run_before_any_write() {
    let db = TestDb::sqlite();
    let d = db.dir();
    db.exec("CREATE TABLE a (id INTEGER PRIMARY KEY); CREATE TABLE b (id INTEGER PRIMARY KEY);");
    write(
        &d.join("data.jsonl"),
        "{\"key\":\"x\",\"value\":{\"id\":1}}\n",
    );
    write(&d.join("a.toml"), "name = \"a\"\n[source]\nkind = \"kv\"\npath = \"data.jsonl\"\n[[tables]]\ntable = \"a\"\nkey = [\"id\"]\ncolumns.id = \"value.id\"\n");
    write(&d.join("b.toml"), "name = \"b\"\n[source]\nkind = \"kv\"\npath = \"data.jsonl\"\n[[tables]]\ntable = \"b\"\nkey = [\"id\"]\ncolumns.id = \"value.id\"\ncolumns.nope = \"value.id\"\n");
    let out = db.run(&[
        "run",
        d.join("a.toml").to_str().unwrap(),
        d.join("b.toml").to_str().unwrap(),
    ]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("b.toml:9:16: table `b` has no column `nope`"),
        "{}",
        out.stderr
    );
    assert_eq!(db.count("SELECT count(*) FROM a"), 0);
}

/// Regression: a retry that fails after it recorded its run (here the source
/// became unreadable: a gzip stream cut short) records the run as failed with
/// the reason, instead of leaving it `running` for ever.
#[test]
fn a_retry_that_fails_records_its_run_as_failed() {
    use std::io::Write as _;
    let db = TestDb::sqlite();
    let d = db.dir();
    write(
        &d.join("schema/20260101000000_t.sql"),
        "CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER NOT NULL);",
    );
    let mut lines = String::new();
    for i in 0..2000 {
        let n = if i == 1500 {
            "\"bad\"".to_string()
        } else {
            i.to_string()
        };
        lines.push_str(&format!(
            "{{\"key\":\"k{i}\",\"value\":{{\"id\":{i},\"n\":{n}}}}}\n"
        ));
    }
    let gz = |text: &str| {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(text.as_bytes()).unwrap();
        e.finish().unwrap()
    };
    std::fs::write(d.join("data.jsonl.gz"), gz(&lines)).unwrap();
    let mapping = d.join("t.toml");
    write(
        &mapping,
        "name = \"t\"\nschema = \"schema\"\n[source]\nkind = \"kv\"\npath = \"data.jsonl.gz\"\n[[tables]]\ntable = \"t\"\nkey = [\"id\"]\ncolumns.id = \"value.id\"\ncolumns.n = \"value.n | int\"\n",
    );
    let m = mapping.to_str().unwrap();
    let out = db.run(&["run", m]).ok();
    assert!(out.stdout.contains("1 failed"), "{}", out.stdout);
    // The dump is cut short before the failed record: reading it again fails.
    let full = gz(&lines);
    std::fs::write(d.join("data.jsonl.gz"), &full[..full.len() / 3]).unwrap();
    let out = db.run(&["retry", m]);
    assert_ne!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let run = db.rows("SELECT status, message FROM cutover_runs ORDER BY id DESC LIMIT 1");
    assert_eq!(run[0][0].as_deref(), Some("failed"), "{run:?}");
    let message = run[0][1].clone().unwrap_or_default();
    assert!(message.contains("data.jsonl.gz"), "{message}");
    assert_eq!(
        db.count("SELECT count(*) FROM cutover_runs WHERE status = 'running'"),
        0
    );
}

/// Regression: a target value that cannot be read back as text (here bytes
/// that are not UTF-8, written behind cutover's back) is an error naming the
/// table and column, not a "difference" with NULL.
#[test]
fn verify_reports_a_value_it_cannot_read_as_an_error() {
    let db = TestDb::sqlite();
    db.run(&["run", "mappings/forge_signatures.toml"]).ok();
    db.exec("UPDATE signature SET signed_at = CAST(X'FFFE41' AS TEXT) WHERE rowid = (SELECT min(rowid) FROM signature)");
    let out = db.run(&["verify", "mappings/forge_signatures.toml"]);
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stderr
            .contains("reading table signature (column signed_at) as text"),
        "{}\n{}",
        out.stdout,
        out.stderr
    );
    assert!(!out.stdout.contains("different in"), "{}", out.stdout);
}

/// Regression: a `_sqlx_migrations` table that cannot be read (here it lacks
/// sqlx's `success` column) stops the run with that reason; it was taken for
/// "no migration applied yet".
#[test]
fn an_unreadable_migrations_table_is_an_error_not_an_empty_history() {
    let db = TestDb::sqlite();
    let d = db.dir();
    write(
        &d.join("schema/20260101000000_t.sql"),
        "CREATE TABLE t (id INTEGER PRIMARY KEY);",
    );
    write(
        &d.join("data.jsonl"),
        "{\"key\":\"1\",\"value\":{\"id\":1}}\n",
    );
    write(
        &d.join("t.toml"),
        "name = \"t\"\nschema = \"schema\"\n[source]\nkind = \"kv\"\npath = \"data.jsonl\"\n[[tables]]\ntable = \"t\"\nkey = [\"id\"]\ncolumns.id = \"value.id\"\n",
    );
    db.exec("CREATE TABLE _sqlx_migrations (version BIGINT PRIMARY KEY, description TEXT)");
    let out = db.run(&["run", d.join("t.toml").to_str().unwrap()]);
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stderr
            .contains("reading the migrations applied before: no such column: success"),
        "{}",
        out.stderr
    );
    assert!(!db.table_exists("t"));
}
