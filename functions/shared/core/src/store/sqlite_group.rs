//! Group commit for SQLite's hot writes (claims and submits).
//!
//! SQLite has one writer, and with `synchronous=FULL` every commit waits for an fsync of the WAL. Committed
//! one at a time, claims and submits are capped by the disk's fsync rate (two commits per label), and each
//! waits behind all the others' fsyncs. Here one task owns the turn of the writer connection: it takes every
//! write that queued up while the previous commit was syncing, runs them in ONE transaction — each inside
//! its own savepoint, so a write that fails is undone alone and the others stand — commits once, and only
//! then answers each caller. Durability is unchanged: no caller hears "done" before the fsync that covers its
//! write; a commit that fails answers every write of the batch with an error (none of them happened).
//!
//! The other writes (queue admin, tokens, jobs) still take the writer connection directly; they simply
//! queue for it between two batches.

use std::any::Any;
use std::panic::AssertUnwindSafe;

use futures::FutureExt;
use futures::future::BoxFuture;
use sqlx::{Acquire, SqliteConnection, SqlitePool};
use tokio::sync::{mpsc, oneshot};

use crate::error::{Error, Result};

type Output = Result<Box<dyn Any + Send>>;
type Op = Box<dyn for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Output> + Send>;

struct Queued {
    op: Op,
    reply: oneshot::Sender<Output>,
}

/// Most writes in one transaction (bounds the latency a batch adds to its first write).
const MAX_BATCH: usize = 256;

/// Hands writes to the group-commit task; cloned with the store.
#[derive(Debug, Clone)]
pub struct GroupWriter {
    queue: mpsc::Sender<Queued>,
}

impl GroupWriter {
    /// Starts the task that owns the writer's turn; it ends when the last `GroupWriter` is dropped.
    pub fn start(writer: SqlitePool) -> Self {
        let (tx, rx) = mpsc::channel(4 * MAX_BATCH);
        tokio::spawn(run(writer, rx));
        Self { queue: tx }
    }

    /// Runs `op` in the next group transaction and answers after that transaction committed. `op` must do
    /// nothing but database work on the connection it is given (it runs on the writer's turn).
    pub async fn write<T, F>(&self, op: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Result<T>> + Send + 'static,
    {
        let op: Op = Box::new(move |conn| {
            let fut = op(conn);
            Box::pin(async move { fut.await.map(|v| Box::new(v) as Box<dyn Any + Send>) })
        });
        let (reply, answer) = oneshot::channel();
        self.queue.send(Queued { op, reply }).await.map_err(|_| Error::Unavailable("database writer"))?;
        let out = answer.await.map_err(|_| Error::Unavailable("database writer"))??;
        out.downcast::<T>()
            .map(|b| *b)
            .map_err(|_| Error::Internal(anyhow::anyhow!("group writer: answer of the wrong type")))
    }
}

async fn run(writer: SqlitePool, mut rx: mpsc::Receiver<Queued>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = rx.recv().await {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(q) => batch.push(q),
                Err(_) => break,
            }
        }
        run_batch(&writer, &mut batch).await;
    }
}

/// One transaction for the whole batch; answers every write once its fate is known.
async fn run_batch(writer: &SqlitePool, batch: &mut Vec<Queued>) {
    let size = batch.len();
    let mut done: Vec<(oneshot::Sender<Output>, Output)> = Vec::with_capacity(size);
    let committed = async {
        let mut conn = writer.acquire().await?;
        let mut tx = conn.begin().await?;
        for q in batch.drain(..) {
            let out = {
                let mut sp = tx.begin().await?;
                let out = match AssertUnwindSafe((q.op)(&mut sp)).catch_unwind().await {
                    Ok(out) => out,
                    Err(_) => Err(Error::Internal(anyhow::anyhow!("a database write panicked"))),
                };
                if out.is_ok() {
                    sp.commit().await?;
                } else {
                    sp.rollback().await?;
                }
                out
            };
            done.push((q.reply, out));
        }
        tx.commit().await?;
        Ok::<_, sqlx::Error>(())
    }
    .await;
    match committed {
        Ok(()) => {
            for (reply, out) in done {
                let _ = reply.send(out);
            }
        }
        Err(e) => {
            // Nothing of this batch is in the database: every write fails, none half-done.
            tracing::error!(error = %e, writes = size, "group commit failed; the batch was rolled back");
            // (writes not yet run when it failed were dropped with their reply: their callers hear the same)
            for (reply, _) in done {
                let _ = reply.send(Err(Error::Unavailable("database")));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};

    async fn pool(dir: &std::path::Path) -> SqlitePool {
        let opts = SqliteConnectOptions::new()
            .filename(dir.join("g.db"))
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal);
        let p = SqlitePoolOptions::new().max_connections(1).connect_with(opts).await.unwrap();
        sqlx::query("CREATE TABLE t (n INTEGER PRIMARY KEY)").execute(&p).await.unwrap();
        p
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failing_write_is_undone_alone_and_the_others_of_its_batch_commit() {
        // Arrange
        let dir = tempfile::tempdir().unwrap();
        let p = pool(dir.path()).await;
        let g = GroupWriter::start(p.clone());

        // Act: 200 concurrent writes; every 7th inserts its row and then fails
        let tasks: Vec<_> = (0..200i64)
            .map(|n| {
                let g = g.clone();
                tokio::spawn(async move {
                    g.write(move |c| {
                        Box::pin(async move {
                            sqlx::query("INSERT INTO t (n) VALUES (?)").bind(n).execute(&mut *c).await?;
                            if n % 7 == 0 {
                                Err(Error::BadRequest(format!("write {n} fails")))
                            } else {
                                Ok(n)
                            }
                        })
                    })
                    .await
                })
            })
            .collect();
        let mut answers = Vec::new();
        for t in tasks {
            answers.push(t.await.unwrap());
        }

        // Assert: each caller heard its own outcome, and the table holds exactly the successful writes
        for (n, a) in answers.iter().enumerate() {
            match a {
                Ok(v) => assert_eq!(*v, n as i64),
                Err(e) => assert!(n % 7 == 0 && e.to_string().contains("fails"), "{n}: {e}"),
            }
        }
        let stored: Vec<i64> = sqlx::query_scalar("SELECT n FROM t ORDER BY n").fetch_all(&p).await.unwrap();
        let expected: Vec<i64> = (0..200).filter(|n| n % 7 != 0).collect();
        assert_eq!(stored, expected);
    }

    #[tokio::test]
    async fn a_write_that_panics_fails_alone() {
        let dir = tempfile::tempdir().unwrap();
        let p = pool(dir.path()).await;
        let g = GroupWriter::start(p.clone());
        let boom = g.write::<(), _>(|_c| Box::pin(async move { panic!("boom") })).await;
        assert!(matches!(boom, Err(Error::Internal(_))));
        let ok = g
            .write(|c| {
                Box::pin(async move {
                    sqlx::query("INSERT INTO t (n) VALUES (1)").execute(&mut *c).await?;
                    Ok(1)
                })
            })
            .await
            .unwrap();
        assert_eq!(ok, 1);
    }
}
