//! Server targets: type-aware casts, quoted identifiers, isolating rows the
//! database rejects, and surviving killed connections.

use super::util::{write, Kind, TestDb};

const RECORDS: &str = r#"{"key":"good","value":{"id":1,"sel":"a","code":"AB-12","mood":"happy","amount":"12345678.91","small":7,"uid":"0E984725-C51C-4BF4-9960-E1C80E27ABA0","doc":{"a":[1,2]},"raw":"hi","at":"2024-05-04T06:44:31+02:00","d":"2024-05-04","flag":"yes"}}
{"key":"too-long","value":{"id":2,"code":"ABCDEF"}}
{"key":"bad-enum","value":{"id":3,"code":"x","mood":"angry"}}
{"key":"too-big","value":{"id":4,"code":"x","amount":"123456789.5"}}
{"key":"small-range","value":{"id":5,"code":"x","small":40000}}
{"key":"bad-uuid","value":{"id":6,"code":"x","uid":"not-a-uuid"}}
{"key":"minimal","value":{"id":7,"code":"x"}}
"#;

const MAPPING: &str = r#"name = "typed"
schema = "schema"
[source]
kind = "kv"
path = "data.jsonl"
[[tables]]
table = "Order"
key = ["Id"]
columns.Id = "value.id"
columns.select = "value.sel"
columns.code = "value.code"
columns.mood = "value.mood"
columns.amount = "value.amount"
columns.small = "value.small"
columns.uid = "value.uid"
columns.doc = "value.doc"
columns.raw = "value.raw"
columns.at = "value.at"
columns.d = "value.d"
columns.flag = "value.flag"
"#;

