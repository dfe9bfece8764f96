//! Unit tests of credentials: secrets never printed, mechanism names, default sources and
//! every per-mechanism rule.

use bson::doc;

use super::*;
use crate::error::AuthError;

fn b() -> CredentialBuilder {
    Credential::builder()
}

#[test]
fn debug_and_display_never_show_password() {
    let cred = b()
        .username("alice")
        .password("hunter2-s3cr3t")
        .mechanism(Some(AuthMechanism::ScramSha256))
        .build()
        .unwrap();
    let debug = format!("{cred:?}");
    let alt = format!("{cred:#?}");
    let display = cred.to_string();
    for s in [&debug, &alt, &display] {
        assert!(!s.contains("hunter2"), "{s}");
    }
    assert!(debug.contains("alice") && debug.contains("<redacted>"));
    assert_eq!(display, "alice@admin (SCRAM-SHA-256)");
    let builder = b().username("u").password("hunter2-s3cr3t");
    assert!(!format!("{builder:?}").contains("hunter2"));
}

#[test]
fn debug_redacts_secret_properties() {
    // Built directly since the builder refuses AWS_SESSION_TOKEN.
    let mut cred = b().username("u").password("p").build().unwrap();
    cred.mechanism_properties = Some(doc! { "AWS_SESSION_TOKEN": "tok-SECRET" });
    assert!(!format!("{cred:?}").contains("tok-SECRET"));
}

#[test]
fn mechanism_names_round_trip() {
    for m in AuthMechanism::ALL {
        assert_eq!(m.as_str().parse::<AuthMechanism>().unwrap(), m);
    }
    assert_eq!(
        "scram-sha-256".parse::<AuthMechanism>().unwrap(),
        AuthMechanism::ScramSha256
    );
    assert!(matches!(
        "MONGODB-CR2".parse::<AuthMechanism>(),
        Err(AuthError::UnknownMechanism(_))
    ));
}

#[test]
fn default_sources() {
    let c = b().username("u").password("p").build().unwrap();
    assert_eq!(c.source(), "admin");
    let c = b()
        .username("u")
        .uri_database(Some("foo".into()))
        .build()
        .unwrap();
    assert_eq!(c.source(), "foo");
    assert_eq!(c.password(), None);
    let plain = |db: Option<&str>| {
        b().username("u")
            .password("p")
            .uri_database(db.map(str::to_owned))
            .mechanism(Some(AuthMechanism::Plain))
            .build()
            .unwrap()
    };
    assert_eq!(plain(None).source(), "$external");
    assert_eq!(plain(Some("foo")).source(), "foo");
    let x509 = b()
        .uri_database(Some("foo".into()))
        .mechanism(Some(AuthMechanism::MongoDbX509))
        .build()
        .unwrap();
    assert_eq!(x509.source(), "$external");
    assert_eq!(x509.username(), None);
    let scram = b()
        .username("u")
        .password("p")
        .uri_database(Some("foo".into()))
        .source("bar")
        .mechanism(Some(AuthMechanism::ScramSha1))
        .build()
        .unwrap();
    assert_eq!(scram.source(), "bar");
}

#[test]
fn invalid_credentials_give_typed_errors() {
    assert!(matches!(
        b().username("u").source("").build(),
        Err(AuthError::EmptySource)
    ));
    assert!(matches!(
        b().username("").password("").build(),
        Err(AuthError::MissingUsername { mechanism: None })
    ));
    assert!(matches!(
        b().build(),
        Err(AuthError::MissingUsername { mechanism: None })
    ));
    for m in [
        AuthMechanism::ScramSha1,
        AuthMechanism::ScramSha256,
        AuthMechanism::Plain,
    ] {
        assert!(matches!(
            b().mechanism(Some(m)).build(),
            Err(AuthError::MissingUsername { mechanism: Some(x) }) if x == m
        ));
        assert!(matches!(
            b().username("u").mechanism(Some(m)).build(),
            Err(AuthError::MissingPassword { mechanism: x }) if x == m
        ));
        assert!(matches!(
            b().username("u")
                .password("p")
                .mechanism(Some(m))
                .mechanism_properties(Some(doc! {"SERVICE_NAME": "x"}))
                .build(),
            Err(AuthError::MechanismPropertiesNotAllowed { .. })
        ));
    }
    let x509 = || b().mechanism(Some(AuthMechanism::MongoDbX509));
    assert!(matches!(
        x509().username("u").password("p").build(),
        Err(AuthError::PasswordNotAllowed { .. })
    ));
    assert!(matches!(
        x509().username("u").source("bar").build(),
        Err(AuthError::InvalidSource { .. })
    ));
    assert!(x509().source("$external").build().is_ok());
}

