//! Connection strings (connection string spec) and URI options (URI options spec).
//!
//! [`ConnectionString::parse`] splits a `mongodb://` or `mongodb+srv://` string into user
//! information, hosts, auth database and options, applies every known option to a typed
//! [`ClientOptions`], builds the [`Credential`] with the auth
//! spec's defaults, and checks the cross-option rules. Unknown options and invalid values of
//! known options are ignored with a warning (kept in [`ConnectionString::warnings`] and logged
//! with `tracing::warn!` under the `mongo::client` target); what the specs call errors are
//! returned as [`UriError`].
//!
//! Parsing rules worth knowing:
//! - The host list ends at the first `/` or `?`; user information ends at the last `@`
//!   before it. User information must be percent-encoded: an unescaped `@`, a second `:`, a
//!   `%` that does not start an escape, or a character outside RFC 3986's `userinfo` set is
//!   an error. Sub-delimiters (`!$&'()*+,;=`) are allowed unescaped.
//! - UNIX domain sockets must be percent-encoded (`%2Ftmp%2Fmongodb-27017.sock`) and end in
//!   `.sock`; IPv6 literals go in brackets.
//! - Option keys are case-insensitive; values are percent-decoded (`+` stays `+`); only `&`
//!   separates pairs. A key given twice warns and the last value wins, except
//!   `readPreferenceTags` (a list), `tls`/`ssl` (all must agree, else error) and the proxy
//!   options (error).
//! - Booleans accept exactly `true` and `false`.
//! - `mongodb+srv`: exactly one host name without a port; TLS defaults to on. The SRV and TXT
//!   DNS lookups are not performed here but when a client is built (`crate::srv`):
//!   [`ConnectionString::srv`] is `true` and the single host is the name to resolve. Rules
//!   that need the resolved hosts (load balancer host count) are checked again then.

use std::fmt;

use mongo_events::{AddressError, ServerAddress};

use crate::options::{ClientOptions, Credential};

mod percent;
#[cfg(test)]
mod proptests;
mod query;

pub(crate) use query::apply_txt;

/// Why a connection string (or a set of client options) was rejected.
///
/// Messages never contain the password or other secret values.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UriError {
    /// The string does not start with `mongodb://` or `mongodb+srv://`.
    #[error("the connection string must start with 'mongodb://' or 'mongodb+srv://'")]
    InvalidScheme,
    /// No host was given.
    #[error("the connection string names no host")]
    NoHosts,
    /// A host identifier is malformed or unsupported.
    #[error("unsupported host '{host}': {reason}")]
    InvalidHost {
        /// The host as written.
        host: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The user information is malformed.
    #[error("invalid user information ({0}): the username and password must be URL encoded")]
    InvalidUserInfo(&'static str),
    /// A `%` does not start a valid escape, or the decoded text is not UTF-8.
    #[error("invalid percent-encoding in the {0}")]
    InvalidPercentEncoding(&'static str),
    /// The auth database holds a character MongoDB forbids in database names.
    #[error("invalid auth database '{0}': it cannot contain '/', '\\', ' ', '\"' or '$'")]
    InvalidDatabase(String),
    /// An option has no `=`.
    #[error("option '{0}' has no value: options must be written key=value")]
    MalformedOption(String),
    /// A known option has a value the specs say is an error (not just a warning).
    #[error("invalid value for option '{option}': {reason}")]
    InvalidOption {
        /// The option's name.
        option: String,
        /// What is wrong with the value.
        reason: String,
    },
    /// Options that cannot be combined.
    #[error("conflicting options: {0}")]
    Conflict(String),
    /// A valid option this client cannot honour (see
    /// [`ClientOptions::check_supported`](crate::ClientOptions::check_supported)).
    #[error("option '{option}' is not supported: {reason}")]
    Unsupported {
        /// The option's name, as the connection string spells it.
        option: String,
        /// Why, and what to do instead.
        reason: String,
    },
    /// The credential breaks the auth spec's rules for its mechanism.
    #[error("invalid credential: {0}")]
    InvalidCredential(String),
}

/// A parsed connection string.
///
/// `options` is the typed result (hosts and credential included); the other fields keep the
/// string's raw parts for callers that need them.
#[derive(Clone, PartialEq)]
#[non_exhaustive]
pub struct ConnectionString {
    /// `true` for `mongodb+srv://`. The SRV lookup happens when a client is built.
    pub srv: bool,
    /// The hosts, in order.
    pub hosts: Vec<ServerAddress>,
    /// The decoded user name, if the string had user information.
    pub username: Option<String>,
    /// The decoded password, if the user information had a `:`. Never printed by `Debug`.
    pub password: Option<String>,
    /// The decoded auth database (the path), if any.
    pub auth_database: Option<String>,
    /// The typed options, credential and hosts included.
    pub options: ClientOptions,
    /// Every warning raised while parsing (unknown options, ignored values, repeated keys).
    pub warnings: Vec<String>,
}

impl fmt::Debug for ConnectionString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectionString")
            .field("srv", &self.srv)
            .field("hosts", &self.hosts)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("auth_database", &self.auth_database)
            .field("options", &self.options)
            .field("warnings", &self.warnings)
            .finish()
    }
}

