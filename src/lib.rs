//! `cutover`: a batch ETL engine for one-off legacy-to-new database cutovers.
//!
//! Data flows one way: a [`source`] streams [`record::Record`]s, the compiled
//! [`mapping`] turns each into rows per table ([`transform`]), and a [`sink`]
//! writes them as batched idempotent upserts, with the batch's error rows and the
//! checkpoint in the same transaction ([`tracking`]). [`pipeline`] wires the stages.

pub mod db;
pub mod dialect;
pub mod init;
pub mod keymap;
pub mod mapping;
pub mod migrate;
pub mod pipeline;
pub mod record;
pub mod report;
pub mod runtime;
pub mod sink;
pub mod source;
pub mod tracking;
pub mod transform;
pub mod value;
pub mod verify;

/// Replace every password in a connection string with `***`, so it can be shown.
///
/// URLs (`scheme://user:pass@host/db?password=...`): the password of the user
/// info, and query parameters named `password`, `pwd` or `*password`
/// (`sslpassword`), case-insensitively. ADO.NET strings (`server=...;Password={a;b};...`): the value of
/// every `password` or `pwd` key, matched case-insensitively and with spaces
/// around the key, where a value may be braced (`{a;b}`) or quoted (`"a;b"`,
/// `'a;b'`) and then holds `;`; an unclosed brace or quote hides the rest.
pub fn redact_url(url: &str) -> String {
    match url.find("://") {
        Some(i) if !url[..i].contains(['=', ';']) => redact_url_form(url, i),
        _ => redact_ado(url),
    }
}

/// Is this the name of a password parameter or keyword?
fn is_password_key(key: &str) -> bool {
    let k = key.trim().to_ascii_lowercase();
    k == "pwd" || k.ends_with("password")
}

fn redact_url_form(url: &str, scheme_end: usize) -> String {
    let start = scheme_end + 3;
    let rest = &url[start..];
    // The user info ends at an `@`. An unencoded `@`, `/` or `?` in a password
    // is taken as part of it: from the first `@`, the user info runs to the
    // last `@` before the next `/` or `?`. `scheme:///path` has no user info.
    let at = if rest.starts_with('/') {
        None
    } else {
        rest.find('@').map(|first| {
            let end = rest[first..]
                .find(['/', '?'])
                .map_or(rest.len(), |e| first + e);
            rest[..end].rfind('@').unwrap_or(first)
        })
    };
    // `h/db?password=a@b`: the `@` is inside a password parameter of the
    // query, not the end of user info (`u:p?ss@h`, an unencoded `?` in a
    // password, still is user info: no password parameter before its `@`).
    let at = at.filter(|&a| {
        let before = &rest[..a];
        !before.find('?').is_some_and(|q| {
            before[q + 1..].split('&').any(|param| {
                param
                    .split_once('=')
                    .is_some_and(|(k, _)| is_password_key(&percent_decode(k)))
            })
        })
    });
    let mut out = String::with_capacity(url.len() + 3);
    out.push_str(&url[..start]);
    let mut tail = 0;
    if let Some(at) = at {
        if let Some(colon) = rest[..at].find(':') {
            out.push_str(&rest[..=colon]);
            out.push_str("***");
            tail = at;
        }
    }
    let after = at.map_or(0, |a| a + 1);
    let Some(query) = rest[after..].find('?').map(|q| after + q) else {
        out.push_str(&rest[tail..]);
        return out;
    };
    out.push_str(&rest[tail..=query]);
    // Query parameters: `name=value` separated by `&`.
    for (n, param) in rest[query + 1..].split('&').enumerate() {
        if n > 0 {
            out.push('&');
        }
        match param.split_once('=') {
            Some((k, _)) if is_password_key(&percent_decode(k)) => {
                out.push_str(k);
                out.push_str("=***");
            }
            _ => out.push_str(param),
        }
    }
    out
}

