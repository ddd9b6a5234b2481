//! SQL sources (SQLite, PostgreSQL, MariaDB through sqlx): keyset pagination over
//! pages, exact decimals, composite keys, resume, and legacy-id remapping with
//! `[keymap]` + `lookup()`.

use super::util::{write, Kind, TestDb};
use std::path::Path;

const N_FORMS: i64 = 1200;

fn legacy(src: &TestDb) {
    let (t, dec) = match src.kind {
        Kind::Mysql => ("`", "DECIMAL(12,2)"),
        _ => ("\"", "DECIMAL(12,2)"),
    };
    src.exec(&format!(
        "CREATE TABLE {t}Org{t} ({t}OrgId{t} INTEGER PRIMARY KEY, {t}Name{t} VARCHAR(100) NOT NULL);
         CREATE TABLE {t}Form{t} ({t}FormId{t} INTEGER PRIMARY KEY, {t}OrgId{t} INTEGER, {t}Title{t} VARCHAR(100), {t}Amount{t} {dec});
         CREATE TABLE {t}FieldMap{t} ({t}FormId{t} INTEGER NOT NULL, {t}Pos{t} INTEGER NOT NULL, {t}Label{t} VARCHAR(50), PRIMARY KEY ({t}FormId{t}, {t}Pos{t}));"
    ));
    let orgs: Vec<String> = (1..=5).map(|i| format!("({i}, ' Org Nº{i} ')")).collect();
    src.exec(&format!("INSERT INTO {t}Org{t} VALUES {}", orgs.join(", ")));
    let forms: Vec<String> = (1..=N_FORMS)
        .map(|i| {
            let org = if i == 777 { 99 } else { 1 + i % 5 };
            format!("({i}, {org}, 'Form {i}', {}.{:02})", i * 3, i % 100)
        })
        .collect();
    src.exec(&format!(
        "INSERT INTO {t}Form{t} VALUES {}",
        forms.join(", ")
    ));
    let fields: Vec<String> = (1..=300)
        .flat_map(|f| (0..3).map(move |p| format!("({f}, {p}, 'F{f}.{p}')")))
        .collect();
    src.exec(&format!(
        "INSERT INTO {t}FieldMap{t} VALUES {}",
        fields.join(", ")
    ));
}

fn sql_source_kind(kind: Kind) -> &'static str {
    match kind {
        Kind::Sqlite => "sqlite",
        Kind::Postgres => "postgres",
        Kind::Mysql => "mysql",
    }
}

