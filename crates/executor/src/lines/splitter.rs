//! Cutting a byte stream into bounded lines, handed on in place.

use std::borrow::Cow;
use std::cell::{Cell, OnceCell};

use super::MAX_LINE_BYTES;

/// Splits a byte stream into lines of bounded length.
#[derive(Debug, Default)]
pub(crate) struct LineSplitter {
    pending: Vec<u8>,
    overlong: bool,
}

/// One line from a [`LineSplitter`], as bytes (most lines are dismissed or read without
/// being decoded), and the chunk it came in, when it lies in one.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Line<'a> {
    pub(crate) bytes: &'a [u8],
    chunk: Option<Chunk<'a>>,
}

/// A chunk fed to a [`LineSplitter`], with what is known of it as text.
#[derive(Debug, Clone, Copy)]
pub(super) struct Chunk<'a> {
    bytes: &'a [u8],
    text: &'a ChunkText<'a>,
    /// Where the line starts in it.
    start: usize,
}

/// Checking a whole chunk for UTF-8 in one pass is much quicker per byte than line by line,
/// but a waste when few of its lines are decoded (most lines are not): lines are decoded one
/// by one until they add up to an eighth of their chunk, and then the chunk is, once.
#[derive(Debug, Default)]
pub(super) struct ChunkText<'a> {
    /// The chunk's longest valid UTF-8 prefix (a line end is always a character boundary).
    whole: OnceCell<&'a str>,
    /// Bytes decoded line by line so far.
    by_line: Cell<usize>,
}

impl<'a> Line<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Line { bytes, chunk: None }
    }

    /// The line as text, invalid UTF-8 replaced.
    pub(crate) fn text(&self) -> Cow<'a, str> {
        if let Some(Chunk { bytes, text, start }) = self.chunk {
            let whole = match text.whole.get() {
                Some(whole) => Some(*whole),
                None if text.by_line.get() >= bytes.len() / 8 => {
                    Some(*text.whole.get_or_init(|| valid_prefix(bytes)))
                }
                None => {
                    text.by_line.set(text.by_line.get() + self.bytes.len());
                    None
                }
            };
            if let Some(line) = whole.and_then(|whole| whole.get(start..start + self.bytes.len())) {
                return Cow::Borrowed(line);
            }
        }
        String::from_utf8_lossy(self.bytes)
    }
}

/// What a [`LineSplitter`] hands lines to.
pub(crate) trait LineSink {
    /// Takes whole the line at the start of `rest` (what is left of a chunk), if it can tell
    /// where the line ends without a search: returns the line's length with its `\n`, having
    /// handled it as [`LineSink::on_line`] would have handled the line.
    fn take_line(&mut self, _rest: &[u8]) -> Option<usize> {
        None
    }

    /// Handles a line (without its `\n` or `\r\n`).
    fn on_line(&mut self, line: Line<'_>);
}

impl<F: FnMut(Line<'_>)> LineSink for F {
    fn on_line(&mut self, line: Line<'_>) {
        self(line)
    }
}

impl LineSplitter {
    /// Feeds bytes, calling `on_line` with every complete line (without its `\n` or `\r\n`).
    pub(crate) fn feed(&mut self, bytes: &[u8], mut on_line: impl FnMut(Line<'_>)) {
        self.feed_to(bytes, &mut on_line);
    }

    /// Feeds bytes to `sink`: every complete line, taken whole by the sink or handed on.
    pub(crate) fn feed_to(&mut self, mut bytes: &[u8], sink: &mut impl LineSink) {
        if !self.pending.is_empty() || self.overlong {
            // The line begun in an earlier chunk ends here, if at all.
            let Some(end) = memchr::memchr(b'\n', bytes) else {
                self.append(bytes);
                return;
            };
            self.append(&bytes[..end]);
            sink.on_line(Line::new(strip_cr(&self.pending)));
            self.pending.clear();
            self.overlong = false;
            bytes = &bytes[end + 1..];
        }
        // Lines within the chunk are taken whole or handed on in place, without copying.
        let text = ChunkText::default();
        let mut start = 0;
        while let Some(rest) = bytes.get(start..).filter(|rest| !rest.is_empty()) {
            if let Some(taken) = sink.take_line(rest) {
                start += taken;
                continue;
            }
            let Some(end) = memchr::memchr(b'\n', rest) else {
                break;
            };
            sink.on_line(Line {
                bytes: strip_cr(&rest[..end.min(MAX_LINE_BYTES)]),
                chunk: Some(Chunk {
                    bytes,
                    text: &text,
                    start,
                }),
            });
            start += end + 1;
        }
        self.append(&bytes[start..]);
    }

    /// The line received so far but not yet ended, unless it is too long to be pytest's.
    pub(crate) fn partial(&self) -> Option<&[u8]> {
        (!self.pending.is_empty() && !self.overlong).then_some(self.pending.as_slice())
    }

    /// The unterminated last line, if any (a process killed mid-line leaves one).
    pub(crate) fn finish(&mut self, mut on_line: impl FnMut(Line<'_>)) {
        if !self.pending.is_empty() || self.overlong {
            on_line(Line::new(strip_cr(&self.pending)));
        }
        self.pending.clear();
        self.overlong = false;
    }

    fn append(&mut self, bytes: &[u8]) {
        let room = MAX_LINE_BYTES - self.pending.len();
        if bytes.len() > room {
            self.overlong = true;
        }
        self.pending
            .extend_from_slice(&bytes[..bytes.len().min(room)]);
    }
}

pub(super) fn strip_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// The longest prefix of `bytes` that is valid UTF-8.
pub(super) fn valid_prefix(bytes: &[u8]) -> &str {
    match std::str::from_utf8(bytes) {
        Ok(text) => text,
        // Checked twice, but only in a chunk with invalid UTF-8 or a character cut at its end.
        Err(e) => std::str::from_utf8(&bytes[..e.valid_up_to()]).unwrap_or_default(),
    }
}
