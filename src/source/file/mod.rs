//! File sources: `kv` dumps (JSON Lines pairs, one big object), DynamoDB S3
//! exports, and `json` files or path patterns (`data/users/{user_id}/activity_log.json`,
//! `*`), plain or `.gz`. Files are read in sorted order; a top-level array is split
//! element by element.

pub mod dynamodb;
pub mod expand;
mod json;
pub(crate) mod kv;
mod read;
pub mod splitter;

pub use expand::{expand, SourceFile};

use super::{Label, Payload, RawRecord, Source, SourceError};
use crate::mapping::{KvFormat, SourceKind, SourceSpec};
use crate::record::Position;
use bytes::Bytes;
use read::open_at;
use sha2::{Digest, Sha256};
use splitter::{Container, Splitter};
use std::io::{self, BufRead, Read};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// How the records of one file are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// One record per non-blank line.
    Lines,
    /// One record per member of the top-level array or object.
    Members(Container),
    /// The whole file is one record.
    Document,
}

/// What each record's bytes are.
#[derive(Debug, Clone)]
pub enum Decoder {
    KvLine,
    KvMember,
    Dynamo(Arc<Vec<String>>),
    Doc,
}

enum Reader {
    Lines {
        r: Box<dyn BufRead + Send>,
        offset: u64,
        line: u64,
    },
    Members(Splitter<Box<dyn BufRead + Send>>),
    Document(Box<dyn BufRead + Send>),
}

pub struct FileSource {
    files: Vec<SourceFile>,
    decoder: Decoder,
    kind: SourceKind,
    /// Layout forced by the source (kv formats) or chosen per file (json).
    layout: Option<Layout>,
    current: Option<(usize, Reader)>,
    /// Index of the next file to open.
    next_file: usize,
    counter: Arc<AtomicU64>,
    describe: String,
    /// Resume point inside the first file opened after `seek`.
    pending_seek: Option<Position>,
    /// Bytes the last batch of lines took: the next batch's buffer starts that
    /// large instead of growing by doubling (which leaves up to half unused).
    arena_hint: usize,
}

pub(crate) fn io_err(path: &Path) -> impl FnOnce(io::Error) -> SourceError + '_ {
    move |source| SourceError::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl FileSource {
    pub fn open(spec: &SourceSpec) -> Result<FileSource, SourceError> {
        let path = spec
            .path
            .as_ref()
            .ok_or_else(|| SourceError::Other("the source has no path".into()))?;
        let text = spec.path_text.clone().unwrap_or_default();
        let files = expand(path, &text)?;
        let (decoder, layout) = match (spec.kind, spec.format) {
            (SourceKind::Kv, KvFormat::Object) => {
                (Decoder::KvMember, Some(Layout::Members(Container::Object)))
            }
            (SourceKind::Kv, _) => (Decoder::KvLine, Some(Layout::Lines)),
            _ => (Decoder::Doc, None),
        };
        Ok(Self::from_files(files, decoder, layout, spec.kind, text))
    }

    pub fn from_files(
        files: Vec<SourceFile>,
        decoder: Decoder,
        layout: Option<Layout>,
        kind: SourceKind,
        describe: String,
    ) -> FileSource {
        FileSource {
            files,
            decoder,
            kind,
            layout,
            current: None,
            next_file: 0,
            counter: Arc::new(AtomicU64::new(0)),
            describe,
            pending_seek: None,
            arena_hint: 0,
        }
    }

    fn layout_of(
        &self,
        file: &SourceFile,
        r: &mut Box<dyn BufRead + Send>,
    ) -> Result<Layout, SourceError> {
        match self.layout {
            Some(l) => Ok(l),
            None => json::detect_layout(&file.path, r),
        }
    }

    fn open_file(
        &mut self,
        idx: usize,
        resume: Option<&Position>,
    ) -> Result<Option<Reader>, SourceError> {
        let file = self.files[idx].clone();
        let offset = resume.map_or(0, |p| p.offset);
        // Layout is decided from the start of the file.
        let layout = {
            let mut probe = open_at(&file, 0, &Arc::new(AtomicU64::new(0)))?;
            self.layout_of(&file, &mut probe)?
        };
        let r = open_at(&file, offset, &self.counter)?;
        Ok(Some(match (layout, resume) {
            (Layout::Lines, _) => Reader::Lines {
                r,
                offset,
                line: resume.map_or(0, |p| p.line),
            },
            (Layout::Members(c), Some(p)) if offset > 0 => {
                Reader::Members(Splitter::resume(r, c, offset, p.line + 1))
            }
            (Layout::Members(c), _) => Reader::Members(Splitter::new(r, c)),
            (Layout::Document, Some(_)) if offset > 0 => return Ok(None),
            (Layout::Document, _) => Reader::Document(r),
        }))
    }

    fn payload(&self, bytes: Bytes) -> Payload {
        match &self.decoder {
            Decoder::KvLine => Payload::KvLine(bytes),
            Decoder::KvMember => Payload::KvMember(bytes),
            Decoder::Dynamo(k) => Payload::Dynamo(bytes, k.clone()),
            Decoder::Doc => Payload::Doc(bytes),
        }
    }
}

