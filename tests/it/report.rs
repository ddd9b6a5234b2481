//! `cutover report --html`: the rehearsal report of the Forge examples, opened
//! in a real headless Chromium and read from the rendered page (the other
//! report tests are in `report_json.rs`).

use super::browser::{self, Browser};
use super::util::{kv_job, root, TestDb};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

pub(super) const CLEAN: &str = "mappings/forge_signatures.toml";
pub(super) const DIRTY: &str = "mappings/forge_signatures_dirty.toml";

/// `1234567` → `1,234,567`, as a reader expects it.
fn sep(n: i64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

pub(super) fn json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

pub(super) fn json_doc(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

fn seconds_between(a: &str, b: &str) -> f64 {
    let a = chrono::DateTime::parse_from_rfc3339(a).expect("time");
    let b = chrono::DateTime::parse_from_rfc3339(b).expect("time");
    (b - a).num_milliseconds() as f64 / 1000.0
}

/// What the page shows in the cells of some rows: per row key, field → text.
fn cells(b: &mut Browser, rows: &str, key: &str) -> BTreeMap<String, BTreeMap<String, String>> {
    let v = b.eval(&format!(
        r#"(() => {{ const out = {{}}; for (const tr of document.querySelectorAll({rows:?})) {{
              const row = {{}}; for (const td of tr.querySelectorAll('td[data-field]')) row[td.dataset.field] = td.textContent.trim();
              out[tr.dataset.{key}] = row; }} return out; }})()"#
    ));
    serde_json::from_value(v).expect("cells")
}

/// The Forge rehearsal (clean, dirty) plus a generated job long enough for
/// several progress samples, all verified, on one SQLite target.
fn rehearse(db: &TestDb, records: usize) -> (String, Vec<Value>) {
    let items = kv_job(db.dir(), "items", records);
    let items = items.to_str().expect("path").to_string();
    db.run(&["run", CLEAN, DIRTY, &items]).ok();
    let v = db.run(&["verify", "--json", CLEAN, DIRTY, &items]);
    // Clean and dirty share their tables here: their checks see each other's rows.
    assert_eq!(v.code, 1, "{}{}", v.stdout, v.stderr);
    (items, json_lines(&v.stdout))
}

