//! Opening a connection: the stream (TCP or unix socket, TLS), the handshake (hello with
//! client metadata, compression negotiation, speculative authentication) and the
//! authentication conversations, and keeping a connection's logins up to date
//! ([`Connection::check_auth`]).

use std::sync::Arc;

use mongo_auth::{Authenticator, CredentialSet, Step};
use mongo_events::command::ConnectionInfo;
use mongo_events::{ConnectionId, Generation, ServerAddress, ServerType};
use mongo_wire::{MessageReader, MessageWriter, SizeLimits};

use super::stream::{self, StreamConfig};
use super::{
    CommandParams, Connection, ConnectionOptions, HelloReply, OP_MSG_WIRE_VERSION, State, handshake,
};
use crate::error::{Error, ErrorKind, Establishing, Result};
use crate::monitoring::CommandMonitor;
use crate::operation::{ConnectionDescription, is_ok};

fn tls_config_of(options: &ConnectionOptions) -> StreamConfig {
    StreamConfig {
        connect_timeout: options.connect_timeout,
        tls: options.tls.clone(),
        proxy: options.proxy.clone(),
        dns: options.dns.clone(),
    }
}

/// Runs `fut` (a stage of the handshake, `what`) until `deadline`, the end of
/// connectTimeoutMS (`limit`); past it, a network timeout.
async fn within<T>(
    deadline: Option<std::time::Instant>,
    limit: Option<std::time::Duration>,
    what: &str,
    fut: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    let Some(at) = deadline else {
        return fut.await;
    };
    match tokio::time::timeout_at(at.into(), fut).await {
        Ok(r) => r,
        Err(_) => Err(Error::io(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!(
                "connectTimeoutMS ({}) expired during {what}",
                limit.map_or_else(String::new, |l| format!("{l:?}"))
            ),
        ))),
    }
}

/// Feeds a server reply to an authentication conversation. A SCRAM step may run PBKDF2 (as
/// many iterations as the server asks, up to the credential's bound), which would stall an
/// async worker thread for as long: SCRAM steps run on tokio's blocking pool. The
/// conversation itself stays sans-I/O; where it runs is decided here.
async fn advance(mut auth: Authenticator, reply: bson::Document) -> Result<(Authenticator, Step)> {
    use mongo_auth::AuthMechanism;
    if !matches!(
        auth.mechanism(),
        AuthMechanism::ScramSha1 | AuthMechanism::ScramSha256
    ) {
        let step = auth.handle_reply(&reply)?;
        return Ok((auth, step));
    }
    let joined = tokio::task::spawn_blocking(move || {
        let step = auth.handle_reply(&reply);
        (auth, step)
    })
    .await;
    match joined {
        Ok((auth, step)) => Ok((auth, step?)),
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        // The runtime is shutting down.
        Err(_) => Err(Error::new(ErrorKind::Shutdown)),
    }
}

impl Connection {
    /// Opens a connection to `address`: TCP (or unix socket), TLS when configured, then the
    /// handshake (hello with metadata, compression negotiation, speculative authentication)
    /// and authentication. `generation` is the pool generation it belongs to.
    ///
    /// # Errors
    /// Network errors, TLS errors, a handshake the server refused, authentication errors,
    /// and (load-balanced mode) a server that reports no `serviceId`.
    pub async fn connect(
        address: ServerAddress,
        id: ConnectionId,
        generation: Generation,
        options: Arc<ConnectionOptions>,
    ) -> Result<Connection> {
        Self::connect_in_pool(address, id, generation, options, move |_| generation).await
    }

