//! Group commit's rule for a refusal: one commit the database refuses must
//! not fail the others it was written with.
//!
//! A group is one transaction, and Postgres aborts a whole transaction on the
//! first error (SQLite rolls back the statement but the store ends the
//! transaction too), so a refusal (a value the database cannot store, say)
//! names no commit. The group is then written again one commit per
//! transaction: the refused commit reports the refusal, the others land.

use std::future::Future;
use std::pin::Pin;

use super::{Commit, Committed, Result, StoreError};

/// A group's transaction in progress.
pub(crate) type Writing<'a> =
    Pin<Box<dyn Future<Output = Result<Vec<Result<Committed>>>> + Send + 'a>>;

/// Runs `write` on the whole group, and on each commit alone if the database
/// refused the group.
pub(crate) async fn split_on_refusal<'a>(
    commits: &'a [Commit],
    write: impl Fn(&'a [Commit]) -> Writing<'a>,
) -> Result<Vec<Result<Committed>>> {
    match write(commits).await {
        Err(StoreError::Refused(_)) if commits.len() > 1 => {
            let mut results = Vec::with_capacity(commits.len());
            for commit in commits {
                let result = match write(std::slice::from_ref(commit)).await {
                    Ok(mut one) => one.pop().expect("one result per commit"),
                    Err(refused @ StoreError::Refused(_)) => Err(refused),
                    // An outage half-way: the caller writes the whole group
                    // again, and the commits that landed find their items
                    // done.
                    Err(err) => return Err(err),
                };
                results.push(result);
            }
            Ok(results)
        }
        written => written,
    }
}

impl StoreError {
    /// The same kind of error for each commit of a group that failed as a
    /// whole (the error itself cannot be cloned): an outage stays an outage
    /// to wait out, contention stays contention, with the same message.
    pub(crate) fn for_each_commit(&self) -> StoreError {
        let message = || sqlx::Error::Protocol(self.to_string());
        match self {
            StoreError::Contended(_) => StoreError::Contended(message()),
            StoreError::Refused(_) => StoreError::Refused(message()),
            _ => StoreError::Unavailable(message()),
        }
    }
}
