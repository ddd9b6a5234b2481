//! Streaming split of a top-level JSON array or object into its members, without
//! parsing them: each member's bytes are handed to the rayon workers to parse.
//! Memory holds one member at a time, however big the document is, and every
//! member has a byte offset to resume from.

use std::io::{self, BufRead};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Container {
    /// `[a, b, ...]`: members are the elements.
    Array,
    /// `{"k": v, ...}`: members are `"k":v` pairs.
    Object,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Start,
    BeforeFirst,
    AfterValue,
    Done,
}

/// One member of the top-level container.
#[derive(Debug)]
pub struct Member {
    /// Byte offset where the member starts.
    pub start: u64,
    /// Byte offset just after the member (where reading resumes).
    pub end: u64,
    /// 0-based position in the container.
    pub index: u64,
    /// The member's bytes (`"key":value` for objects).
    pub bytes: Vec<u8>,
}

pub struct Splitter<R> {
    r: R,
    offset: u64,
    index: u64,
    kind: Container,
    state: State,
}

fn bad(offset: u64, what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("malformed JSON at byte {offset}: {what}"),
    )
}

impl<R: BufRead> Splitter<R> {
    /// A splitter at the start of a document whose top level is `kind`.
    pub fn new(r: R, kind: Container) -> Self {
        Splitter {
            r,
            offset: 0,
            index: 0,
            kind,
            state: State::Start,
        }
    }

    /// A splitter positioned just after a member that ended at `offset` (resume).
    /// The reader must already be at `offset`.
    pub fn resume(r: R, kind: Container, offset: u64, next_index: u64) -> Self {
        Splitter {
            r,
            offset,
            index: next_index,
            kind,
            state: State::AfterValue,
        }
    }

    fn peek(&mut self) -> io::Result<Option<u8>> {
        loop {
            let buf = self.r.fill_buf()?;
            if buf.is_empty() {
                return Ok(None);
            }
            let ws = buf
                .iter()
                .take_while(|c| matches!(c, b' ' | b'\t' | b'\n' | b'\r'))
                .count();
            if ws < buf.len() {
                let c = buf[ws];
                self.r.consume(ws);
                self.offset += ws as u64;
                return Ok(Some(c));
            }
            let n = buf.len();
            self.r.consume(n);
            self.offset += n as u64;
        }
    }

    fn bump(&mut self) {
        self.r.consume(1);
        self.offset += 1;
    }

    /// A splitter whose reader is at the first byte of member `index` (retry of
    /// one record by its stored position).
    pub fn at_member(r: R, kind: Container, offset: u64, index: u64) -> Self {
        Splitter {
            r,
            offset,
            index,
            kind,
            state: State::BeforeFirst,
        }
    }

    /// The next member, or `None` at the end of the container.
    pub fn next_member(&mut self) -> io::Result<Option<Member>> {
        let (open, close) = match self.kind {
            Container::Array => (b'[', b']'),
            Container::Object => (b'{', b'}'),
        };
        loop {
            let c = self.peek()?;
            match (self.state, c) {
                (State::Done, _) => return Ok(None),
                (State::Start, Some(c)) if c == open => {
                    self.bump();
                    self.state = State::BeforeFirst;
                }
                (State::Start, _) => {
                    return Err(bad(
                        self.offset,
                        &format!("expected '{}' at the top level", open as char),
                    ))
                }
                (State::BeforeFirst, Some(c)) if c == close => {
                    self.bump();
                    self.state = State::Done;
                }
                (State::AfterValue, Some(c)) if c == close => {
                    self.bump();
                    self.state = State::Done;
                }
                (State::AfterValue, Some(b',')) => {
                    self.bump();
                    self.state = State::BeforeFirst;
                    // A member must follow the comma.
                    if self.peek()? == Some(close) {
                        return Err(bad(self.offset, "trailing comma"));
                    }
                }
                (State::AfterValue, Some(other)) => {
                    return Err(bad(
                        self.offset,
                        &format!(
                            "expected ',' or '{}', found '{}'",
                            close as char, other as char
                        ),
                    ))
                }
                (_, None) => {
                    return Err(bad(
                        self.offset,
                        "unexpected end of file inside the document",
                    ))
                }
                (State::BeforeFirst, Some(_)) => {
                    let start = self.offset;
                    let mut bytes = Vec::new();
                    if self.kind == Container::Object {
                        if self.peek()? != Some(b'"') {
                            return Err(bad(self.offset, "expected a quoted key"));
                        }
                        self.read_value(&mut bytes)?;
                        if self.peek()? != Some(b':') {
                            return Err(bad(self.offset, "expected ':' after the key"));
                        }
                        self.bump();
                        bytes.push(b':');
                        if self.peek()?.is_none() {
                            return Err(bad(self.offset, "unexpected end of file"));
                        }
                    }
                    self.read_value(&mut bytes)?;
                    let m = Member {
                        start,
                        end: self.offset,
                        index: self.index,
                        bytes,
                    };
                    self.index += 1;
                    self.state = State::AfterValue;
                    return Ok(Some(m));
                }
            }
        }
    }