/// `%XX` escapes decoded (for parameter names, which sqlx decodes too).
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| char::from(c).to_digit(16);
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                // Two hex digits: at most 255.
                out.push(u8::try_from(h * 16 + l).unwrap_or(b'?'));
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// ADO.NET `key=value;...`, lexed the way the `connection-string` crate that
/// tiberius uses does: `{...}` runs to the first `}`, `"..."` and `'...'` to the
/// closing quote (a doubled quote continues it), anywhere in a key or value.
fn redact_ado(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < b.len() {
        // The key: up to `=` or `;`.
        let key_start = i;
        i = scan_ado(b, i, true);
        let key = &s[key_start..i];
        out.push_str(key);
        if i >= b.len() {
            break;
        }
        if b[i] == b';' {
            out.push(';');
            i += 1;
            continue;
        }
        // b[i] == '=': the value runs to the next `;` outside braces and quotes.
        out.push('=');
        i += 1;
        let value_start = i;
        i = scan_ado(b, i, false);
        if is_password_key(key) {
            out.push_str("***");
        } else {
            out.push_str(&s[value_start..i]);
        }
        if i < b.len() {
            out.push(';');
            i += 1;
        }
    }
    out
}

/// The end of a key (stops at `=` or `;`) or a value (stops at `;`) starting at
/// `i`, skipping braced and quoted runs; the end of the input if one is unclosed.
fn scan_ado(b: &[u8], mut i: usize, key: bool) -> usize {
    while i < b.len() {
        match b[i] {
            b';' => return i,
            b'=' if key => return i,
            b'{' => match b[i + 1..].iter().position(|&c| c == b'}') {
                Some(p) => i += p + 2,
                None => return b.len(),
            },
            q @ (b'"' | b'\'') => {
                let mut j = i + 1;
                loop {
                    match b[j..].iter().position(|&c| c == q) {
                        None => return b.len(),
                        Some(p) => {
                            j += p + 1;
                            if b.get(j) == Some(&q) {
                                j += 1;
                            } else {
                                break;
                            }
                        }
                    }
                }
                i = j;
            }
            _ => i += 1,
        }
    }
    i
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn url_passwords_are_redacted() {
        for (url, want) in [
            (
                "postgres://bob:s3cret@db:5432/x",
                "postgres://bob:***@db:5432/x",
            ),
            ("postgresql://bob:s3cret@db/x", "postgresql://bob:***@db/x"),
            (
                "mysql://root:p%40ss%2Fw@127.0.0.1:3306/legacy?ssl-mode=disabled",
                "mysql://root:***@127.0.0.1:3306/legacy?ssl-mode=disabled",
            ),
            ("mariadb://root:s3cret@h", "mariadb://root:***@h"),
            (
                "mssql://sa:s3cret@h:1433/db?encrypt=DANGER_PLAINTEXT",
                "mssql://sa:***@h:1433/db?encrypt=DANGER_PLAINTEXT",
            ),
            // Unencoded `@`, `/`, `?` and `:` in the password.
            ("postgres://u:p@ss@h/db", "postgres://u:***@h/db"),
            ("postgres://u:pa/ss@h/db", "postgres://u:***@h/db"),
            ("postgres://u:pa?ss@h/db", "postgres://u:***@h/db"),
            ("postgres://u:a:b@h/db", "postgres://u:***@h/db"),
            ("postgres://u:@h/db", "postgres://u:***@h/db"),
            // Passwords in the query, any case, any position; the rest kept.
            (
                "postgres://h/db?user=u&password=s3cret&sslmode=require",
                "postgres://h/db?user=u&password=***&sslmode=require",
            ),
            (
                "postgres://u:s3cret@h/db?PassWord=s3cret",
                "postgres://u:***@h/db?PassWord=***",
            ),
            (
                "postgres://h/db?sslpassword=s3cret&pwd=s3cret",
                "postgres://h/db?sslpassword=***&pwd=***",
            ),
            (
                "postgres://h/db?pass%77ord=s3cret",
                "postgres://h/db?pass%77ord=***",
            ),
            // An `@` in the query is not user info.
            (
                "postgres://u:s3cret@h/db?application_name=a@b",
                "postgres://u:***@h/db?application_name=a@b",
            ),
        ] {
            assert_eq!(redact_url(url), want, "{url}");
        }
    }

    /// Found by the property tests (src/source/proptests.rs): without user info,
    /// the first `@` (here inside a query password) is taken for the end of the
    /// user info, and the query is then copied as it is.
    #[test]
    fn a_query_password_with_an_at_sign_is_redacted() {
        for (url, want) in [
            (
                "postgres://h/db?password=a@b",
                "postgres://h/db?password=***",
            ),
            (
                "postgres://h:5432/db?password=s3@cret&x=1",
                "postgres://h:5432/db?password=***&x=1",
            ),
        ] {
            assert_eq!(redact_url(url), want, "{url}");
        }
    }

    #[test]
    fn urls_without_passwords_are_unchanged() {
        for url in [
            "sqlite://cutover.db",
            "sqlite:///tmp/a:b@c.db",
            "sqlite::memory:",
            "postgres://postgres@127.0.0.1:5432/test",
            "postgres://127.0.0.1/db?user=u&sslmode=require",
            "mysql://root@127.0.0.1:3306/test",
            "",
        ] {
            assert_eq!(redact_url(url), url);
        }
    }

    #[test]
    fn ado_net_passwords_are_redacted() {
        for (s, want) in [
            (
                "server=tcp:h,1433;user id=sa;password=Hunter2;database=d",
                "server=tcp:h,1433;user id=sa;password=***;database=d",
            ),
            // Keys in any case, with spaces around them.
            (
                "Server=h;User ID=sa;Password=Hunter2;Database=d",
                "Server=h;User ID=sa;Password=***;Database=d",
            ),
            ("server=h;PWD=Hunter2", "server=h;PWD=***"),
            ("server=h;pwd=Hunter2;", "server=h;pwd=***;"),
            (
                "server=h; Password = Hunter2 ;database=d",
                "server=h; Password =***;database=d",
            ),
            // Braced and quoted values hold `;` and `=`.
            (
                "server=h;password={Hun;ter2};database=d",
                "server=h;password=***;database=d",
            ),
            (
                "server=h;password={a=b;c};database=d",
                "server=h;password=***;database=d",
            ),
            (
                "server=h;password=\"Hun;ter2\";database=d",
                "server=h;password=***;database=d",
            ),
            (
                "server=h;password='Hun;''ter2';database=d",
                "server=h;password=***;database=d",
            ),
            (
                "server=h;password=ab{c;d}ef;database=d",
                "server=h;password=***;database=d",
            ),
            // Every password, not only the first.
            (
                "pwd=one;server=h;Password=two",
                "pwd=***;server=h;Password=***",
            ),
            // An unclosed brace or quote hides everything after it.
            (
                "server=h;password={Hun;ter2;database=d",
                "server=h;password=***",
            ),
            ("server=h;password=\"Hun;ter2", "server=h;password=***"),
            // A braced value elsewhere does not hide a password behind it.
            (
                "server=h;application name={a;password=x};password=Hunter2",
                "server=h;application name={a;password=x};password=***",
            ),
        ] {
            assert_eq!(redact_url(s), want, "{s}");
        }
    }

    /// What tiberius's ADO.NET reader (the `connection-string` crate) takes as
    /// the password never survives, and every other setting reads the same.
    #[test]
    fn ado_net_redaction_agrees_with_the_parser_tiberius_uses() {
        use connection_string::AdoNetString;
        for s in [
            "server=tcp:h,1433;user id=sa;password={Hun;ter2};database=d",
            "Server=h;Password=\"Hun;ter2\";Database=d;Encrypt=true",
            "Server=h; PWD = Hunter2 ;Database=d",
            "Server=h;Password=Hun{t;e}r2;TrustServerCertificate=true",
        ] {
            let before: AdoNetString = s.parse().unwrap();
            let redacted = redact_url(s);
            let after: AdoNetString = redacted.parse().unwrap();
            let pw = before
                .get("password")
                .or_else(|| before.get("pwd"))
                .unwrap();
            assert!(pw.starts_with("Hun"), "{s}: {pw}");
            assert!(!redacted.contains("Hun"), "{s} -> {redacted}");
            for (k, v) in before.iter() {
                let got = after.get(k).unwrap();
                if k == "password" || k == "pwd" {
                    assert_eq!(got, "***", "{s}");
                } else {
                    assert_eq!(got, v, "{k} in {s}");
                }
            }
        }
    }
}
