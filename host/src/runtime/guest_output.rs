//! A guest's stdout and stderr, turned into log lines.
//!
//! Plugins are free to `println!`; each complete line becomes a `tracing` event
//! in the current unit's span (stdout at `info`, stderr at `warn`). Output is
//! capped per call so a chatty or hostile guest cannot flood the logs, and the
//! tail of stderr is kept so a trap (a Rust panic aborts with `unreachable`) can
//! be reported together with the panic message that preceded it.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

use crate::imports::log::{GuestLevel, emit};

/// Bytes of output logged per stream and call; the rest is dropped with a warning.
const MAX_LOGGED_BYTES: usize = 1 << 20;
/// Longest single log line; longer lines are split.
const MAX_LINE_BYTES: usize = 8 << 10;
/// How much of stderr's end is kept for trap reports.
const TAIL_BYTES: usize = 2 << 10;

/// One of the guest's output streams. Clones share the same buffer.
#[derive(Clone)]
pub(crate) struct GuestOutput {
    level: GuestLevel,
    source: &'static str,
    state: Arc<Mutex<LineBuffer>>,
}

#[derive(Default)]
struct LineBuffer {
    partial: Vec<u8>,
    logged: usize,
    dropped: bool,
    tail: Vec<u8>,
}

impl GuestOutput {
    pub(crate) fn stdout() -> Self {
        Self::new(GuestLevel::Info, "stdout")
    }

    pub(crate) fn stderr() -> Self {
        Self::new(GuestLevel::Warn, "stderr")
    }

    fn new(level: GuestLevel, source: &'static str) -> Self {
        Self {
            level,
            source,
            state: Arc::default(),
        }
    }

    fn push(&self, bytes: &[u8]) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.tail.extend_from_slice(bytes);
        if state.tail.len() > TAIL_BYTES {
            let excess = state.tail.len() - TAIL_BYTES;
            state.tail.drain(..excess);
        }
        for &b in bytes {
            if b == b'\n' || state.partial.len() >= MAX_LINE_BYTES {
                self.flush_line(&mut state);
                if b == b'\n' {
                    continue;
                }
            }
            state.partial.push(b);
        }
    }

    fn flush_line(&self, state: &mut LineBuffer) {
        let line = std::mem::take(&mut state.partial);
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end();
        if text.is_empty() {
            return;
        }
        if state.logged >= MAX_LOGGED_BYTES {
            if !state.dropped {
                state.dropped = true;
                emit(
                    GuestLevel::Warn,
                    self.source,
                    "guest output exceeded the per-call log cap; dropping the rest",
                );
            }
            return;
        }
        state.logged += line.len();
        emit(
            self.level,
            self.source,
            String::from_utf8_lossy(&line).trim_end(),
        );
    }

    /// The last couple of KiB written, for trap reports; empty if nothing was.
    pub(crate) fn tail(&self) -> String {
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        String::from_utf8_lossy(&state.tail).trim().to_string()
    }

    /// Logs a final line that did not end in a newline.
    pub(crate) fn finish(&self) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if !state.partial.is_empty() {
            self.flush_line(&mut state);
        }
    }
}

impl IsTerminal for GuestOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestOutput {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[async_trait::async_trait]
impl Pollable for GuestOutput {
    async fn ready(&mut self) {}
}

impl OutputStream for GuestOutput {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.push(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 << 10)
    }
}

impl tokio::io::AsyncWrite for GuestOutput {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.push(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
