//! Resume, rerun and concurrency: kill -9 at any moment loses and duplicates
//! nothing; Ctrl-C stops cleanly; a second run of a mapping refuses to start.

use super::util::{kv_job, wait_for, TestDb};
use std::os::unix::process::ExitStatusExt;
use std::process::Child;

const N: usize = 150_000;

fn committed(db: &TestDb, mapping: &str) -> i64 {
    db.rows(&format!(
        "SELECT records_committed FROM cutover_checkpoints WHERE mapping = '{mapping}'"
    ))
    .first()
    .and_then(|r| r[0].as_ref())
    .and_then(|s| s.parse().ok())
    .unwrap_or(0)
}

fn has_tracking(db: &TestDb) -> bool {
    db.table_exists("cutover_checkpoints")
}

/// `kill -9` a load and check it was really stopped half way: killed by the
/// signal (it had not exited by itself), its run still `running` and fewer than
/// `n` records committed. Returns the records committed. Without this, a load
/// that finished before the kill would let a resume test pass vacuously.
#[track_caller]
fn kill_half_way(db: &TestDb, mut child: Child, mapping: &str, n: usize) -> i64 {
    child.kill().expect("kill -9");
    let status = child.wait().expect("wait");
    assert_eq!(
        status.signal(),
        Some(libc::SIGKILL),
        "the load of {mapping} ended by itself ({status}) before the kill: the test interrupted nothing (make the input bigger)"
    );
    let at_kill = committed(db, mapping);
    assert!(
        at_kill > 0 && (at_kill as usize) < n,
        "{mapping} was not killed half way: {at_kill} of {n} records committed"
    );
    assert_eq!(
        db.scalar(&format!(
            "SELECT status FROM cutover_runs WHERE mapping = '{mapping}' ORDER BY id DESC LIMIT 1"
        ))
        .as_deref(),
        Some("running"),
        "the killed run of {mapping} is left as running"
    );
    at_kill
}

/// Wait until `f` holds while `child` is still loading; fail at once, naming
/// the mapping, if the child exits first (the load was too quick to catch).
#[track_caller]
fn wait_while_running(child: &mut Child, what: &str, mut f: impl FnMut() -> bool) {
    wait_for(120, what, || {
        if let Some(status) = child.try_wait().expect("try_wait") {
            panic!("the load ended ({status}) before {what}: the test interrupted nothing (make the input bigger)");
        }
        f()
    });
}

/// The table equals a clean load: every id once, and the values add up.
fn assert_complete(db: &TestDb, n: usize) {
    assert_eq!(db.count("SELECT count(*) FROM items"), n as i64);
    assert_eq!(db.count("SELECT count(DISTINCT id) FROM items"), n as i64);
    let want: i64 = (0..n as i64).sum();
    assert_eq!(db.count("SELECT sum(id) FROM items"), want);
    let score: i64 = (0..n as i64).map(|i| (i * 7) % 1000).sum();
    assert_eq!(db.count("SELECT sum(score) FROM items"), score);
    assert_eq!(db.count("SELECT count(*) FROM item_tags"), 2 * n as i64);
}

