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

/// `cutover errors` filters: --mapping, --run, --unresolved and --limit, alone
/// and together, give exactly the rows asked for, in id order, as text and JSON.
fn errors_filters_return_exactly_the_rows_asked_for(db: &TestDb) {
    let d = db.dir();
    std::fs::create_dir_all(d.join("schema")).unwrap();
    std::fs::write(
        d.join("schema/20260101000000_tu.sql"),
        "CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER);\nCREATE TABLE u (id INTEGER PRIMARY KEY, n INTEGER);",
    )
    .unwrap();
    let job = |name: &str, lines: &[(&str, i64, &str)]| {
        let data: String = lines
            .iter()
            .map(|(k, id, n)| format!("{{\"key\":\"{k}\",\"value\":{{\"id\":{id},\"n\":{n}}}}}\n"))
            .collect();
        std::fs::write(d.join(format!("{name}.jsonl")), data).unwrap();
        let m = d.join(format!("{name}.toml"));
        std::fs::write(
            &m,
            format!("name = \"{name}\"\nschema = \"schema\"\n[source]\nkind = \"kv\"\npath = \"{name}.jsonl\"\n[[tables]]\ntable = \"{name}\"\nkey = [\"id\"]\ncolumns.id = \"value.id\"\ncolumns.n = \"value.n\"\n"),
        )
        .unwrap();
        m.to_str().unwrap().to_string()
    };
    // Run 1 (t): a, b, c fail. Run 2 (t): a is fixed and loads, b and c fail
    // again. Run 3 (u): e fails.
    let t = job(
        "t",
        &[
            ("a", 1, "\"x\""),
            ("b", 2, "\"y\""),
            ("c", 3, "\"z\""),
            ("d", 4, "4"),
        ],
    );
    db.run(&["run", &t]).ok();
    job(
        "t",
        &[
            ("a", 1, "1"),
            ("b", 2, "\"y\""),
            ("c", 3, "\"z\""),
            ("d", 4, "4"),
        ],
    );
    db.run(&["run", &t]).ok();
    let u = job("u", &[("e", 5, "\"w\""), ("f", 6, "6")]);
    db.run(&["run", &u]).ok();

    // (id, run, mapping, record, resolved) of `errors --json` with the filters.
    let json = |args: &[&str]| -> Vec<(i64, i64, String, String, bool)> {
        let mut a = vec!["errors", "--json"];
        a.extend_from_slice(args);
        let out = db.run(&a).ok();
        out.stdout
            .lines()
            .map(|l| {
                let v: serde_json::Value =
                    serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
                (
                    v["id"].as_i64().unwrap(),
                    v["run_id"].as_i64().unwrap(),
                    v["mapping"].as_str().unwrap().to_string(),
                    v["record_key"].as_str().unwrap().to_string(),
                    !v["resolved_at"].is_null(),
                )
            })
            .collect()
    };
    let e = |id: i64, run: i64, m: &str, k: &str, resolved: bool| {
        (id, run, m.to_string(), k.to_string(), resolved)
    };
    let all = vec![
        e(1, 1, "t", "a", true),
        e(2, 1, "t", "b", false),
        e(3, 1, "t", "c", false),
        e(4, 2, "t", "b", false),
        e(5, 2, "t", "c", false),
        e(6, 3, "u", "e", false),
    ];
    assert_eq!(json(&[]), all);
    assert_eq!(json(&["--unresolved"]), all[1..].to_vec());
    assert_eq!(json(&["--mapping", "t"]), all[..5].to_vec());
    assert_eq!(json(&["--mapping", "u"]), all[5..].to_vec());
    assert_eq!(json(&["--run", "2"]), all[3..5].to_vec());
    assert_eq!(json(&["--run", "1", "--unresolved"]), all[1..3].to_vec());
    assert_eq!(json(&["--limit", "2"]), all[..2].to_vec());
    assert_eq!(json(&["--unresolved", "--limit", "3"]), all[1..4].to_vec());
    assert_eq!(
        json(&[
            "--mapping",
            "t",
            "--run",
            "2",
            "--unresolved",
            "--limit",
            "1"
        ]),
        all[3..4].to_vec()
    );
    assert_eq!(json(&["--limit", "0"]), []);
    assert_eq!(json(&["--mapping", "nope"]), []);
    assert_eq!(json(&["--mapping", "u", "--run", "1"]), []);

    // The JSON row carries everything about the failure.
    let out = db.run(&["errors", "--json", "--run", "3"]).ok();
    let v: serde_json::Value = serde_json::from_str(out.stdout.trim()).unwrap();
    assert_eq!(v["stage"], "transform");
    assert_eq!(v["column_name"], "u.n");
    assert_eq!(v["message"], "'w' is not an integer");
    assert_eq!(v["record"], serde_json::json!({"id": 5, "n": "w"}));

    // Text: a header and one line per row, the same rows.
    let text = |args: &[&str]| -> Vec<Vec<String>> {
        let mut a = vec!["errors"];
        a.extend_from_slice(args);
        let out = db.run(&a).ok();
        let mut lines = out.stdout.lines();
        let head = lines.next().unwrap_or_default();
        if head == "no errors" {
            assert_eq!(lines.next(), None);
            return Vec::new();
        }
        assert!(
            head.starts_with("id  run  mapping  record  stage"),
            "{}",
            out.stdout
        );
        lines
            .map(|l| l.split_whitespace().map(str::to_string).collect())
            .collect()
    };
    let ids = |rows: &[Vec<String>]| rows.iter().map(|r| r[0].clone()).collect::<Vec<_>>();
    let rows = text(&[]);
    assert_eq!(ids(&rows), ["1", "2", "3", "4", "5", "6"]);
    assert_eq!(rows[1][..6], ["2", "1", "t", "b", "transform", "t.n"]);
    assert!(
        rows[1].join(" ").ends_with("'y' is not an integer"),
        "{rows:?}"
    );
    assert!(
        rows[0].len() > rows[1].len(),
        "error 1 shows when it was resolved: {rows:?}"
    );
    assert_eq!(ids(&text(&["--unresolved"])), ["2", "3", "4", "5", "6"]);
    assert_eq!(ids(&text(&["--mapping", "t", "--run", "2"])), ["4", "5"]);
    assert_eq!(ids(&text(&["--unresolved", "--limit", "2"])), ["2", "3"]);
    assert_eq!(ids(&text(&["--run", "9"])), Vec::<String>::new());

    // A negative limit is a usage error on every target (it used to list
    // everything on SQLite and fail with a database error on the servers).
    let out = db.run(&["errors", "--limit=-1"]);
    assert_eq!(out.code, 2, "{}\n{}", out.stdout, out.stderr);
    assert!(out.stderr.contains("--limit"), "{}", out.stderr);
}

crate::on_all_targets!(errors_filters_on, |db| {
    errors_filters_return_exactly_the_rows_asked_for(db)
});
