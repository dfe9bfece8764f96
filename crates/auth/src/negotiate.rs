//! Mechanism negotiation through the handshake (auth spec, "Mechanism Negotiation via
//! Handshake" and "Default Authentication Methods").
//!
//! When a credential has no mechanism, hello carries `saslSupportedMechs: "<source>.<user>"`;
//! the reply's `saslSupportedMechs` array then picks SCRAM-SHA-256 if listed, else
//! SCRAM-SHA-1. The array's contents are not validated and unknown names are ignored.

use bson::{Bson, Document};

use crate::credential::{AuthMechanism, Credential};

/// The hello field that asks for a user's SASL mechanisms.
pub const SASL_SUPPORTED_MECHS: &str = "saslSupportedMechs";
/// The hello field that carries (and answers) speculative authentication.
pub const SPECULATIVE_AUTHENTICATE: &str = "speculativeAuthenticate";

/// The value of hello's `saslSupportedMechs` for `credential`: `"<source>.<username>"` (the
/// username unmodified), or `None` when the credential names its mechanism or has no user.
pub fn sasl_supported_mechs_request(credential: &Credential) -> Option<String> {
    if credential.mechanism().is_some() {
        return None;
    }
    let user = credential.username()?;
    Some(format!("{}.{user}", credential.source()))
}

/// Adds `saslSupportedMechs` to a hello command when negotiation is needed.
pub fn add_negotiation(hello: &mut Document, credential: &Credential) {
    if let Some(value) = sasl_supported_mechs_request(credential) {
        hello.insert(SASL_SUPPORTED_MECHS, value);
    }
}

/// The default mechanism from a hello reply: SCRAM-SHA-256 if its `saslSupportedMechs` lists
/// it, otherwise SCRAM-SHA-1 (also when the field is absent or not an array).
pub fn negotiate_from_hello(hello_reply: &Document) -> AuthMechanism {
    let lists_sha256 = match hello_reply.get(SASL_SUPPORTED_MECHS) {
        Some(Bson::Array(mechs)) => mechs
            .iter()
            .any(|m| m.as_str() == Some(AuthMechanism::ScramSha256.as_str())),
        _ => false,
    };
    if lists_sha256 {
        AuthMechanism::ScramSha256
    } else {
        AuthMechanism::ScramSha1
    }
}

/// The mechanism to authenticate `credential` with: its own if it names one (always honoured),
/// otherwise negotiated from the hello reply (SCRAM-SHA-1 without one).
pub fn select_mechanism(credential: &Credential, hello_reply: Option<&Document>) -> AuthMechanism {
    match (credential.mechanism(), hello_reply) {
        (Some(m), _) => m,
        (None, Some(reply)) => negotiate_from_hello(reply),
        (None, None) => AuthMechanism::ScramSha1,
    }
}

/// The mechanism to attempt speculatively in hello, before negotiation has answered: the
/// credential's own, or SCRAM-SHA-256 (as the handshake spec directs).
pub fn speculative_mechanism(credential: &Credential) -> AuthMechanism {
    credential.mechanism().unwrap_or(AuthMechanism::ScramSha256)
}

#[cfg(test)]
mod tests {
    use bson::doc;

    use super::*;

    fn cred(mech: Option<AuthMechanism>) -> Credential {
        Credential::builder()
            .username("user")
            .password("pw")
            .uri_database(Some("db".into()))
            .mechanism(mech)
            .build()
            .unwrap()
    }

    #[test]
    fn request_field() {
        assert_eq!(
            sasl_supported_mechs_request(&cred(None)).as_deref(),
            Some("db.user")
        );
        assert_eq!(
            sasl_supported_mechs_request(&cred(Some(AuthMechanism::ScramSha1))),
            None
        );
        let mut hello = doc! {"hello": 1};
        add_negotiation(&mut hello, &cred(None));
        assert_eq!(hello, doc! {"hello": 1, "saslSupportedMechs": "db.user"});
        // Usernames are sent unmodified (no SASLprep).
        let c = Credential::builder().username("\u{2168}").build().unwrap();
        assert_eq!(
            sasl_supported_mechs_request(&c).as_deref(),
            Some("admin.\u{2168}")
        );
    }

    #[test]
    fn negotiation() {
        let both = doc! {"saslSupportedMechs": ["SCRAM-SHA-1", "SCRAM-SHA-256"]};
        let sha1 = doc! {"saslSupportedMechs": ["SCRAM-SHA-1"]};
        let unknown = doc! {"saslSupportedMechs": ["FANCY", 3, "SCRAM-SHA-256"]};
        let odd = doc! {"saslSupportedMechs": ["PLAIN"]};
        assert_eq!(negotiate_from_hello(&both), AuthMechanism::ScramSha256);
        assert_eq!(negotiate_from_hello(&sha1), AuthMechanism::ScramSha1);
        assert_eq!(negotiate_from_hello(&unknown), AuthMechanism::ScramSha256);
        assert_eq!(negotiate_from_hello(&odd), AuthMechanism::ScramSha1);
        assert_eq!(negotiate_from_hello(&doc! {}), AuthMechanism::ScramSha1);
        assert_eq!(
            select_mechanism(&cred(None), Some(&both)),
            AuthMechanism::ScramSha256
        );
        assert_eq!(
            select_mechanism(&cred(None), None),
            AuthMechanism::ScramSha1
        );
        assert_eq!(
            select_mechanism(&cred(Some(AuthMechanism::ScramSha1)), Some(&both)),
            AuthMechanism::ScramSha1
        );
        assert_eq!(
            speculative_mechanism(&cred(None)),
            AuthMechanism::ScramSha256
        );
    }
}
