//! Bounded capture of one output stream: a head, a tail, and exact totals for the whole stream.
//!
//! pytest prints its verdict last, so most of the budget goes to the tail; the head keeps the
//! session header. Memory is fixed by the cap however much the process writes: bytes between
//! head and tail are hashed and counted, then dropped.

use std::collections::VecDeque;

use sha2::{Digest, Sha256};
use warden_taxonomy::CapturedStream;

/// The share of the cap kept from the start of the stream (the rest is the tail).
const HEAD_SHARE_DIVISOR: usize = 5;

/// A bounded head+tail recorder for one stream.
pub(crate) struct Capture {
    head: Vec<u8>,
    head_cap: usize,
    tail: VecDeque<u8>,
    tail_cap: usize,
    total: u64,
    hasher: Sha256,
}

impl Capture {
    /// A capture that keeps at most `cap` bytes of the stream (plus an omission marker).
    pub(crate) fn new(cap: usize) -> Self {
        let head_cap = cap / HEAD_SHARE_DIVISOR;
        let tail_cap = cap - head_cap;
        Capture {
            head: Vec::with_capacity(head_cap),
            head_cap,
            tail: VecDeque::with_capacity(tail_cap),
            tail_cap,
            total: 0,
            hasher: Sha256::new(),
        }
    }

    /// Records the next bytes of the stream.
    pub(crate) fn push(&mut self, mut bytes: &[u8]) {
        self.total += bytes.len() as u64;
        self.hasher.update(bytes);
        let room = self.head_cap - self.head.len();
        if room > 0 {
            let take = room.min(bytes.len());
            self.head.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
        }
        if bytes.is_empty() || self.tail_cap == 0 {
            return;
        }
        if bytes.len() >= self.tail_cap {
            self.tail.clear();
            self.tail
                .extend(&bytes[bytes.len() - self.tail_cap..bytes.len()]);
            return;
        }
        let overflow = (self.tail.len() + bytes.len()).saturating_sub(self.tail_cap);
        self.tail.drain(..overflow);
        self.tail.extend(bytes);
    }

    /// The kept text, the totals and the hash of the whole stream.
    pub(crate) fn finish(self) -> CapturedStream {
        let sha256 = hex::encode(self.hasher.finalize());
        let tail: Vec<u8> = self.tail.into_iter().collect();
        let kept = (self.head.len() + tail.len()) as u64;
        if kept == self.total {
            // Nothing was dropped: head and tail are contiguous.
            let mut all = self.head;
            all.extend_from_slice(&tail);
            return CapturedStream {
                text: String::from_utf8_lossy(&all).into_owned(),
                total_bytes: self.total,
                truncated: false,
                sha256,
            };
        }
        let head = &self.head[..char_floor(&self.head)];
        let tail = &tail[char_ceil(&tail)..];
        let omitted = self.total - (head.len() + tail.len()) as u64;
        let mut text = String::from_utf8_lossy(head).into_owned();
        text.push_str(&omission_marker(omitted));
        text.push_str(&String::from_utf8_lossy(tail));
        CapturedStream {
            text,
            total_bytes: self.total,
            truncated: true,
            sha256,
        }
    }
}

/// The visible marker put where bytes were dropped.
pub(crate) fn omission_marker(omitted: u64) -> String {
    format!("\n[... warden: {omitted} bytes omitted ...]\n")
}

/// The length of `head` without a trailing incomplete UTF-8 sequence (a cut inside a character).
fn char_floor(head: &[u8]) -> usize {
    // A character is at most 4 bytes: look for the last lead byte among the final 4.
    let start = head.len().saturating_sub(4);
    for i in (start..head.len()).rev() {
        let b = head[i];
        if b & 0xC0 == 0x80 {
            continue; // continuation byte
        }
        let needed = match b {
            0x00..=0x7F => 1,
            0xC0..=0xDF => 2,
            0xE0..=0xEF => 3,
            0xF0..=0xF7 => 4,
            _ => 1, // not a lead byte of anything: invalid, keep as is
        };
        return if i + needed > head.len() {
            i
        } else {
            head.len()
        };
    }
    head.len()
}

