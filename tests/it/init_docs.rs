//! `cutover init` from kv and json sources: the real DynamoDB export and the
//! openfootball tree, sampled and inferred, then loaded by the generated mapping
//! on SQLite and PostgreSQL with 0 failed records and the counts of COUNTS.txt.

use super::init::{mapping_files, run_and_verify};
use super::util::{cutover, dataset, Kind, TestDb};
use std::collections::BTreeMap;

/// `<path> <count>` lines of a data set's COUNTS.txt.
fn counts(dir: &std::path::Path) -> BTreeMap<String, i64> {
    std::fs::read_to_string(dir.join("COUNTS.txt"))
        .expect("COUNTS.txt")
        .lines()
        .filter_map(|l| l.rsplit_once(' '))
        .map(|(p, n)| (p.to_string(), n.parse().expect("a count")))
        .collect()
}

fn dialect(db: &TestDb) -> &'static str {
    match db.kind {
        Kind::Postgres => "postgres",
        Kind::Mysql => "mysql",
        Kind::Sqlite => "sqlite",
    }
}

fn dynamodb_export(db: Option<TestDb>) {
    let Some(dir) = dataset("kv") else { return };
    let Some(db) = db else { return };
    let export = "dynamodb-s3-export/AWSDynamoDB/01716790307109-5f9d6aaa";
    let full: i64 = counts(&dir)
        .iter()
        .filter(|(p, _)| p.starts_with(export))
        .map(|(_, n)| n)
        .sum();
    assert_eq!(full, 133_199);
    let out = db.dir().join("migration");
    let (src, out_s) = (
        dir.join(export).display().to_string(),
        out.display().to_string(),
    );
    let r = cutover(
        &[
            "init",
            "--source",
            &src,
            "--kind",
            "kv",
            "--format",
            "dynamodb",
            "--key",
            "name",
            "--dialect",
            dialect(&db),
            "--out",
            &out_s,
        ],
        &[],
    )
    .ok();
    assert!(
        r.stdout
            .contains("unicorn_activities, unicorn_activities_activities"),
        "{}",
        r.stdout
    );
    let files = mapping_files(&out);
    assert_eq!(files.len(), 1);
    let text = std::fs::read_to_string(&files[0]).unwrap();
    let flat = text.replace("\n# ", " ");
    // The default sample is 1000 records: the mapping says so, and checks the
    // manifest's item count (the child table's count is not known from a sample).
    assert!(
        flat.contains("the first 1000 records were sampled"),
        "{text}"
    );
    assert!(text.contains("for_each = \"value.activities\""), "{text}");
    assert!(text.contains("key = [\"name\", \"seq\"]"), "{text}");
    assert!(
        text.contains("columns.timestamp = \"item.timestamp | required | timestamp\""),
        "{text}"
    );
    assert!(text.contains("expect = 133199"), "{text}");
    run_and_verify(&db, &files, &[]);
    assert_eq!(db.count("SELECT COUNT(*) FROM unicorn_activities"), full);
    assert_eq!(
        db.count("SELECT COUNT(*) FROM unicorn_activities_activities"),
        637_085
    );
    assert_eq!(
        db.count("SELECT COUNT(*) FROM unicorn_activities_activities WHERE name = 'Zane7509'"),
        8
    );
    let first = db
        .scalar("SELECT activity FROM unicorn_activities_activities WHERE name = 'Zane7509' AND seq = 0")
        .unwrap();
    assert_eq!(first, "Studying maths");
    let at = db
        .scalar("SELECT timestamp FROM unicorn_activities_activities WHERE name = 'Zane7509' AND seq = 0")
        .unwrap();
    assert!(at.starts_with("2024-05-04 04:44:31"), "{at}");
}

#[test]
fn dynamodb_export_into_sqlite() {
    dynamodb_export(Some(TestDb::sqlite()));
}

#[test]
fn dynamodb_export_into_postgres() {
    dynamodb_export(TestDb::postgres());
}

fn openfootball(db: Option<TestDb>) {
    let Some(dir) = dataset("json") else { return };
    let Some(db) = db else { return };
    let expected = counts(&dir);
    let out = db.dir().join("migration");
    let pattern = dir.join("openfootball/{season}/{competition}.json");
    let (src, out_s) = (pattern.display().to_string(), out.display().to_string());
    cutover(
        &[
            "init",
            "--source",
            &src,
            "--kind",
            "json",
            "--dialect",
            dialect(&db),
            "--out",
            &out_s,
        ],
        &[],
    )
    .ok();
    let files = mapping_files(&out);
    assert_eq!(files.len(), 1);
    let text = std::fs::read_to_string(&files[0]).unwrap();
    assert!(
        text.contains("key = [\"season\", \"competition\"]"),
        "{text}"
    );
    assert!(
        text.contains("columns.score       = \"item.score | required | json\""),
        "{text}"
    );
    assert!(
        text.contains("# missing or null in 491 of 17816 sampled"),
        "{text}"
    );
    run_and_verify(&db, &files, &[]);
    assert_eq!(
        db.count("SELECT COUNT(*) FROM openfootball"),
        expected.len() as i64
    );
    let per_file: BTreeMap<String, i64> = db
        .rows("SELECT season, competition, COUNT(*) FROM openfootball_matches GROUP BY season, competition")
        .into_iter()
        .map(|r| {
            let f = format!("{}/{}.json", r[0].clone().unwrap(), r[1].clone().unwrap());
            (f, r[2].as_deref().unwrap().parse().unwrap())
        })
        .collect();
    assert_eq!(per_file, expected, "matches per file = COUNTS.txt");
    assert_eq!(
        db.count("SELECT COUNT(*) FROM openfootball_matches WHERE time IS NULL"),
        491
    );
    assert_eq!(
        db.count("SELECT COUNT(*) FROM openfootball_matches WHERE round IS NULL"),
        5
    );
}

#[test]
fn openfootball_into_sqlite() {
    openfootball(Some(TestDb::sqlite()));
}

#[test]
fn openfootball_into_postgres() {
    openfootball(TestDb::postgres());
}

#[test]
fn a_dynamodb_source_needs_its_key() {
    let Some(dir) = dataset("kv") else { return };
    let out = tempfile::tempdir().unwrap();
    let o = out.path().join("m").display().to_string();
    let src = dir
        .join("dynamodb-s3-export/AWSDynamoDB/01716790307109-5f9d6aaa")
        .display()
        .to_string();
    let r = cutover(
        &[
            "init",
            "--source",
            &src,
            "--kind",
            "kv",
            "--format",
            "dynamodb",
            "--dialect",
            "sqlite",
            "--out",
            &o,
        ],
        &[],
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("needs --key"), "{}", r.stderr);
    let r = cutover(
        &[
            "init",
            "--source",
            &src,
            "--kind",
            "kv",
            "--format",
            "dynamodb",
            "--key",
            "nom",
            "--dialect",
            "sqlite",
            "--out",
            &o,
        ],
        &[],
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("no record could be read to sample (1000 unreadable; the first: "),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("nom"), "{}", r.stderr);
}
