//! Tests of the MongoDB-framed SCRAM conversation: the auth spec's worked examples, the long
//! (no `skipEmptyExchange`) form, speculative authentication and every refusal path.

use bson::{Bson, Document, doc};

use super::*;
use crate::sasl::binary;

const SHA1_NONCE: &str = "fyko+d2lbbFgONRv9qkxdawL";
const SHA1_SERVER_FIRST: &str =
    "r=fyko+d2lbbFgONRv9qkxdawLHo+Vgk7qvUOKUwuWLIWg4l/9SraGMHEE,s=rQ9ZY3MntBeuP3E1TDVC4w==,i=10000";
const SHA1_CLIENT_FINAL: &str = "c=biws,r=fyko+d2lbbFgONRv9qkxdawLHo+Vgk7qvUOKUwuWLIWg4l/9SraGMHEE,p=MC2T8BvbmWRckDw8oWl5IVghwCY=";
const SHA1_SERVER_FINAL: &str = "v=UMWeI25JD1yNYZRMpZ4VHvhZ9e0=";

const SHA256_NONCE: &str = "rOprNGfwEbeRWgbNEkqO";
const SHA256_SERVER_FIRST: &str =
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
const SHA256_CLIENT_FINAL: &str = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
const SHA256_SERVER_FINAL: &str = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

fn cred(user: &str, password: &str) -> Credential {
    Credential::builder()
        .username(user)
        .password(password)
        .build()
        .unwrap()
}

fn reply(id: i32, done: bool, payload: &str) -> Document {
    doc! {
        "conversationId": id,
        "done": done,
        "payload": binary(payload.as_bytes().to_vec()),
        "ok": 1.0,
    }
}

fn payload_text(cmd: &Document) -> String {
    match cmd.get("payload") {
        Some(Bson::Binary(b)) => String::from_utf8(b.bytes.clone()).unwrap(),
        other => panic!("payload missing: {other:?}"),
    }
}

fn expect_send(step: Step) -> Document {
    match step {
        Step::Send(d) => d,
        Step::Done => panic!("expected a command to send"),
    }
}

#[test]
fn spec_example_sha1_with_mongo_digest() {
    let c = cred("user", "pencil");
    let mut conv = ScramConversation::start(&c, AuthMechanism::ScramSha1, SHA1_NONCE).unwrap();
    let start = conv.start_command();
    assert_eq!(start.get_i32("saslStart").ok(), Some(1));
    assert_eq!(start.get_str("mechanism").ok(), Some("SCRAM-SHA-1"));
    assert_eq!(
        start.get_document("options").unwrap(),
        &doc! {"skipEmptyExchange": true}
    );
    assert_eq!(payload_text(&start), "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL");

    let cont = expect_send(
        conv.handle_reply(&reply(1, false, SHA1_SERVER_FIRST))
            .unwrap(),
    );
    assert_eq!(cont.get_i32("saslContinue").ok(), Some(1));
    assert_eq!(cont.get_i32("conversationId").ok(), Some(1));
    assert_eq!(payload_text(&cont), SHA1_CLIENT_FINAL);

    assert_eq!(
        conv.handle_reply(&reply(1, true, SHA1_SERVER_FINAL))
            .unwrap(),
        Step::Done
    );
    assert!(conv.is_done());
    assert!(matches!(
        conv.handle_reply(&reply(1, true, "")),
        Err(AuthError::ConversationFinished)
    ));
}

#[test]
fn spec_example_sha256_with_saslprep() {
    // "pen\u{00AD}cil": the soft hyphen is mapped to nothing by SASLprep.
    for password in ["pencil", "pen\u{00AD}cil"] {
        let c = cred("user", password);
        let mut conv =
            ScramConversation::start(&c, AuthMechanism::ScramSha256, SHA256_NONCE).unwrap();
        assert_eq!(
            payload_text(&conv.start_command()),
            "n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
        );
        let cont = expect_send(
            conv.handle_reply(&reply(1, false, SHA256_SERVER_FIRST))
                .unwrap(),
        );
        assert_eq!(payload_text(&cont), SHA256_CLIENT_FINAL);
        assert_eq!(
            conv.handle_reply(&reply(1, true, SHA256_SERVER_FINAL))
                .unwrap(),
            Step::Done
        );
    }
}

#[test]
fn long_conversation_without_skip_empty_exchange() {
    let c = cred("user", "pencil");
    let mut conv = ScramConversation::start(&c, AuthMechanism::ScramSha1, SHA1_NONCE).unwrap();
    let _ = expect_send(
        conv.handle_reply(&reply(5, false, SHA1_SERVER_FIRST))
            .unwrap(),
    );
    let empty = expect_send(
        conv.handle_reply(&reply(5, false, SHA1_SERVER_FINAL))
            .unwrap(),
    );
    assert_eq!(empty.get_i32("conversationId").ok(), Some(5));
    assert_eq!(payload_text(&empty), "");
    assert!(!conv.is_done());
    assert_eq!(conv.handle_reply(&reply(5, true, "")).unwrap(), Step::Done);
}

