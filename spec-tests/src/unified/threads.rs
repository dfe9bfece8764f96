//! Thread entities: a task that runs the operations `runOnThread` gives it, in order, and
//! reports the first failure to `waitForThread`.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::mpsc;

use super::{BoxFuture, Fail};

type Job = BoxFuture<'static, Result<(), Fail>>;

/// A runner "thread".
pub(crate) struct ThreadEntity {
    sender: Mutex<Option<mpsc::UnboundedSender<Job>>>,
    handle: tokio::sync::Mutex<Option<tokio::task::JoinHandle<Result<(), Fail>>>>,
}

impl ThreadEntity {
    /// Starts an idle thread.
    pub(crate) fn start() -> Arc<ThreadEntity> {
        let (tx, mut rx) = mpsc::unbounded_channel::<Job>();
        let handle = tokio::spawn(async move {
            let mut first: Result<(), Fail> = Ok(());
            while let Some(job) = rx.recv().await {
                let r = job.await;
                if first.is_ok() {
                    first = r;
                }
            }
            first
        });
        Arc::new(ThreadEntity {
            sender: Mutex::new(Some(tx)),
            handle: tokio::sync::Mutex::new(Some(handle)),
        })
    }

    /// Schedules an operation; it starts at once if the thread is idle.
    pub(crate) fn run(&self, job: Job) -> Result<(), Fail> {
        match &*self.sender.lock() {
            Some(tx) => tx
                .send(job)
                .map_err(|_| Fail::runner("the thread has stopped")),
            None => Err(Fail::runner("the thread was already waited for")),
        }
    }

    /// Tells the thread no more operations come and waits (10 s at most) for it to finish.
    pub(crate) async fn wait(&self) -> Result<(), Fail> {
        self.sender.lock().take();
        let Some(handle) = self.handle.lock().await.take() else {
            return Ok(());
        };
        match tokio::time::timeout(Duration::from_secs(10), handle).await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => Err(Fail::runner(format!("the thread panicked: {e}"))),
            Err(_) => Err(Fail::runner(
                "waitForThread: the thread did not finish within 10 s",
            )),
        }
    }
}