fn remap(src: &TestDb) {
    legacy(src);
    let target = TestDb::sqlite();
    let d = target.dir();
    let kind = sql_source_kind(src.kind);
    write(
        &d.join("schema/20260101000000_v3.sql"),
        "CREATE TABLE organizations (id VARCHAR(36) PRIMARY KEY, legacy_id INTEGER NOT NULL UNIQUE, name TEXT NOT NULL, slug TEXT NOT NULL);
         CREATE TABLE forms (id VARCHAR(36) PRIMARY KEY, organization_id VARCHAR(36) NOT NULL REFERENCES organizations (id), title TEXT, amount NUMERIC(12,2));
         CREATE TABLE fields (form_id INTEGER NOT NULL, pos INTEGER NOT NULL, label TEXT, PRIMARY KEY (form_id, pos));",
    );
    write(
        &d.join("orgs.toml"),
        &format!(
            "name = \"orgs\"\nschema = \"schema\"\n[source]\nkind = \"{kind}\"\nurl = \"{}\"\ntable = \"Org\"\nkey = [\"OrgId\"]\n\
             [keymap]\nlegacy = \"value.OrgId\"\nnew = \"value.OrgId | uuid5('pliers:organization')\"\n\
             [[tables]]\ntable = \"organizations\"\nkey = [\"id\"]\ncolumns.id = \"value.OrgId | uuid5('pliers:organization')\"\n\
             columns.legacy_id = \"value.OrgId\"\ncolumns.name = \"value.Name | trim\"\ncolumns.slug = \"value.Name | trim | lower | replace(' ', '-')\"\n",
            src.url
        ),
    );
    write(
        &d.join("forms.toml"),
        &format!(
            "name = \"forms\"\nschema = \"schema\"\n[source]\nkind = \"{kind}\"\nurl = \"{}\"\nquery = \"SELECT f.*, 'x' AS extra FROM Form f\"\nkey = [\"FormId\"]\n\
             [[tables]]\ntable = \"forms\"\nkey = [\"id\"]\ncolumns.id = \"value.FormId | uuid5('pliers:form')\"\n\
             columns.organization_id = \"value.OrgId | lookup('orgs')\"\ncolumns.title = \"value.Title\"\ncolumns.amount = \"value.Amount | decimal\"\n",
            src.url
        )
        .replace("FROM Form f", if src.kind == Kind::Postgres { "FROM \\\"Form\\\" f" } else { "FROM Form f" }),
    );
    write(
        &d.join("fields.toml"),
        &format!(
            "name = \"fields\"\nschema = \"schema\"\n[source]\nkind = \"{kind}\"\nurl = \"{}\"\ntable = \"FieldMap\"\nkey = [\"FormId\", \"Pos\"]\n\
             [[tables]]\ntable = \"fields\"\nkey = [\"form_id\", \"pos\"]\ncolumns.form_id = \"value.FormId\"\ncolumns.pos = \"value.Pos\"\ncolumns.label = \"value.Label\"\n",
            src.url
        ),
    );
    let m = |n: &str| d.join(n).to_str().unwrap().to_string();
    let out = target
        .run(&[
            "run",
            &m("orgs.toml"),
            &m("forms.toml"),
            &m("fields.toml"),
            "--batch-size",
            "500",
        ])
        .ok();
    assert!(
        out.stdout
            .contains("5 read, 5 written, 0 filtered, 0 failed"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains(&format!(
            "{N_FORMS} read, {} written, 0 filtered, 1 failed",
            N_FORMS - 1
        )),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("900 read, 900 written"),
        "{}",
        out.stdout
    );
    assert_eq!(
        target
            .scalar("SELECT slug FROM organizations WHERE legacy_id = 3")
            .as_deref(),
        Some("org-nº3")
    );
    // Every form points at the new id of its organization.
    assert_eq!(
        target
            .count("SELECT count(*) FROM forms f JOIN organizations o ON o.id = f.organization_id"),
        N_FORMS - 1
    );
    let want: String = {
        let cents: i64 = (1..=N_FORMS)
            .filter(|i| *i != 777)
            .map(|i| i * 300 + i % 100)
            .sum();
        format!("{}.{:02}", cents / 100, cents % 100)
    };
    let total: String = target
        .scalar("SELECT printf('%.2f', sum(amount)) FROM forms")
        .unwrap();
    assert_eq!(total, want, "decimals are exact");
    let e = &target.rows("SELECT record_key, column_name, message FROM cutover_errors")[0];
    assert_eq!(e[0].as_deref(), Some("777"));
    assert_eq!(e[1].as_deref(), Some("forms.organization_id"));
    assert_eq!(
        e[2].as_deref(),
        Some("legacy id 99 was not found in the key map of mapping 'orgs'")
    );
    let cp = target
        .scalar("SELECT position FROM cutover_checkpoints WHERE mapping = 'fields'")
        .unwrap();
    assert!(
        cp.contains("\"key\":[300,2]"),
        "the checkpoint is the last key: {cp}"
    );
    // Rerun: nothing changes.
    target
        .run(&["run", &m("orgs.toml"), &m("forms.toml"), &m("fields.toml")])
        .ok();
    assert_eq!(
        target.count("SELECT sum(rows_written) FROM cutover_runs WHERE id > 3"),
        0
    );
}

crate::on_all_targets!(sql_source_with_keymap, |db| remap(db));

/// A source key that is not unique would make keyset pages skip rows silently
/// (`WHERE key > last` jumps over the second row of a shared key at a page
/// boundary). The reader reads one row ahead, so the run stops and names the key,
/// whether the duplicate sits inside a page or straddles two.
fn non_unique_key(src: &TestDb) {
    src.exec("CREATE TABLE ledger (num INTEGER NOT NULL, note VARCHAR(20))");
    src.exec("INSERT INTO ledger VALUES (1, 'a'), (2, 'b'), (3, 'c'), (3, 'd'), (4, 'e')");
    let target = TestDb::sqlite();
    let d = target.dir();
    write(
        &d.join("schema/20260101000000_l.sql"),
        "CREATE TABLE ledger (num INTEGER PRIMARY KEY, note TEXT);",
    );
    write(
        &d.join("ledger.toml"),
        &format!(
            "name = \"ledger\"\nschema = \"schema\"\n[source]\nkind = \"{}\"\nurl = \"{}\"\ntable = \"ledger\"\nkey = [\"num\"]\n\
             [[tables]]\ntable = \"ledger\"\nkey = [\"num\"]\ncolumns.num = \"value.num\"\ncolumns.note = \"value.note\"\n",
            sql_source_kind(src.kind),
            src.url
        ),
    );
    let m = d.join("ledger.toml");
    // batch 3: the page is 1, 2, 3 and the read-ahead row is the second 3.
    // batch 4: both 3s are inside the first page.
    for batch in ["3", "4"] {
        let out = target.run(&[
            "run",
            m.to_str().unwrap(),
            "--batch-size",
            batch,
            "--restart",
        ]);
        assert_eq!(out.code, 1, "batch {batch}: {}\n{}", out.stdout, out.stderr);
        assert!(
            out.stderr
                .contains("keyset pagination on (num) found the key [3] on more than one row"),
            "batch {batch}: {}",
            out.stderr
        );
        assert_eq!(
            target
                .scalar("SELECT status FROM cutover_runs ORDER BY id DESC LIMIT 1")
                .as_deref(),
            Some("failed")
        );
    }
    // Keyed on unique columns the same table loads every row.
    src.exec("DELETE FROM ledger WHERE note = 'd'");
    let out = target
        .run(&["run", m.to_str().unwrap(), "--batch-size", "3"])
        .ok();
    assert!(out.stdout.contains("4 read, 4 written"), "{}", out.stdout);
}

crate::on_all_targets!(sql_source_with_a_key_that_is_not_unique, |db| {
    non_unique_key(db)
});

// ---------------------------------------------------------------------------
// Keys of every type: each parameter of `WHERE key > last` is bound with the key
// column's own type, so no row is skipped or read twice across pages, and
// `retry` finds a record again by its key.

/// How the text the reader delivers for a key is compared with the expected one.
#[derive(Clone, Copy)]
enum Same {
    Exact,
    Decimal,
    Float,
}

fn same(how: Same, got: &str, want: &str) -> bool {
    use std::str::FromStr;
    match how {
        Same::Exact => got == want,
        Same::Decimal => {
            let d = |s: &str| bigdecimal::BigDecimal::from_str(s).map(|d| d.normalized());
            matches!((d(got), d(want)), (Ok(a), Ok(b)) if a == b)
        }
        Same::Float => {
            matches!((got.parse::<f64>(), want.parse::<f64>()), (Ok(a), Ok(b)) if a == b)
        }
    }
}

/// A keyed table: its key columns with their SQL type, and per row the SQL
/// literal of each key value with the text the reader should deliver for it.
struct KeyCase {
    name: &'static str,
    key: Vec<(&'static str, &'static str, Same)>,
    rows: Vec<Vec<(String, String)>>,
}

const N_KEYED: usize = 20;

fn sql_text(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn uuid_of(i: usize) -> uuid::Uuid {
    uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, format!("row {i}").as_bytes())
}

fn key_cases(kind: Kind) -> Vec<KeyCase> {
    let single = |name, ty, how, vals: Vec<(String, String)>| KeyCase {
        name,
        key: vec![("k1", ty, how)],
        rows: vals.into_iter().map(|v| vec![v]).collect(),
    };
    // Rows are inserted in an order unrelated to the key order.
    let perm = |i: usize| (i * 7) % N_KEYED;
    let mut cases = Vec::new();

    let uuids = (0..N_KEYED)
        .map(|i| {
            let u = uuid_of(i);
            let lit = if kind == Kind::Sqlite {
                u.to_string()
            } else {
                u.to_string().to_uppercase()
            };
            (sql_text(&lit), u.to_string())
        })
        .collect();
    let uuid_ty = match kind {
        Kind::Postgres => "uuid",
        Kind::Mysql => "UUID",
        Kind::Sqlite => "TEXT",
    };
    cases.push(single("uuid", uuid_ty, Same::Exact, uuids));

    // Microseconds apart, across midnight of a leap day.
    let base = chrono::NaiveDate::from_ymd_opt(2024, 2, 28)
        .unwrap()
        .and_hms_micro_opt(23, 59, 59, 999_990)
        .unwrap();
    let stamps = (0..N_KEYED)
        .map(|i| {
            let t = base + chrono::TimeDelta::microseconds(perm(i) as i64 * 3);
            let iso = t.format("%Y-%m-%dT%H:%M:%S%.f").to_string();
            let lit = if kind == Kind::Sqlite {
                iso.clone()
            } else {
                t.format("%Y-%m-%d %H:%M:%S%.6f").to_string()
            };
            (sql_text(&lit), iso)
        })
        .collect();
    let ts_ty = match kind {
        Kind::Postgres => "timestamp(6)",
        Kind::Mysql => "DATETIME(6)",
        Kind::Sqlite => "TEXT",
    };
    cases.push(single("timestamp", ts_ty, Same::Exact, stamps));

    if kind != Kind::Sqlite {
        let zoned = (0..N_KEYED)
            .map(|i| {
                let t = (base + chrono::TimeDelta::microseconds(perm(i) as i64 * 3)).and_utc();
                let want = t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
                let lit = if kind == Kind::Postgres {
                    // the same instant written in another zone
                    (t + chrono::TimeDelta::hours(2))
                        .format("%Y-%m-%d %H:%M:%S%.6f+02")
                        .to_string()
                } else {
                    t.format("%Y-%m-%d %H:%M:%S%.6f").to_string()
                };
                (sql_text(&lit), want)
            })
            .collect();
        let ty = if kind == Kind::Postgres {
            "timestamptz"
        } else {
            "TIMESTAMP(6)"
        };
        cases.push(single("timestamptz", ty, Same::Exact, zoned));
    }

    let words = [
        "alpha",
        "Alpha",
        "ALPHA",
        "beta",
        "Beta",
        "é",
        "É",
        "e",
        "E",
        "ß",
        "ss",
        "日本",
        "中文",
        "Ωmega",
        "ωmega",
        "zeta",
        "Zeta",
        "O'Brien",
        "🙂 smile",
        "a b",
    ];
    let text_ty = match kind {
        Kind::Mysql => "VARCHAR(40)",
        _ => "TEXT",
    };
    cases.push(single(
        "text",
        text_ty,
        Same::Exact,
        words.iter().map(|w| (sql_text(w), w.to_string())).collect(),
    ));

    let decimals: Vec<(String, String)> = if kind == Kind::Sqlite {
        // SQLite has no exact decimal: REAL values, bound as REAL.
        (0..N_KEYED)
            .map(|i| {
                let v = format!("{}.{}", 100_000 + perm(i) as i64 - 10, perm(i) % 10);
                (v.clone(), v)
            })
            .collect()
    } else {
        (0..N_KEYED)
            .map(|i| {
                let v = match perm(i) {
                    17 => "-0.000000000000000001".to_string(),
                    18 => "0".to_string(),
                    19 => "-99999999999999999999.999999999999999999".to_string(),
                    p => format!("12345678901234567890.1234567890123456{p:02}"),
                };
                (v.clone(), v)
            })
            .collect()
    };
    let (dec_ty, how) = match kind {
        Kind::Postgres => ("numeric(38,18)", Same::Decimal),
        Kind::Mysql => ("DECIMAL(38,18)", Same::Decimal),
        Kind::Sqlite => ("REAL", Same::Float),
    };
    cases.push(single("decimal", dec_ty, how, decimals));

    let groups = ["a", "B", "é", "Z"];
    let seqs = [-3, 1, 2, 10, 100];
    cases.push(KeyCase {
        name: "composite",
        key: vec![("k1", text_ty, Same::Exact), ("k2", "INTEGER", Same::Exact)],
        rows: (0..N_KEYED)
            .map(|i| {
                let (g, s) = (groups[i % 4], seqs[i / 4]);
                vec![(sql_text(g), g.to_string()), (s.to_string(), s.to_string())]
            })
            .collect(),
    });
    cases
}

fn quote(kind: Kind, ident: &str) -> String {
    match kind {
        Kind::Mysql => format!("`{ident}`"),
        _ => format!("\"{ident}\""),
    }
}

/// Write the mapping of a keyed case: key columns to text, `note | required`.
fn keyed_mapping(dir: &Path, src: &TestDb, name: &str, from: &str, keys: &[&str]) -> String {
    write(
        &dir.join(format!("schema_{name}/20260101000000_k.sql")),
        "CREATE TABLE k (n INTEGER PRIMARY KEY, k1 TEXT NOT NULL, k2 TEXT, note TEXT NOT NULL);",
    );
    let mut toml = format!(
        "name = \"{name}\"\nschema = \"schema_{name}\"\n[source]\nkind = \"{}\"\nurl = \"{}\"\n{from}\nkey = [{}]\n\
         [[tables]]\ntable = \"k\"\nkey = [\"n\"]\ncolumns.n = \"value.n\"\ncolumns.note = \"value.note | required\"\n",
        sql_source_kind(src.kind),
        src.url,
        keys.iter().map(|k| format!("\"{k}\"")).collect::<Vec<_>>().join(", "),
    );
    for k in keys {
        toml.push_str(&format!("columns.{k} = \"value.{k} | text\"\n"));
    }
    let path = dir.join(format!("{name}.toml"));
    write(&path, &toml);
    path.to_str().unwrap().to_string()
}

fn failing(i: usize) -> bool {
    i % 7 == 3
}

fn load_case(src: &TestDb, case: &KeyCase) {
    let kind = src.kind;
    let table = format!("k_{}", case.name);
    let cols: Vec<String> = case
        .key
        .iter()
        .map(|(c, ty, _)| format!("{} {ty} NOT NULL", quote(kind, c)))
        .collect();
    let pk: Vec<String> = case.key.iter().map(|(c, _, _)| quote(kind, c)).collect();
    src.exec(&format!(
        "CREATE TABLE {} ({}, n INTEGER NOT NULL, note VARCHAR(20), PRIMARY KEY ({}))",
        quote(kind, &table),
        cols.join(", "),
        pk.join(", ")
    ));
    let values: Vec<String> = case
        .rows
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let lits: Vec<&str> = r.iter().map(|(lit, _)| lit.as_str()).collect();
            let note = if failing(i) { "NULL" } else { "'ok'" };
            format!("({}, {i}, {note})", lits.join(", "))
        })
        .collect();
    src.exec(&format!(
        "INSERT INTO {} VALUES {}",
        quote(kind, &table),
        values.join(", ")
    ));
}

