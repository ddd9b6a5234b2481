//! SQL sources (SQLite, PostgreSQL, MariaDB through sqlx): keyset pagination over
//! pages, exact decimals, composite keys, resume, and legacy-id remapping with
//! `[keymap]` + `lookup()`.

use super::util::{Kind, TestDb};
use std::path::Path;

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

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