#[test]
fn long_conversation_that_never_ends_is_refused() {
    let c = cred("user", "pencil");
    let mut conv = ScramConversation::start(&c, AuthMechanism::ScramSha1, SHA1_NONCE).unwrap();
    let _ = conv
        .handle_reply(&reply(5, false, SHA1_SERVER_FIRST))
        .unwrap();
    let _ = conv
        .handle_reply(&reply(5, false, SHA1_SERVER_FINAL))
        .unwrap();
    assert!(matches!(
        conv.handle_reply(&reply(5, false, "")),
        Err(AuthError::ConversationNotDone)
    ));
}

#[test]
fn speculative_sha256() {
    let c = cred("user", "pencil");
    let mut conv = ScramConversation::start(&c, AuthMechanism::ScramSha256, SHA256_NONCE).unwrap();
    let spec = conv.speculative_command();
    assert_eq!(spec.get_str("db").ok(), Some("admin"));
    assert_eq!(spec.get_str("mechanism").ok(), Some("SCRAM-SHA-256"));
    assert!(spec.contains_key("options"));
    // hello's speculativeAuthenticate document has no `ok`.
    let spec_reply = doc! {
        "conversationId": 1,
        "done": false,
        "payload": binary(SHA256_SERVER_FIRST.as_bytes().to_vec()),
    };
    let cont = expect_send(conv.handle_reply(&spec_reply).unwrap());
    assert_eq!(payload_text(&cont), SHA256_CLIENT_FINAL);
    assert_eq!(
        conv.handle_reply(&reply(1, true, SHA256_SERVER_FINAL))
            .unwrap(),
        Step::Done
    );
}

#[test]
fn cache_makes_second_conversation_skip_pbkdf2() {
    let c = cred("user", "pencil");
    let clone = c.clone();
    assert!(c.scram_cache().is_empty());
    for cr in [&c, &clone] {
        let mut conv =
            ScramConversation::start(cr, AuthMechanism::ScramSha256, SHA256_NONCE).unwrap();
        let _ = conv
            .handle_reply(&reply(1, false, SHA256_SERVER_FIRST))
            .unwrap();
        assert_eq!(
            conv.handle_reply(&reply(1, true, SHA256_SERVER_FINAL))
                .unwrap(),
            Step::Done
        );
        assert_eq!(c.scram_cache().len(), 1);
    }
}

fn sha1_after_first() -> ScramConversation {
    let c = cred("user", "pencil");
    let mut conv = ScramConversation::start(&c, AuthMechanism::ScramSha1, SHA1_NONCE).unwrap();
    let _ = conv
        .handle_reply(&reply(1, false, SHA1_SERVER_FIRST))
        .unwrap();
    conv
}

#[test]
fn server_must_prove_it_knows_the_password() {
    // done before the server-first message
    let c = cred("user", "pencil");
    let mut conv = ScramConversation::start(&c, AuthMechanism::ScramSha1, SHA1_NONCE).unwrap();
    assert!(matches!(
        conv.handle_reply(&reply(1, true, SHA1_SERVER_FIRST)),
        Err(AuthError::UnexpectedDone(_))
    ));
    assert!(matches!(
        conv.handle_reply(&reply(1, false, SHA1_SERVER_FIRST)),
        Err(AuthError::ConversationFinished)
    ));
    // done with no signature
    assert!(matches!(
        sha1_after_first().handle_reply(&reply(1, true, "")),
        Err(AuthError::ServerSignatureMissing)
    ));
    // wrong signature, even with done
    assert!(matches!(
        sha1_after_first().handle_reply(&reply(1, true, "v=AAAAAAAAAAAAAAAAAAAAAAAAAAA=")),
        Err(AuthError::ServerSignatureMismatch)
    ));
    // the server's e= error
    assert!(matches!(
        sha1_after_first().handle_reply(&reply(1, true, "e=other-error")),
        Err(AuthError::ServerError(e)) if e == "other-error"
    ));
    // a different conversation id
    assert!(matches!(
        sha1_after_first().handle_reply(&reply(2, true, SHA1_SERVER_FINAL)),
        Err(AuthError::ConversationIdMismatch)
    ));
}

#[test]
fn malformed_server_first_messages() {
    let start = || {
        ScramConversation::start(
            &cred("user", "pencil"),
            AuthMechanism::ScramSha1,
            SHA1_NONCE,
        )
        .unwrap()
    };
    let low = "r=fyko+d2lbbFgONRv9qkxdawLHo,s=rQ9ZY3MntBeuP3E1TDVC4w==,i=1000";
    assert!(matches!(
        start().handle_reply(&reply(1, false, low)),
        Err(AuthError::IterationCountTooLow {
            iterations: 1000,
            ..
        })
    ));
    let wrong_nonce = "r=other,s=rQ9ZY3MntBeuP3E1TDVC4w==,i=10000";
    assert!(matches!(
        start().handle_reply(&reply(1, false, wrong_nonce)),
        Err(AuthError::NonceMismatch)
    ));
    let no_salt = "r=fyko+d2lbbFgONRv9qkxdawLHo,i=10000";
    assert!(matches!(
        start().handle_reply(&reply(1, false, no_salt)),
        Err(AuthError::MissingAttribute('s'))
    ));
    let bad_b64 = "r=fyko+d2lbbFgONRv9qkxdawLHo,s=%%%,i=10000";
    assert!(matches!(
        start().handle_reply(&reply(1, false, bad_b64)),
        Err(AuthError::InvalidBase64('s'))
    ));
    let mut conv = start();
    let bad_utf8 = doc! {"conversationId": 1, "done": false, "payload": binary(vec![0xff, 0xfe])};
    assert!(matches!(
        conv.handle_reply(&bad_utf8),
        Err(AuthError::MalformedServerMessage(_))
    ));
    let failed = doc! {"ok": 0, "errmsg": "Authentication failed.", "code": 18};
    assert!(matches!(
        start().handle_reply(&failed),
        Err(AuthError::CommandFailed { code: 18, .. })
    ));
}

