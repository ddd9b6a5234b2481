//! The type conversion table of `init`: a source column type (as its catalog
//! declares it) becomes a dialect-neutral [`TargetType`], rendered for the target
//! dialect, with the cast the mapping pipes the value through and a note when
//! something had to change. A type without a conversion becomes `text` with a
//! `-- TODO` (the value arrives as text from every source reader).
//!
//! | source | target type | cast |
//! |---|---|---|
//! | SQL Server `bigint`/`int`/`smallint` | `bigint`/`integer`/`smallint` | `int` |
//! | SQL Server `tinyint` (0..255) | `smallint` (MySQL `TINYINT UNSIGNED`) | `int` |
//! | `bit`, `boolean`, MySQL `tinyint(1)`/`bit(1)` | `boolean` | `bool` |
//! | `decimal(p,s)`/`numeric(p,s)` | `numeric(p,s)` | `decimal` |
//! | SQL Server `money` / `smallmoney` | `numeric(19,4)` / `numeric(10,4)` | `decimal` |
//! | `float`/`double`, `real` | `double precision`, `real` | `float` |
//! | `nvarchar(n)`/`varchar(n)` | `varchar(n)` | — |
//! | `nchar(n)`/`char(n)` | `varchar(n)` (keeps the padded values; `char::text` and MySQL's CHAR drop trailing spaces) | — |
//! | `(n)varchar(max)`, `(n)text`, `text`, `clob` | `text` (MySQL `LONGTEXT`) | — |
//! | `datetime`, `datetime2(p)`, `smalldatetime`, `timestamp(p)` | `timestamp(p)` (MySQL `DATETIME(p)`) | `timestamp` |
//! | `datetimeoffset(p)`, `timestamptz`, MySQL `TIMESTAMP` | `timestamptz(p)` (MySQL `DATETIME(p)`, in UTC) | `timestamp` |
//! | `date`, `time(p)` | `date`, `time(p)` | `date`, — |
//! | `uniqueidentifier`, `uuid` | `uuid` (MySQL `CHAR(36)`) | `uuid` |
//! | `varbinary`/`binary`/`image`/`bytea`/`blob` | `bytea` (MySQL `LONGBLOB`, SQLite `BLOB`) | `from_base64` (MySQL source: `from_hex` of `HEX(col)`) |
//! | SQL Server `rowversion`/`timestamp` | `bytea` | `from_hex` (the reader gives `0x…`) |
//! | `xml` | `xml` (MySQL `LONGTEXT`, SQLite `TEXT`) | — |
//! | `json`/`jsonb` | `jsonb` (MySQL `JSON`, SQLite `JSON`) | `json` |
//! | MySQL `enum(…)`/`set(…)`, PostgreSQL enums | `varchar(n)` of the longest label | — |
//! | PostgreSQL arrays | `jsonb` (the reader gives JSON arrays) | `json` |
//! | PostgreSQL `interval`, `inet`, `cidr`, `macaddr`, `bit(n)`, ranges | as is into PostgreSQL, else `text` | — |
//! | SQLite declared types | by SQLite's affinity rules: `INT` → `bigint`, `CHAR`/`CLOB`/`TEXT` → `varchar(n)`/`text`, `BLOB` → `bytea`, `REAL`/`FLOA`/`DOUB` → `double precision`, `NUMERIC(p,s)`/`DECIMAL` → `numeric`, `DATETIME`/`DATE`/`TIME`/`BOOLEAN` as named | as above |

use super::catalog::{SourceDialect, SourceType};
use crate::dialect::Dialect;

