//! Logs: `--log-format json` writes one JSON object per stderr line, the summary
//! stays on stdout, and RUST_LOG sets the level. Passwords never appear in any
//! output or tracking table.

use super::util::{cutover, Run, TestDb};
use serde_json::Value;

/// Every stderr line as a JSON object with the fields of tracing's JSON format.
#[track_caller]
fn json_lines(out: &Run) -> Vec<Value> {
    out.stderr
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("stderr line is not JSON ({e}): {l}\n{}", out.stderr));
            assert!(v.is_object(), "{l}");
            assert!(v["timestamp"].is_string(), "timestamp in {l}");
            assert!(
                ["ERROR", "WARN", "INFO", "DEBUG", "TRACE"]
                    .contains(&v["level"].as_str().unwrap_or("")),
                "level in {l}"
            );
            let target = v["target"]
                .as_str()
                .unwrap_or_else(|| panic!("target in {l}"));
            assert!(v["fields"].is_object(), "fields in {l}");
            // Our events all have a message (sqlx's query events have fields only).
            if target.starts_with("cutover") {
                assert!(v["fields"]["message"].is_string(), "fields.message in {l}");
            }
            v
        })
        .collect()
}

fn find<'a>(lines: &'a [Value], message: &str) -> &'a Value {
    lines
        .iter()
        .find(|v| v["fields"]["message"] == message)
        .unwrap_or_else(|| panic!("no log line {message:?} in {lines:#?}"))
}

#[test]
fn json_logs_are_one_object_per_line_and_rust_log_sets_the_level() {
    let db = TestDb::sqlite();
    let forge = "mappings/forge_signatures.toml";
    let out = db.run(&["--log-format", "json", "run", forge]).ok();
    // The summary is on stdout, as text, and nothing else is.
    assert!(
        out.stdout
            .starts_with("forge_signatures  run 1  succeeded in ")
            && out
                .stdout
                .contains("  records: 500 read, 500 written, 0 filtered, 0 failed\n"),
        "{}",
        out.stdout
    );
    assert!(
        !out.stdout.contains('{'),
        "no log on stdout: {}",
        out.stdout
    );
    // JSON logs at info by default.
    let lines = json_lines(&out);
    assert!(lines.iter().all(|v| v["level"] == "INFO"), "{lines:#?}");
    assert!(
        lines
            .iter()
            .all(|v| v["target"].as_str().unwrap().starts_with("cutover")),
        "{lines:#?}"
    );
    let migration = find(&lines, "applied migration");
    assert_eq!(migration["fields"]["mapping"], "forge_signatures");
    assert_eq!(migration["target"], "cutover::pipeline");
    let start = find(&lines, "starting a full pass");
    assert_eq!(start["fields"]["run_id"], 1);
    assert_eq!(start["fields"]["mapping"], "forge_signatures");
    let done = find(&lines, "run succeeded");
    for (k, n) in [
        ("read", 500),
        ("written", 500),
        ("filtered", 0),
        ("failed", 0),
    ] {
        assert_eq!(done["fields"][k], n, "{k} in {done}");
    }

    // RUST_LOG=warn: a clean run logs nothing at all.
    let out = cutover(
        &["--log-format", "json", "run", forge, "--target", &db.url],
        &[("RUST_LOG", "warn")],
    )
    .ok();
    assert_eq!(out.stderr, "", "nothing above warn happened");
    assert!(
        out.stdout.contains("forge_signatures  run 2  succeeded"),
        "{}",
        out.stdout
    );

    // RUST_LOG=debug: debug lines too (the queries), still one JSON object each.
    let out = cutover(
        &["--log-format", "json", "run", forge, "--target", &db.url],
        &[("RUST_LOG", "debug")],
    )
    .ok();
    let lines = json_lines(&out);
    assert!(
        lines.iter().any(|v| v["level"] == "DEBUG"),
        "RUST_LOG=debug adds debug lines: {}",
        out.stderr
    );
    assert_eq!(find(&lines, "starting a full pass")["fields"]["run_id"], 3);
    assert!(
        out.stdout.contains("forge_signatures  run 3  succeeded"),
        "{}",
        out.stdout
    );

    // Text logs: nothing by default (warn), info lines with RUST_LOG=info.
    let out = db.run(&["run", forge]).ok();
    assert_eq!(out.stderr, "");
    let out = cutover(
        &["run", forge, "--target", &db.url],
        &[("RUST_LOG", "info")],
    )
    .ok();
    let info: Vec<&str> = out.stderr.lines().collect();
    assert!(
        info.iter().any(|l| l.contains(" INFO ")
            && l.contains("starting a full pass")
            && l.contains("run_id=5")),
        "{}",
        out.stderr
    );
    assert!(info.iter().all(|l| !l.starts_with('{')), "{}", out.stderr);
    assert!(
        !out.stderr.contains('\x1b'),
        "no colour codes when stderr is not a terminal: {:?}",
        out.stderr
    );
}

