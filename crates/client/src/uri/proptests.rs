//! Property tests: no input string makes the parser panic, and what parses re-validates.

use proptest::prelude::*;

use super::ConnectionString;

/// Fragments that steer random strings into the interesting corners of the grammar.
fn fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("@".to_owned()),
        Just(":".to_owned()),
        Just("/".to_owned()),
        Just("?".to_owned()),
        Just("&".to_owned()),
        Just("=".to_owned()),
        Just(",".to_owned()),
        Just("[".to_owned()),
        Just("]".to_owned()),
        Just("%".to_owned()),
        Just("%2F".to_owned()),
        Just("%C3".to_owned()),
        Just(".sock".to_owned()),
        Just("::1".to_owned()),
        Just("65536".to_owned()),
        Just("authMechanism=".to_owned()),
        Just("authMechanismProperties=".to_owned()),
        Just("readPreferenceTags=".to_owned()),
        Just("tls=true".to_owned()),
        Just("ssl=false".to_owned()),
        Just("MONGODB-OIDC".to_owned()),
        Just("GSSAPI".to_owned()),
        Just("maxStalenessSeconds=".to_owned()),
        "[a-zA-Z0-9]{0,6}",
        any::<String>(),
    ]
}

proptest! {
    #[test]
    fn arbitrary_strings_never_panic(s in any::<String>()) {
        let _ = ConnectionString::parse(&s);
    }

    #[test]
    fn mongodb_prefix_with_random_suffix_never_panics(
        suffix in any::<String>(),
        srv in any::<bool>(),
    ) {
        let scheme = if srv { "mongodb+srv://" } else { "mongodb://" };
        let _ = ConnectionString::parse(&format!("{scheme}{suffix}"));
    }

    #[test]
    fn structured_suffixes_never_panic_and_results_validate(
        parts in proptest::collection::vec(fragment(), 0..24),
    ) {
        let uri = format!("mongodb://{}", parts.concat());
        if let Ok(cs) = ConnectionString::parse(&uri) {
            prop_assert!(!cs.hosts.is_empty());
            prop_assert!(cs.options.validate().is_ok());
        }
    }
}