/// A target column type, before it is spelled for a dialect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetType {
    SmallInt,
    Integer,
    BigInt,
    /// 0..255 (SQL Server `tinyint`): `smallint`, MySQL `TINYINT UNSIGNED`.
    UnsignedTiny,
    Bool,
    /// `numeric(p,s)`; `None`: unbounded (PostgreSQL `numeric`).
    Numeric(Option<(u32, u32)>),
    Real,
    Double,
    Varchar(u32),
    Text,
    Date,
    Time(Option<u32>),
    Timestamp(Option<u32>),
    TimestampTz(Option<u32>),
    Uuid,
    Bytes,
    Json,
    Xml,
    /// A type the target takes as the source spells it (PostgreSQL to PostgreSQL:
    /// `interval`, `inet`, ranges…); other targets get `text`.
    Native(String),
}

/// How one source column becomes a target column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conversion {
    pub ty: TargetType,
    /// The cast function the mapping pipes the value through, if any.
    pub cast: Option<&'static str>,
    /// What changed on the way, for the comment next to the column.
    pub note: Option<String>,
    /// No conversion is known: written as `text` with a `-- TODO`.
    pub todo: bool,
}

fn conv(ty: TargetType) -> Conversion {
    let cast = default_cast(&ty);
    Conversion {
        ty,
        cast,
        note: None,
        todo: false,
    }
}

fn noted(ty: TargetType, note: impl Into<String>) -> Conversion {
    Conversion {
        note: Some(note.into()),
        ..conv(ty)
    }
}

fn todo(declared: &str) -> Conversion {
    Conversion {
        ty: TargetType::Text,
        cast: None,
        note: Some(format!(
            "TODO: no conversion for {declared}: written as text; choose the type and cast"
        )),
        todo: true,
    }
}

/// The cast a value needs on its way into a column of this type.
pub fn default_cast(ty: &TargetType) -> Option<&'static str> {
    use TargetType as T;
    match ty {
        T::SmallInt | T::Integer | T::BigInt | T::UnsignedTiny => Some("int"),
        T::Bool => Some("bool"),
        T::Numeric(_) => Some("decimal"),
        T::Real | T::Double => Some("float"),
        T::Date => Some("date"),
        T::Timestamp(_) | T::TimestampTz(_) => Some("timestamp"),
        T::Uuid => Some("uuid"),
        T::Bytes => Some("from_base64"),
        T::Json => Some("json"),
        T::Varchar(_) | T::Text | T::Time(_) | T::Xml | T::Native(_) => None,
    }
}

/// A declared length as a varchar width: `max` (-1) and absurd lengths are text.
fn varchar(len: Option<i64>) -> TargetType {
    match len {
        Some(n) if n > 0 => u32::try_from(n).map_or(TargetType::Text, TargetType::Varchar),
        _ => TargetType::Text,
    }
}

/// `char(n)`: a `varchar(n)`, which keeps the values padded as the source gives
/// them (PostgreSQL's `char::text` and MySQL's CHAR drop the trailing spaces).
fn char_type(t: &SourceType) -> Conversion {
    let n = match t.length {
        Some(n) if n > 0 => u32::try_from(n).unwrap_or(u32::MAX),
        // `char` without a length is char(1) in SQL Server, PostgreSQL and MySQL.
        _ => 1,
    };
    noted(
        TargetType::Varchar(n),
        format!(
            "{}: varchar keeps the values padded as the source gives them",
            t.declared
        ),
    )
}

fn numeric(t: &SourceType) -> TargetType {
    match (t.precision, t.scale) {
        (Some(p), s) if p > 0 => TargetType::Numeric(Some((p, s.unwrap_or(0)))),
        _ => TargetType::Numeric(None),
    }
}

/// Convert a source column type.
pub fn convert(src: SourceDialect, t: &SourceType) -> Conversion {
    if t.array {
        return noted(
            TargetType::Json,
            format!("{} array: kept as a JSON array", t.name),
        );
    }
    match src {
        SourceDialect::Mssql => mssql(t),
        SourceDialect::Postgres => postgres(t),
        SourceDialect::Mysql => mysql(t),
        SourceDialect::Sqlite => sqlite(t),
    }
}

