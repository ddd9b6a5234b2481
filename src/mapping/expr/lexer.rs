//! The lexer: an expression's text into tokens with their byte offsets.

use std::fmt;

/// A syntax error with the byte offset in the expression where it was found.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntaxError {
    pub at: usize,
    pub message: String,
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (at character {})", self.message, self.at + 1)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Tok {
    Ident(String),
    Str(String),
    Num(String),
    Sym(char),
}

pub(super) struct Lexer<'a> {
    src: &'a str,
    toks: Vec<(Tok, usize)>,
}

impl<'a> Lexer<'a> {
    pub(super) fn run(src: &'a str) -> Result<Vec<(Tok, usize)>, SyntaxError> {
        let mut lx = Lexer {
            src,
            toks: Vec::new(),
        };
        let bytes = src.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            let c = bytes[i];
            match c {
                b' ' | b'\t' | b'\n' | b'\r' => i += 1,
                b'\'' | b'"' => {
                    let (s, end) = lx.string(i, c)?;
                    lx.toks.push((Tok::Str(s), i));
                    i = end;
                }
                b'0'..=b'9' | b'-' => {
                    let start = i;
                    i += 1;
                    while i < bytes.len()
                        && (bytes[i].is_ascii_digit()
                            || matches!(bytes[i], b'.' | b'e' | b'E' | b'+')
                            || (bytes[i] == b'-' && matches!(bytes[i - 1], b'e' | b'E')))
                    {
                        i += 1;
                    }
                    let text = &src[start..i];
                    if text == "-" {
                        return Err(SyntaxError {
                            at: start,
                            message: "a lone '-' is not a number".into(),
                        });
                    }
                    lx.toks.push((Tok::Num(text.to_string()), start));
                }
                c if c.is_ascii_alphabetic() || c == b'_' => {
                    let start = i;
                    while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_')
                    {
                        i += 1;
                    }
                    lx.toks.push((Tok::Ident(src[start..i].to_string()), start));
                }
                b'|' | b'(' | b')' | b',' | b'.' | b'[' | b']' | b'{' | b'}' | b':' | b'=' => {
                    lx.toks.push((Tok::Sym(c as char), i));
                    i += 1;
                }
                _ => {
                    let ch = src[i..].chars().next().unwrap_or('?');
                    return Err(SyntaxError {
                        at: i,
                        message: format!("unexpected character '{ch}'"),
                    });
                }
            }
        }
        Ok(lx.toks)
    }

    fn string(&self, start: usize, quote: u8) -> Result<(String, usize), SyntaxError> {
        let mut out = String::new();
        let mut chars = self.src[start + 1..].char_indices();
        while let Some((off, ch)) = chars.next() {
            let pos = start + 1 + off;
            if ch as u32 == quote as u32 {
                return Ok((out, pos + 1));
            }
            if ch == '\\' {
                match chars.next() {
                    Some((_, 'n')) => out.push('\n'),
                    Some((_, 't')) => out.push('\t'),
                    Some((_, c @ ('\\' | '\'' | '"'))) => out.push(c),
                    // Other escapes stay as written, so regexes read naturally: '\d+'.
                    Some((_, other)) => {
                        out.push('\\');
                        out.push(other);
                    }
                    None => break,
                }
            } else {
                out.push(ch);
            }
        }
        Err(SyntaxError {
            at: start,
            message: "unterminated string literal".into(),
        })
    }
}