fn kill_9_then_resume_loses_and_duplicates_nothing(db: &TestDb) {
    let mapping = kv_job(db.dir(), "killed", N);
    let m = mapping.to_str().unwrap();
    let mut child = db.spawn(&["run", m, "--batch-size", "500", "--commit-every", "1000"]);
    wait_while_running(&mut child, "some batches to commit", || {
        has_tracking(db) && committed(db, "killed") >= 5_000
    });
    let at_kill = kill_half_way(db, child, "killed", N);

    let out = db
        .run(&["run", m, "--batch-size", "500", "--commit-every", "1000"])
        .ok();
    assert!(out.stdout.contains("resumed from run 1"), "{}", out.stdout);
    // The dead run is marked, the new one read only what was left.
    assert_eq!(
        db.scalar("SELECT status FROM cutover_runs WHERE id = 1")
            .as_deref(),
        Some("interrupted")
    );
    let second =
        &db.rows("SELECT status, records_read, records_failed FROM cutover_runs WHERE id = 2")[0];
    assert_eq!(second[0].as_deref(), Some("succeeded"));
    assert_eq!(
        second[1].as_deref().unwrap().parse::<i64>().unwrap(),
        N as i64 - at_kill
    );
    assert_eq!(second[2].as_deref(), Some("0"));
    assert_eq!(committed(db, "killed"), N as i64);
    assert_complete(db, N);

    // Status adds up for every run.
    for r in db.rows(
        "SELECT records_read, records_written, records_filtered, records_failed FROM cutover_runs",
    ) {
        let n: Vec<i64> = r
            .iter()
            .map(|c| c.as_ref().unwrap().parse().unwrap())
            .collect();
        assert_eq!(n[0], n[1] + n[2] + n[3]);
    }
    // The last run succeeded, so another run is a fresh pass that changes nothing.
    let out = db.run(&["run", m, "--batch-size", "5000"]).ok();
    assert!(!out.stdout.contains("resumed"), "{}", out.stdout);
    let third = &db.rows("SELECT records_read, rows_written FROM cutover_runs WHERE id = 3")[0];
    assert_eq!(third[0].as_deref().unwrap().parse::<usize>().unwrap(), N);
    assert_eq!(third[1].as_deref(), Some("0"));
}