fn mssql(t: &SourceType) -> Conversion {
    use TargetType as T;
    let p = t.precision;
    match t.name.as_str() {
        "bigint" => conv(T::BigInt),
        "int" => conv(T::Integer),
        "smallint" => conv(T::SmallInt),
        "tinyint" => conv(T::UnsignedTiny),
        "bit" => conv(T::Bool),
        "decimal" | "numeric" => conv(numeric(t)),
        "money" => conv(T::Numeric(Some((19, 4)))),
        "smallmoney" => conv(T::Numeric(Some((10, 4)))),
        // float(n): n <= 24 is a 4-byte real (INFORMATION_SCHEMA says 24 or 53).
        "float" if p.is_some_and(|p| p <= 24) => conv(T::Real),
        "float" => conv(T::Double),
        "real" => conv(T::Real),
        "char" | "nchar" => char_type(t),
        "varchar" | "nvarchar" => conv(varchar(t.length)),
        "sysname" => conv(T::Varchar(128)),
        "text" | "ntext" => conv(T::Text),
        "date" => conv(T::Date),
        "time" => conv(T::Time(p)),
        // datetime has 1/300 s: three decimals keep it.
        "datetime" => conv(T::Timestamp(Some(3))),
        "datetime2" => conv(T::Timestamp(p)),
        "smalldatetime" => conv(T::Timestamp(Some(0))),
        "datetimeoffset" => conv(T::TimestampTz(p)),
        "uniqueidentifier" => conv(T::Uuid),
        "binary" | "varbinary" | "image" => conv(T::Bytes),
        // rowversion is `timestamp` in INFORMATION_SCHEMA; the reader gives `0x…` hex.
        "rowversion" | "timestamp" => Conversion {
            cast: Some("from_hex"),
            ..noted(
                T::Bytes,
                "rowversion: its 8 bytes (the target does not generate them)",
            )
        },
        "xml" => conv(T::Xml),
        _ => todo(&t.declared),
    }
}

fn postgres(t: &SourceType) -> Conversion {
    use TargetType as T;
    match t.name.as_str() {
        "smallint" | "int2" => conv(T::SmallInt),
        "integer" | "int" | "int4" => conv(T::Integer),
        "bigint" | "int8" => conv(T::BigInt),
        "boolean" | "bool" => conv(T::Bool),
        "numeric" | "decimal" => conv(numeric(t)),
        "money" => noted(
            T::Numeric(Some((19, 2))),
            "money: as numeric(19,2) (the reader gives lc_monetary's decimal places)",
        ),
        "real" | "float4" => conv(T::Real),
        "double precision" | "float8" => conv(T::Double),
        "character varying" | "varchar" => conv(varchar(t.length)),
        "character" | "char" | "bpchar" => char_type(t),
        "text" | "citext" | "name" => conv(T::Text),
        "date" => conv(T::Date),
        "time without time zone" | "time" => conv(T::Time(t.precision)),
        "time with time zone" | "timetz" => noted(
            T::Native("time with time zone".into()),
            "timetz: kept where the target has it, else text",
        ),
        "timestamp without time zone" | "timestamp" => conv(T::Timestamp(t.precision)),
        "timestamp with time zone" | "timestamptz" => conv(T::TimestampTz(t.precision)),
        "uuid" => conv(T::Uuid),
        "json" | "jsonb" => conv(T::Json),
        "bytea" => conv(T::Bytes),
        "xml" => conv(T::Xml),
        "interval" | "inet" | "cidr" | "macaddr" | "macaddr8" | "bit" | "bit varying"
        | "varbit" | "int4range" | "int8range" | "numrange" | "tsrange" | "tstzrange"
        | "daterange" => Conversion {
            ty: T::Native(t.declared.clone()),
            cast: None,
            note: None,
            todo: false,
        },
        _ if !t.labels.is_empty() => enum_type(t),
        _ => todo(&t.declared),
    }
}

