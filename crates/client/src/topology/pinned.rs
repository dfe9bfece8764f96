//! Selecting the one server a transaction is pinned to (transactions spec, mongos pinning).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use mongo_events::{ServerAddress, ServerType, TopologyType};

use super::{Server, Topology, deadline_after};
use crate::error::{Error, ErrorKind, Result};

impl Topology {
    /// The server at `address` once it is known (a transaction pinned to a mongos): while it
    /// is Unknown — an error in the transaction marked it so and cleared its pool — checks
    /// are requested and this waits for them, within serverSelectionTimeoutMS and
    /// `op_deadline`, as server selection waits. Counted as running one more operation, as
    /// [`server_at`](Self::server_at). Returns the topology's type with it.
    ///
    /// # Errors
    /// The server left the topology, stayed Unknown past the deadline, or the client closed.
    #[expect(
        clippy::disallowed_methods,
        reason = "I/O: waits for the monitor's checks until a deadline"
    )]
    pub(crate) async fn select_pinned(
        &self,
        address: &ServerAddress,
        op_deadline: Option<Instant>,
    ) -> Result<(Arc<Server>, TopologyType)> {
        let selection = deadline_after(
            tokio::time::Instant::now(),
            self.inner.settings.server_selection_timeout,
        );
        let deadline = match op_deadline.map(tokio::time::Instant::from_std) {
            Some(d) if d < selection => d,
            _ => selection,
        };
        loop {
            let notified = self.inner.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let st = self.inner.state.lock();
                if self.inner.closed.load(Ordering::SeqCst) {
                    return Err(Error::new(ErrorKind::Shutdown));
                }
                let desc = st.sdam.description();
                let (Some(server), Some(sd)) = (st.servers.get(address), desc.server(address))
                else {
                    return Err(Error::new(ErrorKind::ServerSelection(format!(
                        "server {address} is no longer part of the topology"
                    ))));
                };
                if sd.server_type != ServerType::Unknown {
                    server.operations.fetch_add(1, Ordering::Relaxed);
                    return Ok((server.clone(), desc.topology_type()));
                }
                server.request_check(false);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(Error::new(ErrorKind::ServerSelection(format!(
                    "the pinned server {address} stayed unknown until the deadline"
                ))));
            }
            let _ = tokio::time::timeout_at(deadline, notified).await;
        }
    }
}
