//! How the records of a `json` source file are laid out: JSON Lines by the
//! file's name (`.jsonl`, `.ndjson`, also under `.gz`), a top-level array split
//! element by element, anything else one document.

use super::{io_err, Layout};
use crate::source::splitter::Container;
use crate::source::SourceError;
use std::io::BufRead;
use std::path::Path;

/// The file's name in lower case without a `.gz`.
fn layout_name(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    name.trim_end_matches(".gz").to_string()
}

/// The layout of the file at `path`, read from its start (`r`).
pub(super) fn detect_layout(path: &Path, r: &mut dyn BufRead) -> Result<Layout, SourceError> {
    let name = layout_name(path);
    if name.ends_with(".jsonl") || name.ends_with(".ndjson") {
        return Ok(Layout::Lines);
    }
    // Peek the first non-blank byte: an array is split, anything else is one document.
    loop {
        let buf = r.fill_buf().map_err(io_err(path))?;
        if buf.is_empty() {
            return Ok(Layout::Document);
        }
        match buf.iter().find(|c| !c.is_ascii_whitespace()) {
            Some(b'[') => return Ok(Layout::Members(Container::Array)),
            Some(_) => return Ok(Layout::Document),
            None => {
                let n = buf.len();
                r.consume(n);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    #[test]
    fn layout_by_name_then_by_first_byte() {
        let lay = |name: &str, text: &str| {
            detect_layout(Path::new(name), &mut Cursor::new(text.as_bytes().to_vec())).unwrap()
        };
        assert_eq!(lay("a.JSONL.gz", "[1]"), Layout::Lines);
        assert_eq!(lay("a.ndjson", "{}"), Layout::Lines);
        assert_eq!(
            lay("a.json", " \n\t[1, 2]"),
            Layout::Members(Container::Array)
        );
        assert_eq!(lay("a.json", "{\"a\": 1}"), Layout::Document);
        assert_eq!(lay("a.json", "   "), Layout::Document);
    }
}