/// An enum: a varchar as wide as its longest label, the labels in the note.
fn enum_type(t: &SourceType) -> Conversion {
    let width = t
        .labels
        .iter()
        .map(|l| l.chars().count())
        .max()
        .unwrap_or(1);
    noted(
        TargetType::Varchar(u32::try_from(width.max(1)).unwrap_or(u32::MAX)),
        format!("{}: one of {}", t.declared, t.labels.join(", ")),
    )
}

fn mysql(t: &SourceType) -> Conversion {
    use TargetType as T;
    let u = t.unsigned;
    match t.name.as_str() {
        // tinyint(1) is MySQL's boolean.
        "tinyint" if t.length == Some(1) => conv(T::Bool),
        "bool" | "boolean" => conv(T::Bool),
        "tinyint" => conv(if u { T::UnsignedTiny } else { T::SmallInt }),
        "smallint" => conv(if u { T::Integer } else { T::SmallInt }),
        "mediumint" => conv(T::Integer),
        "int" | "integer" => conv(if u { T::BigInt } else { T::Integer }),
        "bigint" if u => noted(T::Numeric(Some((20, 0))), "bigint unsigned: numeric(20,0)"),
        "bigint" => conv(T::BigInt),
        "decimal" | "numeric" => conv(numeric(t)),
        "float" => conv(T::Real),
        "double" | "real" => conv(T::Double),
        "bit" if t.precision.is_none_or(|p| p <= 1) => conv(T::Bool),
        "bit" => noted(T::BigInt, format!("{}: its bits as an integer", t.declared)),
        "year" => conv(T::SmallInt),
        "char" => char_type(t),
        "varchar" => conv(varchar(t.length)),
        "tinytext" | "text" | "mediumtext" | "longtext" => conv(T::Text),
        "binary" | "varbinary" | "tinyblob" | "blob" | "mediumblob" | "longblob" => Conversion {
            cast: Some("from_hex"),
            ..noted(
                T::Bytes,
                "read as HEX(col): the MySQL reader gives text for bytes that are UTF-8",
            )
        },
        "date" => conv(T::Date),
        "time" => noted(
            T::Time(t.precision),
            "MySQL TIME can exceed 24 hours; such values fail to load",
        ),
        "datetime" => conv(T::Timestamp(t.precision)),
        "timestamp" => conv(T::TimestampTz(t.precision)),
        "json" => conv(T::Json),
        "enum" => enum_type(t),
        "set" => noted(T::Text, format!("{}: comma-separated labels", t.declared)),
        _ => todo(&t.declared),
    }
}

/// SQLite's affinity rules (https://sqlite.org/datatype3.html, 3.1), with the
/// type names that say more (DATETIME, DATE, BOOLEAN…) taken at their word.
fn sqlite(t: &SourceType) -> Conversion {
    use TargetType as T;
    let d = t.name.to_ascii_uppercase();
    if d.is_empty() {
        return noted(T::Text, "no declared type: any value, kept as text");
    }
    if d.contains("BOOL") {
        conv(T::Bool)
    } else if d.contains("DATETIME") || d.contains("TIMESTAMP") {
        if d.contains("TZ") || d.contains("ZONE") {
            conv(T::TimestampTz(None))
        } else {
            conv(T::Timestamp(None))
        }
    } else if d == "DATE" {
        conv(T::Date)
    } else if d == "TIME" {
        conv(T::Time(None))
    } else if d.contains("UUID") || d == "UNIQUEIDENTIFIER" {
        conv(T::Uuid)
    } else if d.contains("JSON") {
        conv(T::Json)
    } else if d.contains("INT") {
        // SQLite integers are 64-bit whatever the name says.
        conv(T::BigInt)
    } else if d.contains("CHAR") || d.contains("CLOB") || d.contains("TEXT") {
        conv(varchar(t.length))
    } else if d.contains("BLOB") {
        conv(T::Bytes)
    } else if d.contains("REAL") || d.contains("FLOA") || d.contains("DOUB") {
        conv(T::Double)
    } else if d.contains("DEC") || d.contains("NUMERIC") || d.contains("MONEY") {
        conv(numeric(t))
    } else {
        todo(&t.declared)
    }
}