fn assert_all_rows(target: &TestDb, case: &KeyCase, n: usize) {
    let rows = target.rows("SELECT n, k1, k2 FROM k ORDER BY n");
    let got_n: Vec<usize> = rows
        .iter()
        .map(|r| r[0].as_deref().unwrap().parse().unwrap())
        .collect();
    let want_n: Vec<usize> = (0..N_KEYED)
        .filter(|i| n == N_KEYED || !failing(*i))
        .collect();
    assert_eq!(got_n, want_n, "{}: every row exactly once", case.name);
    for r in &rows {
        let i: usize = r[0].as_deref().unwrap().parse().unwrap();
        for (j, (_, _, how)) in case.key.iter().enumerate() {
            let got = r[1 + j].as_deref().unwrap_or("<null>");
            let want = &case.rows[i][j].1;
            assert!(
                same(*how, got, want),
                "{}: row {i} key {j}: got {got:?}, want {want:?}",
                case.name
            );
        }
    }
}

fn keyed_sources(src: &TestDb) {
    let failures = (0..N_KEYED).filter(|i| failing(*i)).count();
    for case in key_cases(src.kind) {
        load_case(src, &case);
        let target = TestDb::sqlite();
        let keys: Vec<&str> = case.key.iter().map(|(c, _, _)| *c).collect();
        let m = keyed_mapping(
            target.dir(),
            src,
            case.name,
            &format!("table = \"k_{}\"", case.name),
            &keys,
        );
        // Pages of 3 rows (plus the row read ahead): seven pages.
        let out = target.run(&["run", &m, "--batch-size", "3"]).ok();
        assert!(
            out.stdout.contains(&format!(
                "{N_KEYED} read, {} written, 0 filtered, {failures} failed",
                N_KEYED - failures
            )),
            "{}: {}",
            case.name,
            out.stdout
        );
        assert_all_rows(&target, &case, N_KEYED - failures);
        // Fix the source, then `retry` reads each failed record again by its key.
        src.exec(&format!(
            "UPDATE {} SET note = 'fixed' WHERE note IS NULL",
            quote(src.kind, &format!("k_{}", case.name))
        ));
        let out = target.run(&["retry", &m]).ok();
        assert!(
            out.stdout.contains(&format!(
                "{failures} records with unresolved errors, {failures} loaded"
            )),
            "{}: {}",
            case.name,
            out.stdout
        );
        assert_all_rows(&target, &case, N_KEYED);
    }
}

