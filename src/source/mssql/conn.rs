//! The tiberius connection of the SQL Server source: connecting, one query with
//! its parameters and its rows as JSON objects, the keyset SQL (`SELECT TOP (n)
//! ... WHERE a > @P1 OR (a = @P1 AND b > @P2) ORDER BY a, b`: SQL Server has no
//! row comparison), and which errors are a lost connection.

use super::cell::column_value;
use serde_json::{Map, Value};
use tiberius::{Client, Config};
use tokio::net::TcpStream;
use tokio_util::compat::{Compat, TokioAsyncWriteCompatExt};

pub(crate) type Conn = Client<Compat<TcpStream>>;

/// Why a call failed: the connection (I/O: a new one may cure it), or anything
/// else; the message for the error.
#[derive(Debug)]
pub(crate) enum ConnError {
    Lost(String),
    Fatal(String),
}

/// A tiberius error: I/O is a lost connection.
fn conn_error(e: tiberius::error::Error) -> ConnError {
    match e {
        tiberius::error::Error::Io { .. } => ConnError::Lost(e.to_string()),
        other => ConnError::Fatal(other.to_string()),
    }
}

/// Open a connection (TCP, then the TDS login).
pub(crate) async fn connect(config: Config) -> Result<Conn, ConnError> {
    let tcp = TcpStream::connect(config.get_addr())
        .await
        .map_err(|e| ConnError::Lost(e.to_string()))?;
    tcp.set_nodelay(true)
        .map_err(|e| ConnError::Lost(e.to_string()))?;
    Client::connect(config, tcp.compat_write())
        .await
        .map_err(conn_error)
}

/// Run a query with parameters; every row as an object. `rowversions` names
/// the columns read as `0x` hex. A value that does not convert is an error
/// naming its column and type.
pub(crate) async fn query(
    c: &mut Conn,
    sql: &str,
    binds: &[Value],
    rowversions: &[String],
) -> Result<Vec<Map<String, Value>>, ConnError> {
    let mut q = tiberius::Query::new(sql.to_string());
    for b in binds {
        match b {
            Value::Number(n) => match n.as_i64() {
                Some(i) => q.bind(i),
                None => q.bind(n.to_string()),
            },
            Value::Bool(x) => q.bind(*x),
            Value::String(s) => q.bind(s.clone()),
            other => q.bind(other.to_string()),
        }
    }
    let rows = match q.query(c).await {
        Ok(stream) => stream.into_first_result().await,
        Err(e) => Err(e),
    }
    .map_err(conn_error)?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let mut m = Map::new();
        for (col, data) in r.cells() {
            let rv = rowversions
                .iter()
                .any(|c| c.eq_ignore_ascii_case(col.name()));
            let v =
                column_value(col.name(), col.column_type(), rv, data).map_err(ConnError::Fatal)?;
            m.insert(col.name().to_string(), v);
        }
        out.push(m);
    }
    Ok(out)
}

pub(crate) fn quote(name: &str) -> String {
    name.split('.')
        .map(|p| {
            format!(
                "[{}]",
                p.trim_matches(|c| c == '[' || c == ']').replace(']', "]]")
            )
        })
        .collect::<Vec<_>>()
        .join(".")
}

/// The query naming the `rowversion`/`timestamp` columns (system type 189) of a
/// table or view; a three-part name reads that database's catalog.
pub(crate) fn rowversion_sql(table: &str) -> String {
    let parts: Vec<&str> = table.split('.').collect();
    let catalog = if parts.len() == 3 {
        format!("{}.", quote(parts[0]))
    } else {
        String::new()
    };
    format!(
        "SELECT c.name AS name FROM {catalog}sys.columns AS c \
         WHERE c.object_id = OBJECT_ID(@P1) AND c.system_type_id = 189"
    )
}

/// The keyset page query (SQL Server has no row comparison: the expanded form).
pub fn page_sql(
    relation: &str,
    key: &[String],
    after: Option<&[Value]>,
    limit: usize,
) -> (String, Vec<Value>) {
    let keys: Vec<String> = key.iter().map(|k| format!("q.{}", quote(k))).collect();
    let mut sql = format!("SELECT TOP ({limit}) * FROM {relation}");
    let mut binds = Vec::new();
    if let Some(after) = after {
        binds = after.to_vec();
        let ors: Vec<String> = (0..keys.len())
            .map(|i| {
                let mut ands: Vec<String> = (0..i)
                    .map(|j| format!("{} = @P{}", keys[j], j + 1))
                    .collect();
                ands.push(format!("{} > @P{}", keys[i], i + 1));
                format!("({})", ands.join(" AND "))
            })
            .collect();
        sql.push_str(&format!(" WHERE {}", ors.join(" OR ")));
    }
    sql.push_str(&format!(" ORDER BY {}", keys.join(", ")));
    (sql, binds)
}

/// The one row with the given key (`cutover retry`).
pub fn lookup_sql(relation: &str, key: &[String]) -> String {
    let conds: Vec<String> = key
        .iter()
        .enumerate()
        .map(|(i, k)| format!("q.{} = @P{}", quote(k), i + 1))
        .collect();
    format!("SELECT * FROM {relation} WHERE {}", conds.join(" AND "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keyset_sql() {
        let (sql, binds) = page_sql(
            "(SELECT * FROM [dbo].[T]) AS q",
            &["a".into(), "b".into()],
            Some(&[json!(1), json!("x")]),
            500,
        );
        assert_eq!(sql, "SELECT TOP (500) * FROM (SELECT * FROM [dbo].[T]) AS q WHERE (q.[a] > @P1) OR (q.[a] = @P1 AND q.[b] > @P2) ORDER BY q.[a], q.[b]");
        assert_eq!(binds.len(), 2);
        assert_eq!(quote("dbo.FormSubmission"), "[dbo].[FormSubmission]");
    }

    #[test]
    fn lookup_and_rowversion_sql() {
        assert_eq!(
            lookup_sql("(SELECT * FROM [dbo].[T]) AS q", &["a".into(), "b".into()]),
            "SELECT * FROM (SELECT * FROM [dbo].[T]) AS q WHERE q.[a] = @P1 AND q.[b] = @P2"
        );
        assert_eq!(
            rowversion_sql("dbo.Orders"),
            "SELECT c.name AS name FROM sys.columns AS c WHERE c.object_id = OBJECT_ID(@P1) AND c.system_type_id = 189"
        );
        assert_eq!(
            rowversion_sql("Legacy.dbo.Orders"),
            "SELECT c.name AS name FROM [Legacy].sys.columns AS c WHERE c.object_id = OBJECT_ID(@P1) AND c.system_type_id = 189"
        );
    }
}