fn typed(db: &TestDb) {
    let d = db.dir();
    let ddl = match db.kind {
        Kind::Postgres => "CREATE TYPE mood AS ENUM ('happy', 'sad');
            CREATE TABLE \"Order\" (\"Id\" integer PRIMARY KEY, \"select\" text, code varchar(5) NOT NULL, mood mood,
              amount numeric(10,2), small smallint, uid uuid, doc jsonb, raw bytea, at timestamptz, d date, flag boolean);",
        Kind::Mysql => "CREATE TABLE `Order` (`Id` int PRIMARY KEY, `select` text, code varchar(5) NOT NULL, mood ENUM('happy','sad'),
              amount decimal(10,2), small smallint, uid char(36), doc json, raw blob, at datetime(6), d date, flag boolean);",
        Kind::Sqlite => unreachable!(),
    };
    write(&d.join("schema/20260101000000_order.sql"), ddl);
    write(&d.join("data.jsonl"), RECORDS);
    write(&d.join("typed.toml"), MAPPING);
    let out = db
        .run(&["run", d.join("typed.toml").to_str().unwrap()])
        .ok();
    // MySQL has no uuid type: there `uid` is char(36) and 'not-a-uuid' is valid text.
    let (written, failed) = if db.kind == Kind::Postgres {
        (2, 5)
    } else {
        (3, 4)
    };
    let counts = format!("7 read, {written} written, 0 filtered, {failed} failed");
    assert!(out.stdout.contains(&counts), "{}", out.stdout);
    let errors = db.rows("SELECT record_key, column_name, message FROM cutover_errors ORDER BY id");
    let get = |k: &str| {
        errors
            .iter()
            .find(|e| e[0].as_deref() == Some(k))
            .unwrap_or_else(|| panic!("{k}: {errors:?}"))
            .clone()
    };
    let e = get("too-long");
    assert_eq!(e[1].as_deref(), Some("Order.code"));
    assert_eq!(
        e[2].as_deref(),
        Some("'ABCDEF' is 6 characters long, longer than the column's limit of 5")
    );
    let e = get("bad-enum");
    assert_eq!(e[1].as_deref(), Some("Order.mood"));
    assert_eq!(
        e[2].as_deref(),
        Some("'angry' is not one of the enum's values (happy, sad)")
    );
    assert!(get("too-big")[2]
        .as_deref()
        .unwrap()
        .contains("does not fit decimal(10,2)"));
    assert_eq!(
        get("small-range")[2].as_deref(),
        Some("40000 is out of range for a 16-bit integer column")
    );
    if db.kind == Kind::Postgres {
        assert_eq!(get("bad-uuid")[1].as_deref(), Some("Order.uid"));
        assert_eq!(
            get("bad-uuid")[2].as_deref(),
            Some("'not-a-uuid' is not a UUID")
        );
    }

    let q = match db.kind {
        Kind::Postgres => "SELECT \"select\", code, mood::text, amount::text, small::text, uid::text, doc->>'a', convert_from(raw, 'UTF8'), to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'), d::text, flag::text FROM \"Order\" WHERE \"Id\" = 1",
        _ => "SELECT `select`, code, mood, CAST(amount AS CHAR), CAST(small AS CHAR), uid, CAST(JSON_EXTRACT(doc, '$.a') AS CHAR), CAST(raw AS CHAR), DATE_FORMAT(at, '%Y-%m-%d %H:%i:%s'), CAST(d AS CHAR), CAST(flag AS CHAR) FROM `Order` WHERE `Id` = 1",
    };
    let row: Vec<String> = db.rows(q)[0]
        .iter()
        .map(|c| c.clone().unwrap_or_default())
        .collect();
    let flag = if db.kind == Kind::Postgres {
        "true"
    } else {
        "1"
    };
    // A uuid column normalises; MySQL's char(36) keeps the text as given.
    let uid = if db.kind == Kind::Postgres {
        "0e984725-c51c-4bf4-9960-e1c80e27aba0"
    } else {
        "0E984725-C51C-4BF4-9960-E1C80E27ABA0"
    };
    assert_eq!(
        row,
        vec![
            "a",
            "AB-12",
            "happy",
            "12345678.91",
            "7",
            uid,
            "[1, 2]",
            "hi",
            "2024-05-04 04:44:31",
            "2024-05-04",
            flag
        ]
    );
    // A rerun with `--full` (every record transformed and compared again)
    // changes nothing: each typed value reads back equal to what is sent.
    db.run(&["run", d.join("typed.toml").to_str().unwrap(), "--full"])
        .ok();
    assert_eq!(
        db.count("SELECT rows_written FROM cutover_runs WHERE id = 2"),
        0
    );
    assert_eq!(
        db.count("SELECT rows_unchanged FROM cutover_runs WHERE id = 2"),
        written
    );
}

crate::on_server_targets!(typed_columns_and_quoted_identifiers, |db| typed(db));

/// Rows the database itself rejects (a foreign key, a CHECK) become `load`
/// errors with the database's message; the rest of the batch commits.
fn rejected(db: &TestDb) {
    let d = db.dir();
    write(
        &d.join("schema/20260101000000_fk.sql"),
        "CREATE TABLE parent (id INTEGER PRIMARY KEY);
         CREATE TABLE child (id INTEGER PRIMARY KEY, parent_id INTEGER NOT NULL REFERENCES parent (id), score INTEGER CHECK (score >= 0));",
    );
    write(
        &d.join("schema/20260101000001_parents.sql"),
        "INSERT INTO parent (id) VALUES (1), (2), (3);",
    );
    let mut data = String::new();
    for i in 0..1000 {
        let parent = if i % 250 == 7 { 99 } else { 1 + i % 3 };
        let score = if i == 500 { -5 } else { i };
        data.push_str(&format!(
            "{{\"key\":\"c{i}\",\"value\":{{\"id\":{i},\"parent\":{parent},\"score\":{score}}}}}\n"
        ));
    }
    write(&d.join("data.jsonl"), &data);
    write(
        &d.join("fk.toml"),
        "name = \"fk\"\nschema = \"schema\"\n[source]\nkind = \"kv\"\npath = \"data.jsonl\"\n[[tables]]\ntable = \"child\"\nkey = [\"id\"]\ncolumns.id = \"value.id\"\ncolumns.parent_id = \"value.parent\"\ncolumns.score = \"value.score\"\n",
    );
    let out = db
        .run(&[
            "run",
            d.join("fk.toml").to_str().unwrap(),
            "--batch-size",
            "1000",
        ])
        .ok();
    assert!(
        out.stdout
            .contains("1000 read, 995 written, 0 filtered, 5 failed"),
        "{}",
        out.stdout
    );
    assert_eq!(db.count("SELECT count(*) FROM child"), 995);
    let errors =
        db.rows("SELECT record_key, stage, message FROM cutover_errors ORDER BY record_key");
    let keys: Vec<&str> = errors.iter().map(|e| e[0].as_deref().unwrap()).collect();
    assert_eq!(keys, vec!["c257", "c500", "c507", "c7", "c757"]);
    assert!(errors.iter().all(|e| e[1].as_deref() == Some("load")));
    let fk = errors
        .iter()
        .find(|e| e[0].as_deref() == Some("c7"))
        .unwrap()[2]
        .clone()
        .unwrap()
        .to_lowercase();
    assert!(fk.contains("foreign key"), "{fk}");
    let check = errors
        .iter()
        .find(|e| e[0].as_deref() == Some("c500"))
        .unwrap()[2]
        .clone()
        .unwrap()
        .to_lowercase();
    // PostgreSQL: violates check constraint "child_score_check"; MariaDB: CONSTRAINT
    // `child.score` failed; SQLite: CHECK constraint failed: score >= 0.
    assert!(
        check.contains("constraint") && check.contains("score"),
        "{check}"
    );
}

