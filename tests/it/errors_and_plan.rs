//! Mapping mistakes stop before any write with file:line; plan writes nothing;
//! status and errors report; --max-errors sets exit code 3.

use super::util::{kv_job, TestDb};

#[test]
fn mapping_errors_exit_2_with_file_line_and_write_nothing() {
    let db = TestDb::sqlite();
    let mapping = kv_job(db.dir(), "bad", 10);
    let text = std::fs::read_to_string(&mapping).unwrap();
    std::fs::write(
        &mapping,
        text.replace(
            "columns.score = \"value.score\"",
            "columns.score = \"value.score | integer\"",
        ),
    )
    .unwrap();
    let out = db.run(&["run", mapping.to_str().unwrap()]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("bad.toml:13:32:"), "{}", out.stderr);
    assert!(
        out.stderr.contains("unknown function `integer`"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("did you mean `int`?"), "{}", out.stderr);
    assert!(
        !db.table_exists("items") && !db.table_exists("cutover_runs"),
        "nothing was written"
    );

    // A column the target table does not have.
    std::fs::write(
        &mapping,
        text.replace(
            "columns.score = \"value.score\"",
            "columns.scor = \"value.score\"",
        ),
    )
    .unwrap();
    let out = db.run(&["run", mapping.to_str().unwrap()]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr
            .contains("bad.toml:13:16: table `items` has no column `scor`"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("did you mean `score`?"),
        "{}",
        out.stderr
    );
    assert!(
        !db.table_exists("cutover_runs"),
        "checks come before the tracking tables"
    );

    // A key that is not a unique constraint.
    std::fs::write(&mapping, text.replace("key = [\"id\"]", "key = [\"name\"]")).unwrap();
    let out = db.run(&["run", mapping.to_str().unwrap()]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr
            .contains("key (name) is not a primary key or unique constraint"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("its unique keys are: (id)"),
        "{}",
        out.stderr
    );
}

#[test]
fn plan_prints_the_sql_and_writes_nothing() {
    let db = TestDb::sqlite();
    let out = db.run(&["plan", "mappings/forge_signatures.toml"]).ok();
    assert!(
        out.stdout.contains("table contract  key (hash)"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("value.hash | required"),
        "{}",
        out.stdout
    );
    assert!(!db.table_exists("contract") && !db.table_exists("cutover_runs"));
    // Once the schema exists, plan shows the types and the upsert.
    db.run(&["run", "mappings/forge_signatures.toml"]).ok();
    let out = db.run(&["plan", "mappings/forge_signatures.toml"]).ok();
    assert!(
        out.stdout.contains("INSERT INTO \"contract\""),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("ON CONFLICT (\"hash\") DO UPDATE SET"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("varchar(64)"), "{}", out.stdout);
    assert!(
        out.stdout.contains("would start a full pass"),
        "{}",
        out.stdout
    );
}

fn status_errors_and_max_errors(db: &TestDb) {
    let out = db.run(&[
        "run",
        "mappings/forge_signatures_dirty.toml",
        "--max-errors",
        "3",
    ]);
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("9 records of forge_signatures_dirty failed, more than --max-errors 3"),
        "{}",
        out.stderr
    );
    // Everything still loaded.
    assert_eq!(db.count("SELECT count(*) FROM contract"), 45);
    let out = db.run(&[
        "run",
        "mappings/forge_signatures_dirty.toml",
        "--max-errors",
        "9",
    ]);
    assert_eq!(out.code, 0);

    let out = db.run(&["status", "--json"]).ok();
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let runs = v["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2);
    for r in runs {
        assert_eq!(r["status"], "succeeded");
        assert_eq!(r["records_read"], 55);
        assert_eq!(r["records_failed"], 9);
        assert_eq!(
            r["records_read"].as_i64().unwrap(),
            r["records_written"].as_i64().unwrap()
                + r["records_filtered"].as_i64().unwrap()
                + r["records_failed"].as_i64().unwrap()
        );
        let tables = r["tables"].as_array().unwrap();
        assert_eq!(tables[0]["table_name"], "contract");
    }
    assert_eq!(runs[1]["rows_written"], 0, "the rerun changed nothing");
    assert_eq!(v["checkpoints"][0]["records_committed"], 55);
    let out = db.run(&["status"]).ok();
    assert!(
        out.stdout.contains("forge_signatures_dirty") && out.stdout.contains("succeeded"),
        "{}",
        out.stdout
    );

    let out = db.run(&["errors", "--run", "2", "--json"]).ok();
    let lines: Vec<serde_json::Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 9);
    assert!(lines.iter().all(|e| e["run_id"] == 2));
    let page = lines
        .iter()
        .find(|e| e["column_name"] == "contract.page_id")
        .unwrap();
    assert_eq!(page["record"]["pageId"], "12a");
}

fn errors_are_resolved_when_a_later_run_loads_the_record(db: &TestDb) {
    let d = db.dir();
    std::fs::create_dir_all(d.join("schema")).unwrap();
    std::fs::write(
        d.join("schema/20260101000000_t.sql"),
        "CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER);",
    )
    .unwrap();
    std::fs::write(d.join("data.jsonl"), "{\"key\":\"a\",\"value\":{\"id\":1,\"n\":\"x\"}}\n{\"key\":\"b\",\"value\":{\"id\":2,\"n\":2}}\n").unwrap();
    let m = d.join("t.toml");
    std::fs::write(&m, "name = \"t\"\nschema = \"schema\"\n[source]\nkind = \"kv\"\npath = \"data.jsonl\"\n[[tables]]\ntable = \"t\"\nkey = [\"id\"]\ncolumns.id = \"value.id\"\ncolumns.n = \"value.n\"\n").unwrap();
    db.run(&["run", m.to_str().unwrap()]).ok();
    assert_eq!(
        db.count("SELECT count(*) FROM cutover_errors WHERE resolved_at IS NULL"),
        1
    );
    // The data is fixed at the source; a rerun loads it and resolves the error.
    std::fs::write(d.join("data.jsonl"), "{\"key\":\"a\",\"value\":{\"id\":1,\"n\":\"1\"}}\n{\"key\":\"b\",\"value\":{\"id\":2,\"n\":2}}\n").unwrap();
    db.run(&["run", m.to_str().unwrap()]).ok();
    assert_eq!(db.count("SELECT count(*) FROM cutover_errors WHERE resolved_at IS NOT NULL AND record_key = 'a'"), 1);
    assert_eq!(db.count("SELECT n FROM t WHERE id = 1"), 1);
}

#[test]
fn help_explains_itself() {
    let out = std::process::Command::new(super::util::bin())
        .args(["run", "--help"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--target",
        "--batch-size",
        "--max-errors",
        "--restart",
        "--dry-run",
    ] {
        assert!(text.contains(flag), "{flag} in\n{text}");
    }
    let out = std::process::Command::new(super::util::bin())
        .arg("--help")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("CUTOVER_TARGET") && text.contains("Exit codes"),
        "{text}"
    );
}

crate::on_all_targets!(status_errors_and_max_errors_on, |db| {
    status_errors_and_max_errors(db)
});

crate::on_all_targets!(
    errors_are_resolved_when_a_later_run_loads_the_record_on,
    |db| errors_are_resolved_when_a_later_run_loads_the_record(db)
);