/// Strips `prefix` from `s`, ignoring ASCII case.
fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    if head.eq_ignore_ascii_case(prefix) {
        s.get(prefix.len()..)
    } else {
        None
    }
}

/// Whether `c` may appear unescaped in user information (RFC 3986 `userinfo`, plus any
/// non-ASCII character).
fn is_userinfo_char(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(
            c,
            '-' | '.'
                | '_'
                | '~'
                | '%'
                | ':'
                | '!'
                | '$'
                | '&'
                | '\''
                | '('
                | ')'
                | '*'
                | '+'
                | ','
                | ';'
                | '='
        )
        || !c.is_ascii()
}

/// Validates and decodes user information into (username, password).
fn parse_userinfo(ui: &str) -> Result<(String, Option<String>), UriError> {
    if ui.contains('@') {
        return Err(UriError::InvalidUserInfo("unescaped '@'"));
    }
    if ui.matches(':').count() > 1 {
        return Err(UriError::InvalidUserInfo("more than one ':'"));
    }
    if !percent::is_well_formed(ui) {
        return Err(UriError::InvalidUserInfo(
            "'%' not followed by two hex digits",
        ));
    }
    if !ui.chars().all(is_userinfo_char) {
        return Err(UriError::InvalidUserInfo(
            "a reserved character is not escaped",
        ));
    }
    let (user, pass) = match ui.split_once(':') {
        Some((u, p)) => (u, Some(p)),
        None => (ui, None),
    };
    let username = percent::decode(user, "username")?;
    if username.is_empty() {
        return Err(UriError::InvalidUserInfo("empty username"));
    }
    let password = pass.map(|p| percent::decode(p, "password")).transpose()?;
    Ok((username, password))
}

