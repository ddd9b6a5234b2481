//! SQL Server source through tiberius: a table or a query read in pages by
//! keyset pagination, resumed at the last key after a lost connection. Every
//! column type becomes JSON without loss, or the read stops with an error naming
//! the column and its type. Paging, records and reconnecting are the
//! [`KeysetSource`]'s; this is its [`Driver`]: the connection settings
//! ([`config`]), the values ([`cell`]) and the tiberius connection ([`conn`]).

pub mod cell;
pub(crate) mod config;
pub(crate) mod conn;

pub use cell::{cell_to_json, CellError};
pub use conn::page_sql;

use super::keyset::{Driver, Failure, KeysetSource, Row};
use super::{Decoded, SourceError};
use crate::mapping::SourceSpec;
use crate::runtime::{Bridge, RuntimeError};
use config::ConnectSpec;
pub(crate) use conn::quote;
use conn::{rowversion_sql, Conn, ConnError};
use serde_json::{Map, Value};
use std::sync::Arc;

/// A table or a query of a SQL Server database.
pub type MssqlSource = KeysetSource<MssqlDriver>;

/// The tiberius side of an [`MssqlSource`].
pub struct MssqlDriver {
    spec: SourceSpec,
    conn: ConnectSpec,
    /// `mssql://user@host:port/db`: never the password (logs, errors, fingerprint).
    display: String,
    /// The client, on its own runtime.
    client: Bridge<Conn>,
    /// The `rowversion`/`timestamp` columns of a `table` source, looked up once in
    /// `sys.columns` (tiberius sends them as plain `binary(8)`).
    rowversions: Option<Arc<Vec<String>>>,
}

/// A panic of tiberius (0.12 panics with `todo!`/`unimplemented!` on `sql_variant`
/// and CLR user-defined types) or a failed thread: an error, not a crash.
fn driver_failed(e: RuntimeError) -> String {
    let why = match e {
        RuntimeError::Panicked(m) if m == "(no message)" => "no message".to_string(),
        RuntimeError::Panicked(m) => m,
        other => other.to_string(),
    };
    format!(
        "the SQL Server driver (tiberius) failed while reading ({why}); it cannot decode \
         some column types (sql_variant, and CLR types such as geography, geometry and \
         hierarchyid): select those columns converted in a `query`, e.g. \
         CAST(col AS NVARCHAR(4000)) or col.ToString()"
    )
}

fn query_error(sql: &str, e: impl std::fmt::Display) -> SourceError {
    SourceError::Other(format!("reading SQL Server ({sql}): {e}"))
}

/// Open a SQL Server source (nothing is connected before the first read).
pub fn open(spec: &SourceSpec) -> Result<MssqlSource, SourceError> {
    open_with(spec, |var| std::env::var(var).ok())
}

/// `open`, with the environment (for `password_env`) given by `env`.
fn open_with(
    spec: &SourceSpec,
    env: impl Fn(&str) -> Option<String>,
) -> Result<MssqlSource, SourceError> {
    let url = spec
        .url
        .clone()
        .ok_or_else(|| SourceError::Other("the mssql source has no url".into()))?;
    let mut conn = ConnectSpec::parse(&url, spec.trust_server_certificate)?;
    if let Some(var) = &spec.password_env {
        let pw = env(var).ok_or_else(|| {
            SourceError::Other(format!(
                "the environment variable {var} (password_env) is not set (or not UTF-8)"
            ))
        })?;
        conn.set_password(var, pw)?;
    }
    let client = Bridge::new("cutover-mssql").map_err(|e| SourceError::Other(e.to_string()))?;
    let driver = MssqlDriver {
        spec: spec.clone(),
        display: conn.display(),
        conn,
        client,
        rowversions: None,
    };
    Ok(KeysetSource::new(spec, driver))
}

impl MssqlDriver {
    /// The `rowversion` columns of a `table` source (looked up once). A `query`
    /// source cannot be looked up: the README asks for `CONVERT(VARCHAR(18), col, 1)`.
    fn rowversion_columns(&mut self) -> Result<Arc<Vec<String>>, Failure> {
        if let Some(cols) = &self.rowversions {
            return Ok(cols.clone());
        }
        let cols = match self.spec.table.clone() {
            Some(table) => {
                let rows = self.fetch(
                    rowversion_sql(&table),
                    vec![Value::String(quote(&table))],
                    Arc::default(),
                )?;
                rows.iter()
                    .filter_map(|r| r.get("name").and_then(Value::as_str))
                    .map(str::to_string)
                    .collect()
            }
            None => Vec::new(),
        };
        if !cols.is_empty() {
            tracing::debug!(columns = ?cols, "rowversion columns are read as 0x hex");
        }
        let cols = Arc::new(cols);
        self.rowversions = Some(cols.clone());
        Ok(cols)
    }

