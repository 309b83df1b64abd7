//! String helpers, quicker than `str`'s on the ASCII padding of pytest's lines.

use super::MAX_MESSAGE_CHARS;

/// The ASCII characters with Unicode's `White_Space` property (what [`str::trim`] removes);
/// unlike [`u8::is_ascii_whitespace`], this includes the vertical tab.
pub(super) fn is_ascii_white_space(b: u8) -> bool {
    matches!(b, b'\t' | b'\n' | 0x0B | 0x0C | b'\r' | b' ')
}

/// [`str::trim_end`], quicker on the ASCII padding of pytest's lines.
pub(super) fn trim_end(text: &str) -> &str {
    let bytes = text.as_bytes();
    let mut end = bytes.len();
    // pytest pads its progress lines with runs of spaces: skip them eight at a time.
    while let Some(word) = end.checked_sub(8).and_then(|start| bytes.get(start..end))
        && word == b"        "
    {
        end -= 8;
    }
    while end > 0 && is_ascii_white_space(bytes[end - 1]) {
        end -= 1;
    }
    if end > 0 && !bytes[end - 1].is_ascii() {
        return text[..end].trim_end();
    }
    &text[..end]
}

/// [`str::trim`], quicker on ASCII.
pub(super) fn trim(text: &str) -> &str {
    trim_start(trim_end(text))
}

/// [`str::split_once`] at the first space.
pub(super) fn split_at_space(text: &str) -> Option<(&str, &str)> {
    let i = text.bytes().position(|b| b == b' ')?;
    Some((&text[..i], &text[i + 1..]))
}

/// [`str::trim_start`], quicker on ASCII.
pub(super) fn trim_start(text: &str) -> &str {
    let bytes = text.as_bytes();
    let mut start = 0;
    while start < bytes.len() && is_ascii_white_space(bytes[start]) {
        start += 1;
    }
    if start < bytes.len() && !bytes[start].is_ascii() {
        return text[start..].trim_start();
    }
    &text[start..]
}

/// Cuts `text` to [`MAX_MESSAGE_CHARS`] characters.
pub(crate) fn truncate(text: &str) -> String {
    let mut out = String::new();
    truncate_into(&mut out, text);
    out
}

/// [`truncate`] into `out`, reusing its allocation.
pub(super) fn truncate_into(out: &mut String, text: &str) {
    out.clear();
    // No more bytes than the bound means no more characters either.
    let cut = (text.len() > MAX_MESSAGE_CHARS)
        .then(|| text.char_indices().nth(MAX_MESSAGE_CHARS))
        .flatten();
    match cut {
        Some((cut, _)) => {
            out.push_str(&text[..cut]);
            out.push_str("...");
        }
        None => out.push_str(text),
    }
}
