//! Opening a source file at a byte offset, plain or gzip (a gzip stream is
//! decompressed and discarded up to the offset), counting the bytes read from
//! the file itself for progress.

use super::{io_err, SourceFile};
use crate::source::SourceError;
use flate2::read::MultiGzDecoder;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

const BUF: usize = 256 * 1024;

/// Counts bytes read from the file itself (compressed bytes for `.gz`).
struct Counting<R> {
    inner: R,
    counter: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.counter.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Open a file for reading from `offset` (decompressed offset for `.gz`).
pub(super) fn open_at(
    file: &SourceFile,
    offset: u64,
    counter: &Arc<AtomicU64>,
) -> Result<Box<dyn BufRead + Send>, SourceError> {
    let mut f = File::open(&file.path).map_err(io_err(&file.path))?;
    let gz = file.path.extension().is_some_and(|e| e == "gz");
    if !gz && offset > 0 {
        f.seek(SeekFrom::Start(offset))
            .map_err(io_err(&file.path))?;
        counter.fetch_add(offset, Ordering::Relaxed);
    }
    let counted = Counting {
        inner: f,
        counter: counter.clone(),
    };
    let mut r: Box<dyn BufRead + Send> = if gz {
        Box::new(BufReader::with_capacity(
            BUF,
            MultiGzDecoder::new(BufReader::with_capacity(BUF, counted)),
        ))
    } else {
        Box::new(BufReader::with_capacity(BUF, counted))
    };
    if gz && offset > 0 {
        // A gzip stream cannot seek: decompress and discard up to the offset
        // (no parsing happens on the skipped bytes).
        let skipped =
            io::copy(&mut (&mut r).take(offset), &mut io::sink()).map_err(io_err(&file.path))?;
        if skipped < offset {
            return Err(SourceError::Format {
                path: file.path.clone(),
                message: format!("the file is shorter than the checkpoint offset {offset}"),
            });
        }
    }
    Ok(r)
}
