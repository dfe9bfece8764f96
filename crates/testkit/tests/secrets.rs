//! Secrets stay secret: authenticated sessions against the testkit (SCRAM-SHA-256,
//! SCRAM-SHA-1, the negotiated default, MONGODB-X509) and failed ones (a wrong password, PLAIN,
//! which the testkit refuses) run with every monitoring event recorded and every `tracing`
//! event captured; then every `Debug` and `Display` of the options, the errors (with their
//! sources), the events and the log lines is searched for the password, the SCRAM values
//! derived from it (salted password, client, server and stored keys), the nonces, the proofs
//! and server signatures, the raw SASL payloads and the client's private key, and none may
//! appear.
//!
//! The nonces, proofs and signatures are random per conversation: a recording TCP relay
//! between the client and the server captures the SASL payloads off the wire, and the keys are
//! computed from them. Its own test binary: the log capture is a global subscriber.
//!
//! A second test checks that TLS verifies the server's certificate and host name unless the
//! user turns it off by name (`tlsInsecure`, `tlsAllowInvalidCertificates`,
//! `tlsAllowInvalidHostnames`).

#![allow(
    clippy::disallowed_methods,
    reason = "a test relay spawns its copy tasks; no sans-I/O core here"
)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bson::{Bson, Document, RawDocument, doc};
use mongo_auth::scram::primitives::{
    ScramHash, b64_encode, client_key, hi, mongo_password_digest, server_key, stored_key,
};
use mongo_client::event::{EventRecorder, Listeners};
use mongo_client::{Client, ClientOptions, ConnectionString};
use mongo_testkit::{ServerOptions, TestServer, generate_test_certs};
use mongo_wire::{MessageRef, decode_message};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

/// The password of the SCRAM user: unusual enough never to appear by chance, with a character
/// SASLprep keeps as is.
const PASSWORD: &str = "Qz7-secret-ünïque-9f3b1d";
const USER: &str = "app";
/// A proxy password and a key-file password: options that must not be printed either.
const PROXY_PASSWORD: &str = "Px9-proxy-pw-0c4e7a";
const KEY_PASSWORD: &str = "Kf2-keyfile-pw-8d1b5c";

/// Every log line captured, formatted with its target, level, message and fields.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<String>>>);

#[derive(Default)]
struct Fields(String);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.push_str(&format!(" {}={value:?}", field.name()));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.push_str(&format!(" {}={value}", field.name()));
    }
}

impl<S: Subscriber> Layer<S> for Capture {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut f = Fields::default();
        event.record(&mut f);
        let meta = event.metadata();
        let line = format!("{} {}{}", meta.level(), meta.target(), f.0);
        self.0.lock().unwrap().push(line);
    }
}

/// The bytes one side of a connection sent.
type Recording = Arc<Mutex<Vec<u8>>>;

/// A TCP relay that records, per connection, the bytes each side sent.
#[derive(Clone, Default)]
struct Relay {
    /// (client to server, server to client) per connection.
    streams: Arc<Mutex<Vec<(Recording, Recording)>>>,
}

impl Relay {
    async fn start(target: SocketAddr) -> (Relay, SocketAddr) {
        let relay = Relay::default();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let r = relay.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(target).await else {
                    continue;
                };
                let up = Arc::new(Mutex::new(Vec::new()));
                let down = Arc::new(Mutex::new(Vec::new()));
                r.streams.lock().unwrap().push((up.clone(), down.clone()));
                let (cr, cw) = client.into_split();
                let (sr, sw) = server.into_split();
                tokio::spawn(pump(cr, sw, up));
                tokio::spawn(pump(sr, cw, down));
            }
        });
        (relay, addr)
    }

    /// Every SASL payload (a `payload` binary anywhere in a message's documents) sent by
    /// either side, in the order of each connection's stream.
    fn payloads(&self) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for (up, down) in self.streams.lock().unwrap().iter() {
            for bytes in [up.lock().unwrap().clone(), down.lock().unwrap().clone()] {
                for doc in documents(&bytes) {
                    collect_payloads(&doc, &mut out);
                }
            }
        }
        out
    }
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    record: Arc<Mutex<Vec<u8>>>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                record.lock().unwrap().extend_from_slice(&buf[..n]);
                if to.write_all(&buf[..n]).await.is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown().await;
}

/// The documents of every whole message in a recorded stream.
fn documents(mut bytes: &[u8]) -> Vec<Document> {
    let mut out = Vec::new();
    let to_doc = |raw: &RawDocument| Document::try_from(raw).ok();
    while bytes.len() >= 4 {
        let len = i32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        let Ok(len) = usize::try_from(len) else {
            break;
        };
        if len < 16 || len > bytes.len() {
            break;
        }
        let (frame, rest) = bytes.split_at(len);
        bytes = rest;
        match decode_message(frame).map(|d| d.message) {
            Ok(MessageRef::Msg(m)) => out.extend(to_doc(m.body)),
            Ok(MessageRef::Query(q)) => out.extend(to_doc(&q.query)),
            Ok(MessageRef::Reply(r)) => out.extend(r.documents.iter().filter_map(|d| to_doc(d))),
            _ => {}
        }
    }
    out
}

