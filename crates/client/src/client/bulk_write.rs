//! [`Client::bulk_write`]: the client-level bulk write (MongoDB 8.0's `bulkWrite` command on
//! `admin`) over models of any namespaces.
//!
//! The models are checked and encoded once (`operation::client_bulk`), then sent in as many
//! `bulkWrite` commands as the selected server's limits need, each through the executor as
//! its own operation run (its own transaction number when the bulk write is retryable: no
//! updateMany or deleteMany). After each command the results cursor is read to its end
//! (getMores on the same server, in the same session, on the same connection behind a load
//! balancer) before the next command goes out: its entries carry the write errors, and the
//! per-model results when `verboseResults` is on. An ordered bulk write stops after the
//! command whose cursor reported a write error; write concern errors never stop it. A
//! network, selection or command error stops it at once (the open cursor is killed).
//!
//! Errors: a write error or write concern error ends in a [`ClientBulkWriteError`] with
//! every write error by model index and the partial result when some write is known to have
//! succeeded; a top-level error comes as it is when nothing was observed before it, else
//! inside the [`ClientBulkWriteError`] with what was.

use super::Client;
use super::cursor::CursorCore;
use super::executor::{Executed, Route};
use crate::crud::{
    ClientBulkWriteError, ClientBulkWriteOptions, ClientBulkWriteResult, ClientWriteModel,
};
use crate::error::{Error, Result, WriteConcernError};
use crate::operation::{ClientBulkWrite, GetMoreOptions, Tally, prepare_client_bulk};

/// What a client bulk write observed so far.
struct Progress {
    tally: Tally,
    write_concern_errors: Vec<WriteConcernError>,
    batch_starts: Vec<usize>,
}

impl Progress {
    fn observed_anything(&self) -> bool {
        self.tally.any_success
            || !self.tally.write_errors.is_empty()
            || !self.write_concern_errors.is_empty()
    }

    /// The error of a bulk write that ends with `top_level` (or with write errors or write
    /// concern errors only).
    fn failure(self, top_level: Option<Error>) -> Error {
        if !self.observed_anything()
            && let Some(e) = top_level
        {
            return e;
        }
        let Progress {
            tally,
            write_concern_errors,
            batch_starts,
        } = self;
        let partial_result = tally.any_success.then_some(tally.result);
        let failure = ClientBulkWriteError {
            error: top_level,
            write_concern_errors,
            write_errors: tally.write_errors,
            partial_result,
            batch_starts,
        };
        Error::from_client_bulk_write(failure)
    }
}

impl Client {
    /// The client-level bulk write (see [`Client::bulk_write`]).
    pub(crate) async fn exec_bulk_write(
        &self,
        models: Vec<ClientWriteModel>,
        o: ClientBulkWriteOptions,
    ) -> Result<ClientBulkWriteResult> {
        let ordered = o.ordered.unwrap_or(true);
        let verbose = o.verbose_results.unwrap_or(false);
        let prepared = prepare_client_bulk(models)?;
        let acknowledged = match &o.write_concern {
            Some(wc) => wc.is_acknowledged(),
            None => self.acknowledged(),
        };
        if !acknowledged && verbose {
            return Err(Error::invalid_argument(
                "Cannot request unacknowledged write concern and verbose results",
            ));
        }
        if !acknowledged && ordered {
            return Err(Error::invalid_argument(
                "Cannot request unacknowledged write concern and ordered writes",
            ));
        }
        let own_write_concern = o.write_concern.as_ref().and_then(|wc| wc.to_document());
        let mut op = ClientBulkWrite::new(prepared, &o, own_write_concern, acknowledged);
        let mut progress = Progress {
            tally: Tally::new(verbose, acknowledged),
            write_concern_errors: Vec::new(),
            batch_starts: Vec::new(),
        };
        while !op.is_finished() {
            let batch_number = progress.batch_starts.len();
            let executed = match self
                .execute(&mut op, self.context(Route::Select), None)
                .await
            {
                Ok(executed) => executed,
                Err(e) => {
                    let models = op.in_flight();
                    let e = e.or_detail(format!(
                        "client bulk write command {batch_number} (models {} to {})",
                        models.start,
                        models.end.saturating_sub(1)
                    ));
                    return Err(progress.failure(Some(e)));
                }
            };
            let Executed {
                output: mut batch,
                address,
                pinned,
                session,
                explicit,
            } = executed;
            progress.batch_starts.push(batch.start);
            let mut stop = false;
            if let Some(reply) = batch.cursor.take() {
                let executed = Executed {
                    output: reply,
                    address,
                    pinned,
                    session,
                    explicit,
                };
                let mut cursor = CursorCore::new(
                    self,
                    executed,
                    "admin",
                    "$cmd.bulkWrite",
                    GetMoreOptions::default(),
                );
                loop {
                    let entry = match cursor.try_next().await {
                        Ok(Some(entry)) => entry,
                        Ok(None) => break,
                        Err(e) => {
                            cursor.close().await;
                            progress.tally.add_summary(&batch, ordered);
                            return Err(progress.failure(Some(e)));
                        }
                    };
                    match progress
                        .tally
                        .entry(&entry, batch.start, batch.len, op.models())
                    {
                        Ok(Some(_)) => stop |= ordered,
                        Ok(None) => {}
                        Err(e) => {
                            cursor.close().await;
                            progress.tally.add_summary(&batch, ordered);
                            return Err(progress.failure(Some(e)));
                        }
                    }
                }
            }
            progress.tally.add_summary(&batch, ordered);
            if let Some(wce) = batch.write_concern_error.take() {
                progress.write_concern_errors.push(wce);
            }
            if stop {
                break;
            }
        }
        if progress.tally.write_errors.is_empty() && progress.write_concern_errors.is_empty() {
            return Ok(progress.tally.result);
        }
        Err(progress.failure(None))
    }
}
