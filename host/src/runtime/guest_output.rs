//! A guest's stdout and stderr, turned into log lines.
//!
//! Plugins are free to `println!`; each complete line becomes a `tracing` event
//! in the current unit's span (stdout at `info`, stderr at `warn`). Lines spend
//! from the call's log budget ([`super::log_budget`]) so a chatty or hostile
//! guest cannot flood the logs, and the tail of stderr is kept so a trap (a
//! Rust panic aborts with `unreachable`) can be reported together with the
//! panic message that preceded it.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

use super::log_budget::LogBudget;
use crate::imports::log::GuestLevel;

/// Longest single log line; longer lines are split.
const MAX_LINE_BYTES: usize = 8 << 10;
/// How much of stderr's end is kept for trap reports.
const TAIL_BYTES: usize = 2 << 10;

/// One of the guest's output streams. Clones share the same buffer.
#[derive(Clone)]
pub(crate) struct GuestOutput {
    level: GuestLevel,
    source: &'static str,
    budget: LogBudget,
    state: Arc<Mutex<LineBuffer>>,
}

#[derive(Default)]
struct LineBuffer {
    partial: Vec<u8>,
    tail: Vec<u8>,
}

impl GuestOutput {
    pub(crate) fn stdout(budget: LogBudget) -> Self {
        Self::new(GuestLevel::Info, "stdout", budget)
    }

    pub(crate) fn stderr(budget: LogBudget) -> Self {
        Self::new(GuestLevel::Warn, "stderr", budget)
    }

    fn new(level: GuestLevel, source: &'static str, budget: LogBudget) -> Self {
        Self {
            level,
            source,
            budget,
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
        if !text.is_empty() {
            self.budget.emit(self.level, self.source, text);
        }
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
