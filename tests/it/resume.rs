//! Resume, rerun and concurrency: kill -9 at any moment loses and duplicates
//! nothing; Ctrl-C stops cleanly; a second run of a mapping refuses to start.

use super::util::{kv_job, wait_for, TestDb};

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
    wait_for(120, "some batches to commit", || {
        has_tracking(db) && committed(db, "killed") >= 5_000
    });
    child.kill().expect("kill -9");
    child.wait().expect("wait");
    let at_kill = committed(db, "killed");
    assert!(
        at_kill > 0 && (at_kill as usize) < N,
        "killed half way: {at_kill}"
    );
    assert_eq!(
        db.scalar("SELECT status FROM cutover_runs WHERE id = 1")
            .as_deref(),
        Some("running")
    );

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
    let child = db.spawn(&["run", m, "--batch-size", "500", "--commit-every", "1000"]);
    wait_for(120, "some batches to commit", || {
        has_tracking(db) && committed(db, "sigint") >= 2_000
    });
    // SAFETY: sending SIGINT to our own child process.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
    let out = child.wait_with_output().expect("wait");
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run = &db.rows("SELECT status, records_read FROM cutover_runs WHERE id = 1")[0];
    assert_eq!(run[0].as_deref(), Some("interrupted"));
    let read: i64 = run[1].as_deref().unwrap().parse().unwrap();
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
    wait_for(120, "the first run to hold the lock", || {
        db.table_exists("cutover_locks")
            && db.count("SELECT count(*) FROM cutover_locks WHERE mapping = 'busy'") == 1
    });
    let second = db.run(&["run", m]);
    assert_eq!(second.code, 1, "{}", second.stderr);
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

fn resume_refuses_a_changed_mapping_until_restart(db: &TestDb) {
    let mapping = kv_job(db.dir(), "changed", N);
    let m = mapping.to_str().unwrap();
    let mut child = db.spawn(&["run", m, "--batch-size", "500", "--commit-every", "1000"]);
    wait_for(120, "some batches to commit", || {
        has_tracking(db) && committed(db, "changed") >= 2_000
    });
    child.kill().expect("kill");
    child.wait().expect("wait");
    let text = std::fs::read_to_string(&mapping).unwrap();
    std::fs::write(
        &mapping,
        text.replace(
            "columns.score = \"value.score\"",
            "columns.score = \"value.score | int\"",
        ),
    )
    .unwrap();
    let out = db.run(&["run", m]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("changed since run 1 stopped"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("--restart"), "{}", out.stderr);
    let out = db.run(&["run", m, "--restart"]).ok();
    assert!(!out.stdout.contains("resumed"), "{}", out.stdout);
    assert_complete(db, N);
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

crate::on_all_targets!(resume_refuses_a_changed_mapping_until_restart_on, |db| {
    resume_refuses_a_changed_mapping_until_restart(db)
});

/// Parallel writers commit out of order; the checkpoint only covers the
/// contiguous committed prefix, so every record before it is in the table.
fn parallel_writers_keep_the_checkpoint_exact(db: &TestDb) {
    let mapping = kv_job(db.dir(), "workers", N);
    let m = mapping.to_str().unwrap();
    let mut child = db.spawn(&["run", m, "--batch-size", "500", "--workers", "4"]);
    wait_for(120, "some batches to commit", || {
        has_tracking(db) && committed(db, "workers") >= 10_000
    });
    child.kill().expect("kill -9");
    child.wait().expect("wait");
    let at_kill = committed(db, "workers");
    assert!(at_kill > 0 && (at_kill as usize) < N);
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