    /// [`Connection::connect`] for a pool: behind a load balancer, `service_generation` gives
    /// the pool's generation of the service the `hello` reported, read as soon as the `hello`
    /// completes. An authentication error then carries that generation, so that SDAM can
    /// tell it is stale when the service was cleared in the meantime.
    pub(crate) async fn connect_in_pool(
        address: ServerAddress,
        id: ConnectionId,
        generation: Generation,
        options: Arc<ConnectionOptions>,
        service_generation: impl FnOnce(mongo_events::ServiceId) -> Generation + Send,
    ) -> Result<Connection> {
        let started = super::clock();
        let limit = options.connect_timeout.filter(|t| !t.is_zero());
        let stream = stream::connect(&address, &tls_config_of(&options))
            .await
            .map_err(|e| {
                e.with_address(&address)
                    .while_establishing(Establishing::Hello, generation)
            })?;
        let info = ConnectionInfo {
            address: address.clone(),
            driver_connection_id: id,
            server_connection_id: None,
        };
        let monitor = CommandMonitor {
            listeners: options.listeners.clone(),
        };
        let mut conn = Connection {
            id,
            address: address.clone(),
            stream,
            reader: MessageReader::default(),
            writer: MessageWriter::new(),
            hello: HelloReply::default(),
            description: ConnectionDescription {
                address: address.clone(),
                server_type: ServerType::Unknown,
                max_wire_version: 0,
                limits: SizeLimits::default(),
                service_id: None,
                logical_session_timeout_minutes: None,
            },
            compressor: None,
            generation,
            auth: CredentialSet::new(),
            options,
            monitor,
            state: State::Ready,
            info,
            established_at: super::clock(),
            last_used: super::clock(),
            in_flight: None,
            lazy_batch: None,
            raw_batch: None,
            more_to_come: false,
            last_reply_id: 0,
            progress: super::pending::ReplyProgress::default(),
        };
        let address = conn.address.clone();
        // connectTimeoutMS bounds the whole establishment: a server that accepts and never
        // answers must not hold a pool's maxConnecting slot. The timeout is judged by the
        // stage it cut short (SDAM handles a timeout during authentication).
        let deadline = limit.and_then(|t| started.checked_add(t));
        let speculative = within(deadline, limit, "the hello", conn.hello_exchange())
            .await
            .map_err(|e| {
                e.with_address(&address)
                    .while_establishing(Establishing::Hello, generation)
            })?;
        let service_id = conn.description.service_id;
        let auth_generation = match service_id {
            Some(s) if conn.options.load_balanced => service_generation(s),
            _ => generation,
        };
        within(
            deadline,
            limit,
            "authentication",
            conn.authenticate(speculative),
        )
        .await
        .map_err(|e| {
            e.with_address(&address)
                .while_establishing(Establishing::Auth { service_id }, auth_generation)
        })?;
        Ok(conn)
    }

    /// The `hello` of the handshake (with client metadata, compression negotiation and the
    /// speculative authentication's first step, whose conversation it returns).
    async fn hello_exchange(&mut self) -> Result<Option<Authenticator>> {
        let options = self.options.clone();
        let use_hello = options.server_api.is_some() || options.load_balanced;
        let names: Vec<&str> = options.compressors.iter().map(|c| c.name()).collect();
        let mut hello = handshake::hello_command(
            use_hello,
            &options.metadata,
            &names,
            options.load_balanced,
            options.server_api.as_ref(),
        );
        let mut speculative = None;
        if let Some(cred) = &options.credential {
            mongo_auth::negotiate::add_negotiation(&mut hello, cred);
            if let Some(auth) = Authenticator::speculative(cred, &mongo_auth::generate_nonce())? {
                if let Some(cmd) = auth.speculative_command() {
                    hello.insert(mongo_auth::negotiate::SPECULATIVE_AUTHENTICATE, cmd);
                    speculative = Some(auth);
                }
            }
        }
        let reply = if use_hello {
            self.run_command("admin", hello, CommandParams::default())
                .await?
        } else {
            self.legacy_command("admin", &hello, None).await?
        };
        if !is_ok(&reply) {
            return Err(Error::from_reply(&reply));
        }
        let hello_reply = HelloReply::parse(reply);
        if hello_reply.max_wire_version < OP_MSG_WIRE_VERSION && use_hello {
            return Err(Error::new(ErrorKind::IncompatibleServer(
                "the server does not support OP_MSG".into(),
            )));
        }
        if options.load_balanced && hello_reply.service_id.is_none() {
            return Err(Error::new(ErrorKind::IncompatibleServer(
                "Driver attempted to initialize in load balancing mode, but the server does not \
                 support this mode (its hello reply has no serviceId)"
                    .into(),
            )));
        }
        self.info.server_connection_id = hello_reply.server_connection_id;
        self.reader
            .set_max_message_size(hello_reply.max_message_size_bytes);
        self.compressor = options
            .compressors
            .iter()
            .find(|c| hello_reply.compression.iter().any(|s| s == c.name()))
            .copied();
        self.description = ConnectionDescription {
            address: self.address.clone(),
            server_type: if options.load_balanced {
                ServerType::LoadBalancer
            } else {
                hello_reply.server_type
            },
            max_wire_version: hello_reply.max_wire_version,
            limits: hello_reply.size_limits(),
            service_id: hello_reply.service_id,
            logical_session_timeout_minutes: hello_reply.logical_session_timeout_minutes,
        };
        self.hello = hello_reply;
        Ok(speculative)
    }

    /// The authentication of the handshake, when a credential is configured: the speculative
    /// conversation when the `hello` reply continued it, else a negotiated one.
    async fn authenticate(&mut self, speculative: Option<Authenticator>) -> Result<()> {
        let options = self.options.clone();
        if let Some(cred) = &options.credential {
            let spec_reply = self
                .hello
                .raw
                .get_document(mongo_auth::negotiate::SPECULATIVE_AUTHENTICATE)
                .ok()
                .cloned();
            match (speculative, spec_reply) {
                (Some(auth), Some(first)) => {
                    let (auth, step) = advance(auth, first).await?;
                    self.converse(auth, step).await?;
                }
                _ => {
                    let auth = Authenticator::negotiated(
                        cred,
                        Some(&self.hello.raw),
                        &mongo_auth::generate_nonce(),
                    )?;
                    let step = Step::Send(auth.start_command());
                    self.converse(auth, step).await?;
                }
            }
            self.auth.mark_logged_in(cred);
        }
        Ok(())
    }