crate::on_all_targets!(rejected_rows_are_isolated, |db| rejected(db));

/// Killing the loader's connections again and again: the run retries on fresh
/// connections, its run lock survives (a second run is refused meanwhile), and
/// the table equals a clean load.
fn killed_connections_are_survived(db: &TestDb) {
    let mapping = super::util::kv_job(db.dir(), "faults", 60_000);
    let m = mapping.to_str().unwrap();
    let mut child = db.spawn(&["run", m, "--batch-size", "500"]);
    super::util::wait_for(120, "the load to start", || {
        db.table_exists("cutover_checkpoints")
            && db.count("SELECT count(*) FROM cutover_checkpoints") == 1
    });
    let mut killed = 0;
    let mut refused = 0;
    for round in 0..8 {
        std::thread::sleep(std::time::Duration::from_millis(250));
        if child.try_wait().unwrap().is_some() {
            break;
        }
        killed += db.kill_loader_connections();
        if round == 1 {
            // The connection that held the server lock is gone too: the lock
            // row still names the live loader, so another run must not start.
            let second = db.run(&["run", m, "--batch-size", "500"]);
            assert_eq!(second.code, 1, "{}", second.stderr);
            assert!(
                second.stderr.contains("already being loaded by process"),
                "{}",
                second.stderr
            );
            refused += 1;
        }
    }
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(killed > 0, "no connection was terminated");
    assert_eq!(refused, 1, "the load ended before a second run was tried");
    assert!(stderr.contains("retrying"), "the run retried: {stderr}");
    assert_eq!(db.count("SELECT count(*) FROM items"), 60_000);
    assert_eq!(
        db.count("SELECT sum(id) FROM items"),
        (0..60_000i64).sum::<i64>()
    );
    assert_eq!(db.count("SELECT count(*) FROM item_tags"), 120_000);
    assert_eq!(
        db.count("SELECT count(*) FROM cutover_runs"),
        1,
        "the refused run recorded nothing"
    );
    assert_eq!(
        db.scalar("SELECT status FROM cutover_runs ORDER BY id DESC LIMIT 1")
            .as_deref(),
        Some("succeeded")
    );
}

crate::on_server_targets!(killed_connections, |db| killed_connections_are_survived(db));