/// How many leading continuation bytes to skip so that `tail` starts on a character (at most 3:
/// more than that cannot belong to a character cut by the omission).
fn char_ceil(tail: &[u8]) -> usize {
    tail.iter()
        .take(3)
        .take_while(|b| **b & 0xC0 == 0x80)
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sha(bytes: &[u8]) -> String {
        hex::encode(Sha256::digest(bytes))
    }

    fn capture(cap: usize, chunks: &[&[u8]]) -> CapturedStream {
        let mut c = Capture::new(cap);
        for chunk in chunks {
            c.push(chunk);
        }
        c.finish()
    }

    #[test]
    fn small_streams_are_kept_whole() {
        let s = capture(100, &[b"hello ", b"world\n"]);
        assert_eq!(s.text, "hello world\n");
        assert!(!s.truncated);
        assert_eq!(s.total_bytes, 12);
        assert_eq!(s.sha256, sha(b"hello world\n"));
    }

    #[test]
    fn a_stream_exactly_at_the_cap_is_not_truncated() {
        let data = vec![b'a'; 100];
        let s = capture(100, &[&data]);
        assert!(!s.truncated);
        assert_eq!(s.text.len(), 100);
    }

    #[test]
    fn long_streams_keep_head_and_tail_with_a_marker() {
        let data: Vec<u8> = (0..10_000u32).map(|i| b'a' + (i % 26) as u8).collect();
        let s = capture(1000, &[&data[..3000], &data[3000..]]);
        assert!(s.truncated);
        assert_eq!(s.total_bytes, 10_000);
        assert_eq!(s.sha256, sha(&data));
        let marker = omission_marker(9000);
        let (head, tail) = s.text.split_once(&marker).expect("marker present");
        assert_eq!(head.as_bytes(), &data[..200]);
        assert_eq!(tail.as_bytes(), &data[10_000 - 800..]);
    }

    #[test]
    fn cuts_fall_on_character_boundaries() {
        // 'é' is two bytes, '€' three: no cut may split them.
        let text = "é€".repeat(500);
        let s = capture(101, &[text.as_bytes()]);
        assert!(s.truncated);
        assert!(!s.text.contains('\u{FFFD}'), "a character was split");
        let marker_at = s.text.find("\n[... warden:").expect("marker");
        let omitted: u64 = s.text[marker_at..]
            .trim_start_matches("\n[... warden: ")
            .split(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let kept = s.text.len() - omission_marker(omitted).len();
        assert_eq!(kept as u64 + omitted, text.len() as u64);
    }

    #[test]
    fn invalid_utf8_becomes_replacement_characters() {
        let s = capture(100, &[b"ok \xff\xfe done"]);
        assert_eq!(s.text, "ok \u{FFFD}\u{FFFD} done");
        assert_eq!(s.total_bytes, 10);
    }

    #[test]
    fn a_zero_cap_keeps_nothing_but_still_counts() {
        let s = capture(0, &[b"abc"]);
        assert!(s.truncated);
        assert_eq!(s.text, omission_marker(3));
        assert_eq!(s.total_bytes, 3);
    }

    proptest! {
        #[test]
        fn kept_text_is_a_head_and_tail_of_the_stream(
            data in prop::collection::vec(any::<u8>(), 0..4000),
            cap in 0usize..600,
            split_points in prop::collection::vec(any::<prop::sample::Index>(), 0..6),
        ) {
            let mut points: Vec<usize> = split_points.iter().map(|i| i.index(data.len() + 1)).collect();
            points.sort_unstable();
            let mut c = Capture::new(cap);
            let mut last = 0;
            for p in points {
                c.push(&data[last..p]);
                last = p;
            }
            c.push(&data[last..]);
            let s = c.finish();
            prop_assert_eq!(s.total_bytes, data.len() as u64);
            prop_assert_eq!(&s.sha256, &sha(&data));
            if !s.truncated {
                prop_assert!(data.len() <= cap);
                prop_assert_eq!(s.text, String::from_utf8_lossy(&data).into_owned());
            } else {
                prop_assert!(data.len() > cap);
                // The text is lossy(head) + marker + lossy(tail) for a head h and a tail t of
                // the stream with h + t within the cap and the marker naming the bytes between.
                let at = s.text.find("\n[... warden: ").expect("marker");
                let after = &s.text[at + "\n[... warden: ".len()..];
                let omitted: u64 = after.split(' ').next().unwrap().parse().unwrap();
                let tail_text = &s.text[at + omission_marker(omitted).len()..];
                let head_text = &s.text[..at];
                let found = (0..=cap.min(data.len())).any(|h| {
                    let Some(t) = (data.len() as u64).checked_sub(h as u64 + omitted) else {
                        return false;
                    };
                    let t = t as usize;
                    h + t <= cap
                        && String::from_utf8_lossy(&data[..h]) == head_text
                        && String::from_utf8_lossy(&data[data.len() - t..]) == tail_text
                });
                prop_assert!(found, "text is not a head+tail of the stream: {:?}", s.text);
            }
        }

        #[test]
        fn valid_utf8_is_never_cut_inside_a_character(text in "[a-z \u{e9}\u{20ac}\u{1F600}]{0,400}", cap in 1usize..300) {
            let s = capture(cap, &[text.as_bytes()]);
            prop_assert!(!s.text.contains(char::REPLACEMENT_CHARACTER));
            prop_assert!(s.text.len() <= cap + omission_marker(s.total_bytes).len());
        }
    }
}
