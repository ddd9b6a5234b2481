//! `cutover`: a batch ETL engine for one-off legacy-to-new database cutovers.
//!
//! Data flows one way: a [`source`] streams [`record::Record`]s, the compiled
//! [`mapping`] turns each into rows per table ([`transform`]), and a [`target`]
//! writes them as batched idempotent upserts, with the batch's error rows and the
//! checkpoint in the same transaction ([`tracking`]). [`pipeline`] wires the stages.

pub mod keymap;
pub mod mapping;
pub mod migrate;
pub mod pipeline;
pub mod record;
pub mod source;
pub mod target;
pub mod tracking;
pub mod transform;
pub mod value;
pub mod verify;

/// Replace the password of a connection URL with `***`, so it can be logged.
pub fn redact_url(url: &str) -> String {
    if let Some(scheme_end) = url.find("://") {
        let rest = &url[scheme_end + 3..];
        let auth_end = rest.find('/').unwrap_or(rest.len());
        let auth = &rest[..auth_end];
        if let Some(at) = auth.rfind('@') {
            let userinfo = &auth[..at];
            if let Some(colon) = userinfo.find(':') {
                return format!(
                    "{}://{}:***{}",
                    &url[..scheme_end],
                    &userinfo[..colon],
                    &rest[at..]
                );
            }
        }
    }
    // ADO.NET style: password=...;
    let lower = url.to_ascii_lowercase();
    for k in ["password=", "pwd="] {
        if let Some(i) = lower.find(k) {
            let start = i + k.len();
            let end = url[start..]
                .find(';')
                .map(|e| start + e)
                .unwrap_or(url.len());
            return format!("{}***{}", &url[..start], &url[end..]);
        }
    }
    url.to_string()
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact_url("postgres://bob:s3cret@db:5432/x"),
            "postgres://bob:***@db:5432/x"
        );
        assert_eq!(redact_url("sqlite://cutover.db"), "sqlite://cutover.db");
        assert_eq!(
            redact_url("server=tcp:h,1433;user id=sa;password=Hunter2;database=d"),
            "server=tcp:h,1433;user id=sa;password=***;database=d"
        );
    }
}