/// A type spelled for a dialect, with a note when the dialect forced a change.
pub fn render(ty: &TargetType, d: Dialect) -> (String, Option<String>) {
    match d {
        Dialect::Postgres => render_pg(ty),
        Dialect::Mysql => render_mysql(ty),
        Dialect::Sqlite => render_sqlite(ty),
    }
}

fn prec(p: Option<u32>, max: u32) -> (String, Option<String>) {
    match p {
        None => (String::new(), None),
        Some(p) if p > max => (
            format!("({max})"),
            Some(format!(
                "precision {p} is more than the target's {max}: rounded to {max} digits"
            )),
        ),
        Some(p) => (format!("({p})"), None),
    }
}

fn render_pg(ty: &TargetType) -> (String, Option<String>) {
    use TargetType as T;
    let s = |x: &str| (x.to_string(), None);
    match ty {
        T::SmallInt | T::UnsignedTiny => s("smallint"),
        T::Integer => s("integer"),
        T::BigInt => s("bigint"),
        T::Bool => s("boolean"),
        T::Numeric(Some((p, sc))) if *p <= 1000 => (format!("numeric({p},{sc})"), None),
        T::Numeric(_) => s("numeric"),
        T::Real => s("real"),
        T::Double => s("double precision"),
        T::Varchar(n) if *n <= 10_485_760 => (format!("varchar({n})"), None),
        T::Varchar(_) | T::Text => s("text"),
        T::Date => s("date"),
        T::Time(p) => {
            let (p, note) = prec(*p, 6);
            (format!("time{p}"), note)
        }
        T::Timestamp(p) => {
            let (p, note) = prec(*p, 6);
            (format!("timestamp{p}"), note)
        }
        T::TimestampTz(p) => {
            let (p, note) = prec(*p, 6);
            (format!("timestamptz{p}"), note)
        }
        T::Uuid => s("uuid"),
        T::Bytes => s("bytea"),
        T::Json => s("jsonb"),
        T::Xml => s("xml"),
        T::Native(n) => (n.clone(), None),
    }
}

fn render_mysql(ty: &TargetType) -> (String, Option<String>) {
    use TargetType as T;
    let s = |x: &str| (x.to_string(), None);
    match ty {
        T::SmallInt => s("SMALLINT"),
        T::UnsignedTiny => s("TINYINT UNSIGNED"),
        T::Integer => s("INT"),
        T::BigInt => s("BIGINT"),
        T::Bool => s("BOOLEAN"),
        T::Numeric(Some((p, sc))) if *p <= 65 && *sc <= 30 => (format!("DECIMAL({p},{sc})"), None),
        T::Numeric(Some((p, sc))) => (
            format!("DECIMAL(65,{})", (*sc).min(30)),
            Some(format!(
                "numeric({p},{sc}) is wider than MySQL's DECIMAL(65,30)"
            )),
        ),
        T::Numeric(None) => (
            "DECIMAL(65,30)".into(),
            Some("unbounded numeric: MySQL needs a precision; DECIMAL(65,30) is the widest".into()),
        ),
        T::Real => s("FLOAT"),
        T::Double => s("DOUBLE"),
        T::Varchar(n) if *n <= 16_383 => (format!("VARCHAR({n})"), None),
        T::Varchar(n) => (
            "LONGTEXT".into(),
            Some(format!(
                "{n} characters is more than a MySQL VARCHAR holds in utf8mb4"
            )),
        ),
        T::Text | T::Xml => s("LONGTEXT"),
        T::Date => s("DATE"),
        T::Time(p) => {
            let (p, note) = prec(*p, 6);
            (format!("TIME{p}"), note)
        }
        T::Timestamp(p) => {
            let (p, note) = prec(*p, 6);
            (format!("DATETIME{p}"), note)
        }
        T::TimestampTz(p) => {
            let (p, note) = prec(*p, 6);
            (
                format!("DATETIME{p}"),
                Some(note.map_or_else(
                    || "MySQL has no time zone type: the instant is stored in UTC".to_string(),
                    |n| format!("{n}; MySQL has no time zone type: the instant is stored in UTC"),
                )),
            )
        }
        T::Uuid => s("CHAR(36)"),
        T::Bytes => s("LONGBLOB"),
        T::Json => s("JSON"),
        T::Native(n) => (
            "LONGTEXT".into(),
            Some(format!("{n}: no MySQL type, kept as text")),
        ),
    }
}