crate::on_all_targets!(sql_source_keys_of_every_type_cross_pages_and_retry, |db| {
    keyed_sources(db)
});

/// A run that stops half way on a uuid key resumes at the uuid of its checkpoint:
/// the first page of the second run already binds a uuid. The first run is
/// stopped by a duplicated key (a second copy of one row, through a `query`).
fn resume_on_uuid(src: &TestDb) {
    let case = key_cases(src.kind).remove(0);
    assert_eq!(case.name, "uuid");
    load_case(src, &case);
    src.exec("UPDATE k_uuid SET note = 'ok'");
    let t = |name: &str| quote(src.kind, name);
    src.exec(&format!(
        "CREATE TABLE {} AS SELECT * FROM {} WHERE 1 = 0",
        t("dup"),
        t("k_uuid")
    ));
    // A copy of the 11th row in key order: pages of 3 commit rows 1-9 first.
    let ordered = src.rows(&format!("SELECT k1 FROM {} ORDER BY k1", t("k_uuid")));
    let eleventh = ordered[10][0].clone().unwrap();
    src.exec(&format!(
        "INSERT INTO {} SELECT * FROM {} WHERE k1 = '{eleventh}'",
        t("dup"),
        t("k_uuid")
    ));
    let target = TestDb::sqlite();
    let query = format!(
        "query = \"SELECT k1, n, note FROM {} UNION ALL SELECT k1, n, note FROM {}\"",
        t("k_uuid").replace('"', "\\\""),
        t("dup").replace('"', "\\\"")
    );
    let m = keyed_mapping(target.dir(), src, "resume_uuid", &query, &["k1"]);
    let committed = || {
        target.count(
            "SELECT records_committed FROM cutover_checkpoints WHERE mapping = 'resume_uuid'",
        )
    };
    let out = target.run(&["run", &m, "--batch-size", "3"]);
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains("on more than one row"),
        "{}",
        out.stderr
    );
    let first = committed();
    assert!(
        first > 0 && first < N_KEYED as i64,
        "the first run stopped half way: {first}"
    );
    src.exec(&format!("DELETE FROM {}", t("dup")));
    let out = target.run(&["run", &m, "--batch-size", "3"]).ok();
    assert!(out.stdout.contains("resumed from run 1"), "{}", out.stdout);
    assert!(
        out.stdout.contains(&format!(
            "{} read, {} written, 0 filtered, 0 failed",
            N_KEYED as i64 - first,
            N_KEYED as i64 - first
        )),
        "{}",
        out.stdout
    );
    assert_eq!(committed(), N_KEYED as i64);
    assert_all_rows(&target, &case, N_KEYED);
}