fn collect_payloads(doc: &Document, out: &mut Vec<Vec<u8>>) {
    for (key, value) in doc {
        match value {
            Bson::Binary(b) if key == "payload" => out.push(b.bytes.clone()),
            Bson::Document(d) => collect_payloads(d, out),
            _ => {}
        }
    }
}

/// The secrets of the SCRAM conversations seen on the wire, each with a name for the report.
fn scram_secrets(payloads: &[Vec<u8>]) -> Vec<(String, String)> {
    let mut secrets = Vec::new();
    let add_bytes = |name: &str, bytes: &[u8], secrets: &mut Vec<(String, String)>| {
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        secrets.push((format!("{name} (hex)"), hex));
        secrets.push((format!("{name} (base64)"), b64_encode(bytes)));
        secrets.push((format!("{name} (Debug)"), format!("{bytes:?}")));
    };
    let mut saw_proof = false;
    for payload in payloads {
        // The raw payload as bson prints a binary (base64), and as hex.
        add_bytes("a SASL payload", payload, &mut secrets);
        let Ok(text) = std::str::from_utf8(payload) else {
            continue;
        };
        for attr in text.split(',') {
            let Some((k, v)) = attr.split_once('=') else {
                continue;
            };
            match k {
                "r" => secrets.push(("a nonce".into(), v.to_string())),
                "p" => {
                    saw_proof = true;
                    secrets.push(("a client proof".into(), v.to_string()));
                }
                "v" => secrets.push(("a server signature".into(), v.to_string())),
                _ => {}
            }
        }
        // A server-first message: derive the keys for both hash functions.
        let attrs: Vec<(&str, &str)> = text.split(',').filter_map(|a| a.split_once('=')).collect();
        let get = |k: &str| attrs.iter().find(|(a, _)| *a == k).map(|(_, v)| *v);
        if let (Some(salt), Some(iterations)) = (get("s"), get("i")) {
            let salt = mongo_auth::scram::primitives::b64_decode(salt).expect("a base64 salt");
            let iterations: u32 = iterations.parse().expect("an iteration count");
            let digest = mongo_password_digest(USER, PASSWORD);
            for (hash, password) in [
                (ScramHash::Sha1, digest.as_str()),
                (ScramHash::Sha256, PASSWORD),
            ] {
                let salted = hi(hash, password.as_bytes(), &salt, iterations);
                let ck = client_key(hash, &salted);
                add_bytes("the salted password", &salted, &mut secrets);
                add_bytes("the server key", &server_key(hash, &salted), &mut secrets);
                add_bytes("the stored key", &stored_key(hash, &ck), &mut secrets);
                add_bytes("the client key", &ck, &mut secrets);
            }
        }
    }
    assert!(saw_proof, "no SCRAM client proof on the wire: {payloads:?}");
    secrets
}

