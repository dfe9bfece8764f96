//! Log messages through `tracing`: server selection (`mongo::server_selection`) and commands
//! (`mongo::command`). Its own test binary with one test, so that no other test's subscriber
//! shares tracing's callsite interest cache with this one.

use std::sync::{Arc, Mutex};

use bson::doc;
use mongo_client::{Client, ClientOptions};
use mongo_testkit::{ServerOptions, TestServer};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

/// (target, message, fields) of every event.
type Records = Arc<Mutex<Vec<(String, String, Vec<(String, String)>)>>>;

#[derive(Clone, Default)]
struct Capture(Records);

struct Fields(String, Vec<(String, String)>);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.record_str(field, &format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0 = value.to_string();
        } else {
            self.1.push((field.name().to_string(), value.to_string()));
        }
    }
}

impl<S: Subscriber> Layer<S> for Capture {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut f = Fields(String::new(), Vec::new());
        event.record(&mut f);
        self.0
            .lock()
            .unwrap()
            .push((event.metadata().target().to_string(), f.0, f.1));
    }
}

#[tokio::test(flavor = "current_thread")]
async fn selection_and_command_messages_are_logged() {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::registry().with(capture.clone());
    let _guard = tracing::subscriber::set_default(subscriber);
    tracing::callsite::rebuild_interest_cache();

    let server = TestServer::start(ServerOptions::default()).await.unwrap();
    let client = Client::builder()
        .options(ClientOptions::parse(&server.uri()).unwrap())
        .build()
        .await
        .unwrap();
    client
        .database("logs")
        .collection("c")
        .insert_one(doc! {"x": 1})
        .await
        .unwrap();

    let records = capture.0.lock().unwrap().clone();
    let with = |target: &str, message: &str| {
        records
            .iter()
            .filter(|(t, m, _)| t == target && m.contains(message))
            .cloned()
            .collect::<Vec<_>>()
    };
    let field = |r: &(String, String, Vec<(String, String)>), name: &str| {
        r.2.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone())
    };

    let started = with("mongo::server_selection", "Server selection started");
    assert!(
        !started.is_empty(),
        "no selection started message: {records:#?}"
    );
    assert_eq!(field(&started[0], "operation").as_deref(), Some("insert"));
    let succeeded = with("mongo::server_selection", "Server selection succeeded");
    assert!(!succeeded.is_empty(), "no selection succeeded message");
    let host_port = server.host_port();
    let (host, port) = host_port.rsplit_once(':').unwrap();
    assert_eq!(field(&succeeded[0], "serverHost").as_deref(), Some(host));
    assert_eq!(field(&succeeded[0], "serverPort").as_deref(), Some(port));
    assert!(
        !with("mongo::command", "Command started").is_empty(),
        "no command started message"
    );
    assert!(
        !with("mongo::command", "Command succeeded").is_empty(),
        "no command succeeded message"
    );
    client.shutdown().await;
}
