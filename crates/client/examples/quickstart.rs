//! Quickstart: connect, print the discovered topology, run a few commands, write and read a
//! typed collection, show pool stats and some events.
//!
//! ```text
//! cargo run -p mongo-client --example quickstart                  # embedded test server
//! cargo run -p mongo-client --example quickstart -- mongodb://localhost:27017
//! MONGODB_URI=mongodb://localhost:27017 cargo run -p mongo-client --example quickstart
//! cargo run -p mongo-client --example quickstart -- mongodb+srv://cluster0.example.net
//! MONGODB_DNS_SERVER=127.0.0.1:5353 cargo run -p mongo-client --example quickstart -- \
//!     mongodb+srv://test1.test.build.10gen.cc       # SRV/TXT (and host names) from that server
//! ```

use std::sync::Arc;
use std::time::Duration;

use mongo_client::bson::{Document, doc};
use mongo_client::event::{EventRecorder, Listeners};
use mongo_client::{Client, ClientOptions, ResolverConfig};
use serde::{Deserialize, Serialize};

/// The documents of the quickstart's collection, as a Rust type.
#[derive(Debug, Serialize, Deserialize)]
struct Greeting {
    n: i32,
    text: String,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();

    // A URI from the command line or MONGODB_URI; with neither, start the embedded server.
    let mut _embedded = None;
    let uri = match std::env::args()
        .nth(1)
        .or_else(|| std::env::var("MONGODB_URI").ok())
    {
        Some(uri) => uri,
        None => {
            let server =
                mongo_testkit::TestServer::start(mongo_testkit::ServerOptions::default()).await?;
            println!("started the embedded test server at {}", server.host_port());
            let uri = server.uri();
            _embedded = Some(server);
            uri
        }
    };

    let recorder: Arc<EventRecorder> = EventRecorder::shared();
    let mut listeners = Listeners::new();
    listeners.add_all(recorder.clone());
    // `mongodb+srv://` strings are resolved when the client is built (SRV and TXT records).
    // MONGODB_DNS_SERVER=HOST:PORT sends every DNS question to that name server instead of
    // the system's, so that a test zone served on loopback can stand in for real DNS.
    let mut options = ClientOptions::parse(&uri)?;
    if let Ok(server) = std::env::var("MONGODB_DNS_SERVER") {
        let addr: std::net::SocketAddr = server
            .parse()
            .map_err(|e| format!("MONGODB_DNS_SERVER must be HOST:PORT ({server}): {e}"))?;
        options.resolver = ResolverConfig::with_name_servers([addr]);
    }
    let client = Client::builder()
        .options(options)
        .listeners(listeners)
        .build()
        .await?;

    if options_srv(&client) {
        let seeds: Vec<String> = client
            .initial_seeds()
            .iter()
            .map(ToString::to_string)
            .collect();
        println!("mongodb+srv seeds: {}", seeds.join(", "));
    }
    client.wait_for_discovery(Duration::from_secs(10)).await;
    let topology = client.topology_description();
    println!("topology: {}", topology.topology_type().name());
    for server in topology.servers() {
        println!(
            "  {} {} (maxWireVersion {:?}, rtt {:?})",
            server.address,
            server.server_type.name(),
            server.max_wire_version,
            server.round_trip_time
        );
    }

    let pong = client.run_command("admin", doc! {"ping": 1}).await?;
    println!("ping: {pong}");

    // A typed collection: documents are encoded from and decoded into `Greeting`.
    let coll = client
        .database("quickstart")
        .collection::<Greeting>("greetings");
    coll.drop().await?;
    let greetings = (1..=5).map(|n| Greeting {
        n,
        text: format!("hello #{n}"),
    });
    let inserted = coll.insert_many(greetings).await?;
    println!("inserted {} documents", inserted.inserted_ids.len());
    // Options as setters on the action; the cursor runs getMores (batches of 2).
    let mut cursor = coll
        .find(doc! {"n": {"$gte": 2}})
        .sort(doc! {"n": 1})
        .batch_size(2)
        .await?;
    while let Some(greeting) = cursor.try_next().await? {
        println!("found: {greeting:?}");
    }
    coll.update_one(doc! {"n": 1}, doc! {"$set": {"text": "hi"}})
        .await?;
    // The same collection, untyped.
    let raw = coll.clone_with_type::<Document>();
    if let Some(d) = raw.find_one(doc! {"n": 1}).await? {
        println!("as a document: {d}");
    }
    println!("count: {}", coll.count_documents(doc! {}).await?);

    for s in client.pool_stats() {
        println!(
            "pool {}: total {} available {} in use {} generation {}",
            s.address, s.stats.total, s.stats.available, s.stats.in_use, s.stats.generation
        );
    }
    let names: Vec<&str> = recorder.cmap_names();
    println!(
        "first pool events: {:?}",
        names.iter().take(6).collect::<Vec<_>>()
    );
    let commands: Vec<String> = recorder
        .command_events()
        .iter()
        .map(|e| format!("{}:{}", e.command_name(), event_kind(e)))
        .collect();
    println!("command events: {commands:?}");
    client.shutdown().await;
    Ok(())
}

fn event_kind(e: &mongo_client::event::command::CommandEvent) -> &'static str {
    match e {
        mongo_client::event::command::CommandEvent::Started(_) => "started",
        mongo_client::event::command::CommandEvent::Succeeded(_) => "succeeded",
        mongo_client::event::command::CommandEvent::Failed(_) => "failed",
    }
}

/// Whether the client was built from a `mongodb+srv://` string.
fn options_srv(client: &Client) -> bool {
    client.options().srv
}
