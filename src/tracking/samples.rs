//! `cutover_run_samples`: a run's progress over time, for the throughput chart
//! of `cutover report`. A run takes at most one sample per second of its run
//! time (the key is the run and the whole second the sample falls in), each
//! written with the batch that follows it, and a last one when it finishes.

use super::store::{tuples, upsert, Set, ROWS_PER_STATEMENT};
use super::{now_text, Store};
use crate::db::{ctx, Arg, DbFailure, Exec, Row, TargetError};
use serde::Serialize;

/// The run's counts at one moment of its run time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Sample {
    /// Milliseconds since the run started.
    pub elapsed_ms: i64,
    pub records_read: i64,
    pub records_written: i64,
    pub records_filtered: i64,
    pub records_failed: i64,
    /// When it was taken (UTC, as every tracking time).
    pub recorded_at: String,
}

impl Sample {
    /// The whole second of run time it falls in: one sample per second at most.
    pub fn second(&self) -> i64 {
        self.elapsed_ms.div_euclid(1000)
    }
}

/// Takes a sample when at least a second has passed since the last one.
#[derive(Debug)]
pub struct Sampler {
    started: std::time::Instant,
    last: Option<std::time::Instant>,
}

impl Sampler {
    pub fn new(started: std::time::Instant) -> Sampler {
        Sampler {
            started,
            last: None,
        }
    }

    /// A sample of these counts (read, written, filtered, failed), when one is
    /// due: a second after the last one, once some records are counted.
    pub fn due(&mut self, counts: [i64; 4]) -> Option<Sample> {
        let now = std::time::Instant::now();
        if counts[0] == 0
            || self
                .last
                .is_some_and(|l| now.duration_since(l) < std::time::Duration::from_secs(1))
        {
            return None;
        }
        self.last = Some(now);
        Some(self.take(counts))
    }

    /// A sample now, due or not (the run's last one).
    pub fn take(&self, [read, written, filtered, failed]: [i64; 4]) -> Sample {
        Sample {
            elapsed_ms: i64::try_from(self.started.elapsed().as_millis()).unwrap_or(i64::MAX),
            records_read: read,
            records_written: written,
            records_filtered: filtered,
            records_failed: failed,
            recorded_at: now_text(),
        }
    }
}

/// Write samples of a run (in a batch's transaction, or on their own); a
/// sample of a second that has one already replaces it.
pub async fn save_samples(
    db: &mut dyn Exec,
    run_id: i64,
    samples: &[Sample],
) -> Result<(), DbFailure> {
    // One sample per second: the last of each second wins (a statement may not
    // touch a row twice on PostgreSQL).
    let mut folded: Vec<&Sample> = Vec::with_capacity(samples.len());
    for s in samples {
        match folded.last_mut() {
            Some(l) if l.second() == s.second() => *l = s,
            _ => folded.push(s),
        }
    }
    let tail = upsert(
        db.dialect(),
        "cutover_run_samples",
        &["run_id", "elapsed_s"],
        &[
            ("elapsed_ms", Set::Replace),
            ("records_read", Set::Replace),
            ("records_written", Set::Replace),
            ("records_filtered", Set::Replace),
            ("records_failed", Set::Replace),
            ("recorded_at", Set::Replace),
        ],
    );
    for chunk in folded.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "INSERT INTO cutover_run_samples (run_id, elapsed_s, elapsed_ms, records_read, records_written, records_filtered, records_failed, recorded_at) VALUES {} {tail}",
            tuples(chunk.len(), 8)
        );
        let mut args = Vec::with_capacity(chunk.len() * 8);
        for s in chunk {
            args.extend([
                Arg::Int(run_id),
                Arg::Int(s.second()),
                Arg::Int(s.elapsed_ms),
                Arg::Int(s.records_read),
                Arg::Int(s.records_written),
                Arg::Int(s.records_filtered),
                Arg::Int(s.records_failed),
                Arg::Text(&s.recorded_at),
            ]);
        }
        db.execute(&sql, &args).await?;
    }
    Ok(())
}

fn sample_row(r: &Row) -> Result<Sample, DbFailure> {
    Ok(Sample {
        elapsed_ms: r.int("elapsed_ms")?,
        records_read: r.int("records_read")?,
        records_written: r.int("records_written")?,
        records_filtered: r.int("records_filtered")?,
        records_failed: r.int("records_failed")?,
        recorded_at: r.text("recorded_at")?,
    })
}

impl Store<'_> {
    /// Record samples outside a batch (the run's last one, when it finishes).
    pub async fn record_samples(
        &mut self,
        run_id: i64,
        samples: &[Sample],
    ) -> Result<(), TargetError> {
        save_samples(&mut *self.db, run_id, samples)
            .await
            .map_err(ctx("recording progress samples"))
    }

    /// The samples of a run, in time order.
    pub async fn samples(&mut self, run_id: i64) -> Result<Vec<Sample>, TargetError> {
        let c = ctx("reading progress samples");
        let rows = self
            .db
            .fetch(
                "SELECT elapsed_ms, records_read, records_written, records_filtered, records_failed, recorded_at FROM cutover_run_samples WHERE run_id = ? ORDER BY elapsed_s",
                &[Arg::Int(run_id)],
            )
            .await
            .map_err(&c)?;
        rows.iter()
            .map(sample_row)
            .collect::<Result<_, _>>()
            .map_err(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_sample_per_second_at_most() {
        let mut s = Sampler::new(std::time::Instant::now());
        assert!(s.due([0, 0, 0, 0]).is_none(), "nothing counted yet");
        assert!(s.due([1, 1, 0, 0]).is_some(), "the first one is due");
        assert!(s.due([2, 2, 0, 0]).is_none(), "not again within the second");
        let last = s.take([3, 2, 0, 1]);
        assert_eq!(last.records_read, 3);
        assert_eq!(last.second(), 0);
        let later = Sample {
            elapsed_ms: 2500,
            ..last
        };
        assert_eq!(later.second(), 2);
    }
}
