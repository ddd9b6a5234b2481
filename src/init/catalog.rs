//! What `init` reads from a SQL source's catalog, the same for every source
//! dialect: tables in the source's order, their columns with the type as
//! declared (name, length, precision, scale), nullability, defaults, the
//! primary key, unique constraints, foreign keys, indexes and the row count.

/// Which kind of SQL database the catalog was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceDialect {
    Mssql,
    Postgres,
    Mysql,
    Sqlite,
}

impl SourceDialect {
    pub fn name(self) -> &'static str {
        match self {
            SourceDialect::Mssql => "SQL Server",
            SourceDialect::Postgres => "PostgreSQL",
            SourceDialect::Mysql => "MySQL/MariaDB",
            SourceDialect::Sqlite => "SQLite",
        }
    }

    /// The `kind` of a mapping's `[source]`.
    pub fn kind(self) -> &'static str {
        match self {
            SourceDialect::Mssql => "mssql",
            SourceDialect::Postgres => "postgres",
            SourceDialect::Mysql => "mysql",
            SourceDialect::Sqlite => "sqlite",
        }
    }
}

/// A column's type as the source declares it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SourceType {
    /// The base type name, lower case (`nvarchar`, `numeric`, `datetime2`).
    pub name: String,
    /// Character or byte length; `None` when not declared, `Some(-1)` for `max`.
    pub length: Option<i64>,
    pub precision: Option<u32>,
    pub scale: Option<u32>,
    /// The type as the source shows it (`NVARCHAR(40)`, `numeric(10,2)`), for comments.
    pub declared: String,
    /// Labels of an enum (MySQL `ENUM(...)`, PostgreSQL enum types).
    pub labels: Vec<String>,
    /// MySQL `UNSIGNED`.
    pub unsigned: bool,
    /// PostgreSQL arrays (`integer[]`): the element type is `name`.
    pub array: bool,
}

impl SourceType {
    /// A type with just a name (and its declared text equal to it).
    pub fn named(name: &str) -> SourceType {
        SourceType {
            name: name.to_ascii_lowercase(),
            declared: name.to_string(),
            ..SourceType::default()
        }
    }
}

/// A column default the target can take as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Default {
    /// A number literal, as written.
    Number(String),
    /// A string literal (unquoted).
    Text(String),
    Bool(bool),
    /// The current date and time (`getdate()`, `now()`, `CURRENT_TIMESTAMP`).
    CurrentTimestamp,
    /// Anything else, as the source writes it: not carried over, named in a comment.
    Other(String),
}

#[derive(Debug, Clone)]
pub struct Column {
    pub name: String,
    pub ty: SourceType,
    pub nullable: bool,
    pub default: Option<Default>,
    /// An identity / auto-increment / serial column.
    pub identity: bool,
    /// The longest text value found in the source (SQLite does not enforce
    /// declared lengths; `init` widens a column that holds longer values).
    pub max_len_found: Option<u64>,
}