/// The bytes of a record read in `next_batch`: a span of the call's shared line
/// buffer, or a buffer of its own (array elements, whole documents).
enum Chunk {
    Span(usize, usize),
    Owned(Vec<u8>),
}

impl Source for FileSource {
    fn seek(&mut self, pos: &Position) -> Result<(), SourceError> {
        self.current = None;
        self.next_file = pos.file as usize;
        self.pending_seek = Some(pos.clone());
        // Bytes of the files before the resume point count as read for progress.
        let before: u64 = self
            .files
            .iter()
            .take(pos.file as usize)
            .map(|f| f.size)
            .sum();
        self.counter.store(before, Ordering::Relaxed);
        Ok(())
    }

    fn next_batch(&mut self, max: usize) -> Result<Vec<RawRecord>, SourceError> {
        let mut out = Vec::with_capacity(max.min(65536));
        while out.len() < max {
            if self.current.is_none() {
                if self.next_file >= self.files.len() {
                    break;
                }
                let idx = self.next_file;
                self.next_file += 1;
                let resume = self.pending_seek.take().filter(|p| p.file as usize == idx);
                match self.open_file(idx, resume.as_ref())? {
                    Some(r) => self.current = Some((idx, r)),
                    None => continue,
                }
            }
            let Some((idx, reader)) = self.current.as_mut() else {
                break;
            };
            let idx = *idx;
            let file = &self.files[idx];
            let fidx = idx as u32;
            let mut finished = false;
            // The lines of this call share one buffer: `Chunk::Span`s into `arena`.
            let mut arena: Vec<u8> = Vec::with_capacity(self.arena_hint);
            let mut produced: Vec<(Position, Position, Label, Chunk)> = Vec::new();
            match reader {
                Reader::Lines { r, offset, line } => {
                    while out.len() + produced.len() < max {
                        let begin = arena.len();
                        let n = r
                            .read_until(b'\n', &mut arena)
                            .map_err(io_err(&file.path))?;
                        if n == 0 {
                            finished = true;
                            break;
                        }
                        let start = *offset;
                        *offset += n as u64;
                        *line += 1;
                        if arena[begin..].iter().all(|c| c.is_ascii_whitespace()) {
                            arena.truncate(begin);
                            continue;
                        }
                        if arena.last() == Some(&b'\n') {
                            arena.pop();
                            if arena.last() == Some(&b'\r') {
                                arena.pop();
                            }
                        }
                        produced.push((
                            Position {
                                file: fidx,
                                offset: start,
                                line: *line,
                                key: None,
                            },
                            Position {
                                file: fidx,
                                offset: *offset,
                                line: *line,
                                key: None,
                            },
                            Label::Line,
                            Chunk::Span(begin, arena.len()),
                        ));
                    }
                }
                Reader::Members(s) => {
                    while out.len() + produced.len() < max {
                        match s.next_member() {
                            Ok(Some(m)) => produced.push((
                                Position {
                                    file: fidx,
                                    offset: m.start,
                                    line: m.index,
                                    key: None,
                                },
                                Position {
                                    file: fidx,
                                    offset: m.end,
                                    line: m.index,
                                    key: None,
                                },
                                Label::Member,
                                Chunk::Owned(m.bytes),
                            )),
                            Ok(None) => {
                                finished = true;
                                break;
                            }
                            Err(e) => {
                                return Err(SourceError::Format {
                                    path: file.path.clone(),
                                    message: e.to_string(),
                                })
                            }
                        }
                    }
                }
                Reader::Document(r) => {
                    let mut buf = Vec::new();
                    r.read_to_end(&mut buf).map_err(io_err(&file.path))?;
                    let len = buf.len() as u64;
                    produced.push((
                        Position {
                            file: fidx,
                            offset: 0,
                            line: 0,
                            key: None,
                        },
                        Position {
                            file: fidx,
                            offset: len.max(1),
                            line: 0,
                            key: None,
                        },
                        Label::Document,
                        Chunk::Owned(buf),
                    ));
                    finished = true;
                }
            }
            let info = file.info.clone();
            let next_file_pos = Position {
                file: fidx + 1,
                offset: 0,
                line: 0,
                key: None,
            };
            let n = produced.len();
            if !arena.is_empty() {
                self.arena_hint = arena.len() + arena.len() / 16 + 4096;
            }
            let arena = Bytes::from(arena);
            for (i, (position, mut next, label, chunk)) in produced.into_iter().enumerate() {
                // The last record of a finished file resumes at the next file.
                if finished && i + 1 == n {
                    next = next_file_pos.clone();
                }
                let payload = self.payload(match chunk {
                    Chunk::Span(a, b) => arena.slice(a..b),
                    Chunk::Owned(v) => Bytes::from(v),
                });
                out.push(RawRecord {
                    position,
                    next,
                    file: info.clone(),
                    label,
                    payload,
                });
            }
            if finished {
                self.current = None;
            }
        }
        Ok(out)
    }

