//! What the server benches share: a measured child process and psql.

use std::process::{Command, Stdio};
use std::time::Instant;

#[allow(dead_code)] // `stdout` is read by some benches only
pub struct Measured {
    pub secs: f64,
    pub rss_mb: f64,
    pub stdout: String,
}

/// Run a child to its end, measured; it must exit 0.
pub fn measured(what: &str, cmd: &mut Command) -> Measured {
    measured_exit(what, cmd, &[0])
}

/// Run a child to its end, measured; it must exit with one of `codes`.
#[allow(clippy::zombie_processes)] // reaped with wait4 below, for its rusage
pub fn measured_exit(what: &str, cmd: &mut Command, codes: &[i32]) -> Measured {
    eprintln!("[{what}] {cmd:?}");
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("{what}: {e}"));
    let (out, err) = (child.stdout.take(), child.stderr.take());
    let read = |s: Option<std::process::ChildStdout>| {
        std::thread::spawn(move || {
            let mut t = String::new();
            if let Some(mut s) = s {
                use std::io::Read;
                let _ = s.read_to_string(&mut t);
            }
            t
        })
    };
    let out = read(out);
    let err = std::thread::spawn(move || {
        let mut t = String::new();
        if let Some(mut s) = err {
            use std::io::Read;
            let _ = s.read_to_string(&mut t);
        }
        t
    });
    let pid = child.id() as libc::pid_t;
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain data; all-zero is valid.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: pid is our unreaped child; the pointers are valid.
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
    let secs = started.elapsed().as_secs_f64();
    let stdout = out.join().unwrap_or_default();
    let stderr = err.join().unwrap_or_default();
    assert!(
        r == pid && libc::WIFEXITED(status) && codes.contains(&libc::WEXITSTATUS(status)),
        "{what} failed: {stdout}\n{stderr}"
    );
    Measured {
        secs,
        rss_mb: ru.ru_maxrss as f64 / 1024.0,
        stdout,
    }
}

pub fn psql(url: &str, sql: &str) -> String {
    let out = Command::new("psql")
        .args([url, "-Atqc", sql])
        .output()
        .expect("psql");
    assert!(
        out.status.success(),
        "{sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A JSON Lines dump of `n` records (`{"key": "k…", "value": {id, title, score,
/// meta}}`) in `first`, and in `changed` the same dump with the score of every
/// `change_every`-th record moved and, with `drop_every`, every such record
/// (at offset `drop_every / 2`) gone.
#[allow(dead_code)] // used by the window and undo benches
pub fn write_dumps(
    first: &std::path::Path,
    changed: &std::path::Path,
    n: u64,
    change_every: u64,
    drop_every: Option<u64>,
) {
    use std::io::Write;
    let mut a = std::io::BufWriter::new(std::fs::File::create(first).expect("dump"));
    let mut b = std::io::BufWriter::new(std::fs::File::create(changed).expect("dump"));
    for i in 0..n {
        let line = |score: u64| {
            format!(
                "{{\"key\":\"k{i:012}\",\"value\":{{\"id\":{i},\"title\":\"title {i} ü — naïve café\",\"score\":{score},\"meta\":{{\"a\":{},\"tags\":[\"x\",\"y\"]}}}}}}\n",
                i % 97
            )
        };
        a.write_all(line(i * 7).as_bytes()).expect("write");
        if drop_every.is_some_and(|d| i % d == d / 2) {
            continue;
        }
        let score = if i % change_every == 0 {
            i * 7 + 1
        } else {
            i * 7
        };
        b.write_all(line(score).as_bytes()).expect("write");
    }
    a.flush().expect("flush");
    b.flush().expect("flush");
}