    fn relation(&self) -> String {
        let inner = match (&self.spec.table, &self.spec.query) {
            (Some(t), _) => format!("SELECT * FROM {}", quote(t)),
            (None, Some(q)) => q.trim().trim_end_matches(';').to_string(),
            (None, None) => "SELECT 1 AS x".into(),
        };
        match &self.spec.filter {
            Some(f) => format!("(SELECT * FROM ({inner}) AS w WHERE {f}) AS q"),
            None => format!("({inner}) AS q"),
        }
    }

    /// Run a query with parameters on the connection (made by the keyset
    /// source's call).
    fn fetch(
        &mut self,
        sql: String,
        binds: Vec<Value>,
        rowversions: Arc<Vec<String>>,
    ) -> Result<Vec<Map<String, Value>>, Failure> {
        let Some(mut client) = self.client.take() else {
            return Err(SourceError::Other("not connected".into()).into());
        };
        let ran = self.client.run(async {
            let res = conn::query(&mut client, &sql, &binds, &rowversions).await;
            (client, res)
        });
        match ran {
            Ok((client, res)) => {
                self.client.set(Some(client));
                match res {
                    Ok(rows) => Ok(rows),
                    Err(ConnError::Lost(m)) => Err(Failure::Lost(m)),
                    Err(ConnError::Fatal(m)) => Err(query_error(&sql, m).into()),
                }
            }
            Err(e) => Err(query_error(&sql, driver_failed(e)).into()),
        }
    }

    /// A row read as an object as a [`Row`] (key columns matched without case,
    /// as SQL Server does).
    fn row(&self, row: Map<String, Value>) -> Result<Row, Failure> {
        let mut key = Vec::new();
        for k in &self.spec.key {
            let v = row
                .iter()
                .find(|(c, _)| c.eq_ignore_ascii_case(k))
                .map(|(_, v)| v.clone())
                .ok_or_else(|| {
                    SourceError::Other(format!(
                        "the key column {k} is not among the source's columns"
                    ))
                })?;
            key.push(v);
        }
        Ok(Row {
            key,
            json: Decoded::json_of(row),
        })
    }
}

impl Driver for MssqlDriver {
    fn display(&self) -> String {
        self.display.clone()
    }

    fn connect(&mut self) -> Result<(), Failure> {
        if self.client.get().is_some() {
            return Ok(());
        }
        let made = self
            .client
            .run(conn::connect(self.conn.config()))
            .map_err(|e| {
                SourceError::Other(format!(
                    "cannot connect to {}: {}",
                    self.display,
                    driver_failed(e)
                ))
            })?;
        match made {
            Ok(c) => {
                self.client.set(Some(c));
                Ok(())
            }
            Err(ConnError::Lost(m)) => Err(Failure::Lost(m)),
            Err(ConnError::Fatal(m)) => Err(self.connect_error(m).into()),
        }
    }

    fn disconnect(&mut self) {
        self.client.set(None);
    }

    fn page(&mut self, after: Option<&[Value]>, limit: usize) -> Result<Vec<Row>, Failure> {
        let (sql, binds) = page_sql(&self.relation(), &self.spec.key, after, limit);
        let rowversions = self.rowversion_columns()?;
        let rows = self.fetch(sql, binds, rowversions)?;
        rows.into_iter().map(|r| self.row(r)).collect()
    }

    fn lookup(&mut self, key: &[Value]) -> Result<Option<Row>, Failure> {
        let sql = conn::lookup_sql(&self.relation(), &self.spec.key);
        let rowversions = self.rowversion_columns()?;
        let rows = self.fetch(sql, key.to_vec(), rowversions)?;
        rows.into_iter().next().map(|r| self.row(r)).transpose()
    }

    fn connect_error(&self, message: String) -> SourceError {
        SourceError::Other(format!("cannot connect to {}: {message}", self.display))
    }

