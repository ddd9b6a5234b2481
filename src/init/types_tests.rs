//! Every row of the conversion table: the source type as its catalog declares
//! it, the type written for each target, and the mapping's cast.

use super::*;
use crate::init::catalog::SourceDialect as S;

/// `declared` read the way the catalog readers read it, converted, rendered.
fn to(src: S, declared: &str, d: Dialect) -> (String, Option<&'static str>) {
    let c = convert(src, &parse_declared(declared));
    (render(&c.ty, d).0, c.cast)
}

fn pg(src: S, declared: &str) -> (String, Option<&'static str>) {
    to(src, declared, Dialect::Postgres)
}

#[test]
fn sql_server_to_postgres() {
    let cases: &[(&str, &str, Option<&str>)] = &[
        ("nvarchar(40)", "varchar(40)", None),
        ("varchar(10)", "varchar(10)", None),
        ("nvarchar(max)", "text", None),
        ("varchar(max)", "text", None),
        ("text", "text", None),
        ("ntext", "text", None),
        ("nchar(5)", "varchar(5)", None),
        ("char(2)", "varchar(2)", None),
        ("int", "integer", Some("int")),
        ("bigint", "bigint", Some("int")),
        ("smallint", "smallint", Some("int")),
        ("tinyint", "smallint", Some("int")),
        ("bit", "boolean", Some("bool")),
        ("decimal(10,2)", "numeric(10,2)", Some("decimal")),
        ("numeric(38,10)", "numeric(38,10)", Some("decimal")),
        ("money", "numeric(19,4)", Some("decimal")),
        ("smallmoney", "numeric(10,4)", Some("decimal")),
        ("float", "double precision", Some("float")),
        ("real", "real", Some("float")),
        ("datetime", "timestamp(3)", Some("timestamp")),
        ("datetime2(7)", "timestamp(6)", Some("timestamp")),
        ("datetime2(3)", "timestamp(3)", Some("timestamp")),
        ("smalldatetime", "timestamp(0)", Some("timestamp")),
        ("datetimeoffset(7)", "timestamptz(6)", Some("timestamp")),
        ("date", "date", Some("date")),
        ("time(7)", "time(6)", None),
        ("uniqueidentifier", "uuid", Some("uuid")),
        ("varbinary(max)", "bytea", Some("from_base64")),
        ("varbinary(16)", "bytea", Some("from_base64")),
        ("binary(8)", "bytea", Some("from_base64")),
        ("image", "bytea", Some("from_base64")),
        ("rowversion", "bytea", Some("from_hex")),
        ("timestamp", "bytea", Some("from_hex")),
        ("xml", "xml", None),
        ("sysname", "varchar(128)", None),
    ];
    for (src, want, cast) in cases {
        assert_eq!(pg(S::Mssql, src), (want.to_string(), *cast), "{src}");
    }
}

#[test]
fn float_precision_from_information_schema() {
    // INFORMATION_SCHEMA gives float(24) for a 4-byte float.
    let mut t = SourceType::named("float");
    t.precision = Some(24);
    assert_eq!(convert(S::Mssql, &t).ty, TargetType::Real);
    t.precision = Some(53);
    assert_eq!(convert(S::Mssql, &t).ty, TargetType::Double);
}

#[test]
fn unknown_types_are_text_with_a_todo() {
    for (src, declared) in [
        (S::Mssql, "sql_variant"),
        (S::Mssql, "geography"),
        (S::Mssql, "hierarchyid"),
        (S::Postgres, "tsvector"),
        (S::Mysql, "geometry"),
    ] {
        let c = convert(src, &parse_declared(declared));
        assert!(c.todo, "{declared}");
        assert_eq!(c.ty, TargetType::Text);
        assert!(
            c.note
                .as_deref()
                .is_some_and(|n| n.starts_with("TODO") && n.contains(declared)),
            "{declared}: {:?}",
            c.note
        );
    }
}