/// `status` and the run summary tell inserted, updated and unchanged rows apart.
fn inserted_updated_unchanged(db: &TestDb) {
    let d = db.dir();
    write(
        &d.join("schema/20260101000000_t.sql"),
        "CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER NOT NULL);",
    );
    let line = |k: &str, id: i64, n: i64| {
        format!("{{\"key\":\"{k}\",\"value\":{{\"id\":{id},\"n\":{n}}}}}\n")
    };
    let data = |rows: &[(&str, i64, i64)]| {
        rows.iter()
            .map(|(k, i, n)| line(k, *i, *n))
            .collect::<String>()
    };
    write(
        &d.join("data.jsonl"),
        &data(&[("a", 1, 1), ("b", 2, 2), ("c", 3, 3), ("d", 4, 4)]),
    );
    let mapping = d.join("t.toml");
    write(&mapping, "name = \"t\"\nschema = \"schema\"\n[source]\nkind = \"kv\"\npath = \"data.jsonl\"\n[[tables]]\ntable = \"t\"\nkey = [\"id\"]\ncolumns.id = \"value.id\"\ncolumns.n = \"value.n\"\n");
    let m = mapping.to_str().unwrap();
    let out = db.run(&["run", m]).ok();
    assert!(
        out.stdout
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["t", "4", "4", "0", "0"]),
        "{}",
        out.stdout
    );
    // One row changes, one is new, two stay as they are (`--full`: the
    // records read as before are sent and compared too, not skipped).
    write(
        &d.join("data.jsonl"),
        &data(&[
            ("a", 1, 1),
            ("b", 2, 20),
            ("c", 3, 3),
            ("d", 4, 4),
            ("e", 5, 5),
        ]),
    );
    let out = db.run(&["run", m, "--full"]).ok();
    assert!(
        out.stdout
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["t", "2", "1", "1", "3"]),
        "{}",
        out.stdout
    );
    let out = db.run(&["status"]).ok();
    assert!(
        out.stdout
            .contains("run 2: t 2 written (1 inserted, 1 updated), 3 unchanged"),
        "{}",
        out.stdout
    );
    assert_eq!(
        db.count("SELECT rows_inserted FROM cutover_run_tables WHERE run_id = 2"),
        1
    );
    // Without --workers, a server target writes over two connections.
    let options = db
        .scalar("SELECT options FROM cutover_runs WHERE id = 2")
        .unwrap_or_default();
    assert!(options.contains("\"workers\":2"), "{options}");
}

crate::on_server_targets!(inserted_updated_and_unchanged, |db| {
    inserted_updated_unchanged(db)
});

/// MySQL/MariaDB integer widths and signs are checked before the database sees
/// the value, and MariaDB's JSON (LONGTEXT + CHECK json_valid) takes plain text.
#[test]
fn mysql_integer_widths_and_mariadb_json() {
    let Some(db) = TestDb::mysql() else { return };
    let d = db.dir();
    write(
        &d.join("schema/20260101000000_w.sql"),
        "CREATE TABLE w (id int PRIMARY KEY, tiny tinyint, utiny tinyint unsigned, ubig bigint unsigned, doc json);",
    );
    write(
        &d.join("data.jsonl"),
        "{\"key\":\"ok\",\"value\":{\"id\":1,\"tiny\":-128,\"utiny\":255,\"ubig\":\"18446744073709551615\",\"doc\":\"plain text\"}}\n\
         {\"key\":\"tiny\",\"value\":{\"id\":2,\"tiny\":200}}\n\
         {\"key\":\"neg\",\"value\":{\"id\":3,\"utiny\":-1}}\n",
    );
    write(&d.join("w.toml"), "name = \"w\"\nschema = \"schema\"\n[source]\nkind = \"kv\"\npath = \"data.jsonl\"\n[[tables]]\ntable = \"w\"\nkey = [\"id\"]\ncolumns.id = \"value.id\"\ncolumns.tiny = \"value.tiny\"\ncolumns.utiny = \"value.utiny\"\ncolumns.ubig = \"value.ubig\"\ncolumns.doc = \"value.doc\"\n");
    let out = db.run(&["run", d.join("w.toml").to_str().unwrap()]).ok();
    assert!(
        out.stdout
            .contains("3 read, 1 written, 0 filtered, 2 failed"),
        "{}",
        out.stdout
    );
    let row = &db.rows("SELECT CAST(tiny AS CHAR), CAST(utiny AS CHAR), CAST(ubig AS CHAR), CAST(JSON_UNQUOTE(doc) AS CHAR) FROM w WHERE id = 1")[0];
    assert_eq!(
        row.iter()
            .map(|c| c.clone().unwrap_or_default())
            .collect::<Vec<_>>(),
        ["-128", "255", "18446744073709551615", "plain text"]
    );
    let errors =
        db.rows("SELECT record_key, column_name, message FROM cutover_errors ORDER BY record_key");
    assert_eq!(errors[0][0].as_deref(), Some("neg"));
    assert_eq!(errors[0][1].as_deref(), Some("w.utiny"));
    assert_eq!(
        errors[0][2].as_deref(),
        Some("-1 is out of range for an unsigned 8-bit integer column")
    );
    assert_eq!(
        errors[1][2].as_deref(),
        Some("200 is out of range for a 8-bit integer column")
    );
}

