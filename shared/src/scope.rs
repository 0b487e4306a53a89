//! Scopes: what a token lets an application do for its user, and the client privileges that
//! are never put in a token.

use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    RoomsCreate,
    RoomsList,
    RoomsRetrieve,
    RoomsUpdate,
    RoomsDelete,
    /// May give another user a role on a room (`POST /rooms/{id}/grant-access/`) and take it
    /// back.
    RoomsGrantAccess,
    /// Client privilege: may call the introspection endpoint.
    TokensIntrospect,
    /// Client privilege: may read the revocation feed.
    TokensRevocations,
    /// Client privilege: may resolve an application's user by e-mail (the rooms API's grants),
    /// under that application's allowlist and user-creation policy.
    UsersResolve,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown scope {0:?} (known: rooms:create rooms:list rooms:retrieve rooms:update rooms:delete rooms:grant-access tokens:introspect tokens:revocations users:resolve)"
)]
pub struct UnknownScope(pub String);

impl Scope {
    /// Every scope in canonical order (the order tokens list them in).
    pub const ALL: [Scope; 9] = [
        Scope::RoomsCreate,
        Scope::RoomsList,
        Scope::RoomsRetrieve,
        Scope::RoomsUpdate,
        Scope::RoomsDelete,
        Scope::RoomsGrantAccess,
        Scope::TokensIntrospect,
        Scope::TokensRevocations,
        Scope::UsersResolve,
    ];

    pub const ROOMS: [Scope; 6] = [
        Scope::RoomsCreate,
        Scope::RoomsList,
        Scope::RoomsRetrieve,
        Scope::RoomsUpdate,
        Scope::RoomsDelete,
        Scope::RoomsGrantAccess,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::RoomsCreate => "rooms:create",
            Scope::RoomsList => "rooms:list",
            Scope::RoomsRetrieve => "rooms:retrieve",
            Scope::RoomsUpdate => "rooms:update",
            Scope::RoomsDelete => "rooms:delete",
            Scope::RoomsGrantAccess => "rooms:grant-access",
            Scope::TokensIntrospect => "tokens:introspect",
            Scope::TokensRevocations => "tokens:revocations",
            Scope::UsersResolve => "users:resolve",
        }
    }

    /// Privileges belong to the client itself and must never appear in an access token.
    pub fn is_privilege(self) -> bool {
        matches!(
            self,
            Scope::TokensIntrospect | Scope::TokensRevocations | Scope::UsersResolve
        )
    }

    fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Scope {
    type Err = UnknownScope;
    /// Case-insensitive: resource servers match token scopes that way.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scope::ALL
            .into_iter()
            .find(|scope| scope.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownScope(s.to_owned()))
    }
}

/// A set of scopes, printed space-separated in canonical order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct ScopeSet(u16);

impl ScopeSet {
    pub const fn empty() -> Self {
        Self(0)
    }

    pub fn contains(self, scope: Scope) -> bool {
        self.0 & scope.bit() != 0
    }

    pub fn insert(&mut self, scope: Scope) {
        self.0 |= scope.bit();
    }

    pub fn remove(&mut self, scope: Scope) {
        self.0 &= !scope.bit();
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn iter(self) -> impl Iterator<Item = Scope> {
        Scope::ALL.into_iter().filter(move |s| self.contains(*s))
    }

    pub fn intersection(self, other: ScopeSet) -> ScopeSet {
        Self(self.0 & other.0)
    }

    /// True when every scope of `other` is also in `self`.
    pub fn is_superset(self, other: ScopeSet) -> bool {
        self.0 & other.0 == other.0
    }

    /// The part that may be put in an access token (the `rooms:*` scopes).
    pub fn token_scopes(self) -> ScopeSet {
        self.iter().filter(|s| !s.is_privilege()).collect()
    }

    /// Strict parse of a space-separated list: an unknown scope is an error.
    pub fn parse(input: &str) -> Result<Self, UnknownScope> {
        input
            .split_ascii_whitespace()
            .map(Scope::from_str)
            .collect()
    }

    /// Lenient parse for tokens from other issuers: unknown scopes are ignored.
    pub fn parse_known<'a>(items: impl IntoIterator<Item = &'a str>) -> Self {
        items
            .into_iter()
            .filter_map(|s| Scope::from_str(s).ok())
            .collect()
    }