/// A primary key or unique constraint: its name in the source (if any) and columns in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    pub name: Option<String>,
    pub columns: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForeignKey {
    pub name: Option<String>,
    pub columns: Vec<String>,
    /// The referenced table's schema (`None`: the same as the table's).
    pub ref_schema: Option<String>,
    pub ref_table: String,
    pub ref_columns: Vec<String>,
    /// `NO ACTION`, `CASCADE`, `SET NULL`, `SET DEFAULT`, `RESTRICT`.
    pub on_delete: String,
    pub on_update: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Index {
    pub name: Option<String>,
    pub columns: Vec<String>,
    pub unique: bool,
}

#[derive(Debug, Clone)]
pub struct Table {
    /// The schema (SQL Server `dbo`, PostgreSQL `public`); `None` for SQLite and MySQL.
    pub schema: Option<String>,
    pub name: String,
    pub columns: Vec<Column>,
    pub primary_key: Option<Key>,
    /// Unique constraints and unique indexes other than the primary key.
    pub uniques: Vec<Key>,
    pub foreign_keys: Vec<ForeignKey>,
    /// Non-unique indexes (unique ones are in `uniques`), without those the
    /// constraints make by themselves.
    pub indexes: Vec<Index>,
    /// `SELECT COUNT(*)` at the time of `init`.
    pub rows: u64,
}

impl Table {
    /// `schema.name`, or `name` without a schema: how the source names it.
    pub fn qualified(&self) -> String {
        match &self.schema {
            Some(s) => format!("{s}.{}", self.name),
            None => self.name.clone(),
        }
    }

    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// The key `init` reads and upserts by: the primary key, else the first
    /// unique constraint whose columns are all NOT NULL (a keyset key must be).
    pub fn row_key(&self) -> Option<&Key> {
        self.primary_key.as_ref().or_else(|| {
            self.uniques.iter().find(|k| {
                k.columns
                    .iter()
                    .all(|c| self.column(c).is_some_and(|c| !c.nullable))
            })
        })
    }
}

/// Every table `init` was asked for, in the source's order.
#[derive(Debug, Clone)]
pub struct Catalog {
    pub dialect: SourceDialect,
    /// The database's name (file stem for SQLite), for job names and comments.
    pub database: String,
    pub tables: Vec<Table>,
}

/// Split `a,b , c` into names (empty parts dropped).
pub fn split_list(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(name: &str, nullable: bool) -> Column {
        Column {
            name: name.into(),
            ty: SourceType::named("int"),
            nullable,
            default: None,
            identity: false,
            max_len_found: None,
        }
    }

    #[test]
    fn row_key_is_the_primary_key_else_a_not_null_unique() {
        let mut t = Table {
            schema: Some("dbo".into()),
            name: "T".into(),
            columns: vec![col("a", true), col("b", false)],
            primary_key: None,
            uniques: vec![
                Key {
                    name: None,
                    columns: vec!["a".into()],
                },
                Key {
                    name: None,
                    columns: vec!["b".into()],
                },
            ],
            foreign_keys: vec![],
            indexes: vec![],
            rows: 0,
        };
        assert_eq!(
            t.row_key().map(|k| k.columns.clone()),
            Some(vec!["b".into()])
        );
        t.primary_key = Some(Key {
            name: None,
            columns: vec!["a".into()],
        });
        assert_eq!(
            t.row_key().map(|k| k.columns.clone()),
            Some(vec!["a".into()])
        );
        t.primary_key = None;
        t.uniques.pop();
        assert!(t.row_key().is_none());
        assert_eq!(t.qualified(), "dbo.T");
        assert_eq!(split_list(" A, B ,,C"), vec!["A", "B", "C"]);
    }
}

/// A column default as a catalog spells it (`((0))`, `(N'abc')`, `(getdate())`,
/// `'x'::character varying`, `CURRENT_TIMESTAMP`), or `None` for no default or NULL.
pub fn parse_default(text: &str) -> Option<Default> {
    let mut s = text.trim();
    // SQL Server wraps defaults in parentheses, sometimes twice.
    while s.starts_with('(') && s.ends_with(')') && balanced(&s[1..s.len() - 1]) {
        s = s[1..s.len() - 1].trim();
    }
    if s.is_empty()
        || s.eq_ignore_ascii_case("null")
        || s.to_ascii_lowercase().starts_with("null::")
    {
        return None;
    }
    let lower = s.to_ascii_lowercase();
    // PostgreSQL casts its literals: 'abc'::character varying, 0::numeric.
    let literal = match lower.find("::") {
        Some(i) if !s[..i].contains('(') => s[..i].trim(),
        _ => s,
    };
    let quoted = literal
        .strip_prefix('N')
        .or_else(|| literal.strip_prefix('n'))
        .filter(|r| r.starts_with('\''))
        .unwrap_or(literal);
    if quoted.len() >= 2 && quoted.starts_with('\'') && quoted.ends_with('\'') {
        let inner = &quoted[1..quoted.len() - 1];
        return Some(Default::Text(inner.replace("''", "'")));
    }
    let num = literal.strip_prefix(['-', '+']).unwrap_or(literal);
    if !num.is_empty()
        && num.chars().all(|c| c.is_ascii_digit() || c == '.')
        && num.chars().filter(|&c| c == '.').count() <= 1
        && num.chars().any(|c| c.is_ascii_digit())
    {
        return Some(Default::Number(literal.to_string()));
    }
    match literal.to_ascii_lowercase().as_str() {
        "true" | "b'1'" => return Some(Default::Bool(true)),
        "false" | "b'0'" => return Some(Default::Bool(false)),
        _ => {}
    }
    let bare = lower.trim_end_matches("()");
    let now = [
        "getdate",
        "sysdatetime",
        "current_timestamp",
        "now",
        "localtimestamp",
        "sysutcdatetime",
        "getutcdate",
        "sysdatetimeoffset",
        "current_timestamp(3)",
        "current_timestamp(6)",
        "current_timestamp()",
        "now(3)",
        "now(6)",
        "datetime('now')",
    ];
    if now.contains(&bare) || now.contains(&lower.as_str()) {
        return Some(Default::CurrentTimestamp);
    }
    Some(Default::Other(text.trim().to_string()))
}

/// Whether the parentheses of `s` balance (so an outer pair can be dropped).
fn balanced(s: &str) -> bool {
    let mut depth = 0i32;
    for c in s.chars() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth < 0 {
                    return false;
                }
            }
            _ => {}
        }
    }
    depth == 0
}

#[cfg(test)]
mod default_tests {
    use super::*;

    #[test]
    fn defaults_as_catalogs_spell_them() {
        assert_eq!(parse_default("((0))"), Some(Default::Number("0".into())));
        assert_eq!(
            parse_default("(N'it''s')"),
            Some(Default::Text("it's".into()))
        );
        assert_eq!(
            parse_default("(getdate())"),
            Some(Default::CurrentTimestamp)
        );
        assert_eq!(
            parse_default("CURRENT_TIMESTAMP"),
            Some(Default::CurrentTimestamp)
        );
        assert_eq!(parse_default("now()"), Some(Default::CurrentTimestamp));
        assert_eq!(
            parse_default("current_timestamp()"),
            Some(Default::CurrentTimestamp)
        );
        assert_eq!(
            parse_default("'draft'::character varying"),
            Some(Default::Text("draft".into()))
        );
        assert_eq!(parse_default("-1.5"), Some(Default::Number("-1.5".into())));
        assert_eq!(parse_default("true"), Some(Default::Bool(true)));
        assert_eq!(parse_default("NULL"), None);
        assert_eq!(parse_default("NULL::character varying"), None);
        assert_eq!(
            parse_default("nextval('t_id_seq'::regclass)"),
            Some(Default::Other("nextval('t_id_seq'::regclass)".into()))
        );
        assert_eq!(
            parse_default("(newid())"),
            Some(Default::Other("(newid())".into()))
        );
        assert_eq!(
            parse_default("(1) + (2)"),
            Some(Default::Other("(1) + (2)".into()))
        );
    }
}
