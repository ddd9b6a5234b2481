//! SQL Server sources against a real TDS server: iridium_server (an in-memory
//! T-SQL engine) started inside the test, loaded with the real Chinook script or the
//! Pliers v2 legacy script, and read by the `cutover` binary.
//!
//! What this server cannot exercise (see ../shared/TESTING.md), and how the tests
//! work around it:
//! - It sends DATETIME with the wrong epoch and gets DATETIME2/DATE/TIME and MONEY
//!   wrong, so dates are read through `CONVERT(VARCHAR(19), col, 120)` (or 126) in a
//!   query here; those conversions, MONEY's exactness and XML (which iridium sends as
//!   varchar) are covered by the unit tests on tiberius's ColumnData values in
//!   src/source/mssql.rs.
//! - It has no `rowversion`/`timestamp` type (such a column comes back as a varchar
//!   NULL, and `sys.columns` never shows system type 189), so the hex output is
//!   unit-tested; here a `binary(8)` column of a `table` source shows that the
//!   `sys.columns` lookup runs and leaves real binaries as base64, and that the
//!   documented `CONVERT(VARCHAR(18), col, 1)` gives the same `0x…` text.
//! - It rejects distinct GUIDs under a uniqueidentifier PRIMARY KEY as duplicates and
//!   cannot compare uniqueidentifier with `>` (keyset pages on a GUID never finish), so
//!   the Pliers script loses that PK here and GUID-keyed reads page on LegacyNumber.
//! - It cannot parse FOR JSON, ignores STRING_AGG's WITHIN GROUP and the correlation of
//!   aggregate sub-selects, and returns '' for LTRIM(NULL): the shipped T-SQL Pliers
//!   mappings (mappings/pliers_v2/mssql/) are written in forms right on both.
//!
//! INT, BIGINT, NVARCHAR (unicode), NUMERIC, BIT, FLOAT, uniqueidentifier, BINARY,
//! SMALLMONEY and NULL come through the wire for real, and so do SQL logins (with
//! `ServerConfig::with_auth`). TLS does not: see `sql_login_with_password_env`.

use super::util::{dataset, root, write, TestDb};
use std::path::Path;
use tokio_util::compat::TokioAsyncWriteCompatExt;

