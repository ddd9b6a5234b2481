//! The throughput chart of a run as inline SVG: records per second over the
//! run's time, one point per recorded progress sample. No script, no library.

use super::format::{duration, esc, rate, thousands};
use super::RunReport;
use std::fmt::Write;

const W: f64 = 720.0;
const H: f64 = 220.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 14.0;
const BOTTOM: f64 = 40.0;

/// 1, 2 or 5 times a power of ten, at least `x`.
fn nice(x: f64) -> f64 {
    if x <= 0.0 || !x.is_finite() {
        return 1.0;
    }
    let p = 10f64.powf(x.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * p)
        .find(|v| *v >= x)
        .unwrap_or(10.0 * p)
}

/// The chart of one run (empty text when it has no samples).
pub fn throughput(run: &RunReport) -> String {
    let points = run.throughput();
    if points.is_empty() {
        return String::new();
    }
    let t_max = nice(points.iter().map(|p| p.0).fold(0.0, f64::max).max(1.0));
    let r_max = nice(points.iter().map(|p| p.1).fold(0.0, f64::max));
    let (pw, ph) = (W - LEFT - RIGHT, H - TOP - BOTTOM);
    let x = |t: f64| LEFT + t / t_max * pw;
    let y = |r: f64| TOP + ph - r / r_max * ph;
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg class="chart" data-run="{id}" viewBox="0 0 {W} {H}" role="img" aria-label="Throughput of run {id}: records per second over the run's time, {n} samples" xmlns="http://www.w3.org/2000/svg">"#,
        id = run.id,
        n = points.len()
    );
    // Grid and axes.
    for i in 0..=4 {
        let v = r_max * f64::from(i) / 4.0;
        let yy = y(v);
        let _ = write!(
            s,
            r#"<line class="grid" x1="{LEFT}" y1="{yy:.1}" x2="{:.1}" y2="{yy:.1}"/><text class="tick" x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
            W - RIGHT,
            LEFT - 6.0,
            yy + 4.0,
            thousands(v.round() as i64)
        );
    }
    for i in 0..=5 {
        let t = t_max * f64::from(i) / 5.0;
        let xx = x(t);
        let _ = write!(
            s,
            r#"<line class="tickmark" x1="{xx:.1}" y1="{:.1}" x2="{xx:.1}" y2="{:.1}"/><text class="tick" x="{xx:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            TOP + ph,
            TOP + ph + 4.0,
            TOP + ph + 17.0,
            esc(&duration(t))
        );
    }
    let _ = write!(
        s,
        r#"<text class="axis" x="{:.1}" y="{:.1}" text-anchor="middle">run time</text><text class="axis" transform="translate(14 {:.1}) rotate(-90)" text-anchor="middle">records/s</text>"#,
        LEFT + pw / 2.0,
        H - 4.0,
        TOP + ph / 2.0
    );
    let line: Vec<String> = std::iter::once((0.0, points[0].1))
        .chain(points.iter().copied())
        .map(|(t, r)| format!("{:.1},{:.1}", x(t), y(r)))
        .collect();
    let _ = write!(s, r#"<polyline class="line" points="{}"/>"#, line.join(" "));
    for (i, ((t, r), sample)) in points.iter().zip(&run.samples).enumerate() {
        let _ = write!(
            s,
            r#"<circle class="sample" data-seconds="{t:.3}" data-rate="{r:.1}" data-read="{read}" cx="{:.1}" cy="{:.1}" r="3.5"><title>sample {n}: {} records/s at {} ({} records read)</title></circle>"#,
            x(*t),
            y(*r),
            rate(*r),
            esc(&duration(*t)),
            thousands(sample.records_read),
            n = i + 1,
            read = sample.records_read,
        );
    }
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_bounds() {
        assert_eq!(nice(0.0), 1.0);
        assert_eq!(nice(3.2), 5.0);
        assert_eq!(nice(12_871.0), 20_000.0);
        assert_eq!(nice(100.0), 100.0);
    }
}
