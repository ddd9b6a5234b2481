//! Output shared by the commands: aligned tables and run errors.

use cutover::pipeline::RunError;

pub(super) fn print_run_error(e: &RunError) {
    eprintln!("error: {e}");
}

/// Print rows as aligned columns (first row is the header).
pub(super) fn print_table(rows: &[Vec<String>], indent: &str) {
    let n = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..n)
        .map(|i| {
            rows.iter()
                .map(|r| r.get(i).map_or(0, |c| c.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    for r in rows {
        let mut line = String::from(indent);
        for (i, c) in r.iter().enumerate() {
            line.push_str(c);
            if i + 1 < r.len() {
                line.push_str(&" ".repeat(widths[i] - c.chars().count() + 2));
            }
        }
        println!("{}", line.trim_end());
    }
}
