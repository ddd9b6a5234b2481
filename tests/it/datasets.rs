//! The real legacy data in ../shared/datasets/ loads exactly.

use super::util::{assert_rerun_changed_nothing, assert_rerun_skipped, dataset, Kind, TestDb};

fn real_dynamodb_export_loads(db: &TestDb) {
    if dataset("kv/dynamodb-s3-export").is_none() {
        return;
    }
    let out = db
        .run(&[
            "run",
            "mappings/unicorn_activities.toml",
            "--batch-size",
            "10000",
        ])
        .ok();
    assert!(
        out.stdout
            .contains("133199 read, 133199 written, 0 filtered, 0 failed"),
        "{}",
        out.stdout
    );
    assert_eq!(db.count("SELECT count(*) FROM unicorns"), 133_199);
    assert_eq!(db.count("SELECT count(*) FROM unicorn_activities"), 637_085);
    assert_eq!(
        db.count("SELECT sum(activity_count) FROM unicorns"),
        637_085
    );
    assert_eq!(db.count("SELECT max(activity_count) FROM unicorns"), 38);
    assert_eq!(
        db.scalar("SELECT name FROM unicorns WHERE activity_count = 38")
            .as_deref(),
        Some("Majesty532")
    );
    let z = &db
        .rows("SELECT activity_count, first_activity_at FROM unicorns WHERE name = 'Zane7509'")[0];
    assert_eq!(z[0].as_deref(), Some("8"));
    assert_eq!(z[1].as_deref(), Some("2024-05-04 04:44:31"));
    assert_eq!(
        db.count("SELECT count(DISTINCT activity) FROM unicorn_activities"),
        13
    );
    assert_eq!(
        db.scalar("SELECT min(occurred_at) FROM unicorn_activities")
            .as_deref(),
        Some("2024-03-26 18:57:38")
    );
    assert_eq!(db.count("SELECT count(*) FROM cutover_errors"), 0);
    assert_eq!(
        db.count("SELECT rows_written FROM cutover_runs WHERE id = 1"),
        133_199 + 637_085
    );

    // Rerun with `--full`: a pass over the same export that transforms every
    // record again and rewrites nothing. On the default target only: a pass
    // over the export costs ~25 s of CPU in a debug build, and the servers'
    // unchanged-row checks for these column types (varchar, integer,
    // timestamp) are covered by the reruns of the other examples.
    if db.kind != Kind::Sqlite {
        return;
    }
    let sums = "SELECT count(*), sum(activity_count), count(first_activity_at) FROM unicorns";
    let before = db.rows(sums);
    let out = db
        .run(&[
            "run",
            "mappings/unicorn_activities.toml",
            "--batch-size",
            "10000",
            "--full",
        ])
        .ok();
    assert!(
        out.stdout
            .contains("133199 read, 133199 written, 0 filtered, 0 failed"),
        "{}",
        out.stdout
    );
    assert_rerun_changed_nothing(db, 1, 1);
    assert_eq!(db.rows(sums), before);
    assert_eq!(db.count("SELECT count(*) FROM unicorn_activities"), 637_085);
    assert_eq!(db.count("SELECT count(*) FROM cutover_errors"), 0);
    // A plain rerun: every record reads exactly as before and is skipped.
    let out = db.run(&["run", "mappings/unicorn_activities.toml"]).ok();
    assert_rerun_skipped(db, 3, &out.stdout, &[133_199]);
    assert_eq!(db.rows(sums), before);
    assert_eq!(db.count("SELECT count(*) FROM unicorn_activities"), 637_085);
}

fn real_json_tree_loads(db: &TestDb) {
    if dataset("json/openfootball").is_none() {
        return;
    }
    let out = db.run(&["run", "mappings/openfootball.toml"]).ok();
    assert!(
        out.stdout
            .contains("54 read, 54 written, 0 filtered, 0 failed"),
        "{}",
        out.stdout
    );
    assert_eq!(db.count("SELECT count(*) FROM competitions"), 54);
    assert_eq!(db.count("SELECT count(*) FROM matches"), 17_816);
    assert_eq!(
        db.count("SELECT count(*) FROM matches WHERE ft1 IS NULL"),
        1_275
    );
    assert_eq!(
        db.count("SELECT count(*) FROM matches WHERE ht1 IS NULL"),
        2_489
    );
    assert_eq!(db.count("SELECT sum(ft1) + sum(ft2) FROM matches"), 44_860);
    assert_eq!(
        db.count("SELECT count(*) FROM matches WHERE kickoff IS NULL"),
        491
    );
    assert_eq!(
        db.count("SELECT count(*) FROM matches WHERE season = '2022-23' AND competition = 'at.1'"),
        195
    );
    assert_eq!(
        db.scalar(
            "SELECT name FROM competitions WHERE season = '2022-23' AND competition = 'at.1'"
        )
        .as_deref(),
        Some("Österr. Bundesliga 2022/23")
    );
    // Rerun with `--full`: every file parsed again, nothing changes.
    db.run(&["run", "mappings/openfootball.toml", "--full"])
        .ok();
    assert_eq!(
        db.count("SELECT rows_written FROM cutover_runs WHERE id = 2"),
        0
    );
    assert_rerun_changed_nothing(db, 1, 1);
    assert_eq!(
        db.count("SELECT rows_unchanged FROM cutover_runs WHERE id = 2"),
        54 + 17_816
    );
    assert_eq!(db.count("SELECT count(*) FROM matches"), 17_816);
    assert_eq!(db.count("SELECT sum(ft1) + sum(ft2) FROM matches"), 44_860);
    // A plain rerun: no file changed since, none is parsed.
    let out = db.run(&["run", "mappings/openfootball.toml"]).ok();
    assert_rerun_skipped(db, 3, &out.stdout, &[54]);
    assert_eq!(db.count("SELECT count(*) FROM matches"), 17_816);
    assert_eq!(db.count("SELECT sum(ft1) + sum(ft2) FROM matches"), 44_860);
}