/// PostgreSQL first loads go in by COPY while a table was empty at the start and
/// nothing conflicted; the rows must be exactly those the upsert path writes
/// (escapes, unicode, nulls, bytes, floats, JSON, instants), a key repeated in a
/// later batch must still follow `on_conflict`, and a row the database rejects
/// must still be isolated as a `load` error.
#[test]
fn postgres_copy_first_load_equals_upsert() {
    let Some(db) = TestDb::postgres() else { return };
    let d = db.dir();
    let cols = "id integer PRIMARY KEY, t text, f double precision, j jsonb, raw bytea, at timestamptz, u uuid, dec numeric(12,4)";
    write(
        &d.join("schema/20260101000000_c.sql"),
        &format!(
            "CREATE TABLE a ({cols}); CREATE TABLE b ({cols}); CREATE TABLE ai ({cols}); CREATE TABLE bi ({cols});
             CREATE TABLE c (id integer PRIMARY KEY, n integer CHECK (n >= 0));
             INSERT INTO b (id) VALUES (999); INSERT INTO bi (id) VALUES (999);"
        ),
    );
    let rec = |id: i64, v: serde_json::Value| {
        let mut v = v;
        v["id"] = serde_json::json!(id);
        format!(
            "{}\n",
            serde_json::json!({"key": format!("r{id}"), "value": v})
        )
    };
    let data = [
        rec(1, serde_json::json!({"t": "tab\there", "f": 0.1, "n": 1, "j": {"q": "a\"b\\c"}, "raw": "00ff5c0a", "at": "2024-05-04T06:44:31.5+02:00", "u": "0E984725-C51C-4BF4-9960-E1C80E27ABA0", "dec": "-12.3456"})),
        rec(2, serde_json::json!({"t": "line\nbreak\\back\r\\N", "f": -1e300, "n": 2, "j": [1, null, "x\ty"], "dec": 7})),
        // Batch 2: the CHECK on c rejects record 3 (the database says so, not cutover).
        rec(3, serde_json::json!({"t": "rejected", "n": -1})),
        rec(4, serde_json::json!({"t": "ünï 😀 \\\\", "f": 1e-7, "n": 4, "j": "text", "at": "2024-01-01 00:00:00"})),
        // Batch 3: key 1 again (update: last wins; ignore: first wins), and a row of nulls.
        rec(1, serde_json::json!({"t": "updated", "n": 1})),
        rec(5, serde_json::json!({})),
    ]
    .concat();
    write(&d.join("data.jsonl"), &data);
    let table = |name: &str, on_conflict: &str| {
        format!(
            "[[tables]]\ntable = \"{name}\"\nkey = [\"id\"]\non_conflict = \"{on_conflict}\"\ncolumns.id = \"value.id\"\ncolumns.t = \"value.t\"\ncolumns.f = \"value.f\"\ncolumns.j = \"value.j\"\ncolumns.raw = \"value.raw | from_hex\"\ncolumns.at = \"value.at\"\ncolumns.u = \"value.u\"\ncolumns.dec = \"value.dec\"\n"
        )
    };
    let mapping = format!(
        "name = \"c\"\nschema = \"schema\"\n[source]\nkind = \"kv\"\npath = \"data.jsonl\"\n{}{}{}{}[[tables]]\ntable = \"c\"\nkey = [\"id\"]\ncolumns.id = \"value.id\"\ncolumns.n = \"value.n\"\n",
        table("a", "update"),
        table("b", "update"),
        table("ai", "ignore"),
        table("bi", "ignore")
    );
    write(&d.join("c.toml"), &mapping);
    let out = db
        .run(&[
            "-v",
            "run",
            d.join("c.toml").to_str().unwrap(),
            "--batch-size",
            "2",
            // One writer: with two, a second batch in flight may try COPY into
            // the same table before the first one's conflict is known (seen
            // once under load: two "stopped" lines for one table).
            "--workers",
            "1",
        ])
        .ok();
    assert!(
        out.stdout
            .contains("6 read, 5 written, 0 filtered, 1 failed"),
        "{}",
        out.stdout
    );
    // COPY took the empty tables' batches until the first conflict (the repeated key
    // 1 in batch 3 for a and ai, the rejected row for c); the seeded tables never
    // tried it. Nothing else made a COPY fail (an escaping mistake would, here).
    let stopped: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.contains("stopped ("))
        .collect();
    let reason = |t: &str| {
        let needle = format!("COPY into {t} stopped (");
        let found: Vec<&&str> = stopped.iter().filter(|l| l.contains(&needle)).collect();
        assert_eq!(found.len(), 1, "{t}: {stopped:#?}");
        found[0].to_string()
    };
    assert!(
        reason("a").contains("duplicate key value violates unique constraint \"a_pkey\""),
        "{stopped:#?}"
    );
    assert!(
        reason("ai").contains("duplicate key value violates unique constraint \"ai_pkey\""),
        "{stopped:#?}"
    );
    assert!(reason("c").contains("c_n_check"), "{stopped:#?}");
    assert_eq!(stopped.len(), 3, "{stopped:#?}");
    let errors = db.rows("SELECT record_key, stage, message FROM cutover_errors");
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0][0].as_deref(), Some("r3"));
    assert_eq!(errors[0][1].as_deref(), Some("load"));
    assert!(
        errors[0][2].as_deref().unwrap_or("").contains("c_n_check"),
        "{errors:?}"
    );
    // The tables that were empty (COPY) hold what the seeded ones (upsert) hold.
    for (copied, upserted) in [("a", "b"), ("ai", "bi")] {
        for (x, y) in [(copied, upserted), (upserted, copied)] {
            assert_eq!(
                db.count(&format!(
                    "SELECT count(*) FROM (SELECT * FROM {x} WHERE id <> 999 EXCEPT SELECT * FROM {y}) d"
                )),
                0,
                "{x} has rows {y} does not"
            );
        }
        assert_eq!(db.count(&format!("SELECT count(*) FROM {copied}")), 4);
    }
    let text = |sql: &str| db.scalar(sql).unwrap_or_default();
    assert_eq!(text("SELECT t FROM a WHERE id = 1"), "updated");
    assert_eq!(text("SELECT t FROM ai WHERE id = 1"), "tab\there");
    assert_eq!(
        text("SELECT t FROM a WHERE id = 2"),
        "line\nbreak\\back\r\\N"
    );
    assert_eq!(text("SELECT t FROM a WHERE id = 4"), "ünï 😀 \\\\");
    assert_eq!(
        text("SELECT concat_ws('|', f::text, j::text, encode(raw, 'hex'), to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.MS'), u::text, dec::text) FROM ai WHERE id = 1"),
        "0.1|{\"q\": \"a\\\"b\\\\c\"}|00ff5c0a|2024-05-04 04:44:31.500|0e984725-c51c-4bf4-9960-e1c80e27aba0|-12.3456"
    );
    assert_eq!(
        text("SELECT concat_ws('|', f::text, j::text, dec::text) FROM a WHERE id = 2"),
        "-1e+300|[1, null, \"x\\ty\"]|7.0000"
    );
    assert_eq!(
        text("SELECT concat_ws('|', f::text, j::text) FROM a WHERE id = 4"),
        "1e-07|\"text\""
    );
    assert_eq!(
        db.count("SELECT count(*) FROM a WHERE id = 5 AND t IS NULL AND f IS NULL AND j IS NULL AND raw IS NULL AND at IS NULL AND u IS NULL AND dec IS NULL"),
        1
    );
    // Counted as the upsert would: 4 inserted into a, then key 1 updated.
    let out = db.run(&["status"]).ok();
    assert!(
        out.stdout
            .contains("a 5 written (4 inserted, 1 updated), 0 unchanged"),
        "{}",
        out.stdout
    );
}

