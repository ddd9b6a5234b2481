//! The SQL Server connection settings of a mapping's `url`: an `mssql://` URL or
//! an ADO.NET string, read into a [`ConnectSpec`] and then a tiberius [`Config`].

use crate::source::SourceError;
use tiberius::{AuthMethod, Config, EncryptionLevel};

/// How the server certificate is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Trust {
    /// Against the system's trust store.
    System,
    /// Not at all (`TrustServerCertificate=true`, `trust_server_certificate = true`).
    All,
    /// Against this CA certificate too (`TrustServerCertificateCA=path`).
    Ca(String),
}

/// What a mapping's `url` (an `mssql://` URL or an ADO.NET string) says, before it
/// becomes a tiberius [`Config`] (which keeps its fields private, so this is what the
/// tests look at). `Debug` hides the password.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct ConnectSpec {
    pub(crate) host: Option<String>,
    pub(crate) port: Option<u16>,
    pub(crate) instance: Option<String>,
    pub(crate) database: Option<String>,
    pub(crate) application_name: Option<String>,
    pub(crate) user: Option<String>,
    pub(crate) password: Option<String>,
    pub(crate) encryption: EncryptionLevel,
    pub(crate) trust: Trust,
    pub(crate) readonly: bool,
}

impl std::fmt::Debug for ConnectSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectSpec")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("instance", &self.instance)
            .field("database", &self.database)
            .field("application_name", &self.application_name)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<hidden>"))
            .field("encryption", &self.encryption)
            .field("trust", &self.trust)
            .field("readonly", &self.readonly)
            .finish()
    }
}

fn url_error(message: impl std::fmt::Display) -> SourceError {
    SourceError::Other(format!("SQL Server url: {message}"))
}

/// `%XX` escapes of a URL component; anything else is kept as it is.
pub(crate) fn percent_decode(text: &str, what: &str) -> Result<String, SourceError> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| {
                    url_error(format!(
                        "the {what} has a '%' that does not start a %XX escape (write a literal % as %25)"
                    ))
                })?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out)
        .map_err(|_| url_error(format!("the {what} is not UTF-8 once percent-decoded")))
}

fn ado_bool(key: &str, value: &str) -> Result<bool, SourceError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" => Ok(true),
        "false" | "no" => Ok(false),
        _ => Err(url_error(format!(
            "{key}={value} is not a boolean (true, false, yes, no)"
        ))),
    }
}

impl ConnectSpec {
    /// Parse a mapping's `url`; `trust` is the mapping's `trust_server_certificate`.
    pub(crate) fn parse(url: &str, trust: bool) -> Result<ConnectSpec, SourceError> {
        let lower = url.trim_start().to_ascii_lowercase();
        let mut spec = if lower.starts_with("mssql://") || lower.starts_with("sqlserver://") {
            ConnectSpec::parse_url(url.trim())?
        } else {
            ConnectSpec::parse_ado(url)?
        };
        if trust {
            if let Trust::Ca(_) = spec.trust {
                return Err(url_error(
                    "trust_server_certificate = true and TrustServerCertificateCA exclude each other: keep one",
                ));
            }
            spec.trust = Trust::All;
        }
        if spec.instance.is_some() && spec.port.is_none() {
            return Err(url_error(
                "a named instance (host\\instance) needs its port here (server=tcp:host\\instance,PORT): this build does not ask the SQL Browser",
            ));
        }
        Ok(spec)
    }

