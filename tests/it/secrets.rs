//! `hash_password` and `encrypt` end to end: hashes that verify, reruns that
//! keep what is stored, a changed password written again, keys checked before
//! anything is written, and no clear text in dry runs or logs.

use super::util::{write, TestDb};

const KEY: &str = "eqE4x0quO2ymdoG9K3JUBMHnurvKb97HwtHBSR-F0Jo=";

fn setup(db: &TestDb, logins: &str) -> String {
    let dir = db.dir().join("logins");
    write(&dir.join("logins.jsonl"), logins);
    write(
        &dir.join("sql/1_create_logins.sql"),
        "CREATE TABLE logins (id VARCHAR(16) NOT NULL, argon TEXT NOT NULL, bcrypt_hash TEXT NOT NULL, api_token TEXT NULL, PRIMARY KEY (id));\n",
    );
    write(
        &dir.join("logins.toml"),
        r#"name = "logins"
schema = "sql"
[source]
kind = "kv"
path = "logins.jsonl"
[[tables]]
table = "logins"
key = ["id"]
columns.id          = "key"
columns.argon       = "value.password | hash_password('argon2id', 'm=8192,t=1,p=1')"
columns.bcrypt_hash = "value.password | hash_password('bcrypt', 'cost=4')"
columns.api_token   = "value.token | encrypt('LOGINS_KEY')"
"#,
    );
    dir.join("logins.toml").to_str().unwrap().to_string()
}

const LOGINS: &str = concat!(
    r#"{"key": "ann", "value": {"password": "correct horse", "token": "tok-ann"}}"#,
    "\n",
    r#"{"key": "bob", "value": {"password": "Tr0ub4dor&3", "token": null}}"#,
    "\n",
    r#"{"key": "cy", "value": {"password": 12, "token": "tok-cy", "x": 1}}"#,
    "\n",
);