/// COPY does not apply rewrite rules, so a table with rules never takes it. Such a
/// table cannot take the upsert either (PostgreSQL refuses ON CONFLICT there): every
/// record is a `load` error with the database's message, none is written silently
/// past the rule.
#[test]
fn postgres_tables_with_rules_are_not_loaded_past_the_rule() {
    let Some(db) = TestDb::postgres() else { return };
    let d = db.dir();
    write(
        &d.join("schema/20260101000000_r.sql"),
        "CREATE TABLE t (id integer PRIMARY KEY, n integer);
         CREATE TABLE audit (id integer);
         CREATE RULE t_audit AS ON INSERT TO t DO ALSO INSERT INTO audit VALUES (NEW.id);",
    );
    let data: String = (1..=5)
        .map(|i| format!("{{\"key\":\"k{i}\",\"value\":{{\"id\":{i},\"n\":{i}}}}}\n"))
        .collect();
    write(&d.join("data.jsonl"), &data);
    write(&d.join("r.toml"), "name = \"r\"\nschema = \"schema\"\n[source]\nkind = \"kv\"\npath = \"data.jsonl\"\n[[tables]]\ntable = \"t\"\nkey = [\"id\"]\ncolumns.id = \"value.id\"\ncolumns.n = \"value.n\"\n");
    let out = db
        .run(&[
            "run",
            d.join("r.toml").to_str().unwrap(),
            "--batch-size",
            "2",
        ])
        .ok();
    assert!(
        out.stdout
            .contains("5 read, 0 written, 0 filtered, 5 failed"),
        "{}",
        out.stdout
    );
    assert_eq!(db.count("SELECT count(*) FROM t"), 0);
    assert_eq!(db.count("SELECT count(*) FROM audit"), 0);
    let errors = db.rows("SELECT stage, message FROM cutover_errors");
    assert_eq!(errors.len(), 5, "{errors:?}");
    for e in &errors {
        assert_eq!(e[0].as_deref(), Some("load"));
        assert!(
            e[1].as_deref()
                .unwrap_or("")
                .contains("cannot be used with table that has INSERT or UPDATE rules"),
            "{e:?}"
        );
    }
}