    /// Copy one JSON value (the reader is at its first byte) into `out`.
    fn read_value(&mut self, out: &mut Vec<u8>) -> io::Result<()> {
        let first = match self.r.fill_buf()?.first() {
            Some(c) => *c,
            None => return Err(bad(self.offset, "unexpected end of file")),
        };
        if matches!(first, b'{' | b'[' | b'"') {
            let mut depth: i64 = 0;
            let mut in_str = false;
            let mut esc = false;
            loop {
                let chunk = self.r.fill_buf()?;
                if chunk.is_empty() {
                    return Err(bad(self.offset, "unexpected end of file inside a value"));
                }
                let mut end = None;
                for (i, &c) in chunk.iter().enumerate() {
                    if in_str {
                        if esc {
                            esc = false;
                        } else if c == b'\\' {
                            esc = true;
                        } else if c == b'"' {
                            in_str = false;
                            if depth == 0 {
                                end = Some(i);
                                break;
                            }
                        }
                        continue;
                    }
                    match c {
                        b'"' => in_str = true,
                        b'{' | b'[' => depth += 1,
                        b'}' | b']' => {
                            depth -= 1;
                            if depth == 0 {
                                end = Some(i);
                                break;
                            }
                            if depth < 0 {
                                return Err(bad(self.offset + i as u64, "unbalanced bracket"));
                            }
                        }
                        _ => {}
                    }
                }
                let n = end.map_or(chunk.len(), |i| i + 1);
                out.extend_from_slice(&chunk[..n]);
                self.r.consume(n);
                self.offset += n as u64;
                if end.is_some() {
                    return Ok(());
                }
            }
        }
        // A scalar: up to the next delimiter.
        loop {
            let chunk = self.r.fill_buf()?;
            if chunk.is_empty() {
                return Ok(());
            }
            let stop = chunk
                .iter()
                .position(|c| matches!(c, b',' | b']' | b'}' | b' ' | b'\t' | b'\n' | b'\r'));
            let n = stop.unwrap_or(chunk.len());
            out.extend_from_slice(&chunk[..n]);
            self.r.consume(n);
            self.offset += n as u64;
            if stop.is_some() {
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufReader, Cursor, Seek, SeekFrom};

    fn members(text: &str, kind: Container, cap: usize) -> Vec<(u64, u64, String)> {
        let r = BufReader::with_capacity(cap, Cursor::new(text.as_bytes().to_vec()));
        let mut s = Splitter::new(r, kind);
        let mut out = Vec::new();
        while let Some(m) = s.next_member().unwrap() {
            out.push((m.start, m.end, String::from_utf8(m.bytes).unwrap()));
        }
        out
    }

    #[test]
    fn splits_arrays_across_buffer_edges() {
        let text = r#" [ {"a": "x]}\"y", "b": [1, {"c": 2}]}, 12.5e3 ,"s,]", null, [], true ] "#;
        for cap in [1, 2, 3, 7, 64, 8192] {
            let m = members(text, Container::Array, cap);
            let got: Vec<&str> = m.iter().map(|(_, _, s)| s.as_str()).collect();
            assert_eq!(
                got,
                vec![
                    r#"{"a": "x]}\"y", "b": [1, {"c": 2}]}"#,
                    "12.5e3",
                    r#""s,]""#,
                    "null",
                    "[]",
                    "true"
                ],
                "buffer {cap}"
            );
            for (start, end, s) in &m {
                assert_eq!(&text[*start as usize..*end as usize], s);
            }
        }
        assert!(members("[]", Container::Array, 8).is_empty());
    }

    #[test]
    fn splits_object_members() {
        let text = "{\"k1\" : {\"v\": 1},\n \"k\\\"2\": [2], \"k3\": \"three\"}";
        let m = members(text, Container::Object, 5);
        let got: Vec<&str> = m.iter().map(|(_, _, s)| s.as_str()).collect();
        assert_eq!(
            got,
            vec!["\"k1\":{\"v\": 1}", "\"k\\\"2\":[2]", "\"k3\":\"three\""]
        );
    }

    #[test]
    fn resumes_after_a_member() {
        let text = r#"[{"n":1}, {"n":2}, {"n":3}]"#;
        let all = members(text, Container::Array, 4);
        let after_first = all[0].1;
        let mut cur = Cursor::new(text.as_bytes().to_vec());
        cur.seek(SeekFrom::Start(after_first)).unwrap();
        let mut s = Splitter::resume(BufReader::new(cur), Container::Array, after_first, 1);
        let m = s.next_member().unwrap().unwrap();
        assert_eq!(
            (m.index, String::from_utf8(m.bytes).unwrap()),
            (1, r#"{"n":2}"#.to_string())
        );
        assert_eq!(s.next_member().unwrap().unwrap().index, 2);
        assert!(s.next_member().unwrap().is_none());
    }

    #[test]
    fn malformed_documents_are_errors_not_panics() {
        for text in ["[1, 2", "[{\"a\": 1]", "[1 2]", "{\"a\" 1}", "[1,]", "x"] {
            let r = BufReader::new(Cursor::new(text.as_bytes().to_vec()));
            let kind = if text.starts_with('{') {
                Container::Object
            } else {
                Container::Array
            };
            let mut s = Splitter::new(r, kind);
            let mut res = Ok(Some(()));
            for _ in 0..10 {
                res = s.next_member().map(|m| m.map(|_| ()));
                if !matches!(res, Ok(Some(_))) {
                    break;
                }
            }
            assert!(res.is_err(), "{text} should fail: {res:?}");
        }
    }
}