#[test]
fn start_validates_inputs() {
    let c = cred("user", "pencil");
    assert!(matches!(
        ScramConversation::start(&c, AuthMechanism::Plain, "n"),
        Err(AuthError::UnsupportedMechanism(AuthMechanism::Plain))
    ));
    assert!(matches!(
        ScramConversation::start(&c, AuthMechanism::ScramSha256, "bad,nonce"),
        Err(AuthError::InvalidClientNonce)
    ));
    let no_pw = Credential::builder().username("u").build().unwrap();
    assert!(matches!(
        ScramConversation::start(&no_pw, AuthMechanism::ScramSha256, "n"),
        Err(AuthError::MissingPassword { .. })
    ));
    let bad_pw = cred("u", "a\u{0007}b");
    assert!(matches!(
        ScramConversation::start(&bad_pw, AuthMechanism::ScramSha256, "n"),
        Err(AuthError::InvalidPassword)
    ));
    // SCRAM-SHA-1 digests the raw password, so SASLprep-prohibited characters are fine.
    assert!(ScramConversation::start(&bad_pw, AuthMechanism::ScramSha1, "n").is_ok());
    assert!(
        !format!(
            "{:?}",
            ScramConversation::start(&c, AuthMechanism::ScramSha1, "n").unwrap()
        )
        .contains("pencil")
    );
}

#[test]
fn generated_nonces_are_valid_and_distinct() {
    let a = generate_nonce();
    let b = generate_nonce();
    assert_ne!(a, b);
    assert_eq!(a.len(), 32);
    assert!(message::is_valid_nonce(&a));
}

#[test]
fn pool_of_100_connections_shares_one_salted_password() {
    let client_credential = cred("user", "pencil");
    for _ in 0..100 {
        let per_connection = client_credential.clone();
        let mut conv =
            ScramConversation::start(&per_connection, AuthMechanism::ScramSha256, SHA256_NONCE)
                .unwrap();
        let _ = conv
            .handle_reply(&reply(1, false, SHA256_SERVER_FIRST))
            .unwrap();
        assert_eq!(
            conv.handle_reply(&reply(1, true, SHA256_SERVER_FINAL))
                .unwrap(),
            Step::Done
        );
    }
    assert_eq!(client_credential.scram_cache().len(), 1);
}

#[test]
fn speculative_not_answered_falls_back_to_normal_conversation() {
    let c = cred("user", "pencil");
    let mut conv = ScramConversation::start(&c, AuthMechanism::ScramSha256, SHA256_NONCE).unwrap();
    let _ = conv.speculative_command();
    // hello came back without speculativeAuthenticate: run the normal conversation.
    let start = conv.start_command();
    assert!(!start.contains_key("db"));
    let _ = expect_send(
        conv.handle_reply(&reply(1, false, SHA256_SERVER_FIRST))
            .unwrap(),
    );
    assert_eq!(
        conv.handle_reply(&reply(1, true, SHA256_SERVER_FINAL))
            .unwrap(),
        Step::Done
    );
}

#[test]
fn the_credential_bounds_the_iteration_count_a_server_may_demand() {
    let strict = Credential::builder()
        .username("user")
        .password("pencil")
        .max_scram_iterations(9_999)
        .build()
        .unwrap();
    let mut conv = ScramConversation::start(&strict, AuthMechanism::ScramSha1, SHA1_NONCE).unwrap();
    // The spec example asks for 10,000 iterations: one more than this credential allows.
    assert!(matches!(
        conv.handle_reply(&reply(1, false, SHA1_SERVER_FIRST)),
        Err(AuthError::IterationCountTooHigh {
            iterations: 10_000,
            maximum: 9_999
        })
    ));
    assert!(strict.scram_cache().is_empty());
    // By default, far more than any real server uses is allowed, but not an absurd count.
    let c = cred("user", "pencil");
    assert_eq!(c.max_scram_iterations(), primitives::DEFAULT_MAX_ITERATIONS);
    let mut conv = ScramConversation::start(&c, AuthMechanism::ScramSha1, SHA1_NONCE).unwrap();
    let absurd = SHA1_SERVER_FIRST.replace("i=10000", "i=2000000000");
    assert!(matches!(
        conv.handle_reply(&reply(1, false, &absurd)),
        Err(AuthError::IterationCountTooHigh { .. })
    ));
}