/// COPY writes GENERATED ALWAYS identity columns, which an INSERT refuses; a table
/// with one never takes COPY, so a first load behaves as every later one: the
/// database's refusal, per record.
#[test]
fn postgres_identity_always_columns_are_refused_on_first_loads_too() {
    let Some(db) = TestDb::postgres() else { return };
    let d = db.dir();
    write(
        &d.join("schema/20260101000000_g.sql"),
        "CREATE TABLE g (id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY, n integer);",
    );
    write(
        &d.join("data.jsonl"),
        "{\"key\":\"a\",\"value\":{\"id\":7,\"n\":1}}\n",
    );
    write(&d.join("g.toml"), "name = \"g\"\nschema = \"schema\"\n[source]\nkind = \"kv\"\npath = \"data.jsonl\"\n[[tables]]\ntable = \"g\"\nkey = [\"id\"]\ncolumns.id = \"value.id\"\ncolumns.n = \"value.n\"\n");
    let out = db.run(&["run", d.join("g.toml").to_str().unwrap()]).ok();
    assert!(
        out.stdout
            .contains("1 read, 0 written, 0 filtered, 1 failed"),
        "{}",
        out.stdout
    );
    assert_eq!(db.count("SELECT count(*) FROM g"), 0);
    let message = db
        .scalar("SELECT message FROM cutover_errors")
        .unwrap_or_default();
    assert!(message.contains("GENERATED ALWAYS"), "{message}");
}

