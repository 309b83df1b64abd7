//! What reaches a person's terminal: text from the run made harmless, and colour when wanted.
//!
//! Everything the human output shows that came from the run or the request (node ids,
//! messages, paths, output excerpts, reasons) goes through [`escape`] (or [`escape_lines`] for
//! text whose line breaks are Warden's own): a test controls those bytes, and an escape
//! sequence, a carriage return or a bidi override in them could rewrite what the terminal
//! shows. Colour is Warden's own styling around already escaped text, so it cannot be forged.
//!
//! Colour follows `--color`: `always`, `never`, or `auto` (the default), which colours a stream
//! only when it is a terminal and `NO_COLOR` is unset or empty (<https://no-color.org>).
//! `--json` output is never coloured.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::io::IsTerminal;

use anstyle::{AnsiColor, Style};

/// When to colour, as `--color` says.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum ColorChoice {
    /// Colour a terminal, unless `NO_COLOR` is set.
    #[default]
    Auto,
    /// Always colour (even through a pipe, and whatever `NO_COLOR` says).
    Always,
    /// Never colour.
    Never,
}

impl ColorChoice {
    /// Whether to colour a stream that is (or is not) a terminal.
    pub(crate) fn colours(self, terminal: bool) -> bool {
        match self {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => {
                terminal && std::env::var_os("NO_COLOR").is_none_or(|value| value.is_empty())
            }
        }
    }

    /// The palette for stdout.
    pub(crate) fn stdout(self) -> Palette {
        Palette {
            enabled: self.colours(std::io::stdout().is_terminal()),
        }
    }

    /// The palette for stderr.
    pub(crate) fn stderr(self) -> Palette {
        Palette {
            enabled: self.colours(std::io::stderr().is_terminal()),
        }
    }
}

/// Warden's styles, applied or not.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Palette {
    /// Colour is on.
    pub(crate) enabled: bool,
}

/// A style for one kind of text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tone {
    /// Passed, allowed.
    Good,
    /// Failed, denied, an error.
    Bad,
    /// Flaky, timed out, a warning.
    Warn,
    /// A failure's location, the failure class.
    Strong,
}

impl Tone {
    fn style(self) -> Style {
        match self {
            Tone::Good => Style::new().fg_color(Some(AnsiColor::Green.into())).bold(),
            Tone::Bad => Style::new().fg_color(Some(AnsiColor::Red.into())).bold(),
            Tone::Warn => Style::new().fg_color(Some(AnsiColor::Yellow.into())).bold(),
            Tone::Strong => Style::new().bold(),
        }
    }
}

impl Palette {
    /// A palette that never colours.
    #[cfg(test)]
    pub(crate) const PLAIN: Palette = Palette { enabled: false };

    /// `text` (already escaped, or Warden's own) in `tone` when colour is on.
    pub(crate) fn paint(self, tone: Tone, text: &str) -> String {
        if !self.enabled || text.is_empty() {
            return text.to_owned();
        }
        let style = tone.style();
        format!("{style}{text}{style:#}")
    }
}

/// `text` with every character that could drive a terminal shown escaped (`\u{1b}`), line
/// breaks included: C0 and C1 controls, DEL, bidi overrides and isolates, and the Unicode line
/// and paragraph separators. Printable text is returned as it is, without copying.
pub(crate) fn escape(text: &str) -> Cow<'_, str> {
    if !text.chars().any(dangerous) {
        return Cow::Borrowed(text);
    }
    let mut shown = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        push_escaped(&mut shown, c);
    }
    Cow::Owned(shown)
}

/// [`escape`], except that `\n` stays a line break: for multi-line text whose lines are all
/// shown (a stats table, a chain report).
pub(crate) fn escape_lines(text: &str) -> Cow<'_, str> {
    if !text.chars().any(|c| c != '\n' && dangerous(c)) {
        return Cow::Borrowed(text);
    }
    let mut shown = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c == '\n' {
            shown.push(c);
        } else {
            push_escaped(&mut shown, c);
        }
    }
    Cow::Owned(shown)
}

/// At most `limit` characters of `text`, escaped, with `...` where it was cut.
pub(crate) fn escape_cut(text: &str, limit: usize) -> String {
    let mut shown = String::new();
    for (at, c) in text.chars().enumerate() {
        if at == limit {
            shown.push_str("...");
            break;
        }
        push_escaped(&mut shown, c);
    }
    shown
}

fn push_escaped(out: &mut String, c: char) {
    match c {
        '\t' => out.push_str("\\t"),
        '\r' => out.push_str("\\r"),
        '\n' => out.push_str("\\n"),
        c if dangerous(c) => {
            // Writing to a String cannot fail.
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        }
        c => out.push(c),
    }
}

/// Characters a terminal may act on rather than show.
fn dangerous(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            // Bidi embeddings, overrides and isolates, and the marks: they reorder what is shown.
            '\u{202a}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}'
                | '\u{200e}'
                | '\u{200f}'
                | '\u{061c}'
                // Line and paragraph separators break lines like `\n`.
                | '\u{2028}'
                | '\u{2029}'
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_that_drives_a_terminal_survives() {
        let evil = "a\u{1b}[2Jb\rc\u{7}d\u{9b}31me\u{202e}f\u{2066}g\u{7f}h\u{2028}i\tj\nk";
        let shown = escape(evil);
        assert_eq!(
            shown,
            "a\\u{1b}[2Jb\\rc\\u{7}d\\u{9b}31me\\u{202e}f\\u{2066}g\\u{7f}h\\u{2028}i\\tj\\nk"
        );
        assert!(!shown.chars().any(dangerous));
        assert_eq!(escape_lines("x\u{1b}\ny"), "x\\u{1b}\ny");
        // Ordinary text, accents and wide characters included, is not copied.
        assert!(matches!(
            escape("runtime/tests/test_é.py::test[中]"),
            Cow::Borrowed(_)
        ));
        assert_eq!(escape_cut("ab\u{1b}cd", 3), "ab\\u{1b}...");
        assert_eq!(escape_cut("abc", 3), "abc");
    }

    #[test]
    fn colour_is_only_on_when_chosen() {
        assert!(ColorChoice::Always.colours(false));
        assert!(!ColorChoice::Never.colours(true));
        assert!(!ColorChoice::Auto.colours(false));
        let on = Palette { enabled: true };
        assert_eq!(
            on.paint(Tone::Bad, "FAILED"),
            "\u{1b}[1m\u{1b}[31mFAILED\u{1b}[0m"
        );
        assert_eq!(Palette::PLAIN.paint(Tone::Bad, "FAILED"), "FAILED");
    }
}
