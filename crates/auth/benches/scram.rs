//! SCRAM client cost with a cold salted-password cache (PBKDF2 runs) versus a warm one (the
//! second and later connections of a pool): a full SCRAM-SHA-256 conversation at 15000
//! iterations, and SCRAM-SHA-1 at 10000, against canned server messages.
#![allow(missing_docs)]

use std::hint::black_box;

use bson::spec::BinarySubtype;
use bson::{Binary, Bson, Document, doc};
use criterion::{Criterion, criterion_group, criterion_main};
use mongo_auth::scram::prepare_password;
use mongo_auth::scram::primitives::{self as p, ScramHash};
use mongo_auth::{AuthMechanism, Credential, ScramCache, ScramConversation, Step};

const CLIENT_NONCE: &str = "clientNonceForBenchmarks";
const SERVER_NONCE: &str = "serverPart0123456789";

struct Script {
    credential: Credential,
    mechanism: AuthMechanism,
    server_first: Document,
    server_final: Document,
}

fn reply(payload: String, done: bool) -> Document {
    doc! {
        "conversationId": 1,
        "done": done,
        "payload": Bson::Binary(Binary { subtype: BinarySubtype::Generic, bytes: payload.into_bytes() }),
        "ok": 1.0,
    }
}

/// Plays the server once to get the (deterministic) server messages.
fn script(mechanism: AuthMechanism, hash: ScramHash, iterations: u32) -> Script {
    let credential = Credential::builder()
        .username("bench")
        .password("correct horse battery staple")
        .mechanism(Some(mechanism))
        .build()
        .expect("valid credential");
    let salt = b"0123456789abcdef";
    let server_first = format!(
        "r={CLIENT_NONCE}{SERVER_NONCE},s={},i={iterations}",
        p::b64_encode(salt)
    );
    let input = prepare_password(hash, "bench", "correct horse battery staple").expect("prep");
    let salted = p::hi(hash, &input, salt, iterations);
    let auth_message =
        format!("n=bench,r={CLIENT_NONCE},{server_first},c=biws,r={CLIENT_NONCE}{SERVER_NONCE}");
    let sig = p::server_signature(hash, &p::server_key(hash, &salted), auth_message.as_bytes());
    Script {
        credential,
        mechanism,
        server_first: reply(server_first, false),
        server_final: reply(format!("v={}", p::b64_encode(&sig)), true),
    }
}

fn run(s: &Script, credential: &Credential) {
    let mut conv = ScramConversation::start(credential, s.mechanism, CLIENT_NONCE).expect("start");
    black_box(conv.start_command());
    let step = conv.handle_reply(&s.server_first).expect("server-first");
    let _ = black_box(step);
    let done = conv.handle_reply(&s.server_final).expect("server-final");
    assert_eq!(done, Step::Done);
}

fn bench(c: &mut Criterion) {
    for (name, mech, hash, iterations) in [
        (
            "scram_sha256_15000",
            AuthMechanism::ScramSha256,
            ScramHash::Sha256,
            15000,
        ),
        (
            "scram_sha1_10000",
            AuthMechanism::ScramSha1,
            ScramHash::Sha1,
            10000,
        ),
    ] {
        let s = script(mech, hash, iterations);
        let mut group = c.benchmark_group(name);
        group.sample_size(20);
        group.bench_function("first_auth_cold_cache", |b| {
            b.iter(|| {
                let fresh = s.credential.clone().with_scram_cache(ScramCache::new());
                run(&s, &fresh);
            });
        });
        let warm = s.credential.clone();
        run(&s, &warm);
        group.bench_function("second_auth_warm_cache", |b| b.iter(|| run(&s, &warm)));
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
