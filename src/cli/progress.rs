//! The progress bar of `cutover run`, drawn from the pipeline's events (hidden
//! when stderr is not a terminal, and with `--no-progress`).

use cutover::pipeline::{Event, Observer};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::sync::Mutex;

/// One bar per mapping, while it runs.
#[derive(Default)]
pub struct Bars {
    bar: Mutex<Option<ProgressBar>>,
}

impl Bars {
    /// Bars on stderr, or `None` when stderr is not a terminal.
    pub fn on_terminal() -> Option<Bars> {
        std::io::stderr().is_terminal().then(Bars::default)
    }
}

fn new_bar(mapping: &str, total: Option<u64>) -> ProgressBar {
    let pb = ProgressBar::with_draw_target(total, ProgressDrawTarget::stderr());
    let style = if total.is_some() {
        "{prefix} [{bar:30}] {bytes}/{total_bytes} {msg} ETA {eta}"
    } else {
        "{prefix} {spinner} {bytes} {msg}"
    };
    if let Ok(s) = ProgressStyle::with_template(style) {
        pb.set_style(s.progress_chars("=> "));
    }
    pb.set_prefix(mapping.to_string());
    pb
}

impl Observer for Bars {
    fn event(&self, event: &Event) {
        let Ok(mut bar) = self.bar.lock() else { return };
        match event {
            Event::Started {
                mapping,
                total_bytes,
            } => *bar = Some(new_bar(mapping, *total_bytes)),
            Event::Progress {
                bytes,
                records,
                failed,
                seconds,
                ..
            } => {
                if let Some(pb) = bar.as_ref() {
                    pb.set_position(*bytes);
                    pb.set_message(format!(
                        "{records} records ({:.0}/s), {failed} failed",
                        *records as f64 / seconds.max(0.001)
                    ));
                }
            }
            Event::Finished { .. } => {
                if let Some(pb) = bar.take() {
                    pb.finish_and_clear();
                }
            }
        }
    }
}
