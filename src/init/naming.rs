//! Names in the generated schema: `--naming snake_case` (`InvoiceLine.BillingCity`
//! → `invoice_line.billing_city`, by heck's word splitting) or `keep`; identifiers
//! quoted only where a dialect needs it (not a plain lower-case name, or a
//! reserved word); constraint and index names made unique and short enough.

use crate::dialect::{quote_ident, Dialect};
use heck::ToSnakeCase;
use std::collections::HashSet;

/// How source names become target names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Naming {
    /// `InvoiceLine` → `invoice_line` (tables, columns, constraints).
    #[default]
    SnakeCase,
    /// Names as the source has them (quoted where needed).
    Keep,
}

impl Naming {
    pub fn apply(self, name: &str) -> String {
        match self {
            Naming::Keep => name.to_string(),
            Naming::SnakeCase => {
                let s = name.to_snake_case();
                if s.is_empty() {
                    name.to_string()
                } else {
                    s
                }
            }
        }
    }
}

/// Words one of the target dialects reserves (PostgreSQL's reserved key words,
/// MySQL 8's reserved words, SQLite's keywords that cannot be names): a name
/// among them is quoted.
const RESERVED: &[&str] = &[
    "accessible",
    "add",
    "all",
    "alter",
    "analyse",
    "analyze",
    "and",
    "any",
    "array",
    "as",
    "asc",
    "asensitive",
    "asymmetric",
    "authorization",
    "before",
    "between",
    "bigint",
    "binary",
    "blob",
    "both",
    "by",
    "call",
    "cascade",
    "case",
    "cast",
    "change",
    "char",
    "character",
    "check",
    "collate",
    "column",
    "condition",
    "constraint",
    "continue",
    "convert",
    "create",
    "cross",
    "cube",
    "cume_dist",
    "current",
    "current_catalog",
    "current_date",
    "current_role",
    "current_schema",
    "current_time",
    "current_timestamp",
    "current_user",
    "cursor",
    "database",
    "databases",
    "day_hour",
    "day_microsecond",
    "day_minute",
    "day_second",
    "dec",
    "decimal",
    "declare",
    "default",
    "deferrable",
    "delayed",
    "delete",
    "dense_rank",
    "desc",
    "describe",
    "deterministic",
    "distinct",
    "distinctrow",
    "div",
    "do",
    "double",
    "drop",
    "dual",
    "each",
    "else",
    "elseif",
    "empty",
    "enclosed",
    "end",
    "escape",
    "escaped",
    "except",
    "exists",
    "exit",
    "explain",
    "false",
    "fetch",
    "first_value",
    "float",
    "float4",
    "float8",
    "for",
    "force",
    "foreign",
    "freeze",
    "from",
    "full",
    "fulltext",
    "function",
    "generated",
    "get",
    "grant",
    "group",
    "grouping",
    "groups",
    "having",
    "high_priority",
    "hour_microsecond",
    "hour_minute",
    "hour_second",
    "if",
    "ignore",
    "ilike",
    "in",
    "index",
    "infile",
    "initially",
    "inner",
    "inout",
    "insensitive",
    "insert",
    "int",
    "int1",
    "int2",
    "int3",
    "int4",
    "int8",
    "integer",
    "intersect",
    "interval",
    "into",
    "io_after_gtids",
    "io_before_gtids",
    "is",
    "isnull",
    "iterate",
    "join",
    "json_table",
    "key",
    "keys",
    "kill",
    "lag",
    "last_value",
    "lateral",
    "lead",
    "leading",
    "leave",
    "left",
    "like",
    "limit",
    "linear",
    "lines",
    "load",
    "localtime",
    "localtimestamp",
    "lock",
    "long",
    "longblob",
    "longtext",
    "loop",
    "low_priority",
    "master_bind",
    "master_ssl_verify_server_cert",
    "match",
    "maxvalue",
    "mediumblob",
    "mediumint",
    "mediumtext",
    "middleint",
    "minute_microsecond",
    "minute_second",
    "mod",
    "modifies",
    "natural",
    "no_write_to_binlog",
    "not",
    "notnull",
    "nth_value",
    "ntile",
    "null",
    "numeric",
    "of",
    "offset",
    "on",
    "only",
    "optimize",
    "optimizer_costs",
    "option",
    "optionally",
    "or",
    "order",
    "out",
    "outer",
    "outfile",
    "over",
    "overlaps",
    "partition",
    "percent_rank",
    "placing",
    "precision",
    "primary",
    "procedure",
    "purge",
    "range",
    "rank",
    "read",
    "read_write",
    "reads",
    "real",
    "recursive",
    "references",
    "regexp",
    "release",
    "rename",
    "repeat",
    "replace",
    "require",
    "resignal",
    "restrict",
    "return",
    "returning",
    "revoke",
    "right",
    "rlike",
    "row",
    "row_number",
    "rows",
    "schema",
    "schemas",
    "second_microsecond",
    "select",
    "sensitive",
    "separator",
    "session_user",
    "set",
    "show",
    "signal",
    "similar",
    "smallint",
    "some",
    "spatial",
    "specific",
    "sql",
    "sql_big_result",
    "sql_calc_found_rows",
    "sql_small_result",
    "sqlexception",
    "sqlstate",
    "sqlwarning",
    "ssl",
    "starting",
    "stored",
    "straight_join",
    "symmetric",
    "system",
    "system_user",
    "table",
    "tablesample",
    "terminated",
    "then",
    "tinyblob",
    "tinyint",
    "tinytext",
    "to",
    "trailing",
    "transaction",
    "trigger",
    "true",
    "undo",
    "union",
    "unique",
    "unlock",
    "unsigned",
    "update",
    "usage",
    "use",
    "user",
    "using",
    "utc_date",
    "utc_time",
    "utc_timestamp",
    "values",
    "varbinary",
    "varchar",
    "varcharacter",
    "variadic",
    "varying",
    "verbose",
    "virtual",
    "when",
    "where",
    "while",
    "window",
    "with",
    "write",
    "xor",
    "year_month",
    "zerofill",
];

