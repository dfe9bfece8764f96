//! Command monitoring of sensitive commands: the handshake and authentication are not
//! published, and a sensitive command run by the user is published redacted.

use bson::doc;
use mongo_client::event::EventRecorder;
use mongo_testkit::{ServerOptions, TestServer};

use crate::common::{client_for, started, started_names};

#[tokio::test]
async fn sensitive_commands_are_redacted_and_hello_is_not_published() {
    let server = TestServer::start(ServerOptions::default().with_user("u", "pw"))
        .await
        .unwrap();
    let recorder = EventRecorder::shared();
    let uri = format!(
        "mongodb://u:pw@{}/?directConnection=true",
        server.host_port()
    );
    let client = client_for(&uri, Some(recorder.clone())).await;
    client.run_command("admin", doc! {"ping": 1}).await.unwrap();
    // Handshake and auth commands are not published.
    let names = started_names(&recorder);
    assert!(
        !names
            .iter()
            .any(|n| n == "hello" || n == "isMaster" || n == "saslStart"),
        "{names:?}"
    );
    // A sensitive command run by the user is redacted.
    let _ = client
        .run_command(
            "admin",
            doc! {"saslStart": 1, "mechanism": "PLAIN", "payload": "x"},
        )
        .await;
    let started = started(&recorder);
    let sasl = started
        .iter()
        .find(|e| e.command_name == "saslStart")
        .expect("saslStart event");
    assert!(sasl.command.is_empty());
}
