//! `cutover report`: `--compare` between two rehearsals, `--json` against
//! `status --json` on every target, the forecast from a counted production
//! source.

use super::report::{json_doc, json_lines, CLEAN, DIRTY};
use super::util::{root, write, TestDb};
use serde_json::Value;
use std::path::Path;

/// The dirty mapping, reading a copy of its dump without the record whose
/// page id is '12a'.
fn dirty_without_one_bad_record(dir: &Path) -> String {
    let text =
        std::fs::read_to_string(root().join("fixtures/forge/signature-dirty.jsonl")).unwrap();
    let kept: String = text
        .lines()
        .filter(|l| !l.contains(r#""pageId":"12a""#))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(kept.lines().count(), text.lines().count() - 1);
    write(&dir.join("signature-dirty.jsonl"), &kept);
    let mapping = std::fs::read_to_string(root().join(DIRTY))
        .unwrap()
        .replace(
            "schema = \"../sql/forge\"",
            &format!("schema = \"{}\"", root().join("sql/forge").display()),
        )
        .replace(
            "../fixtures/forge/signature-dirty.jsonl",
            "signature-dirty.jsonl",
        );
    let path = dir.join("forge_signatures_dirty.toml");
    write(&path, &mapping);
    path.to_str().unwrap().to_string()
}

#[test]
fn compare_shows_the_mapping_whose_failures_differ() {
    let (a, b) = (TestDb::sqlite(), TestDb::sqlite());
    a.run(&["run", CLEAN, DIRTY]).ok();
    let fewer = dirty_without_one_bad_record(b.dir());
    b.run(&["run", CLEAN, &fewer]).ok();

    let out = a.run(&["report", "--json", "--compare", &b.url]).ok();
    let doc = json_doc(&out.stdout);
    let rows = doc["compare"]["rows"].as_array().expect("compare rows");
    let row = |m: &str, what: &str| {
        rows.iter()
            .find(|r| r["mapping"] == m && r["what"] == what)
            .unwrap_or_else(|| panic!("no row {m} / {what}: {rows:?}"))
    };
    let failed = row("forge_signatures_dirty", "records failed");
    assert_eq!(
        (
            failed["this"].clone(),
            failed["other"].clone(),
            failed["differs"].clone()
        ),
        (9.into(), 8.into(), true.into())
    );
    let reason = row(
        "forge_signatures_dirty",
        "failures: transform: contract.page_id: <value> is not an integer",
    );
    assert_eq!(
        (
            reason["this"].clone(),
            reason["other"].clone(),
            reason["differs"].clone()
        ),
        (1.into(), 0.into(), true.into())
    );
    // Another reason, failing on both: the same.
    let same = row(
        "forge_signatures_dirty",
        "failures: transform: contract.hash: required value value.hash is missing or null",
    );
    assert_eq!(same["differs"], false);
    // The clean mapping: every count the same on both.
    for r in rows
        .iter()
        .filter(|r| r["mapping"] == "forge_signatures" && r["what"] != "duration (s)")
    {
        assert_eq!(r["differs"], false, "{r}");
    }

    // The page highlights exactly those rows.
    let html = a.dir().join("compare.html");
    a.run(&[
        "report",
        "--html",
        html.to_str().unwrap(),
        "--compare",
        &b.url,
    ])
    .ok();
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains(r#"<tr class="differs" data-mapping="forge_signatures_dirty"><td>forge_signatures_dirty</td><td class="what">failures: transform: contract.page_id: &lt;value&gt; is not an integer</td><td class="num" data-field="this">1</td><td class="num" data-field="other">0</td></tr>"#), "{page}");
    assert!(page.contains(r#"<tr class="differs" data-mapping="forge_signatures_dirty"><td>forge_signatures_dirty</td><td class="what">records failed</td><td class="num" data-field="this">9</td><td class="num" data-field="other">8</td></tr>"#));
    // And the text summary names them.
    let text = a.run(&["report", "--compare", &b.url]).ok().stdout;
    assert!(text.contains(&format!("compared with {}", b.url)), "{text}");
    assert!(
        text.lines().any(|l| l.contains("forge_signatures_dirty")
            && l.contains("failures: transform: contract.page_id: <value> is not an integer")
            && l.split_whitespace().rev().take(2).collect::<Vec<_>>() == ["0", "1"]),
        "{text}"
    );
}

/// `report --json` and `status --json` give the same figures, on every target.
fn report_json_agrees_with_status_json(db: &TestDb) {
    db.run(&["run", CLEAN, DIRTY]).ok();
    db.run(&["run", DIRTY]).ok(); // a second full pass of the dirty dump
    let verified = json_lines(&db.run(&["verify", "--json", CLEAN, DIRTY]).stdout);
    let report = json_doc(&db.run(&["report", "--json"]).ok().stdout);
    let status = json_doc(&db.run(&["status", "--json"]).ok().stdout);
    let sruns = status["runs"].as_array().unwrap();
    let mappings = report["mappings"].as_array().unwrap();
    assert_eq!(
        mappings
            .iter()
            .map(|m| m["mapping"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["forge_signatures", "forge_signatures_dirty"],
        "in the order they ran"
    );
    let fields = [
        "status",
        "records_read",
        "records_written",
        "records_filtered",
        "records_failed",
        "rows_written",
        "rows_unchanged",
    ];
    for m in mappings {
        let name = m["mapping"].as_str().unwrap();
        let of: Vec<&Value> = sruns.iter().filter(|r| r["mapping"] == name).collect();
        let last = *of.last().unwrap();
        // The reported pass is the mapping's last run here.
        assert_eq!(m["pass_id"], last["id"], "{name}");
        for f in fields {
            assert_eq!(m[f], last[f], "{name}: {f}");
        }
        assert_eq!(m["rows_inserted"], last["rows_inserted"], "{name}");
        // Every run since the pass started, as status lists it.
        for r in m["runs"].as_array().unwrap() {
            let s = of
                .iter()
                .find(|s| s["id"] == r["id"])
                .expect("the run in status");
            for f in fields {
                assert_eq!(r[f], s[f], "{name} run {}: {f}", r["id"]);
            }
            let samples = r["samples"].as_array().unwrap();
            assert!(!samples.is_empty(), "{name} run {}", r["id"]);
            assert_eq!(
                samples.last().unwrap()["records_read"],
                s["records_read"],
                "the last sample is the run's end"
            );
        }
        for t in m["tables"].as_array().unwrap() {
            let st = last["tables"]
                .as_array()
                .unwrap()
                .iter()
                .find(|x| x["table_name"] == t["table"])
                .expect("table in status");
            assert_eq!(t["rows_written"], st["rows_written"]);
            assert_eq!(t["rows_unchanged"], st["rows_unchanged"]);
            assert_eq!(t["rows_inserted"], st["rows_inserted"]);
            assert_eq!(t["rows_deleted"], st["rows_deleted"]);
        }
        // Unresolved error rows of every run of the mapping.
        let unresolved: i64 = of
            .iter()
            .map(|r| r["errors_unresolved"].as_i64().unwrap())
            .sum();
        assert_eq!(m["errors_unresolved"], unresolved, "{name}");
        // Failures count records: the nine records failed twice, counted once.
        let records: i64 = m["failures"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["count"].as_i64().unwrap())
            .sum();
        assert_eq!(records, last["records_failed"].as_i64().unwrap(), "{name}");
        let v = verified.iter().find(|v| v["mapping"] == name).unwrap();
        assert_eq!(m["verify"]["verdict"], v["verdict"], "{name}");
        assert_eq!(m["verify"]["tables"], v["tables"], "{name}");
        assert_eq!(m["verify"]["outdated"], false);
    }
    assert_eq!(mappings[1]["errors_unresolved"], 18);
    let sum = |f: &str| mappings.iter().map(|m| m[f].as_i64().unwrap()).sum::<i64>();
    for f in [
        "records_read",
        "records_written",
        "records_failed",
        "rows_written",
    ] {
        assert_eq!(report["totals"][f], sum(f), "totals {f}");
    }
}

crate::on_all_targets!(
    report_json_matches_status_json,
    report_json_agrees_with_status_json
);

/// `--production-source`: a PostgreSQL source counted by COUNT(*), a file
/// source read through, each forecast at its own rate.
#[test]
fn production_source_counts_each_mapping_source() {
    let Some(src) = TestDb::postgres() else {
        return;
    };
    src.exec(
        "CREATE TABLE legacy (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
         INSERT INTO legacy SELECT g, 'name ' || g FROM generate_series(1, 1200) g;",
    );
    let target = TestDb::sqlite();
    let d = target.dir();
    write(
        &d.join("schema/20260101000000_people.sql"),
        "CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT NOT NULL);",
    );
    let mapping = d.join("people.toml");
    write(
        &mapping,
        &format!(
            "name = \"people\"\nschema = \"schema\"\n[source]\nkind = \"postgres\"\nurl = \"{}\"\ntable = \"legacy\"\nkey = [\"id\"]\n\
             [[tables]]\ntable = \"people\"\nkey = [\"id\"]\ncolumns.id = \"value.id\"\ncolumns.name = \"value.name\"\n",
            src.url
        ),
    );
    let people = mapping.to_str().unwrap();
    target.run(&["run", people, CLEAN]).ok();
    // Production holds more than the rehearsal read.
    src.exec("INSERT INTO legacy SELECT g, 'name ' || g FROM generate_series(1201, 4000) g;");
    let out = target
        .run(&["report", "--json", "--production-source", people, CLEAN])
        .ok();
    let f = &json_doc(&out.stdout)["forecast"];
    let row = |m: &str| {
        f["mappings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["mapping"] == m)
            .unwrap()
            .clone()
    };
    let (p, c) = (row("people"), row("forge_signatures"));
    assert_eq!(p["rehearsal_records"], 1200);
    assert_eq!(p["production_records"], 4000);
    assert_eq!(c["production_records"], 500);
    assert!(
        p["basis"]
            .as_str()
            .unwrap()
            .starts_with("counted: postgres"),
        "{p}"
    );
    let ratio = p["seconds"].as_f64().unwrap() / p["rehearsal_seconds"].as_f64().unwrap();
    assert!(
        (ratio - 4000.0 / 1200.0).abs() < 0.01,
        "time grows with the records: {ratio}"
    );
    assert_eq!(f["production_records"], 4500);
    // Without mapping files there is nothing to count.
    let refused = target.run(&["report", "--production-source"]);
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("name the mapping files"),
        "{}",
        refused.stderr
    );
}
