//! Fuzzes SCRAM server-message parsing and the conversation's handling of arbitrary replies:
//! nothing may panic. Iteration counts are capped before a conversation runs PBKDF2 so that
//! the fuzzer measures parsing, not key derivation.
#![no_main]

use bson::spec::BinarySubtype;
use bson::{Binary, Bson, doc};
use libfuzzer_sys::fuzz_target;
use mongo_auth::scram::{ServerFinal, ServerFirst};
use mongo_auth::{AuthMechanism, Credential, ScramConversation};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = ServerFirst::parse(text);
    let _ = ServerFinal::parse(text);

    // Drive a whole conversation when the first message would not make PBKDF2 expensive.
    let cheap = ServerFirst::parse(text).map_or(true, |m| m.iterations <= 4096);
    if !cheap {
        return;
    }
    let Ok(cred) = Credential::builder().username("u").password("p").build() else {
        return;
    };
    let Ok(mut conv) = ScramConversation::start(&cred, AuthMechanism::ScramSha256, "abc") else {
        return;
    };
    let payload = |s: &str| {
        Bson::Binary(Binary {
            subtype: BinarySubtype::Generic,
            bytes: s.as_bytes().to_vec(),
        })
    };
    let (first, last) = text.split_once('\n').unwrap_or((text, text));
    let _ =
        conv.handle_reply(&doc! {"conversationId": 1, "done": false, "payload": payload(first)});
    let _ = conv.handle_reply(&doc! {"conversationId": 1, "done": true, "payload": payload(last)});
});