fn render_sqlite(ty: &TargetType) -> (String, Option<String>) {
    use TargetType as T;
    // SQLite keeps a NUMERIC in an 8-byte float beyond 15 digits (and an integer
    // beyond 64 bits): wider decimals are kept exact as text.
    let wide = |what: String| {
        (
            "TEXT".to_string(),
            Some(format!(
                "{what}: SQLite's NUMERIC keeps 15 digits, so the exact digits are kept as text"
            )),
        )
    };
    let name = match ty {
        T::Numeric(Some((p, s))) if *p > 15 => return wide(format!("numeric({p},{s})")),
        T::Numeric(None) => return wide("unbounded numeric".into()),
        T::SmallInt | T::UnsignedTiny => "SMALLINT".into(),
        T::Integer | T::BigInt => "INTEGER".into(),
        T::Bool => "BOOLEAN".into(),
        T::Numeric(Some((p, s))) => format!("NUMERIC({p},{s})"),
        T::Real => "REAL".into(),
        T::Double => "DOUBLE PRECISION".into(),
        T::Varchar(n) => format!("VARCHAR({n})"),
        T::Text | T::Xml | T::Native(_) => "TEXT".into(),
        T::Date => "DATE".into(),
        T::Time(_) => "TIME".into(),
        T::Timestamp(_) => "TIMESTAMP".into(),
        T::TimestampTz(_) => "TIMESTAMPTZ".into(),
        T::Uuid => "UUID".into(),
        T::Bytes => "BLOB".into(),
        T::Json => "JSON".into(),
    };
    (name, None)
}

/// Parse a declared type (`NVARCHAR(40)`, `numeric(10, 2)`, `varchar(max)`,
/// `int unsigned`) into a [`SourceType`].
pub fn parse_declared(declared: &str) -> SourceType {
    let text = declared.trim();
    let lower = text.to_ascii_lowercase();
    let (head, args) = match lower.find('(') {
        Some(i) => {
            let close = lower[i..].find(')').map_or(lower.len(), |j| i + j);
            (
                format!("{} {}", &lower[..i], lower.get(close + 1..).unwrap_or("")),
                lower[i + 1..close].to_string(),
            )
        }
        None => (lower.clone(), String::new()),
    };
    let unsigned = head.split_whitespace().any(|w| w == "unsigned");
    let name = head
        .split_whitespace()
        .filter(|w| !matches!(*w, "unsigned" | "signed" | "zerofill"))
        .collect::<Vec<_>>()
        .join(" ");
    let nums: Vec<&str> = args.split(',').map(str::trim).collect();
    let mut t = SourceType {
        name,
        declared: text.to_string(),
        unsigned,
        ..SourceType::default()
    };
    let first = nums.first().copied().unwrap_or("");
    let is_text = ["char", "text", "clob", "binary", "blob", "bit"]
        .iter()
        .any(|k| t.name.contains(k));
    if first == "max" {
        t.length = Some(-1);
    } else if let Ok(n) = first.parse::<i64>() {
        if is_text || t.name.contains("int") {
            t.length = Some(n);
            if t.name.contains("bit") {
                t.precision = u32::try_from(n).ok();
            }
        } else {
            t.precision = u32::try_from(n).ok();
            t.scale = nums.get(1).and_then(|s| s.parse().ok());
        }
    }
    t
}

#[cfg(test)]
#[path = "types_tests.rs"]
mod tests;