#[test]
fn gssapi_rules() {
    let g = || b().mechanism(Some(AuthMechanism::Gssapi));
    assert!(matches!(
        g().build(),
        Err(AuthError::MissingUsername { .. })
    ));
    let c = g().username("user@REALM").build().unwrap();
    assert_eq!(
        c.mechanism_properties(),
        Some(&doc! {"SERVICE_NAME": "mongodb"})
    );
    assert_eq!(c.source(), "$external");
    let c = g()
        .username("u")
        .password("p")
        .mechanism_properties(Some(
            doc! {"service_name": "other", "CANONICALIZE_HOST_NAME": "forwardAndReverse"},
        ))
        .build()
        .unwrap();
    assert_eq!(
        c.mechanism_properties()
            .unwrap()
            .get_str("SERVICE_NAME")
            .ok(),
        Some("other")
    );
    assert!(matches!(
        g().username("u")
            .mechanism_properties(Some(doc! {"CANONICALIZE_HOST_NAME": "invalid"}))
            .build(),
        Err(AuthError::InvalidMechanismProperty { .. })
    ));
    assert!(matches!(
        g().username("u")
            .mechanism_properties(Some(doc! {"NOPE": "x"}))
            .build(),
        Err(AuthError::UnknownMechanismProperty { .. })
    ));
    assert!(matches!(
        g().username("u").source("foo").build(),
        Err(AuthError::InvalidSource { .. })
    ));
}

#[test]
fn aws_rules() {
    let a = || b().mechanism(Some(AuthMechanism::MongoDbAws));
    let c = a().build().unwrap();
    assert_eq!(c.source(), "$external");
    assert!(matches!(
        a().username("u").build(),
        Err(AuthError::UsernameNotAllowed { .. })
    ));
    assert!(matches!(
        a().username("u").password("p").build(),
        Err(AuthError::UsernameNotAllowed { .. })
    ));
    assert!(matches!(
        a().mechanism_properties(Some(doc! {"AWS_SESSION_TOKEN": "t"}))
            .build(),
        Err(AuthError::InvalidMechanismProperty { .. })
    ));
}

#[test]
fn oidc_rules() {
    let o = |props: Document| {
        b().mechanism(Some(AuthMechanism::MongoDbOidc))
            .mechanism_properties(Some(props))
    };
    assert!(o(doc! {"ENVIRONMENT": "test"}).build().is_ok());
    assert!(matches!(
        b().mechanism(Some(AuthMechanism::MongoDbOidc)).build(),
        Err(AuthError::MissingMechanismProperty {
            property: "ENVIRONMENT",
            ..
        })
    ));
    assert!(matches!(
        o(doc! {"ENVIRONMENT": "invalid"}).build(),
        Err(AuthError::InvalidMechanismProperty { .. })
    ));
    assert!(matches!(
        o(doc! {"UnsupportedProperty": "x"}).build(),
        Err(AuthError::UnknownMechanismProperty { .. })
    ));
    assert!(matches!(
        o(doc! {"ENVIRONMENT": "test"}).username("p").build(),
        Err(AuthError::UsernameNotAllowed { .. })
    ));
    assert!(matches!(
        o(doc! {"ENVIRONMENT": "test"}).password("p").build(),
        Err(AuthError::PasswordNotAllowed { .. })
    ));
    assert!(matches!(
        o(doc! {"ENVIRONMENT": "azure"}).username("u").build(),
        Err(AuthError::MissingMechanismProperty {
            property: "TOKEN_RESOURCE",
            ..
        })
    ));
    let c = o(doc! {"ENVIRONMENT": "azure", "TOKEN_RESOURCE": "mongodb://x"})
        .username("u")
        .build()
        .unwrap();
    assert_eq!(c.username(), Some("u"));
    assert!(matches!(
        o(doc! {"ENVIRONMENT": "gcp", "TOKEN_RESOURCE": "foo"})
            .username("u")
            .build(),
        Err(AuthError::UsernameNotAllowed { .. })
    ));
    assert!(o(doc! {"ENVIRONMENT": "k8s"}).build().is_ok());
}

#[test]
fn clones_share_the_cache_and_compare_equal() {
    let a = b().username("u").password("p").build().unwrap();
    let c = a.clone();
    assert!(a.scram_cache().ptr_eq(c.scram_cache()));
    assert_eq!(a, c);
    let other = b().username("u").password("q").build().unwrap();
    assert_ne!(a, other);
    assert!(a.same_identity(&other));
}
