//! `cutover verify` by segment checksums: equal data passes on every target
//! (the checksums cutover computes agree with the ones the target computes),
//! and each kind of difference is found by key and column; the limits stop it
//! and say so; every verify is recorded on the target.

use crate::it::util::{write, Kind, TestDb};
use serde_json::Value;

fn schema(kind: &Kind) -> &'static str {
    match kind {
        Kind::Sqlite => "CREATE TABLE m (id INTEGER PRIMARY KEY, amount DECIMAL(20,10), at TIMESTAMP, ratio DOUBLE, doc JSON, note TEXT);
CREATE TABLE n (id INTEGER PRIMARY KEY, amount DECIMAL(20,10), at TIMESTAMP, doc JSON, note TEXT, flag BOOLEAN, born DATE);",
        Kind::Postgres => "CREATE TABLE m (id integer PRIMARY KEY, amount numeric(20,10), at timestamp(6), ratio double precision, doc jsonb, note text);
CREATE TABLE n (id integer PRIMARY KEY, amount numeric(20,10), at timestamptz, doc json, note text, flag boolean, born date);",
        Kind::Mysql => "CREATE TABLE m (id INT PRIMARY KEY, amount DECIMAL(20,10), at DATETIME(6), ratio DOUBLE, doc JSON, note TEXT);
CREATE TABLE n (id INT PRIMARY KEY, amount DECIMAL(20,10), at DATETIME(6), doc JSON, note TEXT, flag BOOLEAN, born DATE);",
    }
}