crate::on_all_targets!(sql_source_resumes_on_a_uuid_key, |db| resume_on_uuid(db));

/// A NULL in a key column stops the run with a message naming the column; it is
/// never bound as a value. PostgreSQL sorts NULLs last, where `WHERE key > last`
/// never reaches them: without the check those rows would be skipped silently.
fn null_key(src: &TestDb) {
    src.exec("CREATE TABLE nk (k1 VARCHAR(10), n INTEGER NOT NULL, note VARCHAR(10))");
    let rows: Vec<String> = (0..10)
        .map(|i| {
            let k = if i == 6 {
                "NULL".to_string()
            } else {
                format!("'k{i}'")
            };
            format!("({k}, {i}, 'ok')")
        })
        .collect();
    src.exec(&format!("INSERT INTO nk VALUES {}", rows.join(", ")));
    let target = TestDb::sqlite();
    let m = keyed_mapping(target.dir(), src, "nk", "table = \"nk\"", &["k1"]);
    let out = target.run(&["run", &m, "--batch-size", "3"]);
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stderr
            .contains("keyset pagination on (k1): the key column k1 is NULL"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("must be NOT NULL and unique"),
        "{}",
        out.stderr
    );
}

crate::on_all_targets!(sql_source_with_a_null_key, |db| null_key(db));