    fn total_bytes(&self) -> Option<u64> {
        Some(self.files.iter().map(|f| f.size).sum())
    }

    fn bytes_counter(&self) -> Arc<AtomicU64> {
        self.counter.clone()
    }

    fn fingerprint(&self) -> String {
        let mut h = Sha256::new();
        for f in &self.files {
            h.update(f.info.path.as_bytes());
            h.update(f.size.to_le_bytes());
            h.update(f.modified.to_le_bytes());
        }
        format!(
            "{} files, sha256:{}",
            self.files.len(),
            hex::encode(h.finalize())
        )
    }

    fn read_at(&mut self, pos: &Position) -> Result<Option<RawRecord>, SourceError> {
        let idx = pos.file as usize;
        let Some(file) = self.files.get(idx).cloned() else {
            return Ok(None);
        };
        let layout = {
            let mut probe = open_at(&file, 0, &Arc::new(AtomicU64::new(0)))?;
            self.layout_of(&file, &mut probe)?
        };
        let counter = Arc::new(AtomicU64::new(0));
        let mut r = open_at(&file, pos.offset, &counter)?;
        let (bytes, next, label) = match layout {
            Layout::Lines => {
                let mut buf = Vec::new();
                let n = r.read_until(b'\n', &mut buf).map_err(io_err(&file.path))?;
                if n == 0 {
                    return Ok(None);
                }
                while matches!(buf.last(), Some(b'\n' | b'\r')) {
                    buf.pop();
                }
                let next = Position {
                    file: pos.file,
                    offset: pos.offset + n as u64,
                    line: pos.line,
                    key: None,
                };
                (buf, next, Label::Line)
            }
            Layout::Members(c) => {
                let mut s = Splitter::at_member(r, c, pos.offset, pos.line);
                match s.next_member() {
                    Ok(Some(m)) => (
                        m.bytes,
                        Position {
                            file: pos.file,
                            offset: m.end,
                            line: m.index,
                            key: None,
                        },
                        Label::Member,
                    ),
                    Ok(None) => return Ok(None),
                    Err(e) => {
                        return Err(SourceError::Format {
                            path: file.path.clone(),
                            message: e.to_string(),
                        })
                    }
                }
            }
            Layout::Document => {
                let mut buf = Vec::new();
                r.read_to_end(&mut buf).map_err(io_err(&file.path))?;
                (
                    buf,
                    Position {
                        file: pos.file + 1,
                        offset: 0,
                        line: 0,
                        key: None,
                    },
                    Label::Document,
                )
            }
        };
        let payload = self.payload(Bytes::from(bytes));
        Ok(Some(RawRecord {
            position: pos.clone(),
            next,
            file: file.info.clone(),
            label,
            payload,
        }))
    }

    fn describe(&self) -> String {
        format!(
            "{} {} ({} file{})",
            crate::mapping::kind_name(self.kind),
            self.describe,
            self.files.len(),
            if self.files.len() == 1 { "" } else { "s" }
        )
    }
}