/// A mapping of `count` records into `m` and `n`; returns its path.
fn setup(db: &TestDb, count: usize) -> String {
    let d = db.dir();
    write(&d.join("schema/20260101000000_t.sql"), schema(&db.kind));
    let mut data = String::new();
    for i in 1..=count {
        let doc = serde_json::json!({"z": "é", "a": {"b": i, "c": [1, "x", 2.50]}});
        let note = if i % 3 == 0 {
            format!("note {i} ")
        } else {
            format!("note\t\"{i}\"")
        };
        let v = serde_json::json!({
            "id": i,
            "amount": format!("{}.{:010}", i, (i * 7919) % 10_000_000_000),
            "at": format!("2024-05-06 07:08:09.{i:06}"),
            "ratio": i as f64 / 7.0,
            "doc": doc,
            "note": note,
            "flag": i % 2 == 0,
            "born": format!("19{:02}-0{}-1{}", i % 100, 1 + i % 9, i % 10),
        });
        data.push_str(&serde_json::json!({"key": format!("r{i}"), "value": v}).to_string());
        data.push('\n');
    }
    write(&d.join("data.jsonl"), &data);
    let cols = "columns.id = \"value.id\"\ncolumns.amount = \"value.amount\"\ncolumns.at = \"value.at\"\ncolumns.doc = \"value.doc\"\ncolumns.note = \"value.note\"\n";
    let mapping = d.join("v.toml");
    write(
        &mapping,
        &format!(
            "name = \"v\"\nschema = \"schema\"\n[source]\nkind = \"kv\"\npath = \"data.jsonl\"\n\
             [[tables]]\ntable = \"m\"\nkey = [\"id\"]\n{cols}columns.ratio = \"value.ratio\"\n\
             [[tables]]\ntable = \"n\"\nkey = [\"id\"]\n{cols}columns.flag = \"value.flag\"\ncolumns.born = \"value.born\"\n"
        ),
    );
    let m = mapping.to_str().unwrap().to_string();
    let out = db.run(&["run", &m]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert_eq!(db.count("SELECT count(*) FROM m"), count as i64);
    m
}

fn json(out: &crate::it::util::Run) -> Value {
    serde_json::from_str(out.stdout.trim()).unwrap_or_else(|e| panic!("{e}: {}", out.stdout))
}

fn each_kind_of_difference_is_found(db: &TestDb) {
    let m = setup(db, 300);
    // Equal data passes, compared by checksums where the dialect has an exact form.
    let out = db.run(&["verify", &m, "--json"]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let v = json(&out);
    assert_eq!(v["verdict"], "PASSED", "{v}");
    for t in v["tables"].as_array().unwrap() {
        assert_eq!(t["expected"], 300, "{t}");
        assert_eq!(t["found"], 300, "{t}");
        assert_eq!(t["segments_differing"], 0, "{t}");
        assert_eq!(t["verdict"], "PASSED", "{t}");
    }
    assert_eq!(v["tables"][1]["method"], "segments", "{v}");
    let m_method = match db.kind {
        // No function gives a MariaDB DOUBLE's bits: that table goes row by row.
        Kind::Mysql => "rows",
        _ => "segments",
    };
    assert_eq!(v["tables"][0]["method"], m_method, "{v}");

    // One of each: a row deleted, a row added, a decimal's last digit, a
    // timestamp 1 µs later, a float one ulp off, a nested JSON value, a
    // trailing blank removed.
    let ratio4 = f64::from_bits((4.0f64 / 7.0).to_bits() + 1);
    db.exec("DELETE FROM m WHERE id = 1");
    db.exec("INSERT INTO m (id, amount, at, ratio, doc, note) VALUES (999, 1, '2024-01-01 00:00:00', 1, '{\"a\": 1}', 'x')");
    db.exec("UPDATE m SET amount = amount + 0.0000000001 WHERE id = 2");
    db.exec("UPDATE m SET at = '2024-05-06 07:08:09.000004' WHERE id = 3");
    db.exec(&format!("UPDATE m SET ratio = {ratio4:?}e0 WHERE id = 4"));
    db.exec("UPDATE m SET doc = '{\"z\": \"é\", \"a\": {\"b\": 5, \"c\": [1, \"y\", 2.50]}}' WHERE id = 5");
    db.exec("UPDATE m SET note = 'note 6' WHERE id = 6");
    db.exec("UPDATE n SET note = 'note 9  ' WHERE id = 9");
    let out = db.run(&["verify", &m]);
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("v  FAILED"), "{}", out.stdout);
    for line in [
        "m: key (1) record r1: missing",
        "m: key (2) record r2: different in amount",
        "m: key (3) record r3: different in at",
        "m: key (4) record r4: different in ratio",
        "m: key (5) record r5: different in doc",
        "m: key (6) record r6: different in note",
        "n: key (9) record r9: different in note",
    ] {
        assert!(out.stdout.contains(line), "{line:?} not in\n{}", out.stdout);
    }
    match db.kind {
        Kind::Mysql => assert!(
            out.stdout
                .contains("m: compared row by row: column ratio (double) has no exact text form"),
            "{}",
            out.stdout
        ),
        _ => assert!(
            out.stdout
                .contains("m: key (999): extra (no record produces it)"),
            "{}",
            out.stdout
        ),
    }
    let out = db.run(&["verify", &m, "--json"]);
    let v = json(&out);
    let t = &v["tables"][0];
    assert_eq!(
        (&t["missing"], &t["different"], &t["extra"], &t["found"]),
        (&1.into(), &5.into(), &1.into(), &300.into()),
        "{t}"
    );
    assert_eq!(v["tables"][1]["different"], 1, "{v}");
    assert_eq!(v["tables"][1]["extra"], 0, "{v}");
    if m_method == "segments" {
        // Only the segments holding the seven keys were compared row by row.
        let segs = t["segments_differing"].as_u64().unwrap();
        assert!((1..=7).contains(&segs), "{t}");
        assert_eq!(t["segments_unexplained"], 0, "{t}");
    }

    // Each verify is recorded on the target, the last one FAILED with its counts.
    assert!(db.count("SELECT count(*) FROM cutover_verifies WHERE mapping = 'v'") >= 3);
    let last = db
        .scalar("SELECT report FROM cutover_verifies ORDER BY id DESC LIMIT 1")
        .unwrap();
    let rec: Value = serde_json::from_str(&last).unwrap();
    assert_eq!(rec["verdict"], "FAILED");
    assert_eq!(rec["tables"][0]["missing"], 1);

    // --max-differences stops after that many differing keys, and says so.
    let out = db.run(&[
        "verify",
        &m,
        "--json",
        "--max-differences",
        "2",
        "--batch-size",
        "1",
    ]);
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    let v = json(&out);
    assert!(
        v["incomplete"]
            .as_str()
            .unwrap_or("")
            .contains("--max-differences 2"),
        "{v}"
    );
    let found: u64 = v["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["missing"].as_u64().unwrap() + t["different"].as_u64().unwrap())
        .sum();
    assert_eq!(found, 2, "{v}");
    let out = db.run(&["verify", &m, "--max-differences", "2", "--batch-size", "1"]);
    assert!(
        out.stdout.contains("INCOMPLETE: stopped because"),
        "{}",
        out.stdout
    );

    // Put the rows back: it passes again; then a time limit that is already up
    // stops before anything is compared, exit 1, never a PASS.
    db.exec("DELETE FROM m");
    db.exec("DELETE FROM n");
    let out = db.run(&["run", &m, "--full"]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let out = db.run(&["verify", &m]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("v  PASSED"), "{}", out.stdout);
    let out = db.run(&["verify", &m, "--json", "--time-limit", "0s"]);
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    let v = json(&out);
    assert_ne!(v["verdict"], "PASSED", "{v}");
    assert!(
        v["incomplete"]
            .as_str()
            .unwrap_or("")
            .contains("time limit"),
        "{v}"
    );
}

crate::on_all_targets!(each_kind_of_difference, |db| {
    each_kind_of_difference_is_found(db)
});

/// One changed value among many rows: found by key and column, and only its
/// segment is compared row by row.
fn one_value_among_many(db: &TestDb) {
    let m = setup(db, 20_000);
    db.exec("UPDATE n SET doc = '{\"z\": \"é\", \"a\": {\"b\": 12345, \"c\": [1, \"x\", 2.51]}}' WHERE id = 12345");
    let out = db.run(&["verify", &m, "--json"]);
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    let v = json(&out);
    let n = &v["tables"][1];
    assert_eq!(n["method"], "segments", "{n}");
    assert_eq!(n["segments_differing"], 1, "{n}");
    assert_eq!(n["different"], 1, "{n}");
    assert_eq!(n["missing"], 0, "{n}");
    assert_eq!(n["examples"][0]["key"], "12345", "{n}");
    assert_eq!(
        n["examples"][0]["columns"],
        serde_json::json!(["doc"]),
        "{n}"
    );
    assert_eq!(v["tables"][0]["verdict"], "PASSED", "{v}");
}

crate::on_all_targets!(one_changed_value_among_many, |db| one_value_among_many(db));

/// `status` shows the last verify of each mapping without running it again.
#[test]
fn status_shows_the_last_verify() {
    let db = TestDb::sqlite();
    let m = setup(&db, 50);
    db.exec("DELETE FROM n WHERE id = 7");
    let out = db.run(&["verify", &m]);
    assert_eq!(out.code, 1, "{}", out.stdout);
    let out = db.run(&["status"]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("last verify of v: FAILED at ")
            && out.stdout.contains("after run 1")
            && out
                .stdout
                .contains("m PASSED; n FAILED (1 missing, 0 different, 0 extra)"),
        "{}",
        out.stdout
    );
    let v: Value = serde_json::from_str(&db.run(&["status", "--json"]).stdout).unwrap();
    assert_eq!(v["verifies"][0]["verdict"], "FAILED", "{v}");
    assert_eq!(v["verifies"][0]["tables"][1]["missing"], 1, "{v}");
}
