//! SQL dialects and identifier quoting, shared by the SQL sources and the sinks
//! (neither imports the other).

/// The SQL dialects cutover reads from (sqlx sources) and writes to (sinks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
    Mysql,
}

impl Dialect {
    /// The `n`-th (1-based) bind placeholder: `$n` on PostgreSQL, `?` elsewhere.
    pub fn placeholder(self, n: usize) -> String {
        match self {
            Dialect::Postgres => format!("${n}"),
            Dialect::Sqlite | Dialect::Mysql => "?".to_string(),
        }
    }
}

/// Quote an identifier for a dialect (`"x"` or `` `x` ``), doubling the quote.
pub fn quote_ident(d: Dialect, name: &str) -> String {
    let q = if d == Dialect::Mysql { '`' } else { '"' };
    let mut out = String::with_capacity(name.len() + 2);
    out.push(q);
    for c in name.chars() {
        if c == q {
            out.push(q);
        }
        out.push(c);
    }
    out.push(q);
    out
}

/// Quote a possibly schema-qualified table name (`schema.table`).
pub fn quote_table(d: Dialect, name: &str) -> String {
    name.split('.')
        .map(|p| quote_ident(d, p))
        .collect::<Vec<_>>()
        .join(".")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_doubles_the_quote_character() {
        assert_eq!(quote_ident(Dialect::Postgres, "a\"b"), "\"a\"\"b\"");
        assert_eq!(quote_ident(Dialect::Mysql, "a`b"), "`a``b`");
        assert_eq!(quote_table(Dialect::Sqlite, "s.t"), "\"s\".\"t\"");
        assert_eq!(Dialect::Postgres.placeholder(3), "$3");
        assert_eq!(Dialect::Mysql.placeholder(3), "?");
    }
}