#[test]
fn the_html_report_of_the_forge_rehearsal_reads_right_in_chromium() {
    let Some(chrome) = browser::chromium() else {
        return;
    };
    let db = TestDb::sqlite();
    let (_, verifies) = rehearse(&db, 150_000);
    let html = db.dir().join("report.html");
    let out = db
        .run(&[
            "report",
            "--html",
            html.to_str().unwrap(),
            "--scale",
            "1000000",
        ])
        .ok();
    assert!(out.stdout.contains("3 mappings"), "{}", out.stdout);
    let runs = db.rows(
        "SELECT id, mapping, records_read, records_written, records_filtered, records_failed, started_at, finished_at FROM cutover_runs ORDER BY id",
    );
    assert_eq!(runs.len(), 3);
    let txt = |r: &[Option<String>], i: usize| r[i].clone().unwrap_or_default();
    let int = |r: &[Option<String>], i: usize| txt(r, i).parse::<i64>().unwrap();

    let mut b = Browser::launch(&chrome);
    let url = format!("file://{}", html.display());
    b.open(&url, 1280, 900);
    assert_eq!(
        b.eval("document.documentElement.dataset.ready"),
        "1",
        "the page's script ran"
    );

    // The cutover as a whole: each mapping's counts, as the tracking tables say.
    let summary = cells(&mut b, "table.summary tbody tr", "mapping");
    for r in &runs {
        let m = &summary[&txt(r, 1)];
        assert_eq!(m["records_read"], sep(int(r, 2)), "{m:?}");
        assert_eq!(m["records_written"], sep(int(r, 3)));
        assert_eq!(m["records_filtered"], sep(int(r, 4)));
        assert_eq!(m["records_failed"], sep(int(r, 5)));
    }
    assert_eq!(summary["forge_signatures"]["records_read"], "500");
    assert_eq!(summary["forge_signatures_dirty"]["records_written"], "46");
    assert_eq!(summary["forge_signatures_dirty"]["records_failed"], "9");
    assert_eq!(summary["items"]["records_read"], "150,000");
    let foot = cells(&mut b, "table.summary tfoot tr", "mapping");
    assert_eq!(foot[""]["records_read"], "150,555");
    // Numbers right-aligned, failures in red.
    let style = b.eval(
        r#"(() => { const td = document.querySelector('tr[data-mapping="forge_signatures_dirty"] td[data-field="records_failed"]');
                    const s = getComputedStyle(td); return [s.textAlign, s.color]; })()"#,
    );
    assert_eq!(style, serde_json::json!(["right", "rgb(180, 35, 24)"]));
    // A heading per mapping and a table of contents that reaches each.
    let toc = b.eval(
        r#"Array.from(document.querySelectorAll('nav.toc a')).map(a => [a.textContent, !!document.querySelector(a.getAttribute('href'))])"#,
    );
    for m in [
        "forge_signatures",
        "forge_signatures_dirty",
        "items",
        "Forecast",
    ] {
        assert!(
            toc.as_array()
                .unwrap()
                .iter()
                .any(|e| e[0] == m && e[1] == true),
            "{m} in {toc}"
        );
    }

    // Failures by reason: the nine bad records of the dirty dump, one reason each.
    let failures = b.eval(
        r#"Array.from(document.querySelectorAll('section[data-mapping="forge_signatures_dirty"] tr.failure')).map(tr => ({
              reason: tr.querySelector('[data-field=reason]').textContent, stage: tr.querySelector('[data-field=stage]').textContent,
              column: tr.querySelector('[data-field=column]').textContent, count: tr.querySelector('[data-field=count]').textContent,
              command: tr.querySelector('[data-field=command] code').textContent }))"#,
    );
    let failures = failures.as_array().expect("failure rows");
    assert_eq!(failures.len(), 9, "{failures:?}");
    let expected = [
        (
            "read",
            "",
            "invalid JSON: expected value at line 1 column 1",
        ),
        (
            "read",
            "",
            "invalid JSON: EOF while parsing a string at line 1 column 246",
        ),
        (
            "read",
            "",
            r#"the line is JSON but not a {"key": ..., "value": ...} pair"#,
        ),
        (
            "transform",
            "contract.hash",
            "required value value.hash is missing or null",
        ),
        ("transform", "contract.page_id", "<value> is not an integer"),
        (
            "transform",
            "signature.for_each",
            "for_each expects an array, found {",
        ),
        (
            "transform",
            "signature.account_id",
            "required value item.accountId is missing or null",
        ),
        (
            "transform",
            "contract.created_at",
            "<value> is not epoch milliseconds",
        ),
        (
            "transform",
            "signature.signed_at",
            "<value> is not epoch milliseconds",
        ),
    ];
    for (stage, column, reason) in expected {
        let f = failures
            .iter()
            .find(|f| {
                f["stage"] == stage
                    && f["column"] == column
                    && f["reason"].as_str().unwrap().starts_with(reason)
            })
            .unwrap_or_else(|| panic!("no failure row {stage} {column} {reason}: {failures:?}"));
        assert_eq!(f["count"], "1");
    }
    // Each row's command lists exactly the records it counts.
    for f in failures {
        let cmd = f["command"].as_str().unwrap();
        let rest = cmd.strip_prefix("cutover ").expect(cmd);
        let listed = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("{} {rest} --json", super::util::bin()))
            .current_dir(root())
            .output()
            .expect("sh");
        assert!(listed.status.success(), "{cmd}");
        let rows = json_lines(&String::from_utf8_lossy(&listed.stdout));
        assert_eq!(
            rows.len().to_string(),
            f["count"].as_str().unwrap(),
            "{cmd}"
        );
    }
    assert_eq!(
        b.eval(r#"document.querySelector('section[data-mapping="forge_signatures"] .failures.none') !== null"#),
        true,
        "the clean dump fails nothing"
    );

    // The verify status, as verify reported it.
    for v in &verifies {
        let m = v["mapping"].as_str().unwrap();
        let shown = b.eval(&format!(
            r#"(() => {{ const p = document.querySelector('section[data-mapping="{m}"] p.verify'); return [p.dataset.verdict, p.querySelector('.badge').textContent]; }})()"#
        ));
        assert_eq!(shown[0], v["verdict"], "{m}");
        assert_eq!(shown[1], v["verdict"], "{m}");
    }
    assert_eq!(
        b.eval(
            r#"document.querySelector('section[data-mapping="items"] p.verify').dataset.verdict"#
        ),
        "PASSED"
    );

    // A throughput chart per run with one point per recorded sample.
    for r in &runs {
        let id = int(r, 0);
        let samples = db.count(&format!(
            "SELECT count(*) FROM cutover_run_samples WHERE run_id = {id}"
        ));
        assert!(samples >= 1, "run {id} recorded samples");
        let points = b.eval(&format!(
            r#"document.querySelectorAll('svg.chart[data-run="{id}"] circle.sample').length"#
        ));
        assert_eq!(points, samples, "run {id}");
    }
    let items_run = int(&runs[2], 0);
    assert!(
        db.count(&format!(
            "SELECT count(*) FROM cutover_run_samples WHERE run_id = {items_run}"
        )) >= 2,
        "a run of more than a second has several samples"
    );

    // The forecast for 1,000,000 production records, shared as in the rehearsal,
    // at each mapping's measured rate.
    let fc = cells(&mut b, "table.forecast tbody tr", "mapping");
    let forecast_seconds = b.eval(
        r#"Object.fromEntries(Array.from(document.querySelectorAll('table.forecast tr[data-mapping] td[data-field=forecast]')).map(td => [td.parentNode.dataset.mapping, Number(td.dataset.seconds)]))"#,
    );
    let total_read: i64 = runs.iter().map(|r| int(r, 2)).sum();
    let mut total = 0.0;
    for r in &runs {
        let (m, read) = (txt(r, 1), int(r, 2));
        let production = (1_000_000.0 * read as f64 / total_read as f64).round();
        assert_eq!(fc[&m]["production_records"], sep(production as i64), "{m}");
        let rate = read as f64 / seconds_between(&txt(r, 6), &txt(r, 7));
        let want = production / rate;
        let got = forecast_seconds[&m].as_f64().unwrap();
        assert!(
            (got - want).abs() <= want * 0.01 + 0.001,
            "{m}: {got} s, want {want} s"
        );
        assert!(!fc[&m]["forecast"].is_empty());
        total += want;
    }
    let foot = cells(&mut b, "table.forecast tfoot tr", "mapping");
    assert_eq!(foot[""]["production_records"], "1,000,000");
    let got = forecast_seconds_total(&mut b);
    assert!(
        (got - total).abs() <= total * 0.01 + 0.001,
        "total {got} s, want {total} s"
    );
    let assumption = b.eval("document.querySelector('#forecast .assumption').textContent");
    assert!(
        assumption
            .as_str()
            .unwrap()
            .contains("rate this rehearsal measured"),
        "{assumption}"
    );

    // Nothing went wrong in the page, and nothing left it.
    assert_eq!(b.console_problems(), Vec::<String>::new());
    assert_eq!(
        b.requests(),
        vec![url.clone()],
        "the page loads nothing but itself"
    );
    let shot = db.dir().join("report.png");
    b.screenshot(&shot, true);
    let png = std::fs::read(&shot).expect("screenshot");
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 20_000,
        "{} bytes",
        png.len()
    );
    // The top of the page at 1280 x 1500, for README (docs/report.png).
    if let Some(keep) = std::env::var_os("CUTOVER_REPORT_SCREENSHOT") {
        b.open(&url, 1280, 1500);
        b.screenshot(Path::new(&keep), false);
    }

    // On a phone the page does not scroll sideways (wide tables scroll in place).
    b.open(&url, 390, 844);
    let width = b.eval("document.documentElement.scrollWidth");
    assert!(
        width.as_i64().unwrap() <= 390,
        "page {width} px wide on a 390 px screen"
    );
    // Printed: no table of contents, no buttons.
    b.call(
        "Emulation.setEmulatedMedia",
        serde_json::json!({"media": "print"}),
    );
    assert_eq!(
        b.eval("getComputedStyle(document.querySelector('nav.toc')).display"),
        "none"
    );
    assert_eq!(b.console_problems(), Vec::<String>::new());
    assert!(b.requests().iter().all(|u| *u == url), "{:?}", b.requests());
}

fn forecast_seconds_total(b: &mut Browser) -> f64 {
    b.eval("Number(document.querySelector('table.forecast tfoot td[data-field=forecast]').dataset.seconds)")
        .as_f64()
        .expect("total seconds")
}