const SECRET: &str = "S3cretPw";

/// The URL with a password in its user info. Trust authentication ignores it.
fn with_password(url: &str, password: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("a URL");
    let (user, host) = rest.split_once('@').expect("a URL with a user");
    assert!(
        !user.contains(':'),
        "the test server URL has no password: {url}"
    );
    format!("{scheme}://{user}:{password}@{host}")
}

/// Run against PostgreSQL with a password in every URL (target and a SQL
/// source; successful runs, failed connections, every reporting command): the
/// password shows in no output and in no table, the URLs show `***`.
#[test]
fn passwords_never_appear_in_output_or_tracking_tables() {
    let Some(db) = TestDb::postgres() else { return };
    let target = with_password(&db.url, SECRET);
    let mut outputs: Vec<(String, Run)> = Vec::new();
    let mut go = |args: &[&str], envs: &[(&str, &str)]| -> i32 {
        let out = cutover(args, envs);
        let code = out.code;
        outputs.push((args.join(" "), out));
        code
    };
    let dirty = "mappings/forge_signatures_dirty.toml";
    assert_eq!(
        go(
            &["--log-format", "json", "run", dirty, "--target", &target],
            &[("RUST_LOG", "debug")]
        ),
        0
    );
    assert_eq!(go(&["-v", "run", dirty, "--target", &target], &[]), 0);

    // A SQL source with the password in its URL, and the same source
    // failing to connect (its database does not exist).
    let dir = db.dir();
    std::fs::create_dir_all(dir.join("schema")).unwrap();
    std::fs::write(
        dir.join("schema/20260301000000_copy.sql"),
        "CREATE TABLE contract_copy (hash VARCHAR(64) PRIMARY KEY, page_id BIGINT);",
    )
    .unwrap();
    let copy = |name: &str, url: &str| {
        let m = dir.join(format!("{name}.toml"));
        std::fs::write(
            &m,
            format!(
                "name = \"{name}\"\nschema = \"schema\"\n[source]\nkind = \"postgres\"\nurl = \"{url}\"\ntable = \"contract\"\nkey = [\"hash\"]\n[[tables]]\ntable = \"contract_copy\"\nkey = [\"hash\"]\ncolumns.hash = \"value.hash\"\ncolumns.page_id = \"value.page_id\"\n"
            ),
        )
        .unwrap();
        m.to_str().unwrap().to_string()
    };
    let good = copy("copy", &target);
    let name = db.url.rsplit('/').next().unwrap();
    let gone = copy("copy_gone", &target.replace(name, &format!("{name}_gone")));
    assert_eq!(
        go(
            &["run", &good, "--target", &target],
            &[("RUST_LOG", "debug")]
        ),
        0
    );
    assert_eq!(go(&["plan", &good, "--target", &target], &[]), 0);
    assert_eq!(go(&["run", &gone, "--target", &target], &[]), 1);

    // Reports.
    for args in [
        vec!["status"],
        vec!["status", "--json"],
        vec!["errors"],
        vec!["errors", "--json"],
        vec!["plan", dirty],
        vec!["verify", dirty],
        vec!["verify", "--json", &good],
        vec!["migrate", "info", "--source", "sql/forge"],
        vec!["retry", dirty],
    ] {
        let mut a = args.clone();
        a.extend(["--target", &target]);
        let code = go(&a, &[]);
        assert!(code == 0 || args[0] == "verify", "{args:?}: exit {code}");
    }

    // The target cannot be reached: a closed port, a database that does not
    // exist, a MySQL server that is not there.
    let closed = target.replace(":5432/", ":1/");
    assert!(closed.contains(":1/"), "{closed}");
    let missing = target.replace(name, &format!("{name}_missing"));
    let mysql_closed = format!("mysql://root:{SECRET}@127.0.0.1:1/x");
    for url in [&closed, &missing, &mysql_closed] {
        assert_eq!(go(&["run", dirty, "--target", url], &[]), 1, "{url}");
        assert_eq!(go(&["status", "--target", url], &[]), 1, "{url}");
    }

    // The failed connections say where and why, without the password.
    for (args, o) in &outputs {
        assert!(
            !o.stdout.contains(SECRET) && !o.stderr.contains(SECRET),
            "a password in the output of `cutover {args}`:\n{}{}",
            o.stdout,
            o.stderr
        );
    }
    let text: String = outputs
        .iter()
        .map(|(args, o)| format!("$ cutover {args}\n{}{}", o.stdout, o.stderr))
        .collect();
    let redacted = target.replace(SECRET, "***");
    let stderr_of = |args: String| {
        &outputs
            .iter()
            .find(|(a, _)| *a == args)
            .unwrap_or_else(|| panic!("no output of {args}"))
            .1
            .stderr
    };
    for cmd in [format!("run {dirty}"), "status".to_string()] {
        let err = stderr_of(format!("{cmd} --target {closed}"));
        assert!(
            err.contains(&format!(
                "error: cannot connect to {}",
                closed.replace(SECRET, "***")
            )) && err.contains("Connection refused"),
            "{cmd}: {err}"
        );
        let err = stderr_of(format!("{cmd} --target {missing}"));
        assert!(
            err.contains(&format!(
                "error: cannot connect to {}",
                missing.replace(SECRET, "***")
            )) && err.contains("does not exist"),
            "{cmd}: {err}"
        );
        let err = stderr_of(format!("{cmd} --target {mysql_closed}"));
        assert!(
            err.contains("error: cannot connect to mysql://root:***@127.0.0.1:1/x")
                && err.contains("Connection refused"),
            "{cmd}: {err}"
        );
    }
    assert!(
        text.contains(&format!("{redacted}_gone")),
        "the failing source is named: {text}"
    );

    // The tracking tables (and every other table) hold the URLs redacted.
    let options = db.rows("SELECT options FROM cutover_runs ORDER BY id");
    assert!(!options.is_empty());
    for o in &options {
        let o = o[0].as_deref().unwrap();
        assert!(o.contains(&redacted), "the target as recorded: {o}");
    }
    let source = db
        .scalar("SELECT options FROM cutover_runs WHERE mapping = 'copy'")
        .unwrap();
    assert!(
        source.contains(&format!("postgres {redacted} (contract)")),
        "the source as recorded: {source}"
    );
    let tables = db.rows("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1");
    assert!(tables.len() >= 6, "{tables:?}");
    for t in tables {
        let t = t[0].clone().unwrap();
        for row in db.rows(&format!("SELECT x::text FROM \"{t}\" x")) {
            let row = row[0].clone().unwrap_or_default();
            assert!(!row.contains(SECRET), "{t}: {row}");
        }
    }
    assert_eq!(db.count("SELECT count(*) FROM contract_copy"), 45);
}
