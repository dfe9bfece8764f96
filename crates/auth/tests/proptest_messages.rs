//! Property tests: arbitrary server-first / server-final strings never panic the parsers or a
//! conversation, and well-formed messages built from arbitrary parts parse back to those
//! parts.

use bson::spec::BinarySubtype;
use bson::{Binary, Bson, Document, doc};
use mongo_auth::scram::primitives::b64_encode;
use mongo_auth::scram::{ServerFinal, ServerFirst};
use mongo_auth::{AuthError, AuthMechanism, Credential, ScramConversation};
use proptest::prelude::*;

fn reply(done: bool, payload: &str) -> Document {
    doc! {
        "conversationId": 1,
        "done": done,
        "payload": Bson::Binary(Binary { subtype: BinarySubtype::Generic, bytes: payload.as_bytes().to_vec() }),
        "ok": 1,
    }
}

fn conversation() -> ScramConversation {
    let cred = Credential::builder()
        .username("user")
        .password("pencil")
        .build()
        .expect("credential");
    ScramConversation::start(&cred, AuthMechanism::ScramSha256, "clientnonce").expect("start")
}

proptest! {
    #[test]
    fn parsers_never_panic(s in "\\PC*") {
        let _ = ServerFirst::parse(&s);
        let _ = ServerFinal::parse(&s);
    }

    #[test]
    fn attribute_soup_never_panics(
        parts in prop::collection::vec(("[a-zA-Z=,]{0,2}", "[ -~]{0,12}"), 0..6)
    ) {
        let s: Vec<String> = parts.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let s = s.join(",");
        let _ = ServerFirst::parse(&s);
        let _ = ServerFinal::parse(&s);
    }

    /// A conversation given arbitrary server messages fails with a typed error or (only with
    /// valid messages) succeeds; it never panics. (Random text essentially never carries our
    /// nonce prefix, so PBKDF2 is not reached.)
    #[test]
    fn conversation_never_panics(first in "\\PC{0,80}", last in "\\PC{0,80}", done: bool) {
        let mut conv = conversation();
        match conv.handle_reply(&reply(done, &first)) {
            Ok(_) => {
                let _ = conv.handle_reply(&reply(true, &last));
            }
            Err(e) => {
                // a failed conversation stays failed
                prop_assert!(matches!(
                    conv.handle_reply(&reply(true, &last)),
                    Err(AuthError::ConversationFinished)
                ), "after {e:?}");
            }
        }
    }

    #[test]
    fn well_formed_server_first_round_trips(
        server_nonce in "[!-+--~]{1,24}",
        salt in prop::collection::vec(any::<u8>(), 1..32),
        iterations in 1u32..,
    ) {
        let msg = format!("r=clientnonce{server_nonce},s={},i={iterations}", b64_encode(&salt));
        let parsed = ServerFirst::parse(&msg).expect("well formed");
        prop_assert_eq!(parsed.nonce, format!("clientnonce{server_nonce}"));
        prop_assert_eq!(parsed.salt, salt);
        prop_assert_eq!(parsed.iterations, iterations);
    }

    /// Low iteration counts are always refused, whatever else the message says.
    #[test]
    fn low_iterations_refused(server_nonce in "[a-z]{1,8}", iterations in 0u32..4096) {
        let mut conv = conversation();
        let msg = format!("r=clientnonce{server_nonce},s=c2FsdA==,i={iterations}");
        prop_assert!(
            matches!(
                conv.handle_reply(&reply(false, &msg)),
                Err(AuthError::IterationCountTooLow { .. })
            ),
            "low iterations must be refused"
        );
    }
}
