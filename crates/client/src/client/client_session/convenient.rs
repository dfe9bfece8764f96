//! The convenient transaction API (`with_transaction`): start, run the callback, commit,
//! and retry as the spec's loop does within 120 seconds — the whole callback again on a
//! `TransientTransactionError`, the commit again on an `UnknownTransactionCommitResult`.
#![allow(
    clippy::disallowed_methods,
    reason = "the retry loop's 120-second limit starts from the clock"
)]

use std::time::Duration;

use super::transaction::{DeadlineGuard, UNKNOWN_TRANSACTION_COMMIT_RESULT};
use super::txn::TransactionState;
use super::{ClientSession, TransactionOptions};
use crate::client::action::BoxFuture;
use crate::client::context::deadline_of;
use crate::error::{Result, TRANSIENT_TRANSACTION_ERROR, TimeoutStage};

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
        context: C,
        callback: F,
        options: impl Into<Option<TransactionOptions>>,
    ) -> Result<R>
    where
        F: for<'a> FnMut(&'a mut ClientSession, &'a mut C) -> BoxFuture<'a, Result<R>>,
    {
        self.with_transaction_within(None, context, callback, options)
            .await
    }

    /// As [`with_transaction`](Self::with_transaction), within `timeout` (its `timeoutMS`;
    /// `None`: the session's `defaultTimeoutMS`, else the client's). The callback's
    /// operations in the session keep the call's deadline, and may not set their own
    /// `timeoutMS`; an abort after a failed callback gets the timeout afresh.
    ///
    /// # Errors
    /// As [`with_transaction`](Self::with_transaction); a timeout error, with the last
    /// error as its source, when the deadline passes before the transaction commits.
    pub async fn with_transaction_within<C, R, F>(
        &mut self,
        timeout: impl Into<Option<Duration>>,
        mut context: C,
        mut callback: F,
        options: impl Into<Option<TransactionOptions>>,
    ) -> Result<R>
    where
        F: for<'a> FnMut(&'a mut ClientSession, &'a mut C) -> BoxFuture<'a, Result<R>>,
    {
        let options = options.into();
        let start = crate::conn::clock();
        // With timeoutMS (given, else the session's defaultTimeoutMS, else the client's),
        // one deadline bounds the whole call, and the callback's operations in the session
        // keep it; without, the spec's 120 seconds bound the retries.
        let given = timeout.into();
        let timeout = given
            .or(self.shared.lock().default_timeout)
            .or(self.client.timeout());
        let deadline = timeout.map(|t| deadline_of(Some(t)));
        let within = || match deadline {
            Some(Some(d)) => crate::conn::clock() < d,
            Some(None) => true,
            None => start.elapsed() < WITH_TRANSACTION_LIMIT,
        };
        // An error that ends the loop because the time is up is a timeout error, with the
        // error as its source.
        let expired = |e: crate::error::Error| match deadline {
            Some(_) if !within() => e.wrapped_in_timeout(TimeoutStage::Between),
            _ => e,
        };
        'transaction: loop {
            self.start_transaction(options.clone())?;
            let scope = DeadlineGuard::set(&self.shared, deadline);
            let outcome = callback(self, &mut context).await;
            drop(scope);
            let value = match outcome {
                Ok(v) => v,
                Err(e) => {
                    if matches!(
                        self.transaction_state(),
                        TransactionState::Starting | TransactionState::InProgress
                    ) {
                        // The abort gets the timeout afresh.
                        let _ = self.abort_transaction_within(given).await;
                    }
                    if e.has_label(TRANSIENT_TRANSACTION_ERROR) && within() {
                        continue 'transaction;
                    }
                    if e.has_label(TRANSIENT_TRANSACTION_ERROR) {
                        return Err(expired(e));
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
                let scope = DeadlineGuard::set(&self.shared, deadline);
                let committed = self.commit_transaction().await;
                drop(scope);
                match committed {
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
                        return Err(expired(e));
                    }
                }
            }
        }
    }
}
