//! The per-connection credential set: which (source, user) logins a connection holds, and the
//! plan (log out of what is no longer wanted, authenticate what is missing) that brings it up
//! to date with the client's credentials — the old pooling notes' `check_auth`.
//!
//! Servers allow one login per source database, so the set is keyed by source.

use std::collections::BTreeMap;

use bson::{Document, doc};

use crate::credential::Credential;

/// `{logout: 1}`, to run on a source database to drop its login.
pub fn logout_command() -> Document {
    doc! { "logout": 1 }
}

/// What a connection is logged in as: source database → username (`None` for a login with
/// no username, e.g. X.509 without `user`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthState {
    logins: BTreeMap<String, Option<String>>,
}

/// The name the design uses for the same thing.
pub type CredentialSet = AuthState;

/// The steps that bring an [`AuthState`] up to date: first log out of each source in
/// `logout`, then authenticate each credential in `authenticate`.
#[derive(Debug, Clone, Default, PartialEq)]
#[must_use]
pub struct AuthPlan {
    /// Source databases to send [`logout_command`] to.
    pub logout: Vec<String>,
    /// Credentials to authenticate, in the client's order.
    pub authenticate: Vec<Credential>,
}

impl AuthPlan {
    /// Whether the connection is already up to date.
    pub fn is_empty(&self) -> bool {
        self.logout.is_empty() && self.authenticate.is_empty()
    }

    /// The logout commands with the database each goes to.
    pub fn logout_commands(&self) -> impl Iterator<Item = (&str, Document)> + '_ {
        self.logout.iter().map(|s| (s.as_str(), logout_command()))
    }
}

impl AuthState {
    /// A connection logged in to nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the connection holds exactly this login.
    pub fn is_logged_in(&self, source: &str, username: Option<&str>) -> bool {
        self.logins
            .get(source)
            .is_some_and(|u| u.as_deref() == username)
    }

    /// Whether the connection holds `credential`'s login.
    pub fn has(&self, credential: &Credential) -> bool {
        self.is_logged_in(credential.source(), credential.username())
    }

    /// Every login, ordered by source.
    pub fn logins(&self) -> impl Iterator<Item = (&str, Option<&str>)> + '_ {
        self.logins.iter().map(|(s, u)| (s.as_str(), u.as_deref()))
    }

    /// The number of logins.
    pub fn len(&self) -> usize {
        self.logins.len()
    }

    /// Whether the connection is logged in to nothing.
    pub fn is_empty(&self) -> bool {
        self.logins.is_empty()
    }

    /// What to do so that the connection holds exactly `wanted`. When two wanted
    /// credentials share a source, the first wins (a server keeps one login per source).
    ///
    /// A source logged in as a different user is logged out and then authenticated again.
    pub fn plan(&self, wanted: &[Credential]) -> AuthPlan {
        let mut by_source: BTreeMap<&str, &Credential> = BTreeMap::new();
        let mut ordered = Vec::new();
        for cred in wanted {
            if !by_source.contains_key(cred.source()) {
                by_source.insert(cred.source(), cred);
                ordered.push(cred);
            }
        }
        let logout = self
            .logins
            .iter()
            .filter(|(source, user)| {
                by_source
                    .get(source.as_str())
                    .is_none_or(|c| c.username() != user.as_deref())
            })
            .map(|(source, _)| source.clone())
            .collect();
        let authenticate = ordered
            .into_iter()
            .filter(|c| !self.has(c))
            .cloned()
            .collect();
        AuthPlan {
            logout,
            authenticate,
        }
    }

    /// Records a successful authentication (replacing any login on the same source).
    pub fn mark_logged_in(&mut self, credential: &Credential) {
        self.logins.insert(
            credential.source().to_owned(),
            credential.username().map(str::to_owned),
        );
    }

    /// Records a logout from `source`.
    pub fn mark_logged_out(&mut self, source: &str) {
        self.logins.remove(source);
    }

    /// Records that every step of `plan` succeeded.
    pub fn apply(&mut self, plan: &AuthPlan) {
        for source in &plan.logout {
            self.mark_logged_out(source);
        }
        for cred in &plan.authenticate {
            self.mark_logged_in(cred);
        }
    }

    /// Forgets every login (e.g. the server restarted, or the connection is new).
    pub fn clear(&mut self) {
        self.logins.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credential::AuthMechanism;

    fn cred(user: &str, source: &str) -> Credential {
        Credential::builder()
            .username(user)
            .password("pw")
            .source(source)
            .build()
            .unwrap()
    }

    #[test]
    fn fresh_connection_authenticates_everything() {
        let state = AuthState::new();
        let wanted = [cred("a", "admin"), cred("b", "db1")];
        let plan = state.plan(&wanted);
        assert!(plan.logout.is_empty());
        assert_eq!(plan.authenticate, wanted.to_vec());
        let mut state = state;
        state.apply(&plan);
        assert!(state.is_logged_in("admin", Some("a")));
        assert!(state.is_logged_in("db1", Some("b")));
        assert!(state.plan(&wanted).is_empty());
    }

    #[test]
    fn removed_and_changed_credentials_are_logged_out() {
        let mut state = AuthState::new();
        state.mark_logged_in(&cred("a", "admin"));
        state.mark_logged_in(&cred("b", "db1"));
        state.mark_logged_in(&cred("c", "db2"));
        // db1 dropped, db2 now a different user, admin unchanged, db3 new.
        let wanted = [cred("a", "admin"), cred("z", "db2"), cred("d", "db3")];
        let plan = state.plan(&wanted);
        assert_eq!(plan.logout, vec!["db1".to_owned(), "db2".to_owned()]);
        assert_eq!(plan.authenticate, vec![cred("z", "db2"), cred("d", "db3")]);
        let cmds: Vec<_> = plan.logout_commands().collect();
        assert_eq!(cmds[0], ("db1", doc! {"logout": 1}));
        state.apply(&plan);
        let logins: Vec<_> = state.logins().collect();
        assert_eq!(
            logins,
            vec![("admin", Some("a")), ("db2", Some("z")), ("db3", Some("d"))]
        );
        assert!(state.plan(&wanted).is_empty());
    }

    #[test]
    fn logout_everything_and_step_by_step_marks() {
        let mut state = AuthState::new();
        state.mark_logged_in(&cred("a", "admin"));
        let plan = state.plan(&[]);
        assert_eq!(plan.logout, vec!["admin".to_owned()]);
        assert!(plan.authenticate.is_empty());
        state.mark_logged_out("admin");
        assert!(state.is_empty());
        assert!(state.plan(&[]).is_empty());
    }

    #[test]
    fn first_credential_per_source_wins_and_x509_without_user() {
        let state = AuthState::new();
        let plan = state.plan(&[cred("a", "admin"), cred("b", "admin")]);
        assert_eq!(plan.authenticate, vec![cred("a", "admin")]);
        let x509 = Credential::builder()
            .mechanism(Some(AuthMechanism::MongoDbX509))
            .build()
            .unwrap();
        let mut state = AuthState::new();
        state.mark_logged_in(&x509);
        assert!(state.is_logged_in("$external", None));
        assert!(state.plan(std::slice::from_ref(&x509)).is_empty());
        state.clear();
        assert_eq!(state.len(), 0);
    }
}
