//! The plan of a small catalog with every feature: load order, names, keys,
//! foreign keys, indexes, defaults, TODOs; and every generated mapping loads
//! with the real mapping loader.

use super::*;
use crate::init::catalog::{Column, ForeignKey, Index, Key, SourceType};
use crate::init::{ddl, mappings};
use crate::mapping::Mapping;
use std::path::Path;

fn col(name: &str, declared: &str, nullable: bool) -> Column {
    Column {
        name: name.into(),
        ty: types::parse_declared(declared),
        nullable,
        default: None,
        identity: false,
        max_len_found: None,
    }
}

fn key(cols: &[&str]) -> Key {
    Key {
        name: None,
        columns: cols.iter().map(|c| c.to_string()).collect(),
    }
}

fn table(name: &str, columns: Vec<Column>, pk: Option<Key>) -> Table {
    Table {
        schema: Some("dbo".into()),
        name: name.into(),
        columns,
        primary_key: pk,
        uniques: vec![],
        foreign_keys: vec![],
        indexes: vec![],
        rows: 3,
    }
}

/// OrderLine references Order (declared first) which references Customer and itself.
fn catalog() -> Catalog {
    let mut line = table(
        "OrderLine",
        vec![
            col("OrderLineID", "int", false),
            col("OrderID", "int", false),
            col("Amount", "money", false),
            col("Shape", "geography", true),
        ],
        Some(Key {
            name: Some("PK_OrderLine".into()),
            columns: vec!["OrderLineID".into()],
        }),
    );
    line.foreign_keys.push(ForeignKey {
        name: Some("FK_OrderLine_Order".into()),
        columns: vec!["OrderID".into()],
        ref_schema: None,
        ref_table: "Order".into(),
        ref_columns: vec!["OrderID".into()],
        on_delete: "CASCADE".into(),
        on_update: "NO ACTION".into(),
    });
    line.indexes.push(Index {
        name: Some("IX_OrderLine_OrderID".into()),
        columns: vec!["OrderID".into()],
        unique: false,
    });
    let mut order = table(
        "Order",
        vec![
            col("OrderID", "int", false),
            col("CustomerID", "int", false),
            col("ParentOrderID", "int", true),
            col("Placed At", "datetime2(7)", false),
            col("Note", "nvarchar(max)", true),
        ],
        Some(key(&["OrderID"])),
    );
    order.columns[3].default = Some(Default::CurrentTimestamp);
    order.foreign_keys = vec![
        ForeignKey {
            name: None,
            columns: vec!["CustomerID".into()],
            ref_schema: None,
            ref_table: "Customer".into(),
            ref_columns: vec!["CustomerID".into()],
            on_delete: "NO ACTION".into(),
            on_update: "NO ACTION".into(),
        },
        ForeignKey {
            name: None,
            columns: vec!["ParentOrderID".into()],
            ref_schema: None,
            ref_table: "Order".into(),
            ref_columns: vec!["OrderID".into()],
            on_delete: "NO ACTION".into(),
            on_update: "NO ACTION".into(),
        },
    ];
    let mut customer = table(
        "Customer",
        vec![
            col("CustomerID", "int", false),
            col("Email", "nvarchar(120)", false),
            col("Active", "bit", false),
        ],
        Some(key(&["CustomerID"])),
    );
    customer.columns[2].default = Some(Default::Number("1".into()));
    customer.uniques.push(Key {
        name: Some("UQ_Customer_Email".into()),
        columns: vec!["Email".into()],
    });
    let log = table(
        "AuditLog",
        vec![
            col("At", "datetime", false),
            col("What", "nvarchar(200)", true),
        ],
        None,
    );
    Catalog {
        dialect: SourceDialect::Mssql,
        database: "Pliers".into(),
        tables: vec![line, order, customer, log],
    }
}

fn options(d: Dialect, naming: Naming) -> Options {
    Options {
        dialect: d,
        naming,
        prefix: "pliers".into(),
        origin: "SQL Server mssql://sa@legacy:1433/pliers".into(),
    }
}

fn source() -> SqlSource {
    SqlSource {
        url: "mssql://sa@legacy:1433/pliers".into(),
        password_env: Some("CUTOVER_SOURCE_PASSWORD".into()),
    }
}