// ---------------------------------------------------------------------------
// Column types sqlx does not decode itself become lossless JSON.

/// Load the one-row `query` (or table) into a JSON document and return it.
fn one_document(src: &TestDb, from: &str) -> Result<serde_json::Value, super::util::Run> {
    let target = TestDb::sqlite();
    let d = target.dir();
    write(
        &d.join("schema_doc/20260101000000_doc.sql"),
        "CREATE TABLE doc (id INTEGER PRIMARY KEY, doc TEXT NOT NULL);",
    );
    write(
        &d.join("doc.toml"),
        &format!(
            "name = \"doc\"\nschema = \"schema_doc\"\n[source]\nkind = \"{}\"\nurl = \"{}\"\n{from}\nkey = [\"id\"]\n\
             [[tables]]\ntable = \"doc\"\nkey = [\"id\"]\ncolumns.id = \"value.id\"\ncolumns.doc = \"value | json\"\n",
            sql_source_kind(src.kind),
            src.url
        ),
    );
    let out = target.run(&["run", d.join("doc.toml").to_str().unwrap()]);
    if out.code != 0 {
        return Err(out);
    }
    assert!(out.stdout.contains("1 read, 1 written"), "{}", out.stdout);
    let text = target.scalar("SELECT doc FROM doc").unwrap();
    Ok(serde_json::from_str(&text).unwrap())
}

fn assert_fields(doc: &serde_json::Value, want: &[(&str, &str)]) {
    for (field, json) in want {
        assert_eq!(
            doc.get(*field).map(|v| v.to_string()).as_deref(),
            Some(*json),
            "field {field} of {doc}"
        );
    }
}