crate::on_all_targets!(real_dynamodb_export, |db| real_dynamodb_export_loads(db));
crate::on_all_targets!(real_json_tree, |db| real_json_tree_loads(db));

/// The real Chinook database (SQLite) into the PostgreSQL schema of
/// Chinook_PostgreSql.sql, every table, foreign keys on.
#[test]
fn chinook_sqlite_into_postgres() {
    let Some(dir) = dataset("chinook") else {
        return;
    };
    let Some(db) = TestDb::postgres() else { return };
    let order = [
        "artist",
        "genre",
        "media_type",
        "album",
        "track",
        "employee",
        "customer",
        "invoice",
        "invoice_line",
        "playlist",
        "playlist_track",
    ];
    let maps: Vec<String> = order
        .iter()
        .map(|t| format!("mappings/chinook/{t}.toml"))
        .collect();
    let mut args = vec!["run"];
    args.extend(maps.iter().map(String::as_str));
    let out = db.run(&args).ok();
    assert!(
        !out.stdout.contains(" 1 failed") && out.stdout.matches(" 0 failed").count() == 11,
        "{}",
        out.stdout
    );
    let counts = std::fs::read_to_string(dir.join("COUNTS.txt")).unwrap();
    let snake = |t: &str| match t {
        "MediaType" => "media_type".to_string(),
        "InvoiceLine" => "invoice_line".to_string(),
        "PlaylistTrack" => "playlist_track".to_string(),
        other => other.to_lowercase(),
    };
    for line in counts.lines().filter(|l| !l.trim().is_empty()) {
        let (table, n) = line.split_once(' ').unwrap();
        assert_eq!(
            db.count(&format!("SELECT count(*) FROM {}", snake(table))),
            n.trim().parse::<i64>().unwrap(),
            "{table}"
        );
    }
    assert_eq!(
        db.scalar("SELECT sum(total)::text FROM invoice").as_deref(),
        Some("2328.60")
    );
    assert_eq!(db.count("SELECT sum(bytes) FROM track"), 117_386_255_350);
    assert_eq!(
        db.count("SELECT count(*) FROM track WHERE composer IS NULL"),
        977
    );
    // verify: every row and every declared check.
    let mut args = vec!["verify"];
    args.extend(maps.iter().map(String::as_str));
    let out = db.run(&args);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert_eq!(
        out.stdout.matches("  PASSED  (").count(),
        11,
        "{}",
        out.stdout
    );
    // A rerun changes nothing.
    let mut args = vec!["run"];
    args.extend(maps.iter().map(String::as_str));
    db.run(&args).ok();
    assert_eq!(
        db.count("SELECT sum(rows_written) FROM cutover_runs WHERE id > 11"),
        0
    );
}

/// Pliers v2 (legacy forms system) into the v3 schema: uuid5 ids, slugs, JSONB
/// documents, statuses mapped, legacy ids remapped through lookup().
#[test]
fn pliers_into_postgres() {
    let Some(db) = TestDb::postgres() else { return };
    let exp: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(super::util::root().join("fixtures/pliers_v2/EXPECTED.json"))
            .unwrap(),
    )
    .unwrap();
    let out = db
        .run(&[
            "run",
            "mappings/pliers_v2/organizations.toml",
            "mappings/pliers_v2/forms.toml",
            "mappings/pliers_v2/submissions.toml",
        ])
        .ok();
    for (name, m) in exp["mappings"].as_object().unwrap() {
        let line = format!(
            "{} read, {} written, {} filtered, {} failed",
            m["read"], m["written"], m["filtered"], m["failed"]
        );
        assert!(
            out.stdout.contains(&line),
            "{name}: {line} in\n{}",
            out.stdout
        );
        for (table, n) in m["rows"].as_object().unwrap() {
            assert_eq!(
                db.count(&format!("SELECT count(*) FROM {table}")),
                n.as_i64().unwrap(),
                "{table}"
            );
        }
    }
    for o in exp["rows"]["organizations"].as_array().unwrap() {
        let id = o["id"].as_str().unwrap();
        let row = &db.rows(&format!(
            "SELECT slug, settings::text FROM organizations WHERE id = '{id}'"
        ))[0];
        assert_eq!(row[0].as_deref(), o["slug"].as_str());
        let settings: serde_json::Value = serde_json::from_str(row[1].as_deref().unwrap()).unwrap();
        assert_eq!(settings, o["settings"]);
    }
    let e = &db.rows(
        "SELECT column_name, message FROM cutover_errors WHERE mapping = 'pliers_submissions'",
    )[0];
    assert_eq!(e[0].as_deref(), Some("submissions.form_id"));
    assert!(
        e[1].as_deref()
            .unwrap()
            .contains("was not found in the key map of mapping 'pliers_forms'"),
        "{e:?}"
    );
    // Every submission points at a form of the new schema.
    assert_eq!(db.count("SELECT count(*) FROM submissions s LEFT JOIN forms f ON f.id = s.form_id WHERE f.id IS NULL"), 0);
}
