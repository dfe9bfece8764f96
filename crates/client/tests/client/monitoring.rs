//! Command monitoring of sensitive commands: the handshake and authentication are not
//! published, and a sensitive command run by the user is published redacted.

use bson::doc;
use mongo_client::event::EventRecorder;
use mongo_client::event::command::CommandEvent;
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

/// The failure of each failed command `r` saw named `name`, as text.
fn failures(r: &EventRecorder, name: &str) -> Vec<String> {
    r.command_events()
        .into_iter()
        .filter_map(|e| match e {
            CommandEvent::Failed(f) if f.command_name == name => Some(f.failure.to_string()),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn a_sensitive_command_redacts_server_errors_but_not_network_errors() {
    let server = TestServer::start(ServerOptions::default()).await.unwrap();
    let recorder = EventRecorder::shared();
    let uri = format!("mongodb://{}/?directConnection=true", server.host_port());
    let client = client_for(&uri, Some(recorder.clone())).await;
    // The server refuses: only the code, codeName and labels stay.
    let refused = client
        .run_command(
            "admin",
            doc! {"saslStart": 1, "mechanism": "SCRAM-SHA-256", "payload": "x"},
        )
        .await
        .unwrap_err();
    let failed = failures(&recorder, "saslStart");
    assert_eq!(failed.len(), 1, "{failed:?}");
    let code = refused.code().expect("a server error");
    assert!(failed[0].contains(&code.to_string()), "{failed:?}");
    assert!(failed[0].contains("REDACTED"), "{failed:?}");
    let message = match refused.kind() {
        mongo_client::ErrorKind::Command(c) => c.message.clone(),
        other => panic!("{other:?}"),
    };
    assert!(!failed[0].contains(&message), "{failed:?}");
    // A network error is the driver's, not the server's reply: shown whole.
    client
        .run_command(
            "admin",
            doc! {
                "configureFailPoint": "failCommand", "mode": {"times": 1},
                "data": {"failCommands": ["saslStart"], "closeConnection": true},
            },
        )
        .await
        .unwrap();
    let network = client
        .run_command(
            "admin",
            doc! {"saslStart": 1, "mechanism": "SCRAM-SHA-256", "payload": "x"},
        )
        .await
        .unwrap_err();
    assert!(network.is_network_error(), "{network}");
    let failed = failures(&recorder, "saslStart");
    assert_eq!(failed.len(), 2, "{failed:?}");
    assert!(
        !failed[1].is_empty() && !failed[1].contains("REDACTED"),
        "{failed:?}"
    );
}
