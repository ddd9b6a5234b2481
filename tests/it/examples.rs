//! The shipped examples (mappings/, fixtures/, sql/) load with exact counts and values.

use super::util::{
    assert_rerun_changed_nothing, assert_rerun_skipped, run_errors, snapshot, TestDb,
};
use serde_json::Value;

fn expected(path: &str) -> Value {
    let text = std::fs::read_to_string(super::util::root().join(path)).expect("EXPECTED.json");
    serde_json::from_str(&text).expect("json")
}

fn forge_clean_loads_exactly_and_rerun_changes_nothing(db: &TestDb) {
    let exp = expected("fixtures/forge/EXPECTED.json");
    let clean = &exp["clean"];
    let out = db.run(&["run", "mappings/forge_signatures.toml"]).ok();
    assert!(
        out.stdout
            .contains("500 read, 500 written, 0 filtered, 0 failed"),
        "{}",
        out.stdout
    );
    assert_eq!(db.count("SELECT count(*) FROM contract"), 500);
    assert_eq!(db.count("SELECT count(*) FROM signature"), 579);
    let checks = &clean["checks"];
    assert_eq!(
        db.count("SELECT count(*) FROM contract WHERE deleted_at IS NOT NULL"),
        checks["contract_deleted_at_not_null"].as_i64().unwrap()
    );
    assert_eq!(
        db.count("SELECT sum(page_id) FROM contract"),
        checks["sum_page_id"].as_i64().unwrap()
    );
    assert_eq!(
        db.scalar("SELECT min(created_at) FROM contract").unwrap(),
        checks["min_created_at"].as_str().unwrap()
    );
    for s in clean["samples"]["contract"].as_array().unwrap() {
        let hash = s["hash"].as_str().unwrap();
        let row = &db.rows(&format!(
            "SELECT page_id, signature_count, created_at, last_modified, deleted_at FROM contract WHERE hash = '{hash}'"
        ))[0];
        assert_eq!(
            row[0].as_deref(),
            Some(s["page_id"].to_string().as_str()),
            "{hash}"
        );
        assert_eq!(
            row[1].as_deref(),
            Some(s["signature_count"].to_string().as_str())
        );
        assert_eq!(row[2].as_deref(), s["created_at"].as_str());
        assert_eq!(row[3].as_deref(), s["last_modified"].as_str());
        assert_eq!(row[4].as_deref(), s["deleted_at"].as_str());
    }
    // Tracking: the run and its checkpoint.
    let run = &db.rows("SELECT status, records_read, records_written, records_filtered, records_failed FROM cutover_runs")[0];
    assert_eq!(
        run.iter().map(|c| c.clone().unwrap()).collect::<Vec<_>>(),
        ["succeeded", "500", "500", "0", "0"]
    );
    assert_eq!(
        db.count(
            "SELECT records_committed FROM cutover_checkpoints WHERE mapping = 'forge_signatures'"
        ),
        500
    );

    // A rerun with `--full` is a fresh, idempotent pass: every record
    // transformed again, nothing rewritten.
    let before = db.rows("SELECT * FROM contract ORDER BY hash");
    let out = db
        .run(&["run", "mappings/forge_signatures.toml", "--full"])
        .ok();
    assert!(out.stdout.contains("run 2"), "{}", out.stdout);
    assert_eq!(db.rows("SELECT * FROM contract ORDER BY hash"), before);
    let rerun = &db
        .rows("SELECT records_read, rows_written, rows_unchanged FROM cutover_runs WHERE id = 2")
        [0];
    assert_eq!(rerun[0].as_deref(), Some("500"));
    assert_eq!(
        rerun[1].as_deref(),
        Some("0"),
        "a rerun must rewrite no row"
    );
    assert_eq!(rerun[2].as_deref(), Some("1079"));
    assert_eq!(db.count("SELECT count(*) FROM signature"), 579);
    assert_rerun_changed_nothing(db, 1, 1);
    // A plain rerun skips every record: each reads exactly as before.
    let out = db.run(&["run", "mappings/forge_signatures.toml"]).ok();
    assert_rerun_skipped(db, 3, &out.stdout, &[500]);
    assert_eq!(db.rows("SELECT * FROM contract ORDER BY hash"), before);
    assert_eq!(db.count("SELECT count(*) FROM signature"), 579);
}

