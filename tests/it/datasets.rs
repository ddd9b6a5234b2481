//! The real legacy data in ../shared/datasets/ loads exactly.

use super::util::{dataset, TestDb};

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
    // Rerun: nothing changes.
    db.run(&["run", "mappings/openfootball.toml"]).ok();
    assert_eq!(
        db.count("SELECT rows_written FROM cutover_runs WHERE id = 2"),
        0
    );
}

crate::on_all_targets!(real_dynamodb_export, |db| real_dynamodb_export_loads(db));
crate::on_all_targets!(real_json_tree, |db| real_json_tree_loads(db));