impl ConnectionString {
    /// Parses a connection string. Never panics, whatever the input.
    pub fn parse(input: &str) -> Result<ConnectionString, UriError> {
        let (srv, rest) = if let Some(rest) = strip_prefix_ci(input, "mongodb://") {
            (false, rest)
        } else if let Some(rest) = strip_prefix_ci(input, "mongodb+srv://") {
            (true, rest)
        } else {
            return Err(UriError::InvalidScheme);
        };

        // Host information ends at the first '/' or '?'.
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        let (path, query) = match tail.strip_prefix('/') {
            Some(after) => match after.split_once('?') {
                Some((p, q)) => (Some(p), Some(q)),
                None => (Some(after), None),
            },
            None => (None, tail.strip_prefix('?')),
        };

        let (userinfo, host_list) = match authority.rsplit_once('@') {
            Some((ui, hosts)) => (Some(parse_userinfo(ui)?), hosts),
            None => (None, authority),
        };
        if host_list.is_empty() {
            return Err(UriError::NoHosts);
        }
        let hosts = host_list
            .split(',')
            .map(|h| ServerAddress::parse(h).map_err(host_error))
            .collect::<Result<Vec<_>, _>>()?;

        let auth_database = match path.filter(|p| !p.is_empty()) {
            Some(p) => {
                let db = percent::decode(p, "auth database")?;
                if db.contains(['/', '\\', ' ', '"', '$']) {
                    return Err(UriError::InvalidDatabase(db));
                }
                Some(db)
            }
            None => None,
        };

        let mut warnings = Vec::new();
        let mut options = ClientOptions {
            hosts: hosts.clone(),
            srv,
            default_database: auth_database.clone(),
            ..ClientOptions::default()
        };
        let auth = match query {
            Some(q) => query::apply_query(q, &mut options, &mut warnings)?,
            None => query::AuthOptions::default(),
        };

        let (username, password) = match userinfo {
            Some((u, p)) => (Some(u), p),
            None => (None, None),
        };
        options.auth_source.clone_from(&auth.source);
        if username.is_some() || auth.mechanism.is_some() {
            let credential = Credential::builder()
                .username_opt(username.clone())
                .password_opt(password.clone())
                .mechanism(auth.mechanism)
                .source_opt(auth.source)
                .uri_database(auth_database.clone())
                .mechanism_properties(auth.properties)
                .build()
                .map_err(|e| UriError::InvalidCredential(e.to_string()))?;
            options.credential = Some(credential);
        }
        options.validate()?;

        Ok(ConnectionString {
            srv,
            hosts,
            username,
            password,
            auth_database,
            options,
            warnings,
        })
    }
}

/// A host the connection string could not use, as a [`UriError`].
fn host_error(e: AddressError) -> UriError {
    let (host, reason) = match e {
        AddressError::Empty => (String::new(), "empty host".to_owned()),
        AddressError::UnclosedBracket(h) => (h, "unterminated IPv6 literal".to_owned()),
        AddressError::InvalidPort(h) => (h, "the port must be between 1 and 65535".to_owned()),
        AddressError::InvalidHost { host, reason } => (host, reason.to_owned()),
        other => (String::new(), other.to_string()),
    };
    UriError::InvalidHost { host, reason }
}

impl std::str::FromStr for ConnectionString {
    type Err = UriError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ConnectionString::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::options::{AuthMechanism, HostKind, ReadMode};

    #[test]
    fn parses_every_part() {
        let cs = ConnectionString::parse(
            "mongodb://us%40er:p%3Ass@h1,[::1]:27018,%2Ftmp%2Fm.sock/my%3Fdb?replicaSet=rs&\
             connectTimeoutMS=100&readPreference=secondary&readPreferenceTags=dc:ny,rack:1&\
             readPreferenceTags=",
        )
        .unwrap();
        assert!(!cs.srv);
        assert_eq!(cs.username.as_deref(), Some("us@er"));
        assert_eq!(cs.password.as_deref(), Some("p:ss"));
        assert_eq!(cs.auth_database.as_deref(), Some("my?db"));
        assert_eq!(
            cs.hosts,
            vec![
                ServerAddress::tcp_with("h1", None),
                ServerAddress::tcp("::1", 27018),
                ServerAddress::unix("/tmp/m.sock"),
            ]
        );
        assert_eq!(cs.hosts[0].explicit_port(), None);
        assert_eq!(cs.hosts[2].kind(), HostKind::Unix);
        let o = &cs.options;
        assert_eq!(o.replica_set.as_deref(), Some("rs"));
        assert_eq!(o.connect_timeout, Some(Duration::from_millis(100)));
        let rp = o.read_preference.as_ref().unwrap();
        assert_eq!(rp.mode, ReadMode::Secondary);
        assert_eq!(rp.tag_sets.len(), 2);
        assert!(rp.tag_sets[1].is_empty());
        let cred = o.credential.as_ref().unwrap();
        assert_eq!(cred.source(), "my?db");
        assert!(cs.warnings.is_empty(), "{:?}", cs.warnings);
    }