fn forge_dirty_dump_keeps_every_bad_record_as_an_error_row(db: &TestDb) {
    let exp = expected("fixtures/forge/EXPECTED.json");
    let dirty = &exp["dirty"];
    let out = db
        .run(&["run", "mappings/forge_signatures_dirty.toml"])
        .ok();
    assert!(
        out.stdout
            .contains("55 read, 46 written, 0 filtered, 9 failed"),
        "{}",
        out.stdout
    );
    assert_eq!(
        db.count("SELECT count(*) FROM contract"),
        dirty["rows"]["contract"].as_i64().unwrap()
    );
    assert_eq!(
        db.count("SELECT count(*) FROM signature"),
        dirty["rows"]["signature"].as_i64().unwrap()
    );
    // Every record read is written, filtered or failed.
    let r = &db.rows(
        "SELECT records_read, records_written, records_filtered, records_failed FROM cutover_runs",
    )[0];
    let n: Vec<i64> = r
        .iter()
        .map(|c| c.as_ref().unwrap().parse().unwrap())
        .collect();
    assert_eq!(n[0], n[1] + n[2] + n[3]);

    let errors = db.rows("SELECT record_key, stage, column_name, message, record, position FROM cutover_errors ORDER BY id");
    assert_eq!(errors.len(), 9);
    let by_key = |k: &str| {
        errors
            .iter()
            .find(|e| e[0].as_deref() == Some(k))
            .unwrap_or_else(|| panic!("no error row for {k}: {errors:?}"))
    };
    for line in [4, 7, 11] {
        let e = by_key(&format!("signature-dirty.jsonl:line {line}"));
        assert_eq!(e[1].as_deref(), Some("read"));
        assert!(e[4].is_some(), "the raw line is kept");
        assert!(
            e[5].as_deref()
                .unwrap()
                .contains(&format!("\"line\":{line}")),
            "{:?}",
            e[5]
        );
    }
    let transform: Vec<_> = errors
        .iter()
        .filter(|e| e[1].as_deref() == Some("transform"))
        .collect();
    assert_eq!(transform.len(), 6);
    let cols: Vec<&str> = transform.iter().map(|e| e[2].as_deref().unwrap()).collect();
    for c in [
        "contract.hash",
        "contract.page_id",
        "signature.for_each",
        "signature.account_id",
        "contract.created_at",
        "signature.signed_at",
    ] {
        assert!(cols.contains(&c), "{c} in {cols:?}");
    }
    let page = transform
        .iter()
        .find(|e| e[2].as_deref() == Some("contract.page_id"))
        .unwrap();
    assert_eq!(page[3].as_deref(), Some("'12a' is not an integer"));
    let rec: Value = serde_json::from_str(page[4].as_deref().unwrap()).unwrap();
    assert_eq!(rec["pageId"], "12a", "the failing record is stored as JSON");
    // The duplicate key: last one wins; unicode and null arrays load.
    let specials = &dirty["specials"];
    for (case, sp) in specials.as_object().unwrap() {
        let hash = sp["hash"].as_str().unwrap();
        assert_eq!(
            db.count(&format!(
                "SELECT page_id FROM contract WHERE hash = '{hash}'"
            )),
            sp["page_id"].as_i64().unwrap(),
            "{case}"
        );
        let mut accounts: Vec<String> = db
            .rows(&format!("SELECT account_id FROM signature WHERE contract_hash = '{hash}' ORDER BY account_id"))
            .into_iter()
            .map(|r| r[0].clone().unwrap())
            .collect();
        accounts.sort();
        let mut want: Vec<String> = sp["signature_rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect();
        want.sort();
        assert_eq!(accounts, want, "{case}");
    }
    // `cutover errors` shows them.
    let out = db
        .run(&["errors", "--mapping", "forge_signatures_dirty"])
        .ok();
    assert!(
        out.stdout.contains("'12a' is not an integer"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("signature-dirty.jsonl:line 4"),
        "{}",
        out.stdout
    );

    // A rerun with `--full` over the same dirty file: nothing rewritten,
    // nothing duplicated, and the same nine records fail again with the same errors.
    let (contract, signature) = (snapshot(db, "contract"), snapshot(db, "signature"));
    let out = db
        .run(&["run", "mappings/forge_signatures_dirty.toml", "--full"])
        .ok();
    assert!(
        out.stdout
            .contains("forge_signatures_dirty  run 2  succeeded")
            && out
                .stdout
                .contains("55 read, 46 written, 0 filtered, 9 failed"),
        "{}",
        out.stdout
    );
    assert_rerun_changed_nothing(db, 1, 1);
    assert_eq!(
        db.rows("SELECT rows_written, rows_unchanged FROM cutover_runs WHERE id = 2"),
        [[Some("0".to_string()), Some("110".to_string())]],
        "45 contract + 65 signature rows unchanged"
    );
    assert_eq!(snapshot(db, "contract"), contract);
    assert_eq!(snapshot(db, "signature"), signature);
    assert_eq!(db.count("SELECT count(*) FROM contract"), 45);
    assert_eq!(db.count("SELECT count(*) FROM signature"), 65);
    assert_eq!(
        db.count("SELECT count(*) FROM cutover_errors WHERE run_id = 2"),
        9
    );
    assert_eq!(
        db.count("SELECT count(*) FROM cutover_errors WHERE resolved_at IS NULL"),
        18,
        "records that fail again stay unresolved"
    );
    // A plain rerun skips 44 of the 46 good records; the nine bad ones are
    // read, and fail, again. The other two share one contract hash (the file's
    // duplicate key, 46 records for 45 contracts): only the last record of a
    // key keeps its digest, so the first reads as new and the key's records
    // are both processed again, their 1 contract + 2 signature rows unchanged.
    let out = db
        .run(&["run", "mappings/forge_signatures_dirty.toml"])
        .ok();
    assert!(
        out.stdout
            .contains("55 read, 46 written, 0 filtered, 9 failed"),
        "{}",
        out.stdout
    );
    assert_rerun_skipped(db, 3, &out.stdout, &[44]);
    assert_eq!(
        db.rows("SELECT rows_written, rows_unchanged FROM cutover_runs WHERE id = 3"),
        [[Some("0".to_string()), Some("3".to_string())]],
    );
    assert_eq!(run_errors(db, 3), run_errors(db, 1));
    assert_eq!(snapshot(db, "contract"), contract);
    assert_eq!(snapshot(db, "signature"), signature);
}

/// The Fernet key the FossaWork credentials are encrypted with in the tests.
pub const FOSSAWORK_KEY: &str = "eqE4x0quO2ymdoG9K3JUBMHnurvKb97HwtHBSR-F0Jo=";

const FOSSAWORK: [&str; 7] = [
    "run",
    "mappings/fossawork_v1/users.toml",
    "mappings/fossawork_v1/user_preferences.toml",
    "mappings/fossawork_v1/user_activities.toml",
    "mappings/fossawork_v1/work_orders.toml",
    "mappings/fossawork_v1/user_credentials.toml",
    "mappings/fossawork_v1/user_dispenser_data.toml",
];

fn fossawork_json_tree_loads_in_order(db: &TestDb) {
    let exp = expected("fixtures/fossawork/EXPECTED.json");
    let env = [("FOSSAWORK_CREDENTIALS_KEY", FOSSAWORK_KEY)];
    let first = db.run_env(&FOSSAWORK, &env);
    let out = first.clone().ok();
    for (name, m) in exp["mappings"].as_object().unwrap() {
        let line = format!(
            "{} read, {} written, {} filtered, {} failed",
            m["records_read"], m["records_written"], m["records_filtered"], m["records_failed"]
        );
        assert!(
            out.stdout.contains(&line),
            "{name}: expected '{line}' in\n{}",
            out.stdout
        );
        for (table, rows) in m["rows"].as_object().unwrap() {
            assert_eq!(
                db.count(&format!("SELECT count(*) FROM {table}")),
                rows.as_i64().unwrap(),
                "{table}"
            );
        }
    }
    let users = &exp["mappings"]["users"];
    for s in users["samples"].as_array().unwrap() {
        let row = &db.rows(&format!(
            "SELECT new_id, username, email, role FROM users WHERE username = '{}'",
            s["username"].as_str().unwrap()
        ))[0];
        assert_eq!(
            row[0].as_deref(),
            s["new_id"].as_str(),
            "uuid5 ids are deterministic"
        );
        assert_eq!(row[2].as_deref(), s["email"].as_str());
        assert_eq!(row[3].as_deref(), s["role"].as_str());
    }
    let err = &db.rows("SELECT record_key, column_name, message FROM cutover_errors WHERE mapping = 'fossawork_users'")[0];
    assert_eq!(err[0].as_deref(), Some("users.json[12]"));
    assert_eq!(err[1].as_deref(), Some("users.created_at"));
    assert!(
        err[2]
            .as_deref()
            .unwrap()
            .contains("'Invalid Date' is not a timestamp"),
        "{err:?}"
    );
    let maps = exp["mappings"].as_object().unwrap();
    let failed: i64 = maps
        .values()
        .map(|m| m["records_failed"].as_i64().unwrap())
        .sum();
    let rows: i64 = maps
        .values()
        .flat_map(|m| m["rows"].as_object().unwrap().values())
        .map(|n| n.as_i64().unwrap())
        .sum();
    assert_eq!((failed, rows), (7, 347));
    assert_eq!(db.count("SELECT count(*) FROM cutover_errors"), failed);
    let leaked = fossawork_credentials_are_encrypted(db, &exp, &first);
    fossawork_dispensers(db, &exp);

    // A rerun of the six mappings with `--full` (runs 7-12) changes nothing:
    // the credential tokens stored by the first pass still decrypt to the V1
    // values, so they stay.
    let tables = [
        "users",
        "user_preferences",
        "user_activities",
        "work_orders",
        "user_credentials",
        "user_dispenser_data",
    ];
    let before: Vec<_> = tables.iter().map(|t| snapshot(db, t)).collect();
    let full: Vec<&str> = FOSSAWORK.iter().copied().chain(["--full"]).collect();
    let again = db.run_env(&full, &env);
    let out = again.clone().ok();
    assert!(
        out.stdout
            .contains("fossawork_user_dispenser_data  run 12  succeeded"),
        "{}",
        out.stdout
    );
    assert_rerun_changed_nothing(db, 1, 6);
    assert_eq!(
        db.count("SELECT sum(rows_unchanged) FROM cutover_runs WHERE id > 6"),
        rows
    );
    for (t, rows) in tables.iter().zip(&before) {
        assert_eq!(&snapshot(db, t), rows, "{t} is unchanged");
    }
    assert_eq!(
        db.count("SELECT count(*) FROM cutover_errors WHERE run_id > 6"),
        failed
    );
    for text in [&again.stdout, &again.stderr] {
        for clear in &leaked {
            assert!(
                !text.contains(clear.as_str()),
                "{clear} in the rerun's output"
            );
        }
    }
    // A plain rerun (runs 13-18) skips every record that was written; the
    // failed ones are read, and fail, again.
    let plain = db.run_env(&FOSSAWORK, &env).ok();
    assert_rerun_skipped(db, 13, &plain.stdout, &[22, 19, 135, 17, 16, 15]);
    for (t, rows) in tables.iter().zip(&before) {
        assert_eq!(&snapshot(db, t), rows, "{t} is unchanged");
    }
    // verify opens the stored tokens: the credentials table passes.
    let v = db.run_env(
        &[
            "verify",
            "mappings/fossawork_v1/user_credentials.toml",
            "--json",
        ],
        &env,
    );
    let report: Value = serde_json::from_str(v.stdout.lines().next().unwrap_or("{}"))
        .unwrap_or_else(|e| panic!("{e}: {}", v.stdout));
    assert_eq!(report["tables"][0]["different"], 0, "{}", v.stdout);
    assert_eq!(report["tables"][0]["missing"], 0, "{}", v.stdout);
}

/// The credentials decrypt with the key to V1's values (in Rust, and in
/// Python's cryptography where it is installed); no clear text is in the
/// error rows or the output. Returns the clear texts that must never show.
fn fossawork_credentials_are_encrypted(
    db: &TestDb,
    exp: &Value,
    run: &super::util::Run,
) -> Vec<String> {
    let m = &exp["mappings"]["user_credentials"];
    let f = fernet::Fernet::new(FOSSAWORK_KEY).unwrap();
    let open = |t: &Option<String>| {
        String::from_utf8(
            f.decrypt(t.as_deref().unwrap())
                .expect("a token of the key"),
        )
        .unwrap()
    };
    let mut clear = Vec::new();
    let mut tokens = Vec::new();
    for c in m["credentials"].as_array().unwrap() {
        let rows = db.rows(&format!(
            "SELECT encrypted_username, encrypted_password, service_name, updated_at FROM user_credentials WHERE user_id = '{}'",
            c["user_id"].as_str().unwrap()
        ));
        assert_eq!(rows.len(), 1, "{c}");
        let r = &rows[0];
        assert_eq!(open(&r[0]), c["username"].as_str().unwrap(), "{c}");
        assert_eq!(open(&r[1]), c["password"].as_str().unwrap(), "{c}");
        assert_eq!(r[2].as_deref(), Some("work_fossa"));
        assert!(
            r[3].as_deref()
                .unwrap()
                .starts_with(&c["updated_at"].as_str().unwrap()[..19]),
            "{r:?} vs {c}"
        );
        clear.push(c["password"].as_str().unwrap().to_string());
        tokens.push((
            r[1].clone().unwrap(),
            c["password"].as_str().unwrap().to_string(),
        ));
    }
    for v in m["failed_clear_text"].as_array().unwrap() {
        clear.push(v.as_str().unwrap().to_string());
    }
    // The error rows: read and transform errors, neither value in them.
    let errors = db.rows(
        "SELECT record_key, stage, column_name, message, record FROM cutover_errors WHERE mapping = 'fossawork_user_credentials' ORDER BY record_key",
    );
    assert_eq!(errors.len(), 3, "{errors:?}");
    let by_file = |f: &str| {
        errors
            .iter()
            .find(|e| e[0].as_deref().unwrap_or("").contains(f))
            .unwrap_or_else(|| panic!("{f}: {errors:?}"))
    };
    for e in m["errors"].as_array().unwrap() {
        let row = by_file(e["file"].as_str().unwrap());
        assert_eq!(row[1].as_deref(), e["stage"].as_str(), "{row:?}");
        assert_eq!(row[2].as_deref(), e["column"].as_str(), "{row:?}");
        if e["stage"] == "transform" {
            let record: Value = serde_json::from_str(row[4].as_deref().unwrap()).unwrap();
            assert_eq!(record["username"], "***", "{record}");
            if record.get("password").is_some() {
                assert_eq!(record["password"], "***", "{record}");
            }
        }
    }
    let all = format!("{:?}", db.rows("SELECT * FROM cutover_errors"));
    for c in &clear {
        assert!(!all.contains(c.as_str()), "{c} in the error rows: {all}");
        assert!(
            !run.stdout.contains(c.as_str()) && !run.stderr.contains(c.as_str()),
            "{c} in the output"
        );
    }
    // `errors --json` prints the same (redacted) rows.
    let listed = db
        .run(&[
            "errors",
            "--mapping",
            "fossawork_user_credentials",
            "--json",
        ])
        .ok();
    for c in &clear {
        assert!(
            !listed.stdout.contains(c.as_str()),
            "{c} in `errors --json`"
        );
    }
    python_decrypts(&tokens);
    clear
}

/// Python's `cryptography.fernet` decrypts the tokens with the same key (skipped
/// loudly where the module is missing).
fn python_decrypts(tokens: &[(String, String)]) {
    let has = std::process::Command::new("python3")
        .args(["-c", "import cryptography"])
        .status()
        .is_ok_and(|s| s.success());
    if !has {
        eprintln!("!!! SKIPPED: python3 cryptography is not installed (apt-get install python3-cryptography)");
        return;
    }
    let script = "import json,sys\nfrom cryptography.fernet import Fernet\nf=Fernet(sys.argv[1].encode())\nprint(json.dumps([f.decrypt(t.encode()).decode() for t in json.load(sys.stdin)]))";
    let mut child = std::process::Command::new("python3")
        .args(["-c", script, FOSSAWORK_KEY])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    let input: Vec<&str> = tokens.iter().map(|(t, _)| t.as_str()).collect();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(serde_json::to_string(&input).unwrap().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: Vec<String> = serde_json::from_slice(&out.stdout).unwrap();
    let want: Vec<&str> = tokens.iter().map(|(_, c)| c.as_str()).collect();
    assert_eq!(got, want);
}

fn fossawork_dispensers(db: &TestDb, exp: &Value) {
    let m = &exp["mappings"]["user_dispenser_data"];
    assert_eq!(
        db.count("SELECT sum(dispenser_count) FROM user_dispenser_data"),
        m["checks"]["sum_dispenser_count"].as_i64().unwrap()
    );
    for s in m["samples"].as_array().unwrap() {
        let r = &db.rows(&format!(
            "SELECT visit_id, dispenser_count, dispensers FROM user_dispenser_data WHERE user_id = '{}' AND work_order_id = '{}'",
            s["user_id"].as_str().unwrap(),
            s["work_order_id"].as_str().unwrap()
        ))[0];
        assert_eq!(r[0].as_deref(), s["visit_id"].as_str(), "{s}");
        assert_eq!(
            r[1].as_deref(),
            Some(s["dispenser_count"].to_string().as_str())
        );
        assert_eq!(r[2].as_deref(), s["dispensers"].as_str(), "{s}");
    }
    let e = &db.rows("SELECT record_key, column_name, message FROM cutover_errors WHERE mapping = 'fossawork_user_dispenser_data'");
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(e[0][1].as_deref(), Some("user_dispenser_data.for_each"));
    assert!(
        e[0][2]
            .as_deref()
            .unwrap()
            .starts_with("entries expects an object, found ["),
        "{e:?}"
    );
}

crate::on_all_targets!(
    forge_clean_loads_exactly_and_rerun_changes_nothing_on,
    |db| forge_clean_loads_exactly_and_rerun_changes_nothing(db)
);

crate::on_all_targets!(
    forge_dirty_dump_keeps_every_bad_record_as_an_error_row_on,
    |db| forge_dirty_dump_keeps_every_bad_record_as_an_error_row(db)
);

crate::on_all_targets!(fossawork_json_tree_loads_in_order_on, |db| {
    fossawork_json_tree_loads_in_order(db)
});