#[test]
fn sql_server_to_mysql_and_sqlite() {
    let m = |s: &str| to(S::Mssql, s, Dialect::Mysql).0;
    assert_eq!(m("nvarchar(40)"), "VARCHAR(40)");
    assert_eq!(m("nvarchar(max)"), "LONGTEXT");
    assert_eq!(m("nvarchar(20000)"), "LONGTEXT");
    assert_eq!(m("nchar(300)"), "VARCHAR(300)");
    assert_eq!(m("nchar(5)"), "VARCHAR(5)");
    assert_eq!(m("tinyint"), "TINYINT UNSIGNED");
    assert_eq!(m("bit"), "BOOLEAN");
    assert_eq!(m("money"), "DECIMAL(19,4)");
    assert_eq!(m("datetime2(7)"), "DATETIME(6)");
    assert_eq!(m("datetimeoffset"), "DATETIME");
    assert_eq!(m("uniqueidentifier"), "CHAR(36)");
    assert_eq!(m("varbinary(max)"), "LONGBLOB");
    assert_eq!(m("xml"), "LONGTEXT");
    assert_eq!(m("float"), "DOUBLE");
    let s = |x: &str| to(S::Mssql, x, Dialect::Sqlite).0;
    assert_eq!(s("int"), "INTEGER");
    assert_eq!(s("smallint"), "SMALLINT");
    assert_eq!(s("nvarchar(40)"), "VARCHAR(40)");
    assert_eq!(s("decimal(10,2)"), "NUMERIC(10,2)");
    assert_eq!(s("datetime"), "TIMESTAMP");
    assert_eq!(s("datetimeoffset"), "TIMESTAMPTZ");
    assert_eq!(s("uniqueidentifier"), "UUID");
    assert_eq!(s("image"), "BLOB");
    assert_eq!(s("bit"), "BOOLEAN");
    assert_eq!(s("xml"), "TEXT");
    // Beyond 15 digits SQLite's NUMERIC is a float: exact digits as text.
    assert_eq!(s("decimal(38,10)"), "TEXT");
    assert_eq!(to(S::Postgres, "numeric", Dialect::Sqlite).0, "TEXT");
}

#[test]
fn the_sqlite_sink_reads_back_what_sqlite_ddl_says() {
    // The SQLite target learns each column's type from its declared type: what
    // init writes must come back as the type it meant.
    use crate::sink::sqlite::introspect::column_type;
    use crate::value::ColumnType as C;
    let cases = [
        (TargetType::SmallInt, C::Integer { bits: 16 }),
        (TargetType::BigInt, C::Integer { bits: 64 }),
        (TargetType::Bool, C::Bool),
        (
            TargetType::Numeric(Some((10, 2))),
            C::Decimal {
                precision: Some(10),
                scale: Some(2),
            },
        ),
        (TargetType::Double, C::Float),
        (TargetType::Varchar(40), C::Text { max_len: Some(40) }),
        (TargetType::Text, C::Text { max_len: None }),
        (TargetType::Date, C::Date),
        (TargetType::Time(Some(3)), C::Time),
        (TargetType::Timestamp(Some(3)), C::Timestamp { tz: false }),
        (TargetType::TimestampTz(None), C::Timestamp { tz: true }),
        (TargetType::Uuid, C::Uuid),
        (TargetType::Bytes, C::Bytes),
        (TargetType::Json, C::Json { binary: false }),
    ];
    for (t, want) in cases {
        let (declared, _) = render(&t, Dialect::Sqlite);
        assert_eq!(column_type(&declared), want, "{t:?} as {declared}");
    }
}

#[test]
fn postgres_sources() {
    let p = |s: &str| pg(S::Postgres, s);
    assert_eq!(p("integer"), ("integer".into(), Some("int")));
    assert_eq!(p("character varying(30)"), ("varchar(30)".into(), None));
    assert_eq!(p("character(2)"), ("varchar(2)".into(), None));
    assert_eq!(p("numeric"), ("numeric".into(), Some("decimal")));
    assert_eq!(
        p("numeric(12,3)"),
        ("numeric(12,3)".into(), Some("decimal"))
    );
    assert_eq!(
        p("timestamp with time zone"),
        ("timestamptz".into(), Some("timestamp"))
    );
    assert_eq!(
        p("timestamp without time zone"),
        ("timestamp".into(), Some("timestamp"))
    );
    assert_eq!(p("jsonb"), ("jsonb".into(), Some("json")));
    assert_eq!(p("bytea"), ("bytea".into(), Some("from_base64")));
    assert_eq!(p("interval"), ("interval".into(), None));
    assert_eq!(p("inet"), ("inet".into(), None));
    assert_eq!(to(S::Postgres, "interval", Dialect::Mysql).0, "LONGTEXT");
    assert_eq!(
        to(S::Postgres, "numeric", Dialect::Mysql).0,
        "DECIMAL(65,30)"
    );
    let mut arr = SourceType::named("integer");
    arr.array = true;
    assert_eq!(convert(S::Postgres, &arr).ty, TargetType::Json);
    let mut e = SourceType::named("mood");
    e.labels = vec!["sad".into(), "ok".into(), "happy".into()];
    let c = convert(S::Postgres, &e);
    assert_eq!(c.ty, TargetType::Varchar(5));
    assert!(c.note.unwrap().contains("sad, ok, happy"));
}