#[test]
fn tables_come_in_foreign_key_order_with_their_names() {
    let p = plan(
        &catalog(),
        &source(),
        &options(Dialect::Postgres, Naming::SnakeCase),
    );
    let names: Vec<&str> = p.schema.tables.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["customer", "order", "order_line", "audit_log"]);
    let stems: Vec<&str> = p.jobs.iter().map(|j| j.file_stem.as_str()).collect();
    assert_eq!(
        stems,
        ["01_customer", "02_order", "03_order_line", "04_audit_log"]
    );
    let order = &p.schema.tables[1];
    assert_eq!(order.columns[3].name, "placed_at");
    assert_eq!(order.foreign_keys[0].name, "order_customer_id_fkey");
    assert_eq!(order.foreign_keys[1].ref_table, "order");
    let line = &p.schema.tables[2];
    assert_eq!(line.primary_key.as_ref().unwrap().name, "pk_order_line");
    assert_eq!(line.indexes[0].name, "ix_order_line_order_id");
    assert_eq!(line.foreign_keys[0].on_delete, "CASCADE");
    assert_eq!(p.schema.tables[0].uniques[0].name, "uq_customer_email");
    assert!(
        p.notes
            .iter()
            .any(|n| n.contains("references its own table")),
        "{:?}",
        p.notes
    );
    assert_eq!(p.todos.len(), 2, "{:?}", p.todos);
    assert!(p.todos[0].contains("dbo.OrderLine.Shape") && p.todos[0].contains("geography"));
    assert!(p.todos[1].contains("dbo.AuditLog: no primary key"));
}

#[test]
fn the_ddl_reads_like_a_hand_written_schema() {
    let p = plan(
        &catalog(),
        &source(),
        &options(Dialect::Postgres, Naming::SnakeCase),
    );
    let base = chrono::NaiveDate::from_ymd_opt(2026, 12, 3)
        .unwrap()
        .and_hms_opt(10, 0, 0)
        .unwrap();
    let files = ddl::files(&p.schema, &p.origin, base);
    let names: Vec<&str> = files.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "20261203100000000_create_customer.up.sql",
            "20261203100000000_create_customer.down.sql",
            "20261203100000001_create_order.up.sql",
            "20261203100000001_create_order.down.sql",
            "20261203100000002_create_order_line.up.sql",
            "20261203100000002_create_order_line.down.sql",
            "20261203100000003_create_audit_log.up.sql",
            "20261203100000003_create_audit_log.down.sql",
            "20261203100000004_create_foreign_keys.up.sql",
            "20261203100000004_create_foreign_keys.down.sql",
        ]
    );
    let customer = &files[0].text;
    assert!(
        customer.contains("    active boolean NOT NULL DEFAULT TRUE,"),
        "{customer}"
    );
    assert!(
        customer.contains("CONSTRAINT uq_customer_email UNIQUE (email)"),
        "{customer}"
    );
    let order = &files[2].text;
    assert!(order.contains("CREATE TABLE \"order\" ("), "{order}");
    assert!(
        order.contains("placed_at timestamp(6) NOT NULL DEFAULT CURRENT_TIMESTAMP,"),
        "{order}"
    );
    assert!(
        order.contains("-- datetime2(7): precision 7 is more than the target's 6"),
        "{order}"
    );
    let line = &files[4].text;
    assert!(line.contains("amount numeric(19,4) NOT NULL,"), "{line}");
    assert!(
        line.contains("shape text") && line.contains("TODO: no conversion for geography"),
        "{line}"
    );
    assert!(line.contains("CREATE INDEX ix_order_line_order_id ON order_line (order_id);"));
    let log = &files[6].text;
    assert!(log.contains("TODO: no primary key"), "{log}");
    assert!(!log.contains("PRIMARY KEY ("), "{log}");
    let fks = &files[8].text;
    assert!(fks.contains(
        "ALTER TABLE order_line ADD CONSTRAINT fk_order_line_order FOREIGN KEY (order_id) REFERENCES \"order\" (order_id) ON DELETE CASCADE ON UPDATE NO ACTION;"
    ), "{fks}");
    assert!(files[9]
        .text
        .starts_with("ALTER TABLE order_line DROP CONSTRAINT fk_order_line_order;"));
    assert_eq!(files[3].text, "DROP TABLE \"order\";\n");
}

