//! SQL Server sources against a real TDS server: iridium_server (an in-memory
//! T-SQL engine) started inside the test, loaded with the real Chinook script.
//!
//! What this server cannot exercise (see ../shared/TESTING.md): it sends DATETIME
//! with the wrong epoch and gets DATETIME2/DATE/TIME and MONEY wrong, so dates are
//! read through `CONVERT(VARCHAR(19), col, 120)` in a query here, and those
//! conversions are covered by the unit tests on tiberius's ColumnData values in
//! src/source/mssql.rs. INT, BIGINT, NVARCHAR (unicode), NUMERIC, BIT, FLOAT,
//! uniqueidentifier and NULL come through the wire for real.

use super::util::{dataset, TestDb};
use tokio_util::compat::TokioAsyncWriteCompatExt;

/// Start the TDS server on a free port and load the Chinook script into it.
fn chinook_server(rt: &tokio::runtime::Runtime, script: &str) -> u16 {
    rt.block_on(async {
        let config = iridium_server::ServerConfig::no_auth()
            .host("127.0.0.1")
            .port(0)
            .disable_tls();
        let mut server =
            iridium_server::TdsServer::new_with_database(iridium_core::Database::new(), config);
        let addr = server.bind().await.expect("bind the TDS server");
        tokio::spawn(async move {
            let _ = server.run().await;
        });
        let mut cfg = tiberius::Config::new();
        cfg.host("127.0.0.1");
        cfg.port(addr.port());
        cfg.encryption(tiberius::EncryptionLevel::NotSupported);
        let tcp = tokio::net::TcpStream::connect(cfg.get_addr())
            .await
            .expect("connect");
        let mut client = tiberius::Client::connect(cfg, tcp.compat_write())
            .await
            .expect("login");
        let from = script
            .find("Create Tables")
            .expect("the script's Create Tables header");
        let body = &script[from..];
        // Past the end of the header's comment block.
        let body = &body[body.find("*/").map_or(0, |i| i + 2)..];
        let mut batch = String::new();
        for line in body.lines() {
            if line.trim().eq_ignore_ascii_case("GO") {
                if !batch.trim().is_empty() {
                    client
                        .simple_query(batch.as_str())
                        .await
                        .expect("script batch")
                        .into_results()
                        .await
                        .expect("results");
                }
                batch.clear();
            } else {
                batch.push_str(line);
                batch.push('\n');
            }
        }
        if !batch.trim().is_empty() {
            client
                .simple_query(batch.as_str())
                .await
                .expect("script batch")
                .into_results()
                .await
                .expect("results");
        }
        addr.port()
    })
}

fn write(path: &std::path::Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

#[test]
fn chinook_from_sql_server() {
    let Some(dir) = dataset("chinook") else {
        return;
    };
    let script = std::fs::read_to_string(dir.join("Chinook_SqlServer.sql")).expect("script");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let port = chinook_server(&rt, &script);
    let db = TestDb::sqlite();
    let d = db.dir();
    write(
        &d.join("schema/20260101000000_c.sql"),
        "CREATE TABLE invoice (invoice_id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL, invoice_date TIMESTAMP NOT NULL, billing_country TEXT, total NUMERIC(10,2) NOT NULL);
         CREATE TABLE track (track_id INTEGER PRIMARY KEY, name TEXT NOT NULL, composer TEXT, milliseconds INTEGER, bytes INTEGER, unit_price NUMERIC(10,2));",
    );
    let url = format!("mssql://127.0.0.1:{port}/master?encrypt=DANGER_PLAINTEXT");
    write(
        &d.join("invoices.toml"),
        &format!(
            "name = \"invoices\"\nschema = \"schema\"\n[source]\nkind = \"mssql\"\nurl = \"{url}\"\n\
             query = \"SELECT InvoiceId, CustomerId, CONVERT(VARCHAR(19), InvoiceDate, 120) AS InvoiceDate, BillingCountry, Total FROM Invoice\"\nkey = [\"InvoiceId\"]\n\
             [[tables]]\ntable = \"invoice\"\nkey = [\"invoice_id\"]\ncolumns.invoice_id = \"value.InvoiceId\"\ncolumns.customer_id = \"value.CustomerId\"\n\
             columns.invoice_date = \"value.InvoiceDate | timestamp\"\ncolumns.billing_country = \"value.BillingCountry\"\ncolumns.total = \"value.Total | decimal\"\n"
        ),
    );
    write(
        &d.join("tracks.toml"),
        &format!(
            "name = \"tracks\"\nschema = \"schema\"\n[source]\nkind = \"mssql\"\nurl = \"{url}\"\ntable = \"dbo.Track\"\nkey = [\"TrackId\"]\n\
             [[tables]]\ntable = \"track\"\nkey = [\"track_id\"]\ncolumns.track_id = \"value.TrackId\"\ncolumns.name = \"value.Name\"\n\
             columns.composer = \"value.Composer\"\ncolumns.milliseconds = \"value.Milliseconds\"\ncolumns.bytes = \"value.Bytes\"\ncolumns.unit_price = \"value.UnitPrice\"\n"
        ),
    );
    let inv = d.join("invoices.toml");
    let tr = d.join("tracks.toml");
    let out = db
        .run(&[
            "run",
            inv.to_str().unwrap(),
            tr.to_str().unwrap(),
            "--batch-size",
            "100",
        ])
        .ok();
    assert!(
        out.stdout
            .contains("412 read, 412 written, 0 filtered, 0 failed"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("3503 read, 3503 written, 0 filtered, 0 failed"),
        "{}",
        out.stdout
    );
    assert_eq!(
        db.scalar("SELECT printf('%.2f', sum(total)) FROM invoice")
            .as_deref(),
        Some("2328.60")
    );
    assert_eq!(db.count("SELECT sum(bytes) FROM track"), 117_386_255_350);
    assert_eq!(
        db.count("SELECT count(*) FROM track WHERE composer IS NULL"),
        977
    );
    assert_eq!(
        db.scalar("SELECT min(invoice_date) FROM invoice")
            .as_deref(),
        Some("2021-01-01 00:00:00")
    );
    let cp = db
        .scalar("SELECT position FROM cutover_checkpoints WHERE mapping = 'tracks'")
        .unwrap();
    assert!(cp.contains("\"key\":[3503]"), "{cp}");
    // A rerun over the same server changes nothing.
    db.run(&["run", tr.to_str().unwrap()]).ok();
    assert_eq!(
        db.count("SELECT rows_written FROM cutover_runs WHERE id = 3"),
        0
    );
    rt.shutdown_background();
}