#[test]
fn mysql_sources() {
    let p = |s: &str| pg(S::Mysql, s);
    assert_eq!(p("tinyint(1)"), ("boolean".into(), Some("bool")));
    assert_eq!(p("tinyint(4)"), ("smallint".into(), Some("int")));
    assert_eq!(p("int(10) unsigned"), ("bigint".into(), Some("int")));
    assert_eq!(p("int(11)"), ("integer".into(), Some("int")));
    assert_eq!(
        p("bigint(20) unsigned"),
        ("numeric(20,0)".into(), Some("decimal"))
    );
    assert_eq!(p("mediumint(9)"), ("integer".into(), Some("int")));
    assert_eq!(
        p("decimal(10,2)"),
        ("numeric(10,2)".into(), Some("decimal"))
    );
    assert_eq!(p("double"), ("double precision".into(), Some("float")));
    assert_eq!(p("float"), ("real".into(), Some("float")));
    assert_eq!(p("bit(1)"), ("boolean".into(), Some("bool")));
    assert_eq!(p("varchar(255)"), ("varchar(255)".into(), None));
    assert_eq!(p("longtext"), ("text".into(), None));
    assert_eq!(p("datetime(3)"), ("timestamp(3)".into(), Some("timestamp")));
    assert_eq!(p("timestamp"), ("timestamptz".into(), Some("timestamp")));
    assert_eq!(p("year"), ("smallint".into(), Some("int")));
    assert_eq!(p("blob"), ("bytea".into(), Some("from_hex")));
    assert_eq!(p("json"), ("jsonb".into(), Some("json")));
    let mut e = parse_declared("enum('a','bb')");
    e.labels = vec!["a".into(), "bb".into()];
    assert_eq!(convert(S::Mysql, &e).ty, TargetType::Varchar(2));
}

#[test]
fn sqlite_affinities() {
    let p = |s: &str| pg(S::Sqlite, s);
    assert_eq!(p("INTEGER"), ("bigint".into(), Some("int")));
    assert_eq!(p("NVARCHAR(160)"), ("varchar(160)".into(), None));
    assert_eq!(p("TEXT"), ("text".into(), None));
    assert_eq!(
        p("NUMERIC(10,2)"),
        ("numeric(10,2)".into(), Some("decimal"))
    );
    assert_eq!(p("DATETIME"), ("timestamp".into(), Some("timestamp")));
    assert_eq!(p("DATE"), ("date".into(), Some("date")));
    assert_eq!(p("BLOB"), ("bytea".into(), Some("from_base64")));
    assert_eq!(p("REAL"), ("double precision".into(), Some("float")));
    assert_eq!(p("BOOLEAN"), ("boolean".into(), Some("bool")));
    assert_eq!(p(""), ("text".into(), None));
}

#[test]
fn declared_types_parse() {
    let t = parse_declared("NVARCHAR(40)");
    assert_eq!((t.name.as_str(), t.length), ("nvarchar", Some(40)));
    let t = parse_declared("numeric(10, 2)");
    assert_eq!((t.precision, t.scale), (Some(10), Some(2)));
    let t = parse_declared("varchar(max)");
    assert_eq!(t.length, Some(-1));
    let t = parse_declared("int(10) unsigned");
    assert_eq!((t.name.as_str(), t.unsigned), ("int", true));
    let t = parse_declared("double precision");
    assert_eq!(t.name, "double precision");
}
