//! Group commit: the completions of every slot written together.
//!
//! A completion on its own costs a transaction and, on Postgres, a WAL flush;
//! with many slots finishing calls at once, those round trips and flushes,
//! not the calls, were what the host spent its time on. Unit tasks hand
//! their completions to one committer task instead, which writes whatever
//! has queued up in one [`Store::commit`] while the previous group is being
//! written. Nothing waits for a timer: an idle host writes a lone completion
//! at once, and a busy one writes bigger groups. Each commit is still fenced
//! by its own claim and lands (or not) on its own, and a unit task hears
//! that its completion landed only once the group's transaction committed,
//! so durability is what it was.
//!
//! Releases (a unit given back at shutdown, at the end of its fair share or
//! with nothing ready) ride the same queue and are written together in one
//! statement after the group's commits: a host stopping with many slots
//! gives its units back in a few writes, not one per unit.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use crate::store::{Claim, Commit, Committed, Store, StoreError};

/// Most commits written in one transaction: bounds one statement's size and
/// how long a group holds its unit rows.
const MAX_GROUP: usize = 256;

enum Request {
    Commit {
        commit: Commit,
        reply: oneshot::Sender<Result<Committed, StoreError>>,
    },
    Release {
        claim: Claim,
        reply: oneshot::Sender<Result<(), StoreError>>,
    },
}

/// The committer's queue; cloned into every unit task.
#[derive(Clone)]
pub(crate) struct GroupCommit {
    queue: mpsc::UnboundedSender<Request>,
}

impl GroupCommit {
    /// Starts the committer task on the current runtime; it ends when the
    /// last handle is dropped.
    pub(crate) fn start(store: Arc<dyn Store>) -> Self {
        let (queue, requests) = mpsc::unbounded_channel();
        tokio::spawn(run(store, requests));
        Self { queue }
    }

    /// Writes `commit` with whatever else is queued, and says what became of
    /// it once the group's transaction is over.
    pub(crate) async fn commit(&self, commit: Commit) -> Result<Committed, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Request::Commit { commit, reply })
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }

    /// Gives `claim`'s unit back with whatever other releases are queued
    /// ([`StoreError::ClaimLost`] if the claim is no longer held).
    pub(crate) async fn release(&self, claim: Claim) -> Result<(), StoreError> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Request::Release { claim, reply })
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

async fn run(store: Arc<dyn Store>, mut requests: mpsc::UnboundedReceiver<Request>) {
    while let Some(first) = requests.recv().await {
        let mut group = Group::default();
        group.add(first);
        while group.len() < MAX_GROUP {
            match requests.try_recv() {
                Ok(request) => group.add(request),
                Err(_) => break,
            }
        }
        if !group.commits.is_empty() {
            metrics::histogram!("sluice_group_commit_size").record(group.commits.len() as f64);
            let written = store.commit(&group.commits).await;
            answer(group.commit_replies, written);
        }
        if !group.releases.is_empty() {
            let released = store.release_all(&group.releases).await;
            answer(group.release_replies, released);
        }
    }
}

/// What one round of the committer writes.
#[derive(Default)]
struct Group {
    commits: Vec<Commit>,
    commit_replies: Vec<oneshot::Sender<Result<Committed, StoreError>>>,
    releases: Vec<Claim>,
    release_replies: Vec<oneshot::Sender<Result<(), StoreError>>>,
}

impl Group {
    fn add(&mut self, request: Request) {
        match request {
            Request::Commit { commit, reply } => {
                self.commits.push(commit);
                self.commit_replies.push(reply);
            }
            Request::Release { claim, reply } => {
                self.releases.push(claim);
                self.release_replies.push(reply);
            }
        }
    }

    fn len(&self) -> usize {
        self.commits.len() + self.releases.len()
    }
}

/// Hands each request its own result, or the group's error to all of them
/// (as the lone request's own error when it was alone).
fn answer<T>(
    replies: Vec<oneshot::Sender<Result<T, StoreError>>>,
    written: Result<Vec<Result<T, StoreError>>, StoreError>,
) {
    match written {
        Ok(results) => {
            for (reply, result) in replies.into_iter().zip(results) {
                let _ = reply.send(result);
            }
        }
        Err(err) if replies.len() == 1 => {
            let _ = replies
                .into_iter()
                .next()
                .expect("one reply")
                .send(Err(err));
        }
        Err(err) => {
            for reply in replies {
                let _ = reply.send(Err(err.for_each_commit()));
            }
        }
    }
}

/// The committer is gone: only at shutdown, after the unit tasks ended.
fn stopped() -> StoreError {
    StoreError::Unavailable(sqlx::Error::PoolClosed)
}