    fn lost_error(&self, attempts: u32, message: String) -> SourceError {
        SourceError::Other(format!(
            "lost the connection to the source {} and could not get it back after {attempts} attempts: {message}",
            self.display
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapping::{KvFormat, SourceKind};
    use crate::source::Source;

    fn spec_of(url: &str, password_env: Option<&str>) -> SourceSpec {
        SourceSpec {
            filter: None,
            paging_prefix: 0,
            watermark: None,
            kind: SourceKind::Mssql,
            path: None,
            path_text: None,
            format: KvFormat::Jsonl,
            key: vec!["Id".into()],
            url: Some(url.into()),
            password_env: password_env.map(str::to_string),
            table: Some("dbo.T".into()),
            query: None,
            trust_server_certificate: false,
            dir: std::path::PathBuf::from("."),
        }
    }

    fn err_text<T>(r: Result<T, SourceError>) -> String {
        match r {
            Ok(_) => panic!("expected an error"),
            Err(e) => e.to_string(),
        }
    }

    fn open_env(url: &str, pw_env: Option<&str>, pw: &str) -> Result<MssqlSource, SourceError> {
        open_with(&spec_of(url, pw_env), |v| {
            (v == "PLIERS_PASSWORD").then(|| pw.to_string())
        })
    }

    #[test]
    fn password_env_keeps_the_user_of_either_form() {
        let var = Some("PLIERS_PASSWORD");
        let ado = open_env(
            "server=tcp:h,1433;user id=etl;database=legacy;encrypt=DANGER_PLAINTEXT",
            var,
            "s3cr;et",
        )
        .unwrap();
        assert_eq!(ado.driver().conn.user.as_deref(), Some("etl"));
        assert_eq!(ado.driver().conn.password.as_deref(), Some("s3cr;et"));
        assert_eq!(ado.driver().conn.database.as_deref(), Some("legacy"));
        assert!(
            format!("{:?}", ado.driver().conn.config()).contains("user: \"etl\""),
            "{:?}",
            ado.driver().conn.config()
        );
        // The environment replaces a password written in the url; the user stays.
        let url = open_env(
            "mssql://app%40corp:old@h:1433/legacy?encrypt=DANGER_PLAINTEXT",
            var,
            "s3cr;et",
        )
        .unwrap();
        assert_eq!(url.driver().conn.user.as_deref(), Some("app@corp"));
        assert_eq!(url.driver().conn.password.as_deref(), Some("s3cr;et"));
        let ado_pw = open_env("server=h,1433;user id=etl;password=old", var, "s3cr;et").unwrap();
        assert_eq!(ado_pw.driver().conn.user.as_deref(), Some("etl"));
        assert_eq!(ado_pw.driver().conn.password.as_deref(), Some("s3cr;et"));
        // Without password_env the url's password is used.
        let plain = open_env("server=h,1433;user id=etl;password=old", None, "s3cr;et").unwrap();
        assert_eq!(plain.driver().conn.password.as_deref(), Some("old"));
        // Nothing shows a password.
        for s in [&ado, &url, &ado_pw, &plain] {
            assert!(
                !s.describe().contains("s3cr") && !s.describe().contains("old"),
                "{}",
                s.describe()
            );
            assert!(!s.fingerprint().contains("s3cr") && !s.fingerprint().contains("old"));
            assert!(!format!("{:?}", s.driver().conn).contains("s3cr"));
        }
        assert_eq!(ado.driver().display, "mssql://etl@h:1433/legacy");
        assert_eq!(url.driver().display, "mssql://app@corp@h:1433/legacy");
    }

    #[test]
    fn password_env_needs_a_user_and_the_variable() {
        let var = Some("PLIERS_PASSWORD");
        let e = err_text(open_env("server=h,1433;database=d", var, "pw"));
        assert!(
            e.contains("password_env = \"PLIERS_PASSWORD\" needs a user"),
            "{e}"
        );
        let e = err_text(open_env("mssql://h/d", var, "pw"));
        assert!(e.contains("needs a user"), "{e}");
        let e = err_text(open_env(
            "mssql://sa@h/d",
            Some("CUTOVER_TEST_NEVER_SET"),
            "pw",
        ));
        assert!(
            e.contains("the environment variable CUTOVER_TEST_NEVER_SET (password_env) is not set"),
            "{e}"
        );
    }

    // -- values ---------------------------------------------------------------

    #[test]
    fn a_driver_panic_is_an_error() {
        // tiberius 0.12 answers a sql_variant column with todo!(); the reader returns
        // an error instead of taking the process down.
        let rt: Bridge<()> = Bridge::new("cutover-mssql").unwrap();
        let r: Result<(), SourceError> = rt
            .run(async {
                todo!("not yet implemented for SSVariant");
            })
            .map_err(|e| query_error("SELECT 1", driver_failed(e)));
        let e = err_text(r);
        assert!(e.contains("not yet implemented for SSVariant"), "{e}");
        assert!(e.contains("sql_variant"), "{e}");
        // The runtime still works afterwards.
        assert_eq!(rt.run(async { 7 }).unwrap(), 7);
    }
}
