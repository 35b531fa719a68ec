//! Reading a response body without trusting the server: every chunk must come
//! within the idle timeout and before the deadline, and the body may not grow
//! past its cap. Shared by the `llm` and `http` imports.

use std::time::{Duration, Instant};

use bytes::Bytes;

/// The bounds a body is read under.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BodyLimits {
    /// Longest wait for the next chunk.
    pub idle: Duration,
    /// When reading must be over, whatever the chunks do.
    pub deadline: Instant,
    /// Largest body accepted, in bytes.
    pub max_bytes: u64,
}

/// Why a body could not be read.
#[derive(Debug)]
pub(crate) enum BodyError {
    /// No chunk within the idle timeout, or the deadline passed.
    Timeout,
    /// The body grew past its cap.
    TooLarge,
    /// The connection failed mid-body.
    Broken(reqwest::Error),
}

/// Reads a response body chunk by chunk under [`BodyLimits`].
pub(crate) struct BodyReader {
    response: reqwest::Response,
    limits: BodyLimits,
    read: u64,
}

impl BodyReader {
    /// Refuses at once a body whose declared length is over the cap.
    pub(crate) fn new(response: reqwest::Response, limits: BodyLimits) -> Result<Self, BodyError> {
        if response
            .content_length()
            .is_some_and(|len| len > limits.max_bytes)
        {
            return Err(BodyError::TooLarge);
        }
        Ok(Self {
            response,
            limits,
            read: 0,
        })
    }

    /// The next chunk, or `None` at the end of the body.
    pub(crate) async fn chunk(&mut self) -> Result<Option<Bytes>, BodyError> {
        let wait_until = self.limits.deadline.min(Instant::now() + self.limits.idle);
        let chunk = tokio::time::timeout_at(wait_until.into(), self.response.chunk())
            .await
            .map_err(|_| BodyError::Timeout)?
            .map_err(|err| {
                if err.is_timeout() {
                    BodyError::Timeout
                } else {
                    BodyError::Broken(err)
                }
            })?;
        if let Some(chunk) = &chunk {
            self.read = self.read.saturating_add(chunk.len() as u64);
            if self.read > self.limits.max_bytes {
                return Err(BodyError::TooLarge);
            }
        }
        Ok(chunk)
    }

    /// The rest of the body.
    pub(crate) async fn read_all(mut self) -> Result<Vec<u8>, BodyError> {
        let mut body = Vec::new();
        while let Some(chunk) = self.chunk().await? {
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}