#[test]
fn mysql_and_sqlite_ddl() {
    let p = plan(
        &catalog(),
        &source(),
        &options(Dialect::Mysql, Naming::Keep),
    );
    let files = ddl::files(&p.schema, &p.origin, chrono::NaiveDateTime::default());
    let order = &files[2].text;
    assert!(order.contains("CREATE TABLE `Order` ("), "{order}");
    assert!(
        order.contains("`Placed At` DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),"),
        "{order}"
    );
    assert!(
        order.contains("DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;"),
        "{order}"
    );
    assert!(
        files[9].text.contains("DROP FOREIGN KEY"),
        "{}",
        files[9].text
    );
    let p = plan(
        &catalog(),
        &source(),
        &options(Dialect::Sqlite, Naming::SnakeCase),
    );
    let files = ddl::files(&p.schema, &p.origin, chrono::NaiveDateTime::default());
    assert_eq!(files.len(), 8, "SQLite: no migration for foreign keys");
    assert!(files[4].text.contains(
        "CONSTRAINT fk_order_line_order FOREIGN KEY (order_id) REFERENCES \"order\" (order_id) ON DELETE CASCADE ON UPDATE NO ACTION"
    ), "{}", files[4].text);
    assert!(
        files[0].text.contains("active BOOLEAN NOT NULL DEFAULT 1"),
        "{}",
        files[0].text
    );
}

/// Every generated mapping loads with the real loader, except the one whose
/// key the user must choose, which fails with the reason in its comment.
#[test]
fn every_generated_mapping_loads() {
    let dir = tempfile::tempdir().unwrap();
    for (d, naming) in [
        (Dialect::Postgres, Naming::SnakeCase),
        (Dialect::Mysql, Naming::Keep),
        (Dialect::Sqlite, Naming::Keep),
    ] {
        let p = plan(&catalog(), &source(), &options(d, naming));
        for job in &p.jobs {
            let text = mappings::render(job, &p.origin, "../sql");
            let file = dir.path().join(format!("{}.toml", job.file_stem));
            std::fs::write(&file, &text).unwrap();
            let loaded = Mapping::load(&file);
            if job.file_stem.ends_with("audit_log") {
                let e = loaded.expect_err("a mapping without a key is refused");
                let msg = e.to_string();
                assert!(msg.contains("a SQL source needs `key"), "{msg}");
                assert!(msg.contains("`key` must name at least one column"), "{msg}");
                let flat = text.replace("\n# ", " ");
                assert!(
                    flat.contains("TODO: dbo.AuditLog has no primary key or unique constraint")
                        && flat.contains("NOT NULL candidates: At"),
                    "{text}"
                );
                continue;
            }
            let m = loaded.unwrap_or_else(|e| panic!("{e}\n{text}"));
            assert_eq!(
                m.source.password_env.as_deref(),
                Some("CUTOVER_SOURCE_PASSWORD")
            );
            assert_eq!(m.checks.len(), 1);
            assert_eq!(m.checks[0].expect, serde_json::json!(3));
            assert!(m.schema.as_deref().is_some_and(|s| s.ends_with("sql")));
            if job.file_stem.ends_with("order") {
                let t = &m.tables[0];
                let placed = t
                    .columns
                    .iter()
                    .find(|c| c.text.contains("Placed At"))
                    .unwrap();
                assert_eq!(placed.text, "value['Placed At'] | required | timestamp");
                assert_eq!(m.source.table.as_deref(), Some("dbo.Order"));
                assert_eq!(m.source.key, ["OrderID"]);
            }
        }
    }
}

#[test]
fn sqlite_lengths_are_widened_to_what_the_source_holds() {
    let mut cat = catalog();
    cat.dialect = SourceDialect::Sqlite;
    cat.tables[2].columns[1] = Column {
        max_len_found: Some(150),
        ..col("Email", "NVARCHAR(120)", false)
    };
    let p = plan(
        &cat,
        &source(),
        &options(Dialect::Postgres, Naming::SnakeCase),
    );
    let c = &p.schema.tables[0].columns[1];
    assert_eq!(c.ty, TargetType::Varchar(150));
    assert!(c
        .comment
        .as_deref()
        .unwrap()
        .contains("values of 150 characters"));
}

#[test]
fn a_foreign_key_cycle_is_named() {
    let mut cat = catalog();
    cat.tables[2].foreign_keys.push(ForeignKey {
        name: None,
        columns: vec!["CustomerID".into()],
        ref_schema: None,
        ref_table: "OrderLine".into(),
        ref_columns: vec!["OrderLineID".into()],
        on_delete: "NO ACTION".into(),
        on_update: "NO ACTION".into(),
    });
    let p = plan(
        &cat,
        &source(),
        &options(Dialect::Postgres, Naming::SnakeCase),
    );
    assert_eq!(p.schema.tables.len(), 4);
    assert!(
        p.notes.iter().any(|n| n.contains("foreign-key cycle")),
        "{:?}",
        p.notes
    );
    let _ = SourceType::default();
    let _ = Path::new(".");
}
