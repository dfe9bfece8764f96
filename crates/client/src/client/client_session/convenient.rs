//! The convenient transaction API (`with_transaction`): start, run the callback, commit,
//! and retry as the spec's loop does within 120 seconds — the whole callback again on a
//! `TransientTransactionError`, the commit again on an `UnknownTransactionCommitResult`.
#![allow(
    clippy::disallowed_methods,
    reason = "the retry loop's 120-second limit starts from the clock"
)]

use std::time::Duration;

use super::transaction::UNKNOWN_TRANSACTION_COMMIT_RESULT;
use super::txn::TransactionState;
use super::{ClientSession, TransactionOptions};
use crate::client::action::BoxFuture;
use crate::error::{Result, TRANSIENT_TRANSACTION_ERROR};

/// How long `with_transaction` keeps retrying.
const WITH_TRANSACTION_LIMIT: Duration = Duration::from_secs(120);
/// MaxTimeMSExpired: a commit that ran out of its `maxCommitTimeMS` is not retried.
const MAX_TIME_MS_EXPIRED: i32 = 50;

impl ClientSession {
    /// Runs `callback` in a transaction and commits it, retrying within 120 seconds: the
    /// whole transaction when an error carries `TransientTransactionError`, the commit when
    /// it carries `UnknownTransactionCommitResult`. The callback gets the session (pass it
    /// to the operations with `.session(..)`) and `context`, through which it may borrow
    /// what it needs, and returns a boxed future:
    ///
    /// ```no_run
    /// # async fn f(client: mongo_client::Client) -> mongo_client::Result<()> {
    /// use mongo_client::bson::doc;
    /// let coll = client.database("db").collection::<mongo_client::bson::Document>("c");
    /// let mut session = client.start_session(None)?;
    /// session
    ///     .with_transaction(
    ///         &coll,
    ///         |s, coll| {
    ///             Box::pin(async move {
    ///                 coll.insert_one(doc! {"x": 1}).session(s).await?;
    ///                 Ok(())
    ///             })
    ///         },
    ///         None,
    ///     )
    ///     .await?;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// A callback that commits or aborts the transaction itself ends the loop with its
    /// value.
    ///
    /// # Errors
    /// The callback's error (after aborting the transaction), or the commit's.
    pub async fn with_transaction<C, R, F>(
        &mut self,
        mut context: C,
        mut callback: F,
        options: impl Into<Option<TransactionOptions>>,
    ) -> Result<R>
    where
        F: for<'a> FnMut(&'a mut ClientSession, &'a mut C) -> BoxFuture<'a, Result<R>>,
    {
        let options = options.into();
        let start = crate::conn::clock();
        let within = || start.elapsed() < WITH_TRANSACTION_LIMIT;
        'transaction: loop {
            self.start_transaction(options.clone())?;
            let value = match callback(self, &mut context).await {
                Ok(v) => v,
                Err(e) => {
                    if matches!(
                        self.transaction_state(),
                        TransactionState::Starting | TransactionState::InProgress
                    ) {
                        let _ = self.abort_transaction().await;
                    }
                    if e.has_label(TRANSIENT_TRANSACTION_ERROR) && within() {
                        continue 'transaction;
                    }
                    return Err(e);
                }
            };
            if matches!(
                self.transaction_state(),
                TransactionState::None
                    | TransactionState::Aborted
                    | TransactionState::Committed
                    | TransactionState::CommittedEmpty
            ) {
                return Ok(value);
            }
            loop {
                match self.commit_transaction().await {
                    Ok(()) => return Ok(value),
                    Err(e) => {
                        if e.has_label(UNKNOWN_TRANSACTION_COMMIT_RESULT)
                            && e.code() != Some(MAX_TIME_MS_EXPIRED)
                            && within()
                        {
                            continue;
                        }
                        if e.has_label(TRANSIENT_TRANSACTION_ERROR) && within() {
                            continue 'transaction;
                        }
                        return Err(e);
                    }
                }
            }
        }
    }
}