fn hashes_verify_and_reruns_keep_them(db: &TestDb) {
    let m = setup(db, LOGINS);
    let env = [("LOGINS_KEY", KEY)];
    let out = db.run_env(&["run", &m], &env).ok();
    assert!(
        out.stdout
            .contains("3 read, 3 written, 0 filtered, 0 failed"),
        "{}",
        out.stdout
    );
    let rows = db.rows("SELECT id, argon, bcrypt_hash, api_token FROM logins ORDER BY id");
    let clear = ["correct horse", "Tr0ub4dor&3", "12"];
    let f = fernet::Fernet::new(KEY).unwrap();
    for (r, pw) in rows.iter().zip(clear) {
        let argon = r[1].as_deref().unwrap();
        assert!(
            argon.starts_with("$argon2id$v=19$m=8192,t=1,p=1$"),
            "{argon}"
        );
        use argon2::password_hash::{PasswordHash, PasswordVerifier};
        let h = PasswordHash::new(argon).unwrap();
        assert!(
            argon2::Argon2::default()
                .verify_password(pw.as_bytes(), &h)
                .is_ok(),
            "{r:?}"
        );
        let b = r[2].as_deref().unwrap();
        assert!(
            b.starts_with("$2b$04$") && bcrypt::verify(pw, b).unwrap(),
            "{r:?}"
        );
    }
    assert_eq!(rows[1][3], None, "a null stays null");
    assert_eq!(
        f.decrypt(rows[0][3].as_deref().unwrap()).unwrap(),
        b"tok-ann"
    );
    let before = super::util::snapshot(db, "logins");

    // A rerun with `--full` writes nothing: every stored hash and token still opens.
    let written_unchanged = |run: i64| {
        (
            db.count(&format!(
                "SELECT rows_written FROM cutover_runs WHERE id = {run}"
            )),
            db.count(&format!(
                "SELECT rows_unchanged FROM cutover_runs WHERE id = {run}"
            )),
        )
    };
    db.run_env(&["run", &m, "--full"], &env).ok();
    assert_eq!(written_unchanged(2), (0, 3));
    assert_eq!(super::util::snapshot(db, "logins"), before);

    // One password changes at the source: only that row is written again.
    write(
        &db.dir().join("logins/logins.jsonl"),
        &LOGINS.replace("Tr0ub4dor&3", "Tr0ub4dor&4"),
    );
    // The two others read exactly as before: skipped, not even compared.
    let out = db.run_env(&["run", &m], &env).ok();
    assert_eq!(written_unchanged(3), (1, 0));
    assert_eq!(super::util::skipped(&out.stdout), [2], "{}", out.stdout);
    let after = super::util::snapshot(db, "logins");
    assert_eq!(after[0], before[0]);
    assert_eq!(after[2], before[2]);
    let b = after[1][2].as_deref().unwrap();
    assert!(bcrypt::verify("Tr0ub4dor&4", b).unwrap());

    // The key is checked before anything is written: exit 2, naming the variable.
    let out = db.run(&["run", &m]);
    assert_eq!(out.code, 2, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains(
            "environment variable LOGINS_KEY is not set: encrypt() reads its Fernet key from it"
        ),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("logins.toml:12:38: logins.api_token: "),
        "{}",
        out.stderr
    );
    let out = db.run_env(&["run", &m], &[("LOGINS_KEY", "hunter2")]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr
            .contains("environment variable LOGINS_KEY does not hold a Fernet key"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("hunter2"), "{}", out.stderr);
}

fn dry_runs_and_logs_show_no_clear_text(db: &TestDb) {
    // Every record fails: too long for bcrypt (the message is its own), a null
    // into a NOT NULL column (the record shows the token), a line cut off.
    let long = format!("s3cr3t-ann{}", "p".repeat(75));
    let dirty = format!(
        "{}\n{}\n{}\n",
        serde_json::json!({"key": "ann", "value": {"password": long, "token": "tok-secret-1"}}),
        serde_json::json!({"key": "bob", "value": {"password": null, "token": "tok-secret-2"}}),
        r#"{"key": "cy", "value": {"password": "s3cr3t-cy""#,
    );
    let m = setup(db, &dirty);
    let env = [("LOGINS_KEY", KEY)];
    db.run(&[
        "migrate",
        "run",
        "--source",
        db.dir().join("logins/sql").to_str().unwrap(),
    ])
    .ok();
    let dry = db.run_env(&["run", &m, "--dry-run"], &env).ok();
    let real = db
        .run_env(&["-v", "--log-format", "json", "run", &m], &env)
        .ok();
    let errors = db.run(&["errors", "--json"]).ok();
    let table = format!("{:?}", db.rows("SELECT * FROM cutover_errors"));
    assert_eq!(
        db.count("SELECT count(*) FROM cutover_errors"),
        3,
        "{table}"
    );
    for text in [
        &dry.stdout,
        &dry.stderr,
        &real.stdout,
        &real.stderr,
        &errors.stdout,
        &table,
    ] {
        for clear in ["s3cr3t", "tok-secret", "ppppp"] {
            assert!(!text.contains(clear), "{clear} in:\n{text}");
        }
    }
    assert!(
        dry.stdout.contains("0 written, 0 filtered, 3 failed"),
        "{}",
        dry.stdout
    );
    assert!(
        dry.stdout
            .contains("bcrypt takes at most 72 bytes of password and this value has 85"),
        "{}",
        dry.stdout
    );
    let bob = db.rows("SELECT record FROM cutover_errors WHERE record_key = 'bob'");
    let rec: serde_json::Value = serde_json::from_str(bob[0][0].as_deref().unwrap()).unwrap();
    assert_eq!(rec, serde_json::json!({"password": "***", "token": "***"}));
}

crate::on_all_targets!(hashes_verify_and_reruns_keep_them_on, |db| {
    hashes_verify_and_reruns_keep_them(db)
});

crate::on_all_targets!(dry_runs_and_logs_show_no_clear_text_on, |db| {
    dry_runs_and_logs_show_no_clear_text(db)
});
