//! The `cutover` binary: parse the CLI, set up tracing, run, map to an exit code.

mod cli;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::Parser;
use cli::{Cli, LogFormat};
use cutover::pipeline::Cancel;
use tracing_subscriber::EnvFilter;

fn init_tracing(cli: &Cli) {
    let default = if cli.verbose || cli.log_format == LogFormat::Json {
        "cutover=info"
    } else {
        "cutover=warn"
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    // Colours only on a terminal: logs sent to a file or a pipe stay plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.with_target(false).init(),
    }
}

/// Make mimalloc give freed memory back to the system at once instead of after
/// a delay (1 s by default in mimalloc 3): batches come and go, and a delay keeps
/// several of them resident.
fn return_freed_memory_promptly() {
    // mi_option_purge_delay is option 15 in mimalloc 3.x (`mi_option_e` in
    // mimalloc.h); other versions number it differently, so only there.
    const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
    // SAFETY: plain calls into mimalloc's option API, before any thread starts.
    unsafe {
        let v = libmimalloc_sys::mi_version();
        if (30000..40000).contains(&v) {
            libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0);
        }
    }
}

fn main() {
    return_freed_memory_promptly();
    // `cutover status | head` ends quietly instead of panicking on a closed pipe.
    // SAFETY: restoring the default disposition of SIGPIPE before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    init_tracing(&cli);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            std::process::exit(1);
        }
    };
    let cancel = Cancel::default();
    let code = runtime.block_on(async {
        let c = cancel.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!(
                    "\ninterrupted: finishing the batch in flight (Ctrl-C again to abort at once)"
                );
                c.cancel();
                if tokio::signal::ctrl_c().await.is_ok() {
                    std::process::exit(130);
                }
            }
        });
        match cli::execute(cli, cancel).await {
            Ok(code) => code,
            Err(e) => {
                eprintln!("error: {e:#}");
                1
            }
        }
    });
    std::process::exit(code);
}
