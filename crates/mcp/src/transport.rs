//! The stdio framing: one JSON-RPC message per line, read with a bound on its length.
//!
//! rmcp's own stdio transport drops a line that is not JSON, or too long, without a word (so
//! a client that sent it waits forever). This one answers every such line with a JSON-RPC
//! error and keeps serving: `-32700` (parse error) for a line that is not JSON, `-32600`
//! (invalid request) for JSON that is no JSON-RPC message or a line over the limit, with the
//! request's `id` when it can be read. A notification that is not understood is ignored, as
//! JSON-RPC requires. Writing goes through rmcp's framed writer, one message per line.

use std::collections::VecDeque;

use rmcp::RoleServer;
use rmcp::model::{ErrorData, JsonRpcMessage, NumberOrString, RequestId};
use rmcp::service::{RxJsonRpcMessage, TxJsonRpcMessage};
use rmcp::transport::Transport;
use rmcp::transport::async_rw::AsyncRwTransport;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt as _, AsyncRead, AsyncWrite, BufReader};
use tokio_util::sync::CancellationToken;

/// The longest message read, in bytes: far above any request a client makes of Warden (the
/// largest is a `verify` with its pytest arguments), small enough to hold.
pub const MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;

/// Newline-delimited JSON-RPC over a reader and a writer; see the module documentation.
pub struct LineTransport<R, W>
where
    R: AsyncRead + Unpin + Send,
    W: AsyncWrite + Unpin + Send + 'static,
{
    read: BufReader<R>,
    /// The line read so far; kept across cancelled reads (rmcp polls `receive` in a
    /// `select!`), cleared once a whole line is handled.
    line: Vec<u8>,
    /// The line being read is over the limit: its bytes are skipped up to its end.
    oversized: bool,
    max: usize,
    out: AsyncRwTransport<RoleServer, tokio::io::Empty, W>,
    /// Error responses to write before reading on.
    pending: VecDeque<TxJsonRpcMessage<RoleServer>>,
    /// Fired at the end of input: rmcp lets calls in flight finish after it, but a client
    /// that is gone wants no answer, so its runs are stopped at once.
    closed: CancellationToken,
}

impl<R, W> LineTransport<R, W>
where
    R: AsyncRead + Unpin + Send,
    W: AsyncWrite + Unpin + Send + 'static,
{
    /// A transport reading `read` and writing `write`, with lines of at most
    /// [`MAX_MESSAGE_BYTES`].
    pub fn new(read: R, write: W) -> Self {
        LineTransport {
            read: BufReader::new(read),
            line: Vec::new(),
            oversized: false,
            max: MAX_MESSAGE_BYTES,
            out: AsyncRwTransport::new(tokio::io::empty(), write),
            pending: VecDeque::new(),
            closed: CancellationToken::new(),
        }
    }

    /// Fires `token` when the input ends (or cannot be read).
    pub fn cancel_on_close(mut self, token: CancellationToken) -> Self {
        self.closed = token;
        self
    }

    /// The same with another limit on a message's length.
    pub fn with_max_message_bytes(mut self, max: usize) -> Self {
        self.max = max;
        self
    }

    /// Reads up to the end of a line. `Ok(true)`: a line (or an oversized one) is complete;
    /// `Ok(false)`: end of input.
    async fn read_line(&mut self) -> std::io::Result<bool> {
        loop {
            let available = self.read.fill_buf().await?;
            if available.is_empty() {
                return Ok(false);
            }
            let (chunk, used, done) = match memchr::memchr(b'\n', available) {
                Some(end) => (&available[..end], end + 1, true),
                None => (available, available.len(), false),
            };
            if !self.oversized {
                if self.line.len() + chunk.len() > self.max {
                    self.oversized = true;
                    self.line = Vec::new();
                } else {
                    self.line.extend_from_slice(chunk);
                }
            }
            self.read.consume(used);
            if done {
                return Ok(true);
            }
        }
    }

    /// What a complete line is: a message, nothing (blank, or an ignored notification), or an
    /// error to answer with.
    // The error is sent at once, never passed along: its size costs nothing.
    #[allow(clippy::result_large_err)]
    fn judge(&self) -> Result<Option<RxJsonRpcMessage<RoleServer>>, TxJsonRpcMessage<RoleServer>> {
        if self.oversized {
            tracing::warn!(
                limit = self.max,
                "a message over the size limit was refused"
            );
            return Err(JsonRpcMessage::error(
                ErrorData::invalid_request(
                    format!("the message is longer than {} bytes", self.max),
                    None,
                ),
                None,
            ));
        }
        let line = self.line.strip_suffix(b"\r").unwrap_or(&self.line);
        let line = line.strip_prefix(b"\xef\xbb\xbf").unwrap_or(line);
        if line.trim_ascii().is_empty() {
            return Ok(None);
        }
        let value: Value = match serde_json::from_slice(line) {
            Ok(value) => value,
            Err(e) => {
                tracing::warn!(error = %e, "a message that is not JSON was refused");
                return Err(JsonRpcMessage::error(
                    ErrorData::parse_error(format!("not JSON: {e}"), None),
                    None,
                ));
            }
        };
        let id = request_id(&value);
        let is_notification = value.get("method").is_some() && value.get("id").is_none();
        match serde_json::from_value::<RxJsonRpcMessage<RoleServer>>(value) {
            Ok(message) => Ok(Some(message)),
            Err(e) if is_notification => {
                tracing::debug!(error = %e, "an unknown or malformed notification was ignored");
                Ok(None)
            }
            Err(e) => {
                tracing::warn!(error = %e, "a message that is no JSON-RPC request was refused");
                Err(JsonRpcMessage::error(
                    ErrorData::invalid_request(format!("not a valid JSON-RPC message: {e}"), None),
                    id,
                ))
            }
        }
    }
}

/// The `id` of a JSON-RPC request, when it is one a response can carry.
fn request_id(value: &Value) -> Option<RequestId> {
    match value.get("id")? {
        Value::String(s) => Some(NumberOrString::String(s.as_str().into())),
        Value::Number(n) => n.as_i64().map(NumberOrString::Number),
        _ => None,
    }
}

impl<R, W> Transport<RoleServer> for LineTransport<R, W>
where
    R: AsyncRead + Unpin + Send,
    W: AsyncWrite + Unpin + Send + 'static,
{
    type Error = std::io::Error;

    fn send(
        &mut self,
        item: TxJsonRpcMessage<RoleServer>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        self.out.send(item)
    }

    async fn receive(&mut self) -> Option<RxJsonRpcMessage<RoleServer>> {
        loop {
            // Sent here, in order, before reading on: a cancelled `receive` keeps what is
            // still to be sent.
            while let Some(error) = self.pending.front().cloned() {
                if let Err(e) = self.out.send(error).await {
                    tracing::warn!(error = %e, "cannot write an error response");
                    return None;
                }
                self.pending.pop_front();
            }
            match self.read_line().await {
                Ok(true) => {}
                Ok(false) => {
                    tracing::info!("end of input: the client is gone");
                    self.closed.cancel();
                    return None;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the input");
                    self.closed.cancel();
                    return None;
                }
            }
            let judged = self.judge();
            self.line.clear();
            self.oversized = false;
            match judged {
                Ok(Some(message)) => return Some(message),
                Ok(None) => {}
                Err(error) => self.pending.push_back(error),
            }
        }
    }

    async fn close(&mut self) -> Result<(), Self::Error> {
        self.out.close().await
    }
}