fn ctrl_c_interrupts_cleanly_and_resumes(db: &TestDb) {
    let mapping = kv_job(db.dir(), "sigint", N);
    let m = mapping.to_str().unwrap();
    let mut child = db.spawn(&["run", m, "--batch-size", "500", "--commit-every", "1000"]);
    wait_while_running(&mut child, "some batches to commit", || {
        has_tracking(db) && committed(db, "sigint") >= 2_000
    });
    // SAFETY: sending SIGINT to our own child process.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
    let out = child.wait_with_output().expect("wait");
    assert_eq!(
        out.status.code(),
        Some(130),
        "not interrupted (a load that ended before Ctrl-C exits 0)\nstdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let run = &db.rows("SELECT status, records_read FROM cutover_runs WHERE id = 1")[0];
    assert_eq!(run[0].as_deref(), Some("interrupted"));
    let read: i64 = run[1].as_deref().unwrap().parse().unwrap();
    assert!(
        read >= 2_000 && (read as usize) < N,
        "interrupted half way: {read} of {N} read"
    );
    assert_eq!(
        read,
        committed(db, "sigint"),
        "the interrupted run's counts match its checkpoint"
    );
    assert!(
        db.count("SELECT count(*) FROM cutover_locks") == 0,
        "the lock is released"
    );
    let out = db.run(&["run", m]).ok();
    assert!(out.stdout.contains("resumed from run 1"), "{}", out.stdout);
    assert_complete(db, N);
}

fn a_second_concurrent_run_refuses_to_start(db: &TestDb) {
    let mapping = kv_job(db.dir(), "busy", N);
    let m = mapping.to_str().unwrap();
    let mut first = db.spawn(&["run", m, "--batch-size", "500", "--commit-every", "1000"]);
    wait_while_running(&mut first, "the first run to hold the lock", || {
        db.table_exists("cutover_locks")
            && db.count("SELECT count(*) FROM cutover_locks WHERE mapping = 'busy'") == 1
    });
    let second = db.run(&["run", m]);
    assert_eq!(
        second.code, 1,
        "the second run was not refused (did the first one finish already?)\nstdout:\n{}\nstderr:\n{}",
        second.stdout, second.stderr
    );
    assert!(
        second
            .stderr
            .contains(&format!("already being loaded by process {}", first.id())),
        "{}",
        second.stderr
    );
    let status = first.wait().expect("wait");
    assert!(status.success());
    assert_complete(db, N);
    assert_eq!(
        db.count("SELECT count(*) FROM cutover_runs"),
        1,
        "the refused run recorded nothing"
    );
}

fn resume_refuses_a_changed_mapping_or_source_until_restart(db: &TestDb) {
    let mapping = kv_job(db.dir(), "changed", N);
    let m = mapping.to_str().unwrap();
    let mut child = db.spawn(&["run", m, "--batch-size", "500", "--commit-every", "1000"]);
    wait_while_running(&mut child, "some batches to commit", || {
        has_tracking(db) && committed(db, "changed") >= 2_000
    });
    let at_kill = kill_half_way(db, child, "changed", N);
    let refused = |what: &str| {
        let out = db.run(&["run", m]);
        assert_eq!(
            out.code, 2,
            "{what}: exit code\n{}\n{}",
            out.stdout, out.stderr
        );
        assert!(out.stderr.contains("--restart"), "{what}: {}", out.stderr);
        assert!(!out.stdout.contains("resumed"), "{what}: {}", out.stdout);
        // Refused before anything is written: no run, the checkpoint stays.
        assert_eq!(db.count("SELECT count(*) FROM cutover_runs"), 1, "{what}");
        assert_eq!(committed(db, "changed"), at_kill, "{what}");
        out.stderr
    };

    // The mapping changed.
    let text = std::fs::read_to_string(&mapping).unwrap();
    std::fs::write(
        &mapping,
        text.replace(
            "columns.score = \"value.score\"",
            "columns.score = \"value.score | int\"",
        ),
    )
    .unwrap();
    let err = refused("changed mapping");
    assert!(
        err.contains(&format!(
            "the mapping file {} changed since run 1 stopped ({at_kill} records committed)",
            mapping.display()
        )),
        "{err}"
    );

    // The mapping is restored (same checksum), but the source changed: first
    // only its modification time, then its size (a record appended).
    std::fs::write(&mapping, &text).unwrap();
    let data = db.dir().join("changed.jsonl");
    let file = std::fs::OpenOptions::new()
        .append(true)
        .open(&data)
        .unwrap();
    let mtime = file.metadata().unwrap().modified().unwrap();
    file.set_modified(mtime + std::time::Duration::from_secs(3600))
        .unwrap();
    let err = refused("touched source");
    assert!(
        err.contains("the source changed since run 1 stopped"),
        "{err}"
    );
    use std::io::Write;
    writeln!(
        &file,
        r#"{{"key":"item-{N}","value":{{"id":{N},"name":"name {N} ü","score":{},"tags":["t{}","x"]}}}}"#,
        (N * 7) % 1000,
        N % 5
    )
    .unwrap();
    drop(file);
    let err = refused("appended source");
    assert!(
        err.contains("the source changed since run 1 stopped"),
        "{err}"
    );

    // --restart loads everything, the appended record included.
    let out = db.run(&["run", m, "--restart"]).ok();
    assert!(!out.stdout.contains("resumed"), "{}", out.stdout);
    assert!(
        out.stdout.contains(&format!(
            "{} read, {} written, 0 filtered, 0 failed",
            N + 1,
            N + 1
        )),
        "{}",
        out.stdout
    );
    assert_complete(db, N + 1);
    assert_eq!(committed(db, "changed"), N as i64 + 1);
    assert_eq!(
        db.rows("SELECT status FROM cutover_runs ORDER BY id"),
        [
            [Some("interrupted".to_string())],
            [Some("succeeded".to_string())]
        ]
    );
}

crate::on_all_targets!(kill_9_then_resume_loses_and_duplicates_nothing_on, |db| {
    kill_9_then_resume_loses_and_duplicates_nothing(db)
});

crate::on_all_targets!(ctrl_c_interrupts_cleanly_and_resumes_on, |db| {
    ctrl_c_interrupts_cleanly_and_resumes(db)
});

crate::on_all_targets!(a_second_concurrent_run_refuses_to_start_on, |db| {
    a_second_concurrent_run_refuses_to_start(db)
});

crate::on_all_targets!(
    resume_refuses_a_changed_mapping_or_source_until_restart_on,
    |db| resume_refuses_a_changed_mapping_or_source_until_restart(db)
);

/// Parallel writers commit out of order; the checkpoint only covers the
/// contiguous committed prefix, so every record before it is in the table.
fn parallel_writers_keep_the_checkpoint_exact(db: &TestDb) {
    let mapping = kv_job(db.dir(), "workers", N);
    let m = mapping.to_str().unwrap();
    let mut child = db.spawn(&["run", m, "--batch-size", "500", "--workers", "4"]);
    wait_while_running(&mut child, "some batches to commit", || {
        has_tracking(db) && committed(db, "workers") >= 10_000
    });
    let at_kill = kill_half_way(db, child, "workers", N);
    assert_eq!(
        db.count(&format!("SELECT count(*) FROM items WHERE id < {at_kill}")),
        at_kill,
        "every record before the checkpoint is committed"
    );
    let out = db
        .run(&["run", m, "--batch-size", "500", "--workers", "4"])
        .ok();
    assert!(out.stdout.contains("resumed from run 1"), "{}", out.stdout);
    assert_complete(db, N);
    assert_eq!(committed(db, "workers"), N as i64);
    let second: i64 = db.count("SELECT records_read FROM cutover_runs WHERE id = 2");
    assert_eq!(second, N as i64 - at_kill);
}

crate::on_server_targets!(parallel_writers, |db| {
    parallel_writers_keep_the_checkpoint_exact(db)
});

/// Regression: the heartbeat of a run on a server updated the run's row from
/// outside while a parallel batch transaction of the same run held that row
/// (written, not yet committed, and not polled while the heartbeat waited):
/// PostgreSQL waited for ever, MariaDB for its lock wait time-out. Runs longer
/// than the heartbeat interval (20 s) hung; here the interval is 2 ms.
fn heartbeats_never_wait_for_the_runs_own_batches(db: &TestDb) {
    let n = 20_000;
    let mapping = kv_job(db.dir(), "beat", n);
    let m = mapping.to_str().unwrap();
    let mut child = db
        .cmd(&["run", m, "--batch-size", "200", "--workers", "2"])
        .env("CUTOVER_HEARTBEAT_MS", "2")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn cutover");
    let start = std::time::Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if start.elapsed() > std::time::Duration::from_secs(120) {
            let _ = child.kill();
            panic!("the run did not finish within 120 s (a heartbeat waiting for the run's own transaction)");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
    assert_complete(db, n);
    assert_eq!(
        db.count("SELECT count(*) FROM cutover_runs WHERE status = 'succeeded'"),
        1
    );
}

crate::on_server_targets!(heartbeats_with_batches_in_flight, |db| {
    heartbeats_never_wait_for_the_runs_own_batches(db)
});

/// Regression: the same mapping loading two databases of one server (staging
/// and production side by side) runs in both at once: MySQL's GET_LOCK names
/// are global to the server, and the lock's name now holds the database. (On
/// PostgreSQL advisory locks belong to their database already.)
fn one_mapping_loads_two_databases_of_a_server_at_once(db: &TestDb) {
    let other = TestDb::of(db.kind).expect("a second database on the same server");
    let mapping = kv_job(db.dir(), "twice", N);
    let m = mapping.to_str().unwrap();
    let mut first = db.spawn(&["run", m, "--batch-size", "500", "--commit-every", "1000"]);
    wait_while_running(&mut first, "the first run to hold the lock", || {
        db.table_exists("cutover_locks")
            && db.count("SELECT count(*) FROM cutover_locks WHERE mapping = 'twice'") == 1
    });
    let small = kv_job(other.dir(), "twice", 1_000);
    let second = other.run(&["run", small.to_str().unwrap()]);
    assert_eq!(
        second.code, 0,
        "the run on the other database was refused\nstdout:\n{}\nstderr:\n{}",
        second.stdout, second.stderr
    );
    assert!(
        first.try_wait().expect("wait").is_none(),
        "the first run ended before the second started: the test proved nothing"
    );
    assert!(first.wait().expect("wait").success());
    assert_complete(db, N);
    assert_complete(&other, 1_000);
}

crate::on_server_targets!(two_databases_one_mapping, |db| {
    one_mapping_loads_two_databases_of_a_server_at_once(db)
});