/// Regression: MySQL enum labels that hold a comma (`ENUM('a,b','c')`) were
/// split into two labels, so the value `a,b` was refused and `a` accepted.
#[test]
fn mysql_enum_labels_with_commas_are_whole_labels() {
    let Some(db) = TestDb::mysql() else { return };
    let d = db.dir();
    write(
        &d.join("schema/20260101000000_t.sql"),
        "CREATE TABLE t (id INT PRIMARY KEY, size ENUM('small, cheap','large','It''s, big')) CHARACTER SET utf8mb4;",
    );
    write(
        &d.join("data.jsonl"),
        "{\"key\":\"1\",\"value\":{\"id\":1,\"size\":\"small, cheap\"}}\n{\"key\":\"2\",\"value\":{\"id\":2,\"size\":\"It's, big\"}}\n{\"key\":\"3\",\"value\":{\"id\":3,\"size\":\"small\"}}\n",
    );
    write(
        &d.join("t.toml"),
        "name = \"t\"\nschema = \"schema\"\n[source]\nkind = \"kv\"\npath = \"data.jsonl\"\n[[tables]]\ntable = \"t\"\nkey = [\"id\"]\ncolumns.id = \"value.id\"\ncolumns.size = \"value.size\"\n",
    );
    let out = db.run(&["run", d.join("t.toml").to_str().unwrap()]).ok();
    assert!(
        out.stdout
            .contains("3 read, 2 written, 0 filtered, 1 failed"),
        "{}",
        out.stdout
    );
    assert_eq!(
        db.rows("SELECT id, size FROM t ORDER BY id"),
        vec![
            vec![Some("1".into()), Some("small, cheap".into())],
            vec![Some("2".into()), Some("It's, big".into())],
        ]
    );
    let e = db.rows("SELECT record_key, message FROM cutover_errors");
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(e[0][0].as_deref(), Some("3"));
    assert_eq!(
        e[0][1].as_deref(),
        Some("'small' is not one of the enum's values (small, cheap, large, It's, big)"),
        "{e:?}"
    );
}

/// Parallel writers write rows in batch order: a key repeated in a later
/// batch ends with the later record's values (the last one wins, as with one
/// writer), however the batches' commits interleave.
fn parallel_writers_keep_the_last_record_of_a_key(db: &TestDb) {
    let d = db.dir();
    write(
        &d.join("schema/20260101000000_t.sql"),
        "CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER NOT NULL);",
    );
    let mut data = String::new();
    for i in 0..400 {
        data.push_str(&format!(
            "{{\"key\":\"r{i}\",\"value\":{{\"id\":{},\"n\":{i}}}}}\n",
            i % 10
        ));
    }
    write(&d.join("data.jsonl"), &data);
    write(
        &d.join("t.toml"),
        "name = \"t\"\nschema = \"schema\"\n[source]\nkind = \"kv\"\npath = \"data.jsonl\"\n[[tables]]\ntable = \"t\"\nkey = [\"id\"]\ncolumns.id = \"value.id\"\ncolumns.n = \"value.n\"\n",
    );
    let m = d.join("t.toml");
    db.run(&[
        "run",
        m.to_str().unwrap(),
        "--batch-size",
        "3",
        "--workers",
        "4",
    ])
    .ok();
    let rows = db.rows("SELECT id, n FROM t ORDER BY id");
    let want: Vec<Vec<Option<String>>> = (0..10)
        .map(|id| vec![Some(id.to_string()), Some((390 + id).to_string())])
        .collect();
    assert_eq!(rows, want);
}

crate::on_server_targets!(parallel_writers_last_wins, |db| {
    parallel_writers_keep_the_last_record_of_a_key(db)
});
