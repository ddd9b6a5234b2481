//! `cutover init` from SQL Server: the real Chinook script on the iridium TDS
//! test server, read through tiberius, then `run` into PostgreSQL and MariaDB.
//!
//! What this server answers and what it cannot do (so what this test shows):
//! - It answers INFORMATION_SCHEMA.TABLES, COLUMNS (DATA_TYPE, lengths,
//!   precision, scale, nullability), TABLE_CONSTRAINTS and KEY_COLUMN_USAGE for
//!   primary keys, and sys.foreign_keys / sys.foreign_key_columns / sys.tables /
//!   sys.schemas / sys.columns for foreign keys, sys.indexes / sys.index_columns
//!   for indexes: init reads Chinook's 11 tables, keys and 11 foreign keys from it.
//! - Its KEY_COLUMN_USAGE holds no UNIQUE constraints and its
//!   REFERENTIAL_CONSTRAINTS no UNIQUE_CONSTRAINT_NAME (that is why foreign keys
//!   are read from sys.*); Chinook has no unique constraints, so nothing is lost here.
//! - Its sys.indexes lists each column of a composite primary key as a unique
//!   index of its own, with is_primary_key = 0 (PlaylistTrack): init does not carry
//!   over a unique index on a part of the primary key, and this test checks that
//!   no UNIQUE constraint reaches the schema.
//! - It has no COUNT_BIG: init counts with COUNT(*) where COUNT_BIG fails.
//! - It sends DATETIME with a wrong epoch (../shared/TESTING.md): the two
//!   generated mappings with dates (Employee, Invoice) are given a `query` that
//!   reads them as CONVERT(VARCHAR(19), col, 120) text, as a user of this server
//!   would; on a real SQL Server the generated `table` sources are right as written.
//!   The datetime -> timestamp(3) conversion itself is unit-tested (src/init/types_tests.rs).

use super::init::{assert_chinook, mapping_files, run_and_verify};
use super::mssql::{runtime, tds_server};
use super::util::{cutover, dataset, write, TestDb};
use std::path::Path;

/// The generated `table = "dbo.T"` of a mapping replaced by a query.
fn with_query(file: &str, table: &str, query: &str) {
    let text = std::fs::read_to_string(file).unwrap();
    let from = format!("table = \"dbo.{table}\"\n");
    assert!(text.contains(&from), "{file}: {text}");
    let q = toml::Value::String(query.into()).to_string();
    write(
        Path::new(file),
        &text.replace(&from, &format!("query = {q}\n")),
    );
}

fn chinook_from_sql_server(db: Option<TestDb>, naming: &str) {
    let Some(dir) = dataset("chinook") else {
        return;
    };
    let Some(db) = db else { return };
    let script = std::fs::read_to_string(dir.join("Chinook_SqlServer.sql")).expect("script");
    let rt = runtime();
    let port = tds_server(&rt, &script);
    let url = format!("mssql://127.0.0.1:{port}/master?encrypt=DANGER_PLAINTEXT");
    let out = db.dir().join("migration");
    let out_s = out.display().to_string();
    let dialect = if db.url.starts_with("mysql") {
        "mysql"
    } else {
        "postgres"
    };
    let r = cutover(
        &[
            "init",
            "--source",
            &url,
            "--dialect",
            dialect,
            "--naming",
            naming,
            "--out",
            &out_s,
        ],
        &[],
    )
    .ok();
    assert!(r.stdout.contains("11 mappings"), "{}", r.stdout);
    assert!(!r.stdout.contains("TODO"), "{}", r.stdout);
    let files = mapping_files(&out);
    let file = |t: &str| {
        files
            .iter()
            .find(|f| f.ends_with(&format!("_{t}.toml")))
            .unwrap_or_else(|| panic!("{t}: {files:?}"))
            .clone()
    };
    let snake = naming == "snake_case";
    let date = |c: &str| format!("CONVERT(VARCHAR(19), {c}, 120) AS {c}");
    with_query(
        &file("employee"),
        "Employee",
        &format!(
            "SELECT EmployeeId, LastName, FirstName, Title, ReportsTo, {}, {}, Address, City, State, Country, PostalCode, Phone, Fax, Email FROM dbo.Employee",
            date("BirthDate"),
            date("HireDate")
        ),
    );
    with_query(
        &file("invoice"),
        "Invoice",
        &format!(
            "SELECT InvoiceId, CustomerId, {}, BillingAddress, BillingCity, BillingState, BillingCountry, BillingPostalCode, Total FROM dbo.Invoice",
            date("InvoiceDate")
        ),
    );
    let ddl: String = std::fs::read_dir(out.join("sql"))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect();
    let lower = ddl.to_lowercase();
    assert!(
        lower.contains("numeric(10,2) not null") || lower.contains("decimal(10,2) not null"),
        "{ddl}"
    );
    assert!(
        lower.contains("timestamp(3)") || lower.contains("datetime(3)"),
        "{ddl}"
    );
    assert!(
        !ddl.contains("UNIQUE"),
        "Chinook has no unique constraints: {ddl}"
    );
    run_and_verify(&db, &files, &[]);
    assert_chinook(&db, !snake);
}

#[test]
fn chinook_sql_server_into_postgres() {
    chinook_from_sql_server(TestDb::postgres(), "snake_case");
}

#[test]
fn chinook_sql_server_into_postgres_keeping_names() {
    chinook_from_sql_server(TestDb::postgres(), "keep");
}

#[test]
fn chinook_sql_server_into_mariadb() {
    chinook_from_sql_server(TestDb::mysql(), "snake_case");
}

#[test]
fn a_missing_schema_is_a_usage_error() {
    let Some(dir) = dataset("chinook") else {
        return;
    };
    let script = std::fs::read_to_string(dir.join("Chinook_SqlServer.sql")).expect("script");
    let rt = runtime();
    let port = tds_server(&rt, &script);
    let url = format!("mssql://sa:Pa55word@127.0.0.1:{port}/master?encrypt=DANGER_PLAINTEXT");
    let out = tempfile::tempdir().unwrap();
    let o = out.path().join("m").display().to_string();
    let r = cutover(
        &[
            "init",
            "--source",
            &url,
            "--dialect",
            "postgres",
            "--out",
            &o,
            "--schema",
            "legacy",
        ],
        &[],
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("no tables in schema legacy; schemas with tables: dbo"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("Pa55word"), "{}", r.stderr);
    let r = cutover(
        &[
            "init",
            "--source",
            "mssql://127.0.0.1:1/x?encrypt=DANGER_PLAINTEXT",
            "--dialect",
            "postgres",
            "--out",
            &o,
        ],
        &[],
    );
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("cannot reach the source"), "{}", r.stderr);
}