pub(super) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Start the TDS server on a free port and load a T-SQL script (from its
/// "Create Tables" banner on, batches split on GO lines) into it, logging in the
/// way `login` sets up.
fn start_tds(
    rt: &tokio::runtime::Runtime,
    script: &str,
    server: iridium_server::ServerConfig,
    login: impl FnOnce(&mut tiberius::Config),
) -> u16 {
    rt.block_on(async {
        let config = server.host("127.0.0.1").port(0);
        let mut server =
            iridium_server::TdsServer::new_with_database(iridium_core::Database::new(), config);
        let addr = server.bind().await.expect("bind the TDS server");
        tokio::spawn(async move {
            let _ = server.run().await;
        });
        let mut client = tds_client(addr.port(), login).await;
        let from = script
            .find("Create Tables")
            .expect("the script's Create Tables header");
        let body = &script[from..];
        // Past the end of the header's comment block.
        let body = &body[body.find("*/").map_or(0, |i| i + 2)..];
        let mut batches = vec![String::new()];
        for line in body.lines() {
            if line.trim().eq_ignore_ascii_case("GO") {
                batches.push(String::new());
            } else if let Some(b) = batches.last_mut() {
                b.push_str(line);
                b.push('\n');
            }
        }
        for batch in batches.iter().filter(|b| !b.trim().is_empty()) {
            client
                .simple_query(batch.as_str())
                .await
                .unwrap_or_else(|e| panic!("script batch: {e}\n{batch}"))
                .into_results()
                .await
                .unwrap_or_else(|e| panic!("script batch: {e}\n{batch}"));
        }
        addr.port()
    })
}

/// A tiberius client of the TDS server on `port`, logged in as `login` sets up.
async fn tds_client(
    port: u16,
    login: impl FnOnce(&mut tiberius::Config),
) -> tiberius::Client<tokio_util::compat::Compat<tokio::net::TcpStream>> {
    let mut cfg = tiberius::Config::new();
    cfg.host("127.0.0.1");
    cfg.port(port);
    login(&mut cfg);
    let tcp = tokio::net::TcpStream::connect(cfg.get_addr())
        .await
        .expect("connect");
    tiberius::Client::connect(cfg, tcp.compat_write())
        .await
        .expect("login")
}

/// A server without logins or TLS.
pub(super) fn tds_server(rt: &tokio::runtime::Runtime, script: &str) -> u16 {
    start_tds(
        rt,
        script,
        iridium_server::ServerConfig::no_auth().disable_tls(),
        |c| c.encryption(tiberius::EncryptionLevel::NotSupported),
    )
}

/// The Pliers v2 legacy script, without the uniqueidentifier PRIMARY KEY iridium
/// cannot hold (see the top of this file).
fn pliers_script() -> String {
    let script =
        std::fs::read_to_string(root().join("fixtures/pliers_v2/legacy.sql")).expect("fixture");
    let script = script.replace(
        ",\n    CONSTRAINT [PK_FormSubmission] PRIMARY KEY CLUSTERED ([FormSubmissionId])",
        "",
    );
    assert!(
        !script.contains("PK_FormSubmission]"),
        "the fixture's PK clause moved"
    );
    script
}

/// `cutover ARGS --target URL` with extra environment variables (and without
/// `remove`): exit code, stdout, stderr.
fn run_env(
    db: &TestDb,
    args: &[&str],
    env: &[(&str, &str)],
    remove: &[&str],
) -> (i32, String, String) {
    let mut c = db.cmd(args);
    for (k, v) in env {
        c.env(k, v);
    }
    for k in remove {
        c.env_remove(k);
    }
    let o = c.output().expect("run cutover");
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// A shipped mapping with its `[source]` block replaced (up to the next table
/// header) and its relative `schema` made absolute.
fn with_source(shipped: &Path, source: &str) -> String {
    let text = std::fs::read_to_string(shipped).unwrap();
    let start = text
        .find("\n[source]\n")
        .unwrap_or_else(|| panic!("{}: no [source]", shipped.display()))
        + 1;
    let end = start
        + text[start + 1..]
            .find("\n[")
            .unwrap_or_else(|| panic!("{}: nothing after [source]", shipped.display()))
        + 2;
    let schema_line = text
        .lines()
        .find(|l| l.starts_with("schema = "))
        .unwrap_or_else(|| panic!("{}: no schema", shipped.display()));
    let rel = schema_line
        .trim_start_matches("schema = ")
        .trim_matches('"');
    let abs = shipped.parent().unwrap().join(rel);
    let abs = abs.canonicalize().unwrap_or(abs);
    format!("{}{source}\n{}", &text[..start], &text[end..])
        .replace(schema_line, &format!("schema = \"{}\"", abs.display()))
}

/// The real Chinook script on the TDS server, every table of it into the
/// PostgreSQL schema of Chinook_PostgreSql.sql through the shipped mappings (their
/// `[source]` pointed at the server): exact NUMERIC sums, all counts of COUNTS.txt,
/// NULLs, unicode, composite keys, the keyset checkpoint, `verify`, and a rerun that
/// changes nothing.
#[test]
fn chinook_every_table_from_sql_server_into_postgres() {
    let Some(dir) = dataset("chinook") else {
        return;
    };
    let Some(db) = TestDb::postgres() else { return };
    let script = std::fs::read_to_string(dir.join("Chinook_SqlServer.sql")).expect("script");
    let rt = runtime();
    let port = tds_server(&rt, &script);
    let url = format!("mssql://127.0.0.1:{port}/master?encrypt=DANGER_PLAINTEXT");
    let table = |t: &str, key: &str| {
        format!("[source]\nkind = \"mssql\"\nurl = \"{url}\"\ntable = \"dbo.{t}\"\nkey = [{key}]\n")
    };
    // DATETIME columns are read as text: the server sends them with a wrong epoch.
    let query = |sql: &str, key: &str| {
        format!("[source]\nkind = \"mssql\"\nurl = \"{url}\"\nquery = \"{sql}\"\nkey = [{key}]\n")
    };
    let sources = [
        ("artist", table("Artist", "\"ArtistId\"")),
        ("genre", table("Genre", "\"GenreId\"")),
        ("media_type", table("MediaType", "\"MediaTypeId\"")),
        ("album", table("Album", "\"AlbumId\"")),
        ("track", table("Track", "\"TrackId\"")),
        (
            "employee",
            query(
                "SELECT EmployeeId, LastName, FirstName, Title, ReportsTo, CONVERT(VARCHAR(19), BirthDate, 120) AS BirthDate, CONVERT(VARCHAR(19), HireDate, 120) AS HireDate, Address, City, State, Country, PostalCode, Phone, Fax, Email FROM dbo.Employee",
                "\"EmployeeId\"",
            ),
        ),
        ("customer", table("Customer", "\"CustomerId\"")),
        (
            "invoice",
            query(
                "SELECT InvoiceId, CustomerId, CONVERT(VARCHAR(19), InvoiceDate, 120) AS InvoiceDate, BillingAddress, BillingCity, BillingState, BillingCountry, BillingPostalCode, Total FROM dbo.Invoice",
                "\"InvoiceId\"",
            ),
        ),
        ("invoice_line", table("InvoiceLine", "\"InvoiceLineId\"")),
        ("playlist", table("Playlist", "\"PlaylistId\"")),
        (
            "playlist_track",
            table("PlaylistTrack", "\"PlaylistId\", \"TrackId\""),
        ),
    ];
    let mut maps = Vec::new();
    for (name, source) in &sources {
        let path = db.dir().join(format!("chinook/{name}.toml"));
        write(
            &path,
            &with_source(
                &root().join(format!("mappings/chinook/{name}.toml")),
                source,
            ),
        );
        maps.push(path.to_str().unwrap().to_string());
    }
    let mut args = vec!["run", "--batch-size", "500"];
    args.extend(maps.iter().map(String::as_str));
    let out = db.run(&args).ok();
    let counts = std::fs::read_to_string(dir.join("COUNTS.txt")).unwrap();
    let snake = |t: &str| match t {
        "MediaType" => "media_type".to_string(),
        "InvoiceLine" => "invoice_line".to_string(),
        "PlaylistTrack" => "playlist_track".to_string(),
        other => other.to_lowercase(),
    };
    let mut tables = 0;
    for line in counts.lines().filter(|l| !l.trim().is_empty()) {
        let (t, n) = line.split_once(' ').unwrap();
        let n: i64 = n.trim().parse().unwrap();
        assert!(
            out.stdout
                .contains(&format!("{n} read, {n} written, 0 filtered, 0 failed")),
            "{t}: {n} rows in\n{}",
            out.stdout
        );
        assert_eq!(
            db.count(&format!("SELECT count(*) FROM {}", snake(t))),
            n,
            "{t}"
        );
        tables += 1;
    }
    assert_eq!(tables, 11);
    // NUMERIC(10,2) over TDS into numeric(10,2): exact, no float on the way.
    assert_eq!(
        db.scalar("SELECT sum(total)::text FROM invoice").as_deref(),
        Some("2328.60")
    );
    assert_eq!(
        db.scalar("SELECT sum(unit_price * quantity)::text FROM invoice_line")
            .as_deref(),
        Some("2328.60")
    );
    assert_eq!(db.count("SELECT sum(bytes) FROM track"), 117_386_255_350);
    assert_eq!(
        db.count("SELECT count(*) FROM track WHERE composer IS NULL"),
        977
    );
    assert_eq!(
        db.scalar("SELECT to_char(min(invoice_date), 'YYYY-MM-DD HH24:MI:SS') FROM invoice")
            .as_deref(),
        Some("2021-01-01 00:00:00")
    );
    assert_eq!(
        db.scalar("SELECT to_char(birth_date, 'YYYY-MM-DD') FROM employee WHERE employee_id = 1")
            .as_deref(),
        Some("1962-02-18")
    );
    assert_eq!(
        db.scalar("SELECT name FROM artist WHERE artist_id = 2")
            .as_deref(),
        Some("Accept")
    );
    // NVARCHAR unicode: the same as the SQLite copy.
    assert_eq!(
        db.count("SELECT count(*) FROM customer WHERE first_name = 'François' AND last_name = 'Tremblay'"),
        1
    );
    // The checkpoint is the last key of the composite keyset.
    let cp = db
        .scalar("SELECT position FROM cutover_checkpoints WHERE mapping = 'chinook_playlist_track'")
        .unwrap();
    assert!(cp.contains("\"key\":[18,597]"), "{cp}");
    // verify: every source row against the target, and every declared check.
    let mut args = vec!["verify"];
    args.extend(maps.iter().map(String::as_str));
    let out = db.run(&args);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert_eq!(
        out.stdout.matches("  PASSED  (").count(),
        11,
        "{}",
        out.stdout
    );
    // A rerun over the same server changes nothing.
    let mut args = vec!["run"];
    args.extend(maps.iter().map(String::as_str));
    db.run(&args).ok();
    assert_eq!(
        db.count("SELECT sum(rows_written) FROM cutover_runs WHERE id > 11"),
        0
    );
    rt.shutdown_background();
}

/// The Pliers v2 legacy script on the TDS server: keyset pages of GUID-keyed rows, BIT,
/// FLOAT, DECIMAL, BIGINT and unicode NVARCHAR over the wire give exactly the rows
/// of the SQLite copy (the fast path the shipped mappings use).
#[test]
fn pliers_from_sql_server_equals_the_sqlite_copy() {
    let rt = runtime();
    let port = tds_server(&rt, &pliers_script());
    let sqlite_copy = root().join("fixtures/pliers_v2/legacy.sqlite");
    let mut tables = Vec::new();
    for (kind, url, table) in [
        (
            "mssql",
            format!("mssql://127.0.0.1:{port}/master?encrypt=DANGER_PLAINTEXT"),
            "dbo.FormSubmission",
        ),
        (
            "sqlite",
            format!("sqlite://{}", sqlite_copy.display()),
            "FormSubmission",
        ),
    ] {
        let db = TestDb::sqlite();
        let d = db.dir();
        write(
            &d.join("schema/20260101000000_s.sql"),
            "CREATE TABLE subs (id TEXT PRIMARY KEY, form_type INTEGER NOT NULL, status INTEGER NOT NULL, submitted_by TEXT, score REAL, amount NUMERIC(12,2), legacy_number INTEGER NOT NULL);",
        );
        write(
            &d.join("subs.toml"),
            &format!(
                "name = \"subs\"\nschema = \"schema\"\n[source]\nkind = \"{kind}\"\nurl = \"{url}\"\ntable = \"{table}\"\nkey = [\"LegacyNumber\"]\n\
                 [[tables]]\ntable = \"subs\"\nkey = [\"id\"]\ncolumns.id = \"value.FormSubmissionId | lower\"\ncolumns.form_type = \"value.FormTypeId\"\n\
                 columns.status = \"value.FormSubmissionStatusId\"\ncolumns.submitted_by = \"value.SubmittedBy\"\ncolumns.score = \"value.Score\"\n\
                 columns.amount = \"value.Amount | decimal\"\ncolumns.legacy_number = \"value.LegacyNumber\"\n"
            ),
        );
        let out = db
            .run(&[
                "run",
                d.join("subs.toml").to_str().unwrap(),
                "--batch-size",
                "7",
            ])
            .ok();
        assert!(
            out.stdout
                .contains("60 read, 60 written, 0 filtered, 0 failed"),
            "{kind}: {}",
            out.stdout
        );
        tables.push(db.rows("SELECT id, form_type, status, submitted_by, CAST(score AS TEXT), CAST(amount AS TEXT), legacy_number FROM subs ORDER BY id"));
    }
    assert_eq!(tables[0].len(), 60);
    assert_eq!(
        tables[0], tables[1],
        "SQL Server and the SQLite copy give the same rows"
    );
    rt.shutdown_background();
}

/// The shipped T-SQL mappings (mappings/pliers_v2/mssql/) against the legacy script
/// on the TDS server, into PostgreSQL: the same counts, rows (ids, slugs, settings,
/// definitions, statuses, answers), failed record and key maps as the SQLite path
/// (fixtures/pliers_v2/EXPECTED.json), and `verify` passes. Only the `url` is pointed
/// at the test server, and submissions page on LegacyNumber instead of the GUID (see
/// the top of this file).
#[test]
fn pliers_mssql_mappings_give_the_expected_results() {
    let Some(db) = TestDb::postgres() else { return };
    let exp: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("fixtures/pliers_v2/EXPECTED.json")).unwrap(),
    )
    .unwrap();
    let rt = runtime();
    let port = tds_server(&rt, &pliers_script());
    let shipped_url =
        "url = \"mssql://sa@127.0.0.1:1433/pliers?encrypt=true&trustservercertificate=true\"";
    let test_url = format!("url = \"mssql://sa@127.0.0.1:{port}/master?encrypt=DANGER_PLAINTEXT\"");
    let mut maps = Vec::new();
    for name in ["organizations", "forms", "submissions"] {
        let shipped = root().join(format!("mappings/pliers_v2/mssql/{name}.toml"));
        let text = std::fs::read_to_string(&shipped).unwrap();
        // The [[checks]] are the generated ones of the SQLite twin.
        let sqlite_twin =
            std::fs::read_to_string(root().join(format!("mappings/pliers_v2/{name}.toml")))
                .unwrap();
        let checks = |t: &str| t[t.find("\n[[checks]]").expect("checks")..].to_string();
        assert_eq!(
            checks(&text),
            checks(&sqlite_twin),
            "{name}: checks drifted"
        );
        assert!(text.contains(shipped_url), "{name}: the shipped url moved");
        let mut text = text.replace(shipped_url, &test_url).replace(
            "schema = \"../../../sql/pliers_v3\"",
            &format!("schema = \"{}\"", root().join("sql/pliers_v3").display()),
        );
        if name == "submissions" {
            assert!(text.contains("key = [\"FormSubmissionId\"]"));
            text = text.replace("key = [\"FormSubmissionId\"]", "key = [\"LegacyNumber\"]");
        }
        let path = db.dir().join(format!("pliers/{name}.toml"));
        write(&path, &text);
        maps.push(path.to_str().unwrap().to_string());
    }
    let mut args = vec!["run", "--batch-size", "7"];
    args.extend(maps.iter().map(String::as_str));
    let (code, stdout, stderr) = run_env(&db, &args, &[("PLIERS_PASSWORD", "unused")], &[]);
    // One record fails (a submission of a deleted form): exit 0, it is under --max-errors.
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    for (name, m) in exp["mappings"].as_object().unwrap() {
        let line = format!(
            "{} read, {} written, {} filtered, {} failed",
            m["read"], m["written"], m["filtered"], m["failed"]
        );
        assert!(stdout.contains(&line), "{name}: {line} in\n{stdout}");
        for (table, n) in m["rows"].as_object().unwrap() {
            assert_eq!(
                db.count(&format!("SELECT count(*) FROM {table}")),
                n.as_i64().unwrap(),
                "{table}"
            );
        }
        if let Some(n) = m.get("keymap_entries") {
            assert_eq!(
                db.count(&format!(
                    "SELECT count(*) FROM cutover_keymap WHERE mapping = '{name}'"
                )),
                n.as_i64().unwrap(),
                "{name} key map"
            );
        }
    }
    let json = |s: &Option<String>| -> serde_json::Value {
        serde_json::from_str(s.as_deref().expect("a JSON value")).unwrap()
    };
    let rows = &exp["rows"];
    for o in rows["organizations"].as_array().unwrap() {
        let r = &db.rows(&format!(
            "SELECT legacy_id, name, slug, settings::text FROM organizations WHERE id = '{}'",
            o["id"].as_str().unwrap()
        ))[0];
        assert_eq!(r[0].as_deref(), Some(o["legacy_id"].to_string().as_str()));
        assert_eq!(r[1].as_deref(), o["name"].as_str());
        assert_eq!(r[2].as_deref(), o["slug"].as_str());
        assert_eq!(json(&r[3]), o["settings"], "{o}");
    }
    for f in rows["forms"].as_array().unwrap() {
        let r = &db.rows(&format!(
            "SELECT organization_id::text, title, description, definition::text FROM forms WHERE id = '{}'",
            f["id"].as_str().unwrap()
        ))[0];
        assert_eq!(r[0].as_deref(), f["organization_id"].as_str());
        assert_eq!(r[1].as_deref(), f["title"].as_str());
        assert_eq!(r[2].as_deref(), f["description"].as_str());
        // Fields in SortOrder, choices in theirs, settings, types mapped.
        assert_eq!(json(&r[3]), f["definition"], "form {}", f["legacy_id"]);
    }
    let subs = rows["submissions"].as_array().unwrap();
    assert_eq!(subs.len(), 59);
    for s in subs {
        let r = &db.rows(&format!(
            "SELECT form_id::text, status, to_char(submitted_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), data::text FROM submissions WHERE id = '{}'",
            s["id"].as_str().unwrap()
        ))[0];
        assert_eq!(r[0].as_deref(), s["form_id"].as_str(), "{s}");
        assert_eq!(r[1].as_deref(), s["status"].as_str(), "{s}");
        assert_eq!(r[2].as_deref(), s["submitted_at"].as_str(), "{s}");
        assert_eq!(json(&r[3]), s["data"], "{s}");
    }
    let fail = &exp["failures"][0];
    let e = &db.rows(
        "SELECT stage, column_name, message, record::text FROM cutover_errors WHERE mapping = 'pliers_submissions'",
    );
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(e[0][0].as_deref(), fail["stage"].as_str());
    assert_eq!(e[0][1].as_deref(), fail["column"].as_str());
    assert!(
        e[0][2]
            .as_deref()
            .unwrap()
            .contains(fail["reason"].as_str().unwrap()),
        "{e:?}"
    );
    // The record kept with the error is the SQL Server row (GUID in lower case).
    assert!(
        e[0][3]
            .as_deref()
            .unwrap()
            .contains(&fail["key"].as_str().unwrap().to_lowercase()),
        "{e:?}"
    );
    // verify: source rows against the target and the generated checks.
    let mut args = vec!["verify"];
    args.extend(maps.iter().map(String::as_str));
    let (code, stdout, stderr) = run_env(&db, &args, &[("PLIERS_PASSWORD", "unused")], &[]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    for line in [
        "pliers_organizations  PASSED  (5 records read, 0 fail to transform",
        "pliers_forms  PASSED  (8 records read, 0 fail to transform",
        // The one failed record keeps its error row: a warning, not a failure.
        "pliers_submissions  WARNING  (60 records read, 1 fail to transform, 1 unresolved error rows)",
    ] {
        assert!(stdout.contains(line), "{line} in\n{stdout}\n{stderr}");
    }
    assert!(!stdout.contains("FAILED"), "{stdout}");
    rt.shutdown_background();
}

/// A SQL login through the binary: the server wants user `etl` and its password.
/// The ADO.NET string names the user and `password_env` gives the password (the user
/// used to be dropped then, and the login failed); an `mssql://` URL carries a
/// percent-encoded password. A wrong or missing password fails with a clear message
/// that never shows the password.
///
/// Not over TLS: iridium_server 0.1.13 does TLS (`with_tls_cert`), and tiberius
/// completes the handshake with it and logs in (the server logs "Login accepted"), but
/// the server then sends its TLS 1.3 session tickets still wrapped in a TDS PRELOGIN
/// packet, after the client has switched to raw TLS, so tiberius fails with "received
/// corrupt message of type InvalidContentType" before the LOGINACK. Neither side lets
/// a caller pick TLS 1.2. TLS options are unit-tested in src/source/mssql.rs instead.
#[test]
fn sql_login_with_password_env() {
    let password = "s3cr;et@:/%x";
    let rt = runtime();
    let port = start_tds(
        &rt,
        &pliers_script(),
        iridium_server::ServerConfig::with_auth("etl", password).disable_tls(),
        |c| {
            c.authentication(tiberius::AuthMethod::sql_server("etl", password));
            c.encryption(tiberius::EncryptionLevel::NotSupported);
        },
    );
    let mapping = |dir: &Path, name: &str, source: &str| {
        write(
            &dir.join("schema/20260101000000_o.sql"),
            "CREATE TABLE orgs (id INTEGER PRIMARY KEY, name TEXT NOT NULL, active INTEGER NOT NULL);",
        );
        let path = dir.join(format!("{name}.toml"));
        write(
            &path,
            &format!(
                "name = \"{name}\"\nschema = \"schema\"\n[source]\nkind = \"mssql\"\n{source}\ntable = \"dbo.Organization\"\nkey = [\"OrganizationId\"]\n\
                 [[tables]]\ntable = \"orgs\"\nkey = [\"id\"]\ncolumns.id = \"value.OrganizationId\"\ncolumns.name = \"value.Name\"\ncolumns.active = \"value.IsActive\"\n"
            ),
        );
        path
    };
    let var = "CUTOVER_IT_MSSQL_LOGIN_PASSWORD";
    let ado = format!(
        "url = \"server=tcp:127.0.0.1,{port};user id=etl;database=master;encrypt=DANGER_PLAINTEXT\"\npassword_env = \"{var}\""
    );

    // User from the ADO.NET string, password from the environment.
    let db = TestDb::sqlite();
    let m = mapping(db.dir(), "orgs_ado", &ado);
    let (code, stdout, stderr) =
        run_env(&db, &["run", m.to_str().unwrap()], &[(var, password)], &[]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(
        stdout.contains("5 read, 5 written, 0 filtered, 0 failed"),
        "{stdout}"
    );
    assert_eq!(
        db.scalar("SELECT name FROM orgs WHERE id = 3").as_deref(),
        Some("Contoso Santé")
    );
    // BIT: Tailspin Toys (7) is the one inactive organization.
    assert_eq!(
        db.scalar("SELECT group_concat(id) FROM orgs WHERE active = 0")
            .as_deref(),
        Some("7")
    );

    // The same with the password percent-encoded in an mssql:// URL.
    let db = TestDb::sqlite();
    let url = format!(
        "url = \"mssql://etl:s3cr%3Bet%40%3A%2F%25x@127.0.0.1:{port}/master?encrypt=DANGER_PLAINTEXT\""
    );
    let m = mapping(db.dir(), "orgs_url", &url);
    let (code, stdout, stderr) = run_env(&db, &["run", m.to_str().unwrap()], &[], &[]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(
        stdout.contains("5 read, 5 written, 0 filtered, 0 failed"),
        "{stdout}"
    );

    // A wrong password: the login fails, the run fails, no password is shown.
    let db = TestDb::sqlite();
    let m = mapping(db.dir(), "orgs_ado", &ado);
    let (code, stdout, stderr) = run_env(
        &db,
        &["run", m.to_str().unwrap()],
        &[(var, "wrong-pw-123")],
        &[],
    );
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    assert!(
        stderr.contains(&format!(
            "cannot connect to mssql://etl@127.0.0.1:{port}/master: "
        )) && stderr.contains("Login failed"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("SELECT"),
        "a login error is not about a query: {stderr}"
    );
    assert!(
        !stderr.contains("wrong-pw-123") && !stdout.contains("wrong-pw-123"),
        "{stderr}"
    );
    assert_eq!(db.count("SELECT count(*) FROM orgs"), 0);

    // No password in the environment: refused before connecting, naming the variable.
    let (code, stdout, stderr) = run_env(&db, &["run", m.to_str().unwrap()], &[], &[var]);
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    assert!(
        stderr.contains(&format!("{var} (password_env) is not set")),
        "{stderr}"
    );
    rt.shutdown_background();
}

/// Binary and money over the wire, and the rowversion lookup of a `table` source:
/// a plain `binary(8)` stays base64 (the `sys.columns` lookup runs and finds no
/// rowversion), `CONVERT(VARCHAR(18), col, 1)` gives the `0x…` text the reader uses
/// for rowversion columns, and SMALLMONEY (which this server sends right) is exact.
#[test]
fn binary_and_money_columns_over_tds() {
    let script = "/* Create Tables */\n\
        CREATE TABLE [dbo].[Stamp] ([Id] INT NOT NULL, [Version] BINARY(8) NULL, [Blob] VARBINARY(16) NULL, [Fee] SMALLMONEY NULL);\nGO\n\
        INSERT INTO [dbo].[Stamp] ([Id], [Version], [Blob], [Fee]) VALUES (1, 0x00000000000007D1, 0x00FF10, 12.34), (2, NULL, 0x, -0.0001), (3, 0xFFFFFFFFFFFFFFFF, NULL, NULL);\nGO\n";
    let rt = runtime();
    let port = tds_server(&rt, script);
    let db = TestDb::sqlite();
    let d = db.dir();
    write(
        &d.join("schema/20260101000000_b.sql"),
        "CREATE TABLE stamp (id INTEGER PRIMARY KEY, version TEXT, blob TEXT, fee TEXT, hex TEXT);",
    );
    let url = format!("mssql://127.0.0.1:{port}/master?encrypt=DANGER_PLAINTEXT");
    write(
        &d.join("table.toml"),
        &format!(
            "name = \"stamp_table\"\nschema = \"schema\"\n[source]\nkind = \"mssql\"\nurl = \"{url}\"\ntable = \"dbo.Stamp\"\nkey = [\"Id\"]\n\
             [[tables]]\ntable = \"stamp\"\nkey = [\"id\"]\ncolumns.id = \"value.Id\"\ncolumns.version = \"value.Version\"\ncolumns.blob = \"value.Blob\"\ncolumns.fee = \"value.Fee | text\"\n"
        ),
    );
    write(
        &d.join("query.toml"),
        &format!(
            "name = \"stamp_query\"\nschema = \"schema\"\n[source]\nkind = \"mssql\"\nurl = \"{url}\"\nquery = \"SELECT Id, CONVERT(VARCHAR(18), Version, 1) AS Hex FROM dbo.Stamp\"\nkey = [\"Id\"]\n\
             [[tables]]\ntable = \"stamp\"\nkey = [\"id\"]\ncolumns.id = \"value.Id\"\ncolumns.hex = \"value.Hex\"\n"
        ),
    );
    let out = db
        .run(&[
            "run",
            d.join("table.toml").to_str().unwrap(),
            d.join("query.toml").to_str().unwrap(),
        ])
        .ok();
    assert_eq!(
        out.stdout
            .matches("3 read, 3 written, 0 filtered, 0 failed")
            .count(),
        2,
        "{}",
        out.stdout
    );
    let rows = db.rows("SELECT id, version, blob, fee, hex FROM stamp ORDER BY id");
    let s = |v: &str| Some(v.to_string());
    assert_eq!(
        rows,
        vec![
            vec![
                s("1"),
                s("AAAAAAAAB9E="),
                s("AP8Q"),
                s("12.3400"),
                s("0x00000000000007D1")
            ],
            vec![s("2"), None, s(""), s("-0.0001"), None],
            vec![
                s("3"),
                s("//////////8="),
                None,
                None,
                s("0xFFFFFFFFFFFFFFFF")
            ],
        ]
    );
    rt.shutdown_background();
}

/// Statements on the TDS server started by [`tds_server`].
fn tds_exec(rt: &tokio::runtime::Runtime, port: u16, sql: &str) {
    rt.block_on(async {
        let mut client = tds_client(port, |c| {
            c.encryption(tiberius::EncryptionLevel::NotSupported)
        })
        .await;
        client
            .simple_query(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .into_results()
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    });
}

/// A delta pass from SQL Server over an integer watermark (a sequence column;
/// iridium has no `rowversion` type to test, and sends DATETIME2 wrongly, see
/// the top of this file): only changed rows are read, and a deleted record's
/// row is deleted from the target.
#[test]
fn delta_pass_over_an_integer_watermark_from_sql_server() {
    let rows: Vec<String> = (1..=50)
        .map(|i| format!("({i}, N'item {i} ü', {i})"))
        .collect();
    let script = format!(
        "/* Create Tables */\nCREATE TABLE [dbo].[Item] ([Id] INT NOT NULL, [Name] NVARCHAR(50) NOT NULL, [Seq] BIGINT NOT NULL);\nGO\nINSERT INTO [dbo].[Item] ([Id], [Name], [Seq]) VALUES {};\nGO\n",
        rows.join(", ")
    );
    let rt = runtime();
    let port = tds_server(&rt, &script);
    let db = TestDb::sqlite();
    let d = db.dir();
    write(
        &d.join("schema/20260101000000_items.sql"),
        "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL);",
    );
    let url = format!("mssql://127.0.0.1:{port}/master?encrypt=DANGER_PLAINTEXT");
    let mapping = d.join("items.toml");
    write(
        &mapping,
        &format!(
            "name = \"items\"\nschema = \"schema\"\n[source]\nkind = \"mssql\"\nurl = \"{url}\"\ntable = \"dbo.Item\"\nkey = [\"Id\"]\nwatermark = \"Seq\"\n\
             [[tables]]\ntable = \"items\"\nkey = [\"id\"]\ndeletes = \"delete\"\ncolumns.id = \"value.Id\"\ncolumns.name = \"value.Name\"\n"
        ),
    );
    let m = mapping.to_str().unwrap();
    let first = db.run(&["run", m]).ok();
    assert!(first.stdout.contains("50 read"), "{}", first.stdout);
    tds_exec(
        &rt,
        port,
        "UPDATE [dbo].[Item] SET [Name] = N'changed', [Seq] = 100 + [Id] WHERE [Id] IN (3, 4, 5);
         INSERT INTO [dbo].[Item] ([Id], [Name], [Seq]) VALUES (51, N'new', 200), (52, N'newer', 201);
         DELETE FROM [dbo].[Item] WHERE [Id] = 7;",
    );
    let delta = db.run(&["run", m]).ok();
    assert!(
        delta.stdout.contains("delta pass: Seq from 50 to 201"),
        "{}",
        delta.stdout
    );
    // 3 changed + 2 new + the row at the previous mark (Seq 50).
    assert!(delta.stdout.contains("6 read"), "{}", delta.stdout);
    assert!(
        delta.stdout.contains("deleted 1 rows of items"),
        "{}",
        delta.stdout
    );
    assert_eq!(db.count("SELECT count(*) FROM items"), 51);
    assert_eq!(db.count("SELECT count(*) FROM items WHERE id = 7"), 0);
    assert_eq!(
        db.rows("SELECT name FROM items WHERE id IN (3, 52) ORDER BY id"),
        vec![vec![Some("changed".into())], vec![Some("newer".into())]]
    );
    rt.shutdown_background();
}