    #[test]
    fn unknown_options_and_repeats_warn() {
        let cs = ConnectionString::parse("mongodb://h/?foo=bar&replicaSet=a&REPLICASET=b").unwrap();
        assert_eq!(cs.warnings.len(), 2, "{:?}", cs.warnings);
        assert_eq!(cs.options.replica_set.as_deref(), Some("b"));
    }

    #[test]
    fn rejects_spec_errors() {
        for bad in [
            "",
            "mongo://h",
            "mongodb://",
            "mongodb://u@",
            "mongodb://alice:foo:bar@h",
            "mongodb://alice@@h",
            "mongodb://a%zz@h",
            "mongodb://a b@h",
            "mongodb://:p@h",
            "mongodb://h/a$b",
            "mongodb://h/?w",
            "mongodb://h/?authSource=",
            "mongodb://h1,h2/?directConnection=true",
            "mongodb+srv://h1,h2",
            "mongodb+srv://h:1",
            "mongodb+srv://h/?directConnection=true",
            "mongodb://h/?srvMaxHosts=1",
            "mongodb://h/?tls=true&ssl=false",
            "mongodb://h/?tlsInsecure=true&tlsAllowInvalidHostnames=true",
            "mongodb://h/?loadBalanced=true&replicaSet=x",
            "mongodb://h/?maxStalenessSeconds=120",
            "mongodb://h/?readPreferenceTags=dc:ny",
            "mongodb://h/?w=0&journal=true",
            "mongodb://h/?proxyPort=1",
            "mongodb://h/?authMechanism=NOPE",
        ] {
            assert!(ConnectionString::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn srv_is_kept_unresolved_and_turns_tls_on() {
        let cs =
            ConnectionString::parse("mongodb+srv://cluster.example.com/?srvMaxHosts=2").unwrap();
        assert!(cs.srv);
        assert!(cs.options.tls_enabled());
        assert_eq!(cs.options.srv_max_hosts, Some(2));
    }

    #[test]
    fn credential_rules() {
        let o = ClientOptions::parse("mongodb://localhost/?authMechanism=MONGODB-X509").unwrap();
        let c = o.credential.unwrap();
        assert_eq!(c.mechanism(), Some(AuthMechanism::MongoDbX509));
        assert_eq!(c.source(), "$external");
        assert!(
            ClientOptions::parse("mongodb://localhost/?authSource=foo")
                .unwrap()
                .credential
                .is_none()
        );
        assert!(ClientOptions::parse("mongodb://u:p@h/?authMechanism=MONGODB-X509").is_err());
    }

    #[test]
    fn errors_and_debug_hide_the_password() {
        let cs = ConnectionString::parse("mongodb://u:sekrit@h").unwrap();
        assert!(!format!("{cs:?}").contains("sekrit"));
        // Unescaped ':', '/', '?' and '%' in a password: the error must not echo it.
        for uri in [
            "mongodb://u:sek:rit@h",
            "mongodb://u:sek/rit@h",
            "mongodb://u:sek?rit@h",
            "mongodb://u:sek%rit@h",
            "mongodb://u:sek rit@h",
        ] {
            let err = ConnectionString::parse(uri).unwrap_err();
            assert!(!err.to_string().contains("sek"), "{uri}: {err}");
            assert!(!err.to_string().contains("rit"), "{uri}: {err}");
        }
    }

    #[test]
    fn tls_conflicts_count_presence_not_validity() {
        assert!(
            ConnectionString::parse("mongodb://h/?tlsInsecure=nope&tlsAllowInvalidHostnames=true")
                .is_err()
        );
        let cs = ConnectionString::parse("mongodb://h/?tlsInsecure=nope").unwrap();
        assert_eq!(cs.warnings.len(), 1);
    }
}
