//! Path patterns of file sources (`data/users/{user_id}/activity_log.json`, `*`):
//! the literal folder, one regex per segment, and the sorted list of matching files
//! with the names each `{capture}` matched.

use super::io_err;
use crate::record::FileInfo;
use crate::source::SourceError;
use regex::Regex;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// One file of a file source.
#[derive(Debug, Clone)]
pub struct SourceFile {
    pub path: PathBuf,
    pub info: Arc<FileInfo>,
    pub size: u64,
    pub modified: i64,
}

/// The literal directory prefix of a pattern (before any `{` or `*`).
fn split_pattern(pattern: &str) -> (PathBuf, Vec<String>) {
    let norm = pattern.replace('\\', "/");
    let parts: Vec<&str> = norm.split('/').collect();
    let first_pat = parts
        .iter()
        .position(|p| p.contains('{') || p.contains('*'))
        .unwrap_or(parts.len());
    let (base, rest) = if first_pat == parts.len() {
        // A plain path: base is its folder.
        (
            &parts[..parts.len().saturating_sub(1)],
            &parts[parts.len().saturating_sub(1)..],
        )
    } else {
        (&parts[..first_pat], &parts[first_pat..])
    };
    let base_str = base.join("/");
    let base = if base_str.is_empty() {
        if norm.starts_with('/') {
            PathBuf::from("/")
        } else {
            PathBuf::from(".")
        }
    } else {
        PathBuf::from(base_str)
    };
    (base, rest.iter().map(|s| s.to_string()).collect())
}

fn segment_regex(seg: &str) -> Result<(Regex, Vec<String>), SourceError> {
    let mut re = String::from("^");
    let mut names = Vec::new();
    let mut rest = seg;
    while !rest.is_empty() {
        if let Some(stripped) = rest.strip_prefix('{') {
            let end = stripped.find('}').ok_or_else(|| {
                SourceError::Other(format!("unclosed '{{' in path segment '{seg}'"))
            })?;
            let name = &stripped[..end];
            re.push_str("([^/]+?)");
            names.push(name.to_string());
            rest = &stripped[end + 1..];
        } else if let Some(stripped) = rest.strip_prefix('*') {
            re.push_str("[^/]*?");
            rest = stripped;
        } else {
            let ch = rest.chars().next().unwrap_or(' ');
            re.push_str(&regex::escape(&ch.to_string()));
            rest = &rest[ch.len_utf8()..];
        }
    }
    re.push('$');
    let r = Regex::new(&re).map_err(|e| SourceError::Other(format!("bad path pattern: {e}")))?;
    Ok((r, names))
}

/// Expand a path pattern into the sorted list of matching files.
pub fn expand(pattern_path: &Path, pattern_text: &str) -> Result<Vec<SourceFile>, SourceError> {
    let full = pattern_path.to_string_lossy().replace('\\', "/");
    let (base, segs) = split_pattern(&full);
    // For display, paths are relative to the pattern's literal folder.
    let mut out = Vec::new();
    type Node = (PathBuf, String, Vec<(String, String)>);
    let mut frontier: Vec<Node> = vec![(base.clone(), String::new(), Vec::new())];
    for (i, seg) in segs.iter().enumerate() {
        let last = i + 1 == segs.len();
        let (re, names) = segment_regex(seg)?;
        let mut next = Vec::new();
        for (dir, rel, caps) in frontier {
            let mut entries: Vec<(String, PathBuf, bool)> = Vec::new();
            let rd = match std::fs::read_dir(&dir) {
                Ok(rd) => rd,
                Err(e) if e.kind() == io::ErrorKind::NotFound && i > 0 => continue,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    return Err(SourceError::NoFiles {
                        pattern: format!(
                            "{pattern_text} (folder {} does not exist)",
                            dir.display()
                        ),
                    })
                }
                Err(e) => return Err(io_err(&dir)(e)),
            };
            for entry in rd {
                let entry = entry.map_err(io_err(&dir))?;
                let name = entry.file_name().to_string_lossy().to_string();
                let ft = entry.file_type().map_err(io_err(&dir))?;
                let p = entry.path();
                let is_dir = ft.is_dir() || (ft.is_symlink() && p.is_dir());
                entries.push((name, p, is_dir));
            }
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            for (name, p, is_dir) in entries {
                if last == is_dir {
                    continue;
                }
                if let Some(c) = re.captures(&name) {
                    let mut caps = caps.clone();
                    for (k, n) in names.iter().enumerate() {
                        if let Some(m) = c.get(k + 1) {
                            caps.push((n.clone(), m.as_str().to_string()));
                        }
                    }
                    let rel = if rel.is_empty() {
                        name.clone()
                    } else {
                        format!("{rel}/{name}")
                    };
                    next.push((p, rel, caps));
                }
            }
        }
        frontier = next;
    }
    for (path, rel, captures) in frontier {
        let meta = std::fs::metadata(&path).map_err(io_err(&path))?;
        let modified = meta
            .modified()
            .ok()
            .and_then(|m| m.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_secs() as i64);
        out.push(SourceFile {
            path,
            info: Arc::new(FileInfo {
                path: rel,
                captures,
            }),
            size: meta.len(),
            modified,
        });
    }
    if out.is_empty() {
        return Err(SourceError::NoFiles {
            pattern: pattern_text.to_string(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_split_into_base_and_segments() {
        let (b, s) = split_pattern("fixtures/data/users/{user_id}/activity_log.json");
        assert_eq!(b, PathBuf::from("fixtures/data/users"));
        assert_eq!(s, vec!["{user_id}", "activity_log.json"]);
        let (b, s) = split_pattern("dump.jsonl");
        assert_eq!(b, PathBuf::from("."));
        assert_eq!(s, vec!["dump.jsonl"]);
        let (r, names) = segment_regex("x-{id}.json").unwrap();
        assert_eq!(names, vec!["id"]);
        assert_eq!(&r.captures("x-42.json").unwrap()[1], "42");
        assert!(r.captures("y-42.json").is_none());
    }
}