    /// `mssql://[user[:password]@]host[:port][/database][?encrypt=..&trustservercertificate=..]`;
    /// user, password and database are percent-decoded.
    fn parse_url(url: &str) -> Result<ConnectSpec, SourceError> {
        let rest = url.split_once("://").map_or(url, |(_, r)| r);
        let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (auth, hostpart) = rest.rsplit_once('@').unwrap_or(("", rest));
        let (hostport, db) = hostpart.split_once('/').unwrap_or((hostpart, ""));
        // An IPv6 address is written in brackets: [::1]:1433.
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (h, after) = v6
                .split_once(']')
                .ok_or_else(|| url_error("an IPv6 host needs its closing ']'"))?;
            (h, after.strip_prefix(':'))
        } else {
            match hostport.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (hostport, None),
            }
        };
        let port = port
            .map(|p| {
                p.parse::<u16>().map_err(|_| {
                    url_error(format!("the port '{p}' is not a number from 0 to 65535"))
                })
            })
            .transpose()?;
        let (user, password) = match auth.split_once(':') {
            Some((u, p)) => (Some(u), Some(p)),
            None if auth.is_empty() => (None, None),
            None => (Some(auth), None),
        };
        let db = db.trim_end_matches('/');
        let mut spec = ConnectSpec {
            host: (!host.is_empty()).then(|| host.to_string()),
            port,
            instance: None,
            database: if db.is_empty() {
                None
            } else {
                Some(percent_decode(db, "database")?)
            },
            application_name: None,
            user: user.map(|u| percent_decode(u, "user")).transpose()?,
            password: password
                .map(|p| percent_decode(p, "password"))
                .transpose()?,
            // tiberius's default with TLS compiled in: encrypt everything.
            encryption: EncryptionLevel::Required,
            trust: Trust::System,
            readonly: false,
        };
        for kv in query.split('&').filter(|s| !s.is_empty()) {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            match k.to_ascii_lowercase().as_str() {
                "encrypt" => {
                    spec.encryption = match v.to_ascii_lowercase().as_str() {
                        "true" | "yes" => EncryptionLevel::Required,
                        "false" | "no" => EncryptionLevel::Off,
                        "danger_plaintext" => EncryptionLevel::NotSupported,
                        _ => {
                            return Err(url_error(format!(
                        "encrypt={v}: use true, false (TLS for the login only) or DANGER_PLAINTEXT"
                    )))
                        }
                    }
                }
                "trustservercertificate" | "trust_server_certificate" => {
                    if ado_bool(k, v)? {
                        spec.trust = Trust::All;
                    }
                }
                _ => return Err(url_error(format!("unknown option {k}={v}"))),
            }
        }
        Ok(spec)
    }

    /// An ADO.NET string, read with the keywords and defaults tiberius's
    /// `Config::from_ado_string` uses (the tests compare the two).
    fn parse_ado(text: &str) -> Result<ConnectSpec, SourceError> {
        let dict: connection_string::AdoNetString = text.parse().map_err(|e| {
            url_error(format!(
                "neither an mssql:// URL nor an ADO.NET string (key=value;...): {e}"
            ))
        })?;
        let get = |keys: &[&str]| keys.iter().find_map(|k| dict.get(*k)).cloned();
        if let Some(v) = get(&["integratedsecurity", "integrated security"]) {
            if v.eq_ignore_ascii_case("sspi") || ado_bool("Integrated Security", &v)? {
                return Err(url_error(
                    "integrated (Windows/Kerberos) authentication is not supported by this build: use a SQL login (user id=...; password or password_env)",
                ));
            }
        }
        let (mut host, mut port, mut instance) = (None, None, None);
        if let Some(server) = get(&["server", "data source"]) {
            let server = server.trim();
            let server = match server.get(..4) {
                Some(p) if p.eq_ignore_ascii_case("tcp:") => &server[4..],
                _ => server,
            };
            let parts: Vec<&str> = server.split(',').collect();
            if parts.len() > 2 {
                return Err(url_error(format!(
                    "server={server}: write tcp:host,port or tcp:host\\instance,port"
                )));
            }
            if let Some(p) = parts.get(1) {
                port = Some(p.trim().parse::<u16>().map_err(|_| {
                    url_error(format!("the port '{p}' is not a number from 0 to 65535"))
                })?);
            }
            let name = parts[0].trim();
            let (h, inst) = match name.split_once('\\') {
                Some((h, i)) => (h, Some(i.split('\\').next().unwrap_or(i).to_string())),
                None => (name, None),
            };
            host = Some(h.replace("(local)", "localhost"));
            instance = inst;
        }
        let encryption = match get(&["encrypt"]) {
            None => EncryptionLevel::Off,
            Some(v) if v.trim().eq_ignore_ascii_case("danger_plaintext") => {
                EncryptionLevel::NotSupported
            }
            Some(v) => {
                if ado_bool("encrypt", &v)? {
                    EncryptionLevel::Required
                } else {
                    EncryptionLevel::Off
                }
            }
        };
        let trust_all = get(&["trustservercertificate"])
            .map(|v| ado_bool("TrustServerCertificate", &v))
            .transpose()?
            .unwrap_or(false);
        let trust = match (trust_all, get(&["trustservercertificateca"])) {
            (true, Some(_)) => {
                return Err(url_error(
                    "TrustServerCertificate=true and TrustServerCertificateCA exclude each other: keep one",
                ))
            }
            (true, None) => Trust::All,
            (false, Some(ca)) => Trust::Ca(ca),
            (false, None) => Trust::System,
        };
        Ok(ConnectSpec {
            host,
            port,
            instance,
            database: get(&["database", "initial catalog", "databasename"]),
            application_name: get(&["application name", "applicationname"]),
            user: get(&["uid", "username", "user", "user id"]),
            password: get(&["password", "pwd"]),
            encryption,
            trust,
            readonly: get(&["applicationintent"])
                .is_some_and(|v| v.trim().eq_ignore_ascii_case("readonly")),
        })
    }

    /// The password from `password_env`: it replaces only the password, the user
    /// stays the one of the URL or the ADO.NET string.
    pub(crate) fn set_password(&mut self, var: &str, password: String) -> Result<(), SourceError> {
        if self.user.as_deref().unwrap_or("").is_empty() {
            return Err(url_error(format!(
                "password_env = \"{var}\" needs a user in the url (mssql://USER@host/db, or user id=USER in an ADO.NET string)"
            )));
        }
        self.password = Some(password);
        Ok(())
    }

    pub(crate) fn config(&self) -> Config {
        let mut c = Config::new();
        if let Some(h) = &self.host {
            c.host(h);
        }
        if let Some(p) = self.port {
            c.port(p);
        }
        if let Some(i) = &self.instance {
            c.instance_name(i);
        }
        // No user and no password: no SQL login sent (tiberius's ADO.NET reader gives
        // an empty user and password instead, which logs in the same way).
        if self.user.is_some() || self.password.is_some() {
            c.authentication(AuthMethod::sql_server(
                self.user.as_deref().unwrap_or(""),
                self.password.as_deref().unwrap_or(""),
            ));
        }
        if let Some(db) = &self.database {
            c.database(db);
        }
        if let Some(app) = &self.application_name {
            c.application_name(app);
        }
        // `trust_cert` and `trust_cert_ca` panic when both are called; `Trust` holds one.
        match &self.trust {
            Trust::System => {}
            Trust::All => c.trust_cert(),
            Trust::Ca(path) => c.trust_cert_ca(path),
        }
        c.encryption(self.encryption);
        c.readonly(self.readonly);
        c
    }

    /// For logs, errors and the source fingerprint: no password, ever.
    pub(crate) fn display(&self) -> String {
        let user = self
            .user
            .as_deref()
            .filter(|u| !u.is_empty())
            .map(|u| format!("{u}@"))
            .unwrap_or_default();
        let host = self.host.as_deref().unwrap_or("localhost");
        let instance = self
            .instance
            .as_deref()
            .map(|i| format!("\\{i}"))
            .unwrap_or_default();
        format!(
            "mssql://{user}{host}{instance}:{}/{}",
            self.port.unwrap_or(1433),
            self.database.as_deref().unwrap_or("")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err_text<T>(r: Result<T, SourceError>) -> String {
        match r {
            Ok(_) => panic!("expected an error"),
            Err(e) => e.to_string(),
        }
    }

    // -- connection settings -------------------------------------------------

    #[test]
    fn url_gives_every_setting() {
        let c = ConnectSpec::parse(
            "mssql://sa:pw@db.example:1444/pliers?encrypt=DANGER_PLAINTEXT",
            false,
        )
        .unwrap();
        assert_eq!(c.host.as_deref(), Some("db.example"));
        assert_eq!(c.port, Some(1444));
        assert_eq!(c.database.as_deref(), Some("pliers"));
        assert_eq!(c.user.as_deref(), Some("sa"));
        assert_eq!(c.password.as_deref(), Some("pw"));
        assert_eq!(c.encryption, EncryptionLevel::NotSupported);
        assert_eq!(c.trust, Trust::System);
        assert_eq!(c.config().get_addr(), "db.example:1444");

        // Defaults: port 1433, TLS required, no login, the server's default database.
        let c = ConnectSpec::parse("sqlserver://legacy-db", false).unwrap();
        assert_eq!(c.config().get_addr(), "legacy-db:1433");
        assert_eq!(
            (c.database, c.user, c.password, c.encryption, c.trust),
            (None, None, None, EncryptionLevel::Required, Trust::System)
        );

        let c = ConnectSpec::parse(
            "mssql://etl@h/db?encrypt=false&TrustServerCertificate=true",
            false,
        )
        .unwrap();
        assert_eq!(c.encryption, EncryptionLevel::Off);
        assert_eq!(c.trust, Trust::All);
        assert_eq!(c.user.as_deref(), Some("etl"));
        assert_eq!(c.password, None);
        // The mapping's trust_server_certificate = true.
        let c = ConnectSpec::parse("mssql://h/db?encrypt=true", true).unwrap();
        assert_eq!(
            (c.encryption, c.trust),
            (EncryptionLevel::Required, Trust::All)
        );
        // IPv6 in brackets.
        let c = ConnectSpec::parse("mssql://sa@[::1]:1500/db", false).unwrap();
        assert_eq!((c.host.as_deref(), c.port), (Some("::1"), Some(1500)));
    }

    #[test]
    fn url_user_password_and_database_are_percent_decoded() {
        let c = ConnectSpec::parse(
            "mssql://app%40corp:p%40ss%3Aw%2Fd%25%20x@h:1433/my%20db%C3%A9?encrypt=true",
            false,
        )
        .unwrap();
        assert_eq!(c.user.as_deref(), Some("app@corp"));
        assert_eq!(c.password.as_deref(), Some("p@ss:w/d% x"));
        assert_eq!(c.database.as_deref(), Some("my dbé"));
        // An unencoded '@' in the password: the last '@' ends the user info.
        let c = ConnectSpec::parse("mssql://sa:p@ss@h/db", false).unwrap();
        assert_eq!(
            (c.user.as_deref(), c.password.as_deref(), c.host.as_deref()),
            (Some("sa"), Some("p@ss"), Some("h"))
        );
        let e = err_text(ConnectSpec::parse("mssql://sa:%zz-secret@h/db", false));
        assert!(e.contains("password") && e.contains("%XX"), "{e}");
        assert!(!e.contains("secret"), "the password leaked: {e}");
        let e = err_text(ConnectSpec::parse("mssql://sa@h/db%FF", false));
        assert!(e.contains("database is not UTF-8"), "{e}");
    }

    #[test]
    fn bad_urls_are_errors_not_defaults() {
        let e = err_text(ConnectSpec::parse("mssql://h:99999/db", false));
        assert!(e.contains("port '99999'"), "{e}");
        let e = err_text(ConnectSpec::parse("mssql://h:14x3/db", false));
        assert!(e.contains("port '14x3'"), "{e}");
        let e = err_text(ConnectSpec::parse("mssql://h/db?bogus=1", false));
        assert!(e.contains("unknown option bogus=1"), "{e}");
        let e = err_text(ConnectSpec::parse("mssql://h/db?encrypt=maybe", false));
        assert!(e.contains("encrypt=maybe"), "{e}");
        let e = err_text(ConnectSpec::parse("mssql://[::1/db", false));
        assert!(e.contains("IPv6"), "{e}");
    }

    #[test]
    fn ado_string_gives_every_setting() {
        let c = ConnectSpec::parse(
            "server=tcp:db.example,1444;user id=sa;password=x;database=pliers;TrustServerCertificate=true;encrypt=true",
            false,
        )
        .unwrap();
        assert_eq!(c.host.as_deref(), Some("db.example"));
        assert_eq!(c.port, Some(1444));
        assert_eq!(c.database.as_deref(), Some("pliers"));
        assert_eq!(c.user.as_deref(), Some("sa"));
        assert_eq!(c.password.as_deref(), Some("x"));
        assert_eq!(c.encryption, EncryptionLevel::Required);
        assert_eq!(c.trust, Trust::All);

        let c = ConnectSpec::parse(
            "Server=(local);Initial Catalog=Legacy;UID=etl;PWD={a;b=c};Encrypt=DANGER_PLAINTEXT;Application Name=cutover;ApplicationIntent=ReadOnly",
            false,
        )
        .unwrap();
        assert_eq!(c.host.as_deref(), Some("localhost"));
        assert_eq!(c.port, None);
        assert_eq!(c.database.as_deref(), Some("Legacy"));
        assert_eq!(c.user.as_deref(), Some("etl"));
        assert_eq!(c.password.as_deref(), Some("a;b=c"));
        assert_eq!(c.encryption, EncryptionLevel::NotSupported);
        assert_eq!(c.application_name.as_deref(), Some("cutover"));
        assert!(c.readonly);
        assert_eq!(c.config().get_addr(), "localhost:1433");

        // No encrypt: TLS for the login only (tiberius's ADO.NET default).
        let c = ConnectSpec::parse(
            "data source=tcp:h\\SQLEXPRESS,1500;user=u;TrustServerCertificateCA=/etc/ca.pem",
            false,
        )
        .unwrap();
        assert_eq!(c.instance.as_deref(), Some("SQLEXPRESS"));
        assert_eq!(c.port, Some(1500));
        assert_eq!(c.encryption, EncryptionLevel::Off);
        assert_eq!(c.trust, Trust::Ca("/etc/ca.pem".into()));
        assert_eq!(c.config().get_addr(), "h:1500");
    }

    #[test]
    fn ado_string_reads_like_tiberius() {
        // tiberius's Config hides its fields but prints them (password hidden):
        // the same ADO.NET string gives the same Config both ways.
        for s in [
            "server=tcp:db.example,1444;user id=sa;password=x;database=pliers;TrustServerCertificate=true;encrypt=true",
            "Server=(local);Initial Catalog=Legacy;UID=etl;PWD={a;b=c};Encrypt=DANGER_PLAINTEXT;Application Name=cutover;ApplicationIntent=ReadOnly",
            "data source=h\\SQLEXPRESS,1500;username=u;pwd=p;databasename=d;TrustServerCertificateCA=/etc/ca.pem",
            "server=10.0.0.5;user=u;encrypt=no;trustservercertificate=yes",
            "server=tcp:h;User ID=u;Password=p;Encrypt=False",
        ] {
            let ours = ConnectSpec::parse(s, false).unwrap().config();
            let theirs = Config::from_ado_string(s).unwrap();
            assert_eq!(format!("{ours:?}"), format!("{theirs:?}"), "{s}");
        }
    }

    #[test]
    fn bad_ado_strings_are_errors_not_panics() {
        // tiberius's own Config panics on these two (trust_cert + trust_cert_ca).
        let e = err_text(ConnectSpec::parse(
            "server=h,1;TrustServerCertificate=true;TrustServerCertificateCA=/ca.pem",
            false,
        ));
        assert!(e.contains("exclude each other"), "{e}");
        let e = err_text(ConnectSpec::parse(
            "server=h,1;TrustServerCertificateCA=/ca.pem",
            true,
        ));
        assert!(e.contains("trust_server_certificate = true"), "{e}");
        let e = err_text(ConnectSpec::parse("server=h\\inst;user id=u", false));
        assert!(e.contains("named instance"), "{e}");
        let e = err_text(ConnectSpec::parse(
            "server=h;Integrated Security=SSPI",
            false,
        ));
        assert!(e.contains("integrated"), "{e}");
        let e = err_text(ConnectSpec::parse("server=h,14x;user id=u", false));
        assert!(e.contains("port '14x'"), "{e}");
        let e = err_text(ConnectSpec::parse("server=h;encrypt=maybe", false));
        assert!(e.contains("encrypt=maybe"), "{e}");
        let e = err_text(ConnectSpec::parse("just some words", false));
        assert!(
            e.contains("neither an mssql:// URL nor an ADO.NET string"),
            "{e}"
        );
    }
}
