//! What `--source` names: a SQL database by URL (the kind from its scheme, or
//! an ADO.NET string for SQL Server) or a file source (`--kind kv|json`). The
//! password is taken out of the URL here: the mappings get the URL without it
//! and a `password_env`, and only `init`'s own connection uses it.

use super::catalog::SourceDialect;
use super::error::InitError;
use crate::mapping::SourceKind;
use std::path::{Component, Path, PathBuf};

/// The password of a URL's user info (percent-decoded) and the URL without it.
pub fn split_url_password(url: &str) -> Result<(String, Option<String>), InitError> {
    let Some(i) = url.find("://") else {
        return Ok((url.to_string(), None));
    };
    let start = i + 3;
    let rest = &url[start..];
    let Some(first_at) = rest.find('@') else {
        return Ok((url.to_string(), None));
    };
    let end = rest[first_at..]
        .find(['/', '?'])
        .map_or(rest.len(), |e| first_at + e);
    let at = rest[..end].rfind('@').unwrap_or(first_at);
    let userinfo = &rest[..at];
    let Some((user, password)) = userinfo.split_once(':') else {
        return Ok((url.to_string(), None));
    };
    let password = crate::source::mssql::config::percent_decode(password, "password")
        .map_err(|e| InitError::Usage(e.to_string()))?;
    Ok((
        format!("{}{user}{}", &url[..start], &rest[at..]),
        Some(password),
    ))
}

/// An ADO.NET string without its `password`/`pwd` pair, and the password.
/// Pairs are kept as written; a value may be braced (`{a;b}`, `}}` for `}`) or
/// quoted (`"a;b"`, `'a;b'`).
pub fn split_ado_password(text: &str) -> Result<(String, Option<String>), InitError> {
    let mut kept = Vec::new();
    let mut password = None;
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let start = i;
        let eq = text[i..].find('=').map(|e| i + e);
        let Some(eq) = eq else {
            let rest = text[i..].trim();
            if !rest.is_empty() {
                kept.push(rest.to_string());
            }
            break;
        };
        let key = text[start..eq].trim().to_string();
        let mut j = eq + 1;
        while j < b.len() && b[j] == b' ' {
            j += 1;
        }
        let (value, next) = match b.get(j) {
            Some(&open @ (b'{' | b'"' | b'\'')) => {
                let close = if open == b'{' { b'}' } else { open };
                let mut v = String::new();
                let mut k = j + 1;
                loop {
                    match b.get(k) {
                        None => {
                            return Err(InitError::Usage(format!(
                                "the SQL Server connection string: the value of {key} is not closed"
                            )))
                        }
                        Some(&c) if c == close && b.get(k + 1) == Some(&close) => {
                            v.push(char::from(c));
                            k += 2;
                        }
                        Some(&c) if c == close => {
                            k += 1;
                            break;
                        }
                        Some(_) => {
                            let ch = text[k..].chars().next().unwrap_or(' ');
                            v.push(ch);
                            k += ch.len_utf8();
                        }
                    }
                }
                let end = text[k..].find(';').map_or(b.len(), |e| k + e);
                (v, end)
            }
            _ => {
                let end = text[j..].find(';').map_or(b.len(), |e| j + e);
                (text[j..end].trim().to_string(), end)
            }
        };
        let lower = key.to_ascii_lowercase();
        if lower == "password" || lower == "pwd" {
            password = Some(value);
        } else if !key.is_empty() {
            kept.push(text[start..next].trim().to_string());
        }
        i = next + 1;
    }
    Ok((kept.join(";"), password))
}

/// The kind of a SQL `--source` from its form, when `--kind` is not given.
pub fn sql_kind(source: &str) -> Option<SourceDialect> {
    let lower = source.trim().to_ascii_lowercase();
    if lower.starts_with("mssql://") || lower.starts_with("sqlserver://") {
        Some(SourceDialect::Mssql)
    } else if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
        Some(SourceDialect::Postgres)
    } else if lower.starts_with("mysql://") || lower.starts_with("mariadb://") {
        Some(SourceDialect::Mysql)
    } else if lower.starts_with("sqlite:")
        || [".sqlite", ".sqlite3", ".db"]
            .iter()
            .any(|e| lower.ends_with(e))
    {
        Some(SourceDialect::Sqlite)
    } else if lower.contains("server=") || lower.contains("data source=") {
        Some(SourceDialect::Mssql)
    } else {
        None
    }
}

