//! Diagnostics: tracing to stderr, never stdout, so `--json` output stays one clean document.

use std::io;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::fmt::MakeWriter;

use crate::{progress, style};

/// Installs the subscriber: the level comes from `-v` (nothing by default: whatever a person
/// must know is in the answer itself, a note or an error message), and `RUST_LOG`, when set,
/// overrides it.
pub(crate) fn init(verbose: u8) {
    let level = match verbose {
        0 => LevelFilter::OFF,
        1 => LevelFilter::INFO,
        2 => LevelFilter::DEBUG,
        _ => LevelFilter::TRACE,
    };
    let filter = EnvFilter::builder()
        .with_default_directive(level.into())
        .from_env_lossy();
    tracing_subscriber::fmt()
        .with_writer(Stderr)
        // No colour codes of its own: every event is escaped before it is written (below), so
        // a node id or message from the run cannot drive the terminal through a log line.
        .with_ansi(false)
        .with_env_filter(filter)
        .with_target(false)
        .init();
}

/// Writes each log event to stderr in one piece, around `warden verify`'s progress line.
struct Stderr;

impl<'a> MakeWriter<'a> for Stderr {
    type Writer = Event;

    fn make_writer(&'a self) -> Event {
        Event(Vec::new())
    }
}

/// One log event, collected and written when the subscriber is done with it.
struct Event(Vec<u8>);

impl io::Write for Event {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for Event {
    fn drop(&mut self) {
        if !self.0.is_empty() {
            let text = String::from_utf8_lossy(&self.0);
            progress::write_log(style::escape_lines(&text).as_bytes());
        }
    }
}
