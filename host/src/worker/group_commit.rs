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

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use crate::store::{Commit, Committed, Store, StoreError};

/// Most commits written in one transaction: bounds one statement's size and
/// how long a group holds its unit rows.
const MAX_GROUP: usize = 256;

struct Request {
    commit: Commit,
    reply: oneshot::Sender<Result<Committed, StoreError>>,
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
            .send(Request { commit, reply })
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

async fn run(store: Arc<dyn Store>, mut requests: mpsc::UnboundedReceiver<Request>) {
    while let Some(first) = requests.recv().await {
        let mut commits = vec![first.commit];
        let mut replies = vec![first.reply];
        while commits.len() < MAX_GROUP {
            match requests.try_recv() {
                Ok(request) => {
                    commits.push(request.commit);
                    replies.push(request.reply);
                }
                Err(_) => break,
            }
        }
        metrics::histogram!("sluice_group_commit_size").record(commits.len() as f64);
        match store.commit(&commits).await {
            Ok(results) => {
                for (reply, result) in replies.into_iter().zip(results) {
                    let _ = reply.send(result);
                }
            }
            Err(err) if replies.len() == 1 => {
                let _ = replies.pop().expect("one reply").send(Err(err));
            }
            Err(err) => {
                for reply in replies {
                    let _ = reply.send(Err(err.for_each_commit()));
                }
            }
        }
    }
}

/// The committer is gone: only at shutdown, after the unit tasks ended.
fn stopped() -> StoreError {
    StoreError::Unavailable(sqlx::Error::PoolClosed)
}