pub fn dialect_of(kind: SourceKind) -> Option<SourceDialect> {
    match kind {
        SourceKind::Mssql => Some(SourceDialect::Mssql),
        SourceKind::Postgres => Some(SourceDialect::Postgres),
        SourceKind::Mysql => Some(SourceDialect::Mysql),
        SourceKind::Sqlite => Some(SourceDialect::Sqlite),
        SourceKind::Kv | SourceKind::Json => None,
    }
}

/// The file of a SQLite `--source` (`sqlite://x.db`, `sqlite:x.db` or a path).
pub fn sqlite_path(source: &str) -> PathBuf {
    let s = source
        .strip_prefix("sqlite://")
        .or_else(|| source.strip_prefix("sqlite:"))
        .unwrap_or(source);
    PathBuf::from(s.split('?').next().unwrap_or(s))
}

/// An absolute, normalised path (`..` and `.` resolved without touching the disk).
pub fn absolute(p: &Path) -> PathBuf {
    let joined = if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir().unwrap_or_default().join(p)
    };
    let mut out = PathBuf::new();
    for c in joined.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// `target` relative to the folder `base` (both absolute): how a mapping in
/// `base` names a file, so the generated folder can move with its source.
pub fn relative(target: &Path, base: &Path) -> PathBuf {
    let t: Vec<Component> = target.components().collect();
    let b: Vec<Component> = base.components().collect();
    let common = t.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let mut out = PathBuf::new();
    for _ in common..b.len() {
        out.push("..");
    }
    for c in &t[common..] {
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_come_out_of_urls() {
        let (u, p) = split_url_password("mssql://sa:S3cr%40t@legacy:1433/pliers").unwrap();
        assert_eq!(u, "mssql://sa@legacy:1433/pliers");
        assert_eq!(p.as_deref(), Some("S3cr@t"));
        let (u, p) = split_url_password("postgres://u:p@w@h/db?sslmode=disable").unwrap();
        assert_eq!(u, "postgres://u@h/db?sslmode=disable");
        assert_eq!(p.as_deref(), Some("p@w"));
        let (u, p) = split_url_password("mysql://root@127.0.0.1/test").unwrap();
        assert_eq!((u.as_str(), p), ("mysql://root@127.0.0.1/test", None));
        let (u, p) =
            split_ado_password("server=tcp:db,1433;user id=sa;Password={a;b};database=x").unwrap();
        assert_eq!(p.as_deref(), Some("a;b"));
        assert!(!u.to_ascii_lowercase().contains("password"), "{u}");
        assert!(u.contains("database=x"), "{u}");
    }

    #[test]
    fn kinds_and_paths() {
        assert_eq!(sql_kind("mssql://h/db"), Some(SourceDialect::Mssql));
        assert_eq!(
            sql_kind("server=tcp:h,1433;database=x"),
            Some(SourceDialect::Mssql)
        );
        assert_eq!(sql_kind("../x/Chinook.sqlite"), Some(SourceDialect::Sqlite));
        assert_eq!(sql_kind("postgresql://h/db"), Some(SourceDialect::Postgres));
        assert_eq!(sql_kind("../dump/"), None);
        assert_eq!(
            sqlite_path("sqlite://a/b.db?mode=ro"),
            PathBuf::from("a/b.db")
        );
        assert_eq!(
            relative(
                Path::new("/w/shared/d/c.sqlite"),
                Path::new("/tmp/out/mappings")
            ),
            PathBuf::from("../../../w/shared/d/c.sqlite")
        );
        assert_eq!(
            relative(
                Path::new("/w/repo/data/x.db"),
                Path::new("/w/repo/out/mappings")
            ),
            PathBuf::from("../../data/x.db")
        );
        assert_eq!(
            absolute(Path::new("/a/b/../c/./d")),
            PathBuf::from("/a/c/d")
        );
    }
}