/// Whether a name is a reserved word of some target dialect.
pub fn is_reserved(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    RESERVED.binary_search(&lower.as_str()).is_ok()
}

/// A name is written bare when it is `[a-z_][a-z0-9_]*` (MySQL: any case) and
/// not reserved; anything else is quoted.
pub fn needs_quotes(d: Dialect, name: &str) -> bool {
    let mut chars = name.chars();
    let plain_start = |c: char| {
        c == '_' || c.is_ascii_lowercase() || (d == Dialect::Mysql && c.is_ascii_uppercase())
    };
    let plain = |c: char| plain_start(c) || c.is_ascii_digit();
    let ok = chars.next().is_some_and(plain_start) && chars.all(plain);
    !ok || is_reserved(name)
}

/// An identifier as written in generated SQL: bare when it can be, else quoted.
pub fn ident(d: Dialect, name: &str) -> String {
    if needs_quotes(d, name) {
        quote_ident(d, name)
    } else {
        name.to_string()
    }
}

/// A list of identifiers, comma-separated.
pub fn ident_list(d: Dialect, names: &[String]) -> String {
    names
        .iter()
        .map(|n| ident(d, n))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The longest identifier every target takes (PostgreSQL 63 bytes, MySQL 64 characters).
const MAX_IDENT: usize = 63;

/// Constraint and index names of one generated schema: each unique (PostgreSQL
/// wants index and constraint names unique in a schema), at most 63 bytes.
#[derive(Debug, Default)]
pub struct NameSet {
    used: HashSet<String>,
}

impl NameSet {
    /// Take a name already in use (a table's): constraints will not repeat it.
    pub fn reserve(&mut self, name: &str) {
        self.used.insert(name.to_ascii_lowercase());
    }

    /// `base`, shortened to fit and suffixed `_2`, `_3`… when taken.
    pub fn unique(&mut self, base: &str) -> String {
        let fit = |s: &str, room: usize| -> String {
            let mut end = s.len().min(room);
            while !s.is_char_boundary(end) {
                end -= 1;
            }
            s[..end].to_string()
        };
        let mut name = fit(base, MAX_IDENT);
        let mut n = 2;
        while self.used.contains(&name.to_ascii_lowercase()) {
            let suffix = format!("_{n}");
            name = format!("{}{suffix}", fit(base, MAX_IDENT - suffix.len()));
            n += 1;
        }
        self.used.insert(name.to_ascii_lowercase());
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snake_case_names() {
        let s = Naming::SnakeCase;
        assert_eq!(s.apply("InvoiceLine"), "invoice_line");
        assert_eq!(s.apply("BillingCity"), "billing_city");
        assert_eq!(s.apply("CustomerID"), "customer_id");
        assert_eq!(s.apply("HTTPServer"), "http_server");
        assert_eq!(s.apply("Order Details"), "order_details");
        assert_eq!(s.apply("IFK_AlbumArtistId"), "ifk_album_artist_id");
        assert_eq!(s.apply("already_snake"), "already_snake");
        assert_eq!(Naming::Keep.apply("InvoiceLine"), "InvoiceLine");
    }

    #[test]
    fn the_reserved_list_is_sorted() {
        let mut sorted = RESERVED.to_vec();
        sorted.sort_unstable();
        assert_eq!(sorted, RESERVED, "binary_search needs a sorted list");
    }

    #[test]
    fn quoting_where_needed() {
        let pg = Dialect::Postgres;
        assert_eq!(ident(pg, "invoice_line"), "invoice_line");
        assert_eq!(ident(pg, "InvoiceLine"), "\"InvoiceLine\"");
        assert_eq!(ident(pg, "order"), "\"order\"");
        assert_eq!(ident(pg, "user"), "\"user\"");
        assert_eq!(ident(pg, "2nd"), "\"2nd\"");
        assert_eq!(ident(pg, "a b"), "\"a b\"");
        assert_eq!(ident(Dialect::Mysql, "InvoiceLine"), "InvoiceLine");
        assert_eq!(ident(Dialect::Mysql, "Order"), "`Order`");
        assert_eq!(ident(Dialect::Sqlite, "Genre"), "\"Genre\"");
    }

    #[test]
    fn constraint_names_are_unique_and_short() {
        let mut n = NameSet::default();
        n.reserve("album");
        assert_eq!(n.unique("album"), "album_2");
        assert_eq!(n.unique("album_pkey"), "album_pkey");
        assert_eq!(n.unique("album_pkey"), "album_pkey_2");
        let long = "x".repeat(80);
        let a = n.unique(&long);
        let b = n.unique(&long);
        assert_eq!(a.len(), 63);
        assert_eq!(b.len(), 63);
        assert!(b.ends_with("_2"));
    }
}