    /// `None` when empty: the token's `scope` claim and the token response omit it then.
    pub fn to_claim(self) -> Option<String> {
        (!self.is_empty()).then(|| self.to_string())
    }
}

impl FromIterator<Scope> for ScopeSet {
    fn from_iter<I: IntoIterator<Item = Scope>>(iter: I) -> Self {
        let mut set = ScopeSet::empty();
        for s in iter {
            set.insert(s);
        }
        set
    }
}

impl fmt::Display for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for s in self.iter() {
            if !first {
                f.write_str(" ")?;
            }
            first = false;
            f.write_str(s.as_str())?;
        }
        Ok(())
    }
}

impl FromStr for ScopeSet {
    type Err = UnknownScope;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn canonical_order_and_privileges_filtered() {
        let set =
            ScopeSet::parse("tokens:introspect rooms:delete ROOMS:CREATE rooms:list").unwrap();
        assert_eq!(
            set.to_string(),
            "rooms:create rooms:list rooms:delete tokens:introspect"
        );
        assert_eq!(
            set.token_scopes().to_string(),
            "rooms:create rooms:list rooms:delete"
        );
        assert_eq!(ScopeSet::empty().to_claim(), None);
        assert!(ScopeSet::parse("rooms:fly").is_err());
        // The grant scope is a token scope; resolving users is the client's own privilege.
        let grants =
            ScopeSet::parse("users:resolve rooms:grant-access tokens:revocations").unwrap();
        assert_eq!(grants.token_scopes().to_string(), "rooms:grant-access");
        assert!(Scope::UsersResolve.is_privilege() && !Scope::RoomsGrantAccess.is_privilege());
        assert_eq!(
            ScopeSet::parse_known(["meet:x", "rooms:list"]).to_string(),
            "rooms:list"
        );
    }

    proptest! {
        #[test]
        fn round_trips(bits in 0u16..512) {
            let set: ScopeSet = Scope::ALL.into_iter().filter(|s| bits & (1 << (*s as u16)) != 0).collect();
            prop_assert_eq!(ScopeSet::parse(&set.to_string()).unwrap(), set);
        }

        #[test]
        fn single_scope_round_trips(i in 0usize..Scope::ALL.len()) {
            let s = Scope::ALL[i];
            prop_assert_eq!(s.to_string().parse::<Scope>().unwrap(), s);
            prop_assert_eq!(s.to_string().to_uppercase().parse::<Scope>().unwrap(), s);
        }
    }
}

/// Set operations the token endpoint's down-scoping and the verifiers rely on.
#[cfg(test)]
mod set_edges {
    use super::*;

    fn set(s: &[Scope]) -> ScopeSet {
        s.iter().copied().collect()
    }

    #[test]
    fn remove_intersection_superset_and_parse() {
        let mut s = set(&[Scope::RoomsList, Scope::RoomsCreate]);
        s.remove(Scope::RoomsCreate);
        assert_eq!(s, set(&[Scope::RoomsList]));
        s.remove(Scope::RoomsDelete);
        assert_eq!(
            s,
            set(&[Scope::RoomsList]),
            "removing an absent scope changes nothing"
        );
        let a = set(&[Scope::RoomsList, Scope::RoomsCreate, Scope::RoomsUpdate]);
        let b = set(&[Scope::RoomsCreate, Scope::RoomsDelete]);
        assert_eq!(a.intersection(b), set(&[Scope::RoomsCreate]));
        assert!(a.is_superset(set(&[Scope::RoomsList, Scope::RoomsUpdate])));
        assert!(a.is_superset(ScopeSet::default()));
        assert!(!a.is_superset(b));
        assert!(!set(&[]).is_superset(set(&[Scope::RoomsList])));
        assert_eq!(
            "rooms:list rooms:create".parse::<ScopeSet>().unwrap(),
            set(&[Scope::RoomsList, Scope::RoomsCreate])
        );
        assert!("rooms:fly".parse::<ScopeSet>().is_err());
    }
}