    /// Runs an authentication conversation from `step` to the end.
    async fn converse(&mut self, mut auth: Authenticator, mut step: Step) -> Result<()> {
        let source = auth.source().to_owned();
        while let Step::Send(cmd) = step {
            let reply = self
                .run_command(&source, cmd, CommandParams::default())
                .await?;
            if !is_ok(&reply) {
                let e = Error::from_reply(&reply);
                return Err(Error::new(ErrorKind::Auth(
                    mongo_auth::AuthError::CommandFailed {
                        code: e.code().unwrap_or(0),
                        code_name: reply.get_str("codeName").ok().map(str::to_owned),
                        message: reply.get_str("errmsg").unwrap_or_default().to_owned(),
                    },
                )));
            }
            (auth, step) = advance(auth, reply).await?;
        }
        Ok(())
    }

    /// Brings the connection's logins up to date with `credentials` (the client's credential
    /// set): logs out of sources no longer wanted, authenticates the missing ones.
    ///
    /// # Errors
    /// Network and authentication errors.
    pub async fn check_auth(&mut self, credentials: &[mongo_auth::Credential]) -> Result<()> {
        let plan = self.auth.plan(credentials);
        if plan.is_empty() {
            return Ok(());
        }
        for (source, cmd) in plan.logout_commands() {
            let reply = self
                .run_command(source, cmd, CommandParams::default())
                .await?;
            if !is_ok(&reply) {
                return Err(Error::from_reply(&reply));
            }
            self.auth.mark_logged_out(source);
        }
        for cred in &plan.authenticate {
            let auth = Authenticator::negotiated(
                cred,
                Some(&self.hello.raw),
                &mongo_auth::generate_nonce(),
            )?;
            let step = Step::Send(auth.start_command());
            self.converse(auth, step).await?;
            self.auth.mark_logged_in(cred);
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(
    clippy::disallowed_methods,
    reason = "the test measures elapsed wall time and spawns a silent server"
)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    #[tokio::test]
    async fn connect_timeout_bounds_the_handshake_and_names_the_stage() {
        // A listener that accepts and never answers: the hello hangs.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let hold = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((s, _)) = listener.accept().await {
                held.push(s);
            }
        });
        let options = ConnectionOptions {
            connect_timeout: Some(Duration::from_millis(200)),
            ..ConnectionOptions::default()
        };
        let started_at = Instant::now();
        let err = Connection::connect(
            ServerAddress::parse(&format!("127.0.0.1:{port}")).unwrap(),
            ConnectionId(1),
            Generation(3),
            Arc::new(options),
        )
        .await
        .map(|_| ())
        .unwrap_err();
        assert!(started_at.elapsed() < Duration::from_secs(5), "{err:?}");
        assert!(err.is_network_timeout(), "{err:?}");
        assert_eq!(
            err.establishing(),
            Some((Establishing::Hello, Generation(3)))
        );
        hold.abort();
    }

    #[tokio::test]
    async fn scram_steps_run_off_the_async_worker_threads() {
        use std::sync::atomic::{AtomicBool, Ordering};
        let cred = mongo_auth::Credential::builder()
            .username("u")
            .password("p")
            .build()
            .unwrap();
        let auth =
            Authenticator::new(&cred, mongo_auth::AuthMechanism::ScramSha256, "cnonce").unwrap();
        // On this single-threaded runtime the sibling can only run if the step yields the
        // worker while PBKDF2 runs.
        let ran = Arc::new(AtomicBool::new(false));
        let flag = ran.clone();
        let sibling = tokio::spawn(async move { flag.store(true, Ordering::SeqCst) });
        let server_first = "r=cnonceSERVER,s=c2FsdHNhbHRzYWx0,i=100000";
        let reply = bson::doc! {
            "conversationId": 1, "done": false, "ok": 1,
            "payload": bson::Binary {
                subtype: bson::spec::BinarySubtype::Generic,
                bytes: server_first.as_bytes().to_vec(),
            },
        };
        let (_auth, step) = advance(auth, reply).await.unwrap();
        assert!(matches!(step, Step::Send(_)));
        assert!(
            ran.load(Ordering::SeqCst),
            "PBKDF2 held the async worker thread"
        );
        sibling.await.unwrap();
    }

    async fn connect_err(address: &str, options: ConnectionOptions) -> Error {
        Connection::connect(
            ServerAddress::parse(address).unwrap(),
            ConnectionId(1),
            Generation(0),
            Arc::new(options),
        )
        .await
        .map(|_| ())
        .unwrap_err()
    }

    fn quick() -> ConnectionOptions {
        ConnectionOptions {
            connect_timeout: Some(Duration::from_secs(5)),
            ..ConnectionOptions::default()
        }
    }

    fn with_tls(tls: &crate::options::TlsOptions) -> ConnectionOptions {
        ConnectionOptions {
            tls: Some(crate::conn::tls::client_config(tls).unwrap()),
            ..quick()
        }
    }

    /// CMAP's backpressure: network errors and timeouts of the connect and the `hello`
    /// (I/O inside the TLS handshake included) may signal an overloaded server; DNS failures,
    /// certificate errors and authentication errors may not.
    #[tokio::test]
    async fn only_network_errors_up_to_the_hello_signal_overload() {
        // DNS: the name does not resolve.
        let dns = connect_err("no-such-host.invalid:27017", quick()).await;
        assert!(dns.is_network_error(), "{dns:?}");
        assert!(!dns.is_establishment_overload_signal(), "{dns:?}");

        // Connection refused: a network error.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = closed.local_addr().unwrap().port();
        drop(closed);
        let refused = connect_err(&format!("127.0.0.1:{port}"), quick()).await;
        assert!(refused.is_establishment_overload_signal(), "{refused:?}");

        // I/O inside the TLS handshake: the peer hangs up.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let hang_up = tokio::spawn(async move {
            while let Ok((s, _)) = listener.accept().await {
                drop(s);
            }
        });
        let tls = crate::options::TlsOptions::default();
        let eof = connect_err(&format!("localhost:{port}"), with_tls(&tls)).await;
        assert!(eof.is_establishment_overload_signal(), "{eof:?}");
        hang_up.abort();

        // Certificate validation: the testkit's certificate is not from a trusted CA.
        let certs = mongo_testkit::generate_test_certs().unwrap();
        let server = mongo_testkit::TestServer::start(
            mongo_testkit::ServerOptions::default()
                .with_tls(certs.server_tls())
                .with_user("u", "right"),
        )
        .await
        .unwrap();
        let port = server.address().port();
        let untrusted = connect_err(&format!("localhost:{port}"), with_tls(&tls)).await;
        assert!(untrusted.is_network_error(), "{untrusted:?}");
        assert!(
            !untrusted.is_establishment_overload_signal(),
            "{untrusted:?}"
        );

        // Authentication, after the hello.
        let trusted = crate::options::TlsOptions {
            ca_file: Some(certs.ca_cert.display().to_string()),
            ..Default::default()
        };
        let mut options = with_tls(&trusted);
        options.credential = Some(
            mongo_auth::Credential::builder()
                .username("u")
                .password("wrong")
                .build()
                .unwrap(),
        );
        let auth = connect_err(&format!("localhost:{port}"), options).await;
        assert!(matches!(auth.kind(), ErrorKind::Auth(_)), "{auth:?}");
        assert!(!auth.is_establishment_overload_signal(), "{auth:?}");
    }

    /// A resolver that never answers.
    #[derive(Debug)]
    struct SilentDns;

    impl crate::srv::dns::DnsLookup for SilentDns {
        fn srv<'a>(
            &'a self,
            _: &'a str,
        ) -> crate::srv::dns::BoxFuture<
            'a,
            std::result::Result<Vec<crate::srv::SrvRecord>, crate::srv::dns::LookupFailure>,
        > {
            Box::pin(std::future::pending())
        }
        fn txt<'a>(
            &'a self,
            _: &'a str,
        ) -> crate::srv::dns::BoxFuture<
            'a,
            std::result::Result<Vec<Vec<Vec<u8>>>, crate::srv::dns::LookupFailure>,
        > {
            Box::pin(std::future::pending())
        }
        fn ips<'a>(
            &'a self,
            _: &'a str,
        ) -> crate::srv::dns::BoxFuture<
            'a,
            std::result::Result<Vec<std::net::IpAddr>, crate::srv::dns::LookupFailure>,
        > {
            Box::pin(std::future::pending())
        }
    }

    /// A DNS lookup that runs out of connectTimeoutMS is a DNS failure, not an overload.
    #[tokio::test]
    async fn a_dns_timeout_is_not_an_overload_signal() {
        let options = ConnectionOptions {
            connect_timeout: Some(Duration::from_millis(200)),
            dns: Some(crate::srv::dns::Dns::new(Arc::new(SilentDns))),
            ..ConnectionOptions::default()
        };
        let err = connect_err("silent.example:27017", options).await;
        assert!(err.is_network_timeout(), "{err:?}");
        assert!(!err.is_establishment_overload_signal(), "{err:?}");
    }
}