#[test]
fn postgres_types_beyond_sqlx_convert_without_loss() {
    let Some(src) = TestDb::postgres() else {
        return;
    };
    src.exec(
        "CREATE TYPE mood AS ENUM ('sad', 'happy');
         CREATE DOMAIN posint AS integer CHECK (VALUE > 0);",
    );
    let query = "SELECT 1 AS id, 'happy'::mood AS e, '<a>x</a>'::xml AS x, \
        '1 year 2 mons -3 days 04:05:06.789'::interval AS iv, \
        '-1234.56'::money AS m, '92233720368547758.07'::money AS mmax, \
        '192.168.0.1'::inet AS ip, '192.168.0.1/24'::inet AS ipm, '10.0.0.0/8'::cidr AS net, \
        '2001:db8::1/64'::inet AS ip6, '08:00:2b:01:02:03'::macaddr AS mac, \
        B'10101'::bit(5) AS bits, B'1'::varbit AS vb, '10:00:00.5+02'::timetz AS ttz, \
        '24:00:00'::time AS t24, 'infinity'::timestamp AS tinf, '-infinity'::date AS dinf, \
        'NaN'::numeric AS nnan, 'Infinity'::float8 AS finf, 5::posint AS dom, \
        '[1,10)'::int4range AS r, \
        ARRAY[1, NULL, 3]::int4[] AS ai, ARRAY[['a', 'b'], ['c', 'd']]::text[] AS a2, \
        ARRAY['sad', 'happy']::mood[] AS ae, \
        ARRAY[1.50, -0.0001, 12345678901234567890.123456789]::numeric[] AS an, \
        ARRAY['2024-01-01 10:00:00.5'::timestamp] AS ats, \
        ARRAY['2024-01-01 10:00:00+00'::timestamptz] AS atz, ARRAY['2024-02-29'::date] AS ad, \
        ARRAY['a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid] AS au, \
        ARRAY['{\\\"a\\\": 1}'::jsonb] AS aj, ARRAY[true, false] AS ab, \
        ARRAY[1.5::float8, 'NaN'] AS af, '{}'::int4[] AS empty, \
        ARRAY['-1234.56'::money] AS am, ARRAY['10.0.0.1'::inet] AS aip, \
        ARRAY['1 day'::interval] AS aiv, \
        12345678901234567890.123456789::numeric AS n, '2024-01-01 10:00:00.5'::timestamp AS ts, \
        '2024-02-29'::date AS d, '23:59:59.999999'::time AS t";
    let doc = one_document(&src, &format!("query = \"{query}\""))
        .unwrap_or_else(|out| panic!("{}\n{}", out.stdout, out.stderr));
    assert_fields(
        &doc,
        &[
            ("e", r#""happy""#),
            ("x", r#""<a>x</a>""#),
            ("iv", r#""P1Y2M-3DT4H5M6.789S""#),
            ("m", r#""-1234.56""#),
            ("mmax", r#""92233720368547758.07""#),
            ("ip", r#""192.168.0.1""#),
            ("ipm", r#""192.168.0.1/24""#),
            ("net", r#""10.0.0.0/8""#),
            ("ip6", r#""2001:db8::1/64""#),
            ("mac", r#""08:00:2b:01:02:03""#),
            ("bits", r#""10101""#),
            ("vb", r#""1""#),
            ("ttz", r#""10:00:00.500+02:00""#),
            ("t24", r#""24:00:00""#),
            ("tinf", r#""infinity""#),
            ("dinf", r#""-infinity""#),
            ("nnan", r#""NaN""#),
            ("finf", r#""Infinity""#),
            ("dom", "5"),
            ("r", r#""[1,10)""#),
            ("ai", "[1,null,3]"),
            ("a2", r#"[["a","b"],["c","d"]]"#),
            ("ae", r#"["sad","happy"]"#),
            ("an", "[1.50,-0.0001,12345678901234567890.123456789]"),
            ("ats", r#"["2024-01-01T10:00:00.500"]"#),
            ("atz", r#"["2024-01-01T10:00:00Z"]"#),
            ("ad", r#"["2024-02-29"]"#),
            ("au", r#"["a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"]"#),
            ("aj", r#"[{"a":1}]"#),
            ("ab", "[true,false]"),
            ("af", r#"[1.5,"NaN"]"#),
            ("empty", "[]"),
            ("am", r#"["-1234.56"]"#),
            ("aip", r#"["10.0.0.1"]"#),
            ("aiv", r#"["P1D"]"#),
            // The common types read the same as before.
            ("n", "12345678901234567890.123456789"),
            ("ts", r#""2024-01-01T10:00:00.500""#),
            ("d", r#""2024-02-29""#),
            ("t", r#""23:59:59.999999""#),
        ],
    );
}

/// What still cannot be converted stops the run with the column and its type.
#[test]
fn postgres_type_that_cannot_be_converted_names_the_column() {
    let Some(src) = TestDb::postgres() else {
        return;
    };
    let out = one_document(&src, "query = \"SELECT 1 AS id, 'a b'::tsvector AS words\"")
        .expect_err("a tsvector is not converted");
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains("column words (tsvector)"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("cast the column to text"),
        "{}",
        out.stderr
    );
}

#[test]
fn mysql_set_bit_year_and_others_convert_without_loss() {
    let Some(src) = TestDb::mysql() else { return };
    src.exec(
        "CREATE TABLE m (id INT PRIMARY KEY, s SET('a', 'b', 'c'), bt BIT(10), b1 BIT(1), y YEAR, \
         e ENUM('x', 'y'), tm TIME, neg TIME, g GEOMETRY, tiny TINYINT UNSIGNED, \
         big BIGINT UNSIGNED, d DECIMAL(30, 10));
         INSERT INTO m VALUES (1, 'a,c', b'1000000001', b'1', 2024, 'y', '12:34:56.5', '-838:59:59', \
         ST_GeomFromText('POINT(1 2)'), 255, 18446744073709551615, 12345678901234567890.0123456789);",
    );
    let doc = one_document(&src, "table = \"m\"")
        .unwrap_or_else(|out| panic!("{}\n{}", out.stdout, out.stderr));
    // SRID 0, then well-known binary of POINT(1 2), little-endian.
    let mut wkb = vec![0u8, 0, 0, 0, 1, 1, 0, 0, 0];
    wkb.extend(1f64.to_le_bytes());
    wkb.extend(2f64.to_le_bytes());
    use base64::Engine;
    let g = format!(
        "\"{}\"",
        base64::engine::general_purpose::STANDARD.encode(&wkb)
    );
    assert_fields(
        &doc,
        &[
            ("s", r#""a,c""#),
            ("bt", "513"),
            ("b1", "1"),
            ("y", "2024"),
            ("e", r#""y""#),
            ("tm", r#""12:34:56""#),
            ("neg", r#""-838:59:59""#),
            ("g", &g),
            ("tiny", "255"),
            ("big", "18446744073709551615"),
            ("d", "12345678901234567890.0123456789"),
        ],
    );
}

// ---------------------------------------------------------------------------
// A lost connection in the middle of a run: reconnect, read the page again.

#[test]
fn postgres_source_reconnects_when_its_backend_is_terminated() {
    let Some(src) = TestDb::postgres() else {
        return;
    };
    const ROWS: i64 = 2000;
    src.exec(&format!(
        "CREATE TABLE big (id INTEGER PRIMARY KEY, v INTEGER NOT NULL);
         INSERT INTO big SELECT g, g * 7 % 1000 FROM generate_series(1, {ROWS}) g;"
    ));
    let db = src.url.rsplit('/').next().unwrap().to_string();
    let target = TestDb::sqlite();
    let d = target.dir();
    write(
        &d.join("schema/20260101000000_big.sql"),
        "CREATE TABLE big (id INTEGER PRIMARY KEY, v INTEGER NOT NULL);",
    );
    // Every page query sleeps 20 ms on the server, so a termination lands in a
    // query (where it breaks the connection under the reader), not between two.
    write(
        &d.join("big.toml"),
        &format!(
            "name = \"big\"\nschema = \"schema\"\n[source]\nkind = \"postgres\"\nurl = \"{}\"\n\
             query = \"SELECT t.id, t.v FROM big t CROSS JOIN pg_sleep(0.02) s\"\nkey = [\"id\"]\n\
             [[tables]]\ntable = \"big\"\nkey = [\"id\"]\ncolumns.id = \"value.id\"\ncolumns.v = \"value.v\"\n",
            src.url
        ),
    );
    let m = d.join("big.toml");
    let mut child = target.spawn(&["run", m.to_str().unwrap(), "--batch-size", "10"]);
    let mut kills = 0;
    let start = std::time::Instant::now();
    while kills < 5 && start.elapsed() < std::time::Duration::from_secs(60) {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        let k = src.count(&format!(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE datname = '{db}' AND application_name = 'cutover-source'"
        ));
        if k > 0 {
            kills += k;
            // Let the reader reconnect and read a few pages before the next one.
            std::thread::sleep(std::time::Duration::from_millis(900));
        } else {
            std::thread::sleep(std::time::Duration::from_millis(30));
        }
    }
    let out = child.wait_with_output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    eprintln!(
        "terminated the source's backend {kills} times in {:?}",
        start.elapsed()
    );
    assert!(
        kills >= 3,
        "the source's backend was terminated {kills} times"
    );
    assert!(
        stderr.contains("lost the connection to the source"),
        "{stderr}"
    );
    // Every row once: nothing lost, nothing read twice.
    assert!(
        stdout.contains(&format!(
            "{ROWS} read, {ROWS} written, 0 filtered, 0 failed"
        )),
        "{stdout}"
    );
    assert_eq!(target.count("SELECT count(*) FROM big"), ROWS);
    assert_eq!(
        target.count("SELECT sum(v) FROM big"),
        (1..=ROWS).map(|g| g * 7 % 1000).sum::<i64>()
    );
    assert_eq!(
        target.count("SELECT sum(id) FROM big"),
        ROWS * (ROWS + 1) / 2
    );
}