/// Formats an error with every source below it.
fn error_text(e: &(dyn std::error::Error + 'static)) -> Vec<String> {
    let mut out = vec![format!("{e}"), format!("{e:?}")];
    let mut source = e.source();
    while let Some(s) = source {
        out.push(format!("{s}"));
        out.push(format!("{s:?}"));
        source = s.source();
    }
    out
}

/// A client with `recorder` on every event family.
async fn client(uri: &str, recorder: &Arc<EventRecorder>, texts: &mut Vec<String>) -> Client {
    let options = ClientOptions::parse(uri).unwrap();
    texts.push(format!("{options:?}"));
    texts.push(format!("{:?}", ConnectionString::parse(uri).unwrap()));
    let mut listeners = Listeners::new();
    listeners.add_all(recorder.clone());
    Client::builder()
        .options(options)
        .listeners(listeners)
        .build()
        .await
        .unwrap()
}

/// Runs a little of everything: writes, reads, a cursor, a failing command.
async fn work(client: &Client, texts: &mut Vec<String>) {
    let coll = client.database("db").collection::<Document>("c");
    coll.insert_one(doc! {"x": 1}).await.unwrap();
    let found = coll.find_one(doc! {"x": 1}).await.unwrap();
    texts.push(format!("{found:?}"));
    let reply = client
        .run_command("admin", doc! {"connectionStatus": 1})
        .await
        .unwrap();
    texts.push(format!("{reply:?}"));
    let err = client
        .run_command("db", doc! {"noSuchCommand": 1})
        .await
        .unwrap_err();
    texts.extend(error_text(&err));
}

fn find_leaks(texts: &[String], secrets: &[(String, String)]) -> Vec<String> {
    let mut leaks = Vec::new();
    for (name, secret) in secrets {
        if secret.len() < 6 {
            continue;
        }
        for (i, text) in texts.iter().enumerate() {
            if text.contains(secret.as_str()) {
                leaks.push(format!("{name} appears in text #{i}: {text}"));
            }
        }
    }
    leaks
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_a_debug_display_error_event_or_log_line() {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::registry().with(capture.clone());
    tracing::subscriber::set_global_default(subscriber).unwrap();

    let server = TestServer::start(ServerOptions::default().with_user(USER, PASSWORD))
        .await
        .unwrap();
    let (relay, relay_addr) = Relay::start(server.address()).await;
    let recorder = EventRecorder::shared();
    let mut texts = Vec::new();
    let encoded = PASSWORD.replace('ü', "%C3%BC").replace('ï', "%C3%AF");
    let base = format!("mongodb://{USER}:{encoded}@{relay_addr}/?directConnection=true");

    // Authenticated sessions with each SCRAM mechanism.
    for mech in [
        "",
        "&authMechanism=SCRAM-SHA-256",
        "&authMechanism=SCRAM-SHA-1",
    ] {
        let c = client(&format!("{base}{mech}"), &recorder, &mut texts).await;
        work(&c, &mut texts).await;
        c.shutdown().await;
    }
    // A wrong password, with each mechanism.
    for mech in ["&authMechanism=SCRAM-SHA-256", "&authMechanism=SCRAM-SHA-1"] {
        let uri = format!(
            "mongodb://{USER}:{encoded}-wrong@{relay_addr}/?directConnection=true\
             &serverSelectionTimeoutMS=2000{mech}"
        );
        let c = client(&uri, &recorder, &mut texts).await;
        let err = c.run_command("admin", doc! {"ping": 1}).await.unwrap_err();
        assert!(err.is_auth_error(), "{err:?}");
        texts.extend(error_text(&err));
        c.shutdown().await;
    }
    // PLAIN, which the testkit (like mongod without LDAP) refuses: the password travels in the
    // clear in saslStart, and the failure must not repeat it.
    let uri = format!(
        "mongodb://{USER}:{encoded}@{relay_addr}/?directConnection=true&authSource=$external\
         &authMechanism=PLAIN&serverSelectionTimeoutMS=2000"
    );
    let c = client(&uri, &recorder, &mut texts).await;
    let err = c.run_command("admin", doc! {"ping": 1}).await.unwrap_err();
    texts.extend(error_text(&err));
    c.shutdown().await;

    // Options that carry other passwords, and a connection string that fails to parse.
    let uri = format!(
        "{base}&proxyHost=p.invalid&proxyUsername=u&proxyPassword={PROXY_PASSWORD}\
         &tls=true&tlsCertificateKeyFile=/k.pem&tlsCertificateKeyFilePassword={KEY_PASSWORD}"
    );
    texts.push(format!("{:?}", ClientOptions::parse(&uri).unwrap()));
    texts.push(format!("{:?}", ConnectionString::parse(&uri).unwrap()));
    for bad in [
        format!("{base}&authMechanism=NOPE"),
        format!("{base}&maxPoolSize=-1"),
        format!("mongodb://{USER}:{encoded}@/"),
        format!("mongodb://{USER}:{encoded}@h:99999/"),
        format!("{base}&proxyPassword={PROXY_PASSWORD}"),
    ] {
        if let Err(e) = ClientOptions::parse(&bad) {
            texts.extend(error_text(&e));
        }
        if let Err(e) = ConnectionString::parse(&bad) {
            texts.extend(error_text(&e));
        }
    }

    // MONGODB-X509: the secret is the client's private key.
    let certs = generate_test_certs().unwrap();
    let tls_server = TestServer::start(ServerOptions::default().with_tls(certs.server_tls()))
        .await
        .unwrap();
    let uri = format!(
        "mongodb://localhost:{}/?directConnection=true&tls=true&tlsCAFile={}\
         &authMechanism=MONGODB-X509&tlsCertificateKeyFile={}",
        tls_server.address().port(),
        certs.ca_cert.display(),
        certs.client_pem.display(),
    );
    let c = client(&uri, &recorder, &mut texts).await;
    work(&c, &mut texts).await;
    c.shutdown().await;
    let pem = std::fs::read_to_string(&certs.client_key).unwrap();
    let key_lines: Vec<String> = pem
        .lines()
        .filter(|l| !l.starts_with("-----") && l.len() >= 16)
        .map(str::to_string)
        .collect();
    assert!(
        !key_lines.is_empty(),
        "no key in {}",
        certs.client_key.display()
    );
    let _ = std::fs::remove_dir_all(&certs.dir);

    for event in recorder.events() {
        texts.push(format!("{event:?}"));
    }
    let logs = capture.0.lock().unwrap().clone();
    assert!(!logs.is_empty(), "no log line was captured");
    let events = recorder.events().len();
    texts.extend(logs.iter().cloned());

    let mut secrets = vec![
        ("the password".to_string(), PASSWORD.to_string()),
        ("the URL-encoded password".to_string(), encoded.clone()),
        ("the proxy password".to_string(), PROXY_PASSWORD.to_string()),
        (
            "the key file's password".to_string(),
            KEY_PASSWORD.to_string(),
        ),
        (
            "the SCRAM-SHA-1 password digest".to_string(),
            mongo_password_digest(USER, PASSWORD),
        ),
    ];
    secrets.extend(scram_secrets(&relay.payloads()));
    secrets.extend(
        key_lines
            .into_iter()
            .map(|l| ("a line of the private key".into(), l)),
    );

    // The search itself finds what it looks for: a SASL payload printed as a document would
    // print it, and a log line naming the password.
    let payloads = relay.payloads();
    let planted = [
        format!(
            "{:?}",
            doc! {"payload": bson::Binary {
                subtype: bson::spec::BinarySubtype::Generic,
                bytes: payloads[0].clone(),
            }}
        ),
        format!(
            "{}",
            doc! {"payload": bson::Binary {
                subtype: bson::spec::BinarySubtype::Generic,
                bytes: payloads[0].clone(),
            }}
        ),
        format!("DEBUG mongo::auth password={PASSWORD:?}"),
    ];
    for p in &planted {
        assert!(
            !find_leaks(std::slice::from_ref(p), &secrets).is_empty(),
            "not found in {p}"
        );
    }

    let leaks = find_leaks(&texts, &secrets);
    assert!(
        leaks.is_empty(),
        "{} leaks among {} texts:\n{}",
        leaks.len(),
        texts.len(),
        leaks.join("\n")
    );
    println!(
        "secrets: {} texts ({} events, {} log lines) searched for {} secret values: none found",
        texts.len(),
        events,
        logs.len(),
        secrets.len()
    );
}

/// Whether a client with `uri` can run a command (a short server selection timeout).
async fn connects(uri: &str) -> Result<(), String> {
    let client = Client::with_uri_str(&format!("{uri}&serverSelectionTimeoutMS=1500"))
        .await
        .map_err(|e| e.to_string())?;
    let out = client
        .run_command("admin", doc! {"ping": 1})
        .await
        .map(|_| ())
        .map_err(|e| format!("{e}"));
    client.shutdown().await;
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_verification_is_on_unless_turned_off_by_name() {
    let certs = generate_test_certs().unwrap();
    // Bound to 127.0.0.2, an address the certificate does not name.
    let server = TestServer::start(
        ServerOptions::default()
            .with_host("127.0.0.2")
            .with_tls(certs.server_tls()),
    )
    .await
    .unwrap();
    let port = server.address().port();
    let ca = certs.ca_cert.display();
    let unnamed = format!("mongodb://127.0.0.2:{port}/?directConnection=true&tls=true");

    // A second server on 127.0.0.1, reached as localhost (a name the certificate holds).
    let local = TestServer::start(ServerOptions::default().with_tls(certs.server_tls()))
        .await
        .unwrap();
    let local_port = local.address().port();
    let trusted =
        format!("mongodb://localhost:{local_port}/?directConnection=true&tls=true&tlsCAFile={ca}");
    connects(&trusted)
        .await
        .expect("the CA and the host name match");
    // The system roots do not trust the test CA.
    let untrusted = format!("mongodb://localhost:{local_port}/?directConnection=true&tls=true");
    assert!(
        connects(&untrusted).await.is_err(),
        "an untrusted certificate was accepted"
    );
    // A trusted certificate that does not name the host.
    let wrong_host = format!("{unnamed}&tlsCAFile={ca}");
    assert!(
        connects(&wrong_host).await.is_err(),
        "a wrong host name was accepted"
    );
    // Each escape hatch, by name.
    connects(&format!(
        "{unnamed}&tlsCAFile={ca}&tlsAllowInvalidHostnames=true"
    ))
    .await
    .expect("tlsAllowInvalidHostnames");
    connects(&format!("{unnamed}&tlsAllowInvalidCertificates=true"))
        .await
        .expect("tlsAllowInvalidCertificates");
    connects(&format!("{unnamed}&tlsInsecure=true"))
        .await
        .expect("tlsInsecure");
    // tlsAllowInvalidHostnames alone still checks the chain.
    assert!(
        connects(&format!("{unnamed}&tlsAllowInvalidHostnames=true"))
            .await
            .is_err(),
        "tlsAllowInvalidHostnames turned off certificate verification"
    );
    let _ = std::fs::remove_dir_all(&certs.dir);
}
