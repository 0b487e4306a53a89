//! An application's lifecycle (docs/spec/auth-server.md §8): create, update, rotate its secret,
//! delete — and which earlier tokens each change kills. Every front (the CLI today) calls these;
//! none decides a rule itself.
//!
//! A change that narrows what a token may do or who may hold one (a scope or a domain removed,
//! deactivation, a new secret, deletion) moves `tokens_not_before` to the next whole second
//! (`shared::claims::next_not_before`): every token minted before it dies at once for
//! introspection and within one feed poll for local verifiers. Widening changes (a scope or a
//! domain added, a rename, reactivation) kill nothing and revive nothing.

use chrono::{DateTime, Utc};
use secrecy::SecretString;
use server_kit::random;
use shared::claims::next_not_before;
use shared::client_id::CLIENT_ID_LEN;
use shared::{Allowlist, ClientId, DomainPattern, Scope, ScopeSet};
use uuid::Uuid;

use super::client_secret;
use crate::store::applications::{self as store, Application};
use crate::store::{Conn, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("no application with client_id {0}")]
    NotFound(ClientId),
    #[error("name must be 1 to 255 characters")]
    InvalidName,
    #[error("application has no domain {0}")]
    NoSuchDomain(DomainPattern),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The CSPRNG or the hasher failed while minting a client_id or a secret.
    #[error("cannot mint credentials: {0}")]
    Mint(#[source] anyhow::Error),
}

/// What `update` may change; every field empty or `None` changes nothing.
#[derive(Debug, Default, Clone)]
pub struct Changes {
    pub name: Option<String>,
    pub add_scopes: Vec<Scope>,
    pub remove_scopes: Vec<Scope>,
    pub add_domains: Vec<DomainPattern>,
    pub remove_domains: Vec<DomainPattern>,
    /// `Some(false)` deactivates, `Some(true)` activates.
    pub active: Option<bool>,
}

fn valid_name(name: &str) -> Result<String, AppError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 255 {
        return Err(AppError::InvalidName);
    }
    Ok(name.to_owned())
}

fn mint_secret() -> Result<(SecretString, String), AppError> {
    let secret = client_secret::generate().map_err(|e| AppError::Mint(e.into()))?;
    let hash = client_secret::hash(&secret).map_err(|e| AppError::Mint(e.into()))?;
    Ok((secret, hash))
}

/// Registers an application and returns it with its secret — the only time the secret exists
/// outside the caller's hands; the database keeps its argon2id hash.
pub async fn create(
    db: &impl Conn,
    name: &str,
    scopes: ScopeSet,
    domains: Allowlist,
    now: DateTime<Utc>,
) -> Result<(Application, SecretString), AppError> {
    let name = valid_name(name)?;
    let (secret, secret_hash) = mint_secret()?;
    let client_id = random::base62(CLIENT_ID_LEN)
        .map_err(|e| AppError::Mint(e.into()))
        .and_then(|raw| ClientId::parse(&raw).map_err(|e| AppError::Mint(e.into())))?;
    let app = Application {
        id: Uuid::new_v4(),
        client_id,
        name,
        secret_hash,
        scopes,
        domains,
        is_active: true,
        tokens_not_before: None,
        created_at: now,
        updated_at: now,
    };
    store::insert(db, &app).await?;
    Ok((app, secret))
}

pub async fn find(db: &impl Conn, client_id: &ClientId) -> Result<Application, AppError> {
    store::find_by_client_id(db, client_id)
        .await?
        .ok_or_else(|| AppError::NotFound(client_id.clone()))
}

pub async fn list(db: &impl Conn) -> Result<Vec<Application>, AppError> {
    Ok(store::list(db).await?)
}

/// The rule of `update`, without the database: the application as it is after `changes`.
/// Nothing is changed when a change is refused.
pub fn apply(
    app: &Application,
    changes: Changes,
    now: DateTime<Utc>,
) -> Result<Application, AppError> {
    let mut next = app.clone();
    if let Some(name) = &changes.name {
        next.name = valid_name(name)?;
    }
    for s in changes.add_scopes {
        next.scopes.insert(s);
    }
    for s in changes.remove_scopes {
        next.scopes.remove(s);
    }
    for d in changes.add_domains {
        next.domains.insert(d);
    }
    for d in &changes.remove_domains {
        if !next.domains.remove(d) {
            return Err(AppError::NoSuchDomain(d.clone()));
        }
    }
    let deactivated = changes.active == Some(false);
    if let Some(active) = changes.active {
        next.is_active = active;
    }
    // A token for a user of a removed domain, or with a removed scope, must not outlive the
    // removal; nor any token of a deactivated application (reactivation revives none).
    let lost_scope = !next.scopes.is_superset(app.scopes);
    if lost_scope || !changes.remove_domains.is_empty() || deactivated {
        next.tokens_not_before = Some(next_not_before(now));
    }
    next.updated_at = now;
    Ok(next)
}

pub async fn update(
    db: &impl Conn,
    client_id: &ClientId,
    changes: Changes,
    now: DateTime<Utc>,
) -> Result<Application, AppError> {
    let app = apply(&find(db, client_id).await?, changes, now)?;
    store::save(db, &app).await?;
    Ok(app)
}

/// The rule of `rotate_secret`: the new hash, and unless `keep_tokens` the end of every token
/// issued with the old secret.
pub fn with_secret(
    app: &Application,
    secret_hash: String,
    keep_tokens: bool,
    now: DateTime<Utc>,
) -> Application {
    let mut next = app.clone();
    next.secret_hash = secret_hash;
    if !keep_tokens {
        next.tokens_not_before = Some(next_not_before(now));
    }
    next.updated_at = now;
    next
}

/// Issues a new secret; the old one stops working at once, on every replica (the verified-secret
/// cache is bound to the stored hash).
pub async fn rotate_secret(
    db: &impl Conn,
    client_id: &ClientId,
    keep_tokens: bool,
    now: DateTime<Utc>,
) -> Result<(Application, SecretString), AppError> {
    let app = find(db, client_id).await?;
    let (secret, hash) = mint_secret()?;
    let app = with_secret(&app, hash, keep_tokens, now);
    store::save(db, &app).await?;
    Ok((app, secret))
}

/// The rule of `delete`: inactive, and every token it ever issued refused.
pub fn deleted(app: &Application, now: DateTime<Utc>) -> Application {
    let mut next = app.clone();
    next.is_active = false;
    next.tokens_not_before = Some(now);
    next.updated_at = now;
    next
}

/// Deletes by tombstone, so local verifiers still learn of it from the feed.
pub async fn delete(
    db: &impl Conn,
    client_id: &ClientId,
    now: DateTime<Utc>,
) -> Result<Application, AppError> {
    let app = deleted(&find(db, client_id).await?, now);
    store::delete(db, &app, now).await?;
    Ok(app)
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;
    use shared::claims::not_before_seconds;

    use super::*;

    fn t0() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 250_000_000).unwrap()
    }

    fn app() -> Application {
        Application {
            id: Uuid::nil(),
            client_id: ClientId::parse(&"a".repeat(shared::client_id::CLIENT_ID_LEN)).unwrap(),
            name: "calendar".into(),
            secret_hash: "old".into(),
            scopes: [Scope::RoomsCreate, Scope::RoomsList].into_iter().collect(),
            domains: Allowlist::new([domain("example.com")]),
            is_active: true,
            tokens_not_before: None,
            created_at: t0(),
            updated_at: t0(),
        }
    }

    fn domain(d: &str) -> DomainPattern {
        DomainPattern::parse(d).unwrap()
    }

    /// The rule introspection and every local verifier apply to a token issued at `iat`.
    fn kills(app: &Application, iat: DateTime<Utc>) -> bool {
        !app.is_active
            || app
                .tokens_not_before
                .is_some_and(|t| iat.timestamp() < not_before_seconds(t))
    }

    /// A token minted in the same second as the change, just before it.
    fn earlier() -> DateTime<Utc> {
        t0() - TimeDelta::milliseconds(1)
    }

    #[test]
    fn narrowing_changes_kill_earlier_tokens() {
        let cases = [
            Changes {
                remove_scopes: vec![Scope::RoomsList],
                ..Changes::default()
            },
            Changes {
                remove_domains: vec![domain("example.com")],
                ..Changes::default()
            },
            Changes {
                active: Some(false),
                ..Changes::default()
            },
        ];
        for changes in cases {
            let after = apply(&app(), changes.clone(), t0()).unwrap();
            assert!(
                kills(&after, earlier()),
                "{changes:?} must kill earlier tokens"
            );
            assert!(
                kills(&after, t0()),
                "{changes:?}: a token of the change's own second dies too"
            );
            if after.is_active {
                assert!(
                    !kills(&after, t0() + TimeDelta::seconds(1)),
                    "{changes:?}: tokens of the next second live"
                );
            }
        }
    }

    #[test]
    fn widening_changes_kill_nothing_and_reactivation_revives_nothing() {
        let cases = [
            Changes {
                add_scopes: vec![Scope::RoomsDelete],
                ..Changes::default()
            },
            Changes {
                add_domains: vec![domain("*.example.org")],
                ..Changes::default()
            },
            Changes {
                name: Some("renamed".into()),
                ..Changes::default()
            },
            // Removing a scope the application never had narrows nothing.
            Changes {
                remove_scopes: vec![Scope::TokensIntrospect],
                ..Changes::default()
            },
        ];
        for changes in cases {
            let after = apply(&app(), changes.clone(), t0()).unwrap();
            assert!(!kills(&after, earlier()), "{changes:?} must kill nothing");
        }
        let off = apply(
            &app(),
            Changes {
                active: Some(false),
                ..Changes::default()
            },
            t0(),
        )
        .unwrap();
        let on = apply(
            &off,
            Changes {
                active: Some(true),
                ..Changes::default()
            },
            t0() + TimeDelta::seconds(5),
        )
        .unwrap();
        assert!(on.is_active);
        assert!(kills(&on, earlier()), "reactivation revives no token");
        assert!(!kills(&on, t0() + TimeDelta::seconds(5)));
    }

    #[test]
    fn a_refused_change_changes_nothing() {
        let before = app();
        let err = apply(
            &before,
            Changes {
                remove_scopes: vec![Scope::RoomsList],
                remove_domains: vec![domain("example.net")],
                ..Changes::default()
            },
            t0(),
        );
        assert!(matches!(err, Err(AppError::NoSuchDomain(_))));
        assert!(matches!(
            apply(
                &before,
                Changes {
                    name: Some("  ".into()),
                    ..Changes::default()
                },
                t0()
            ),
            Err(AppError::InvalidName)
        ));
        assert!(!kills(&before, earlier()));
    }

    #[test]
    fn a_new_secret_kills_earlier_tokens_unless_kept() {
        let rotated = with_secret(&app(), "new".into(), false, t0());
        assert_eq!(rotated.secret_hash, "new");
        assert!(kills(&rotated, earlier()));
        let kept = with_secret(&app(), "new".into(), true, t0());
        assert_eq!(kept.secret_hash, "new");
        assert!(!kills(&kept, earlier()));
    }

    #[test]
    fn deletion_kills_every_token() {
        let gone = deleted(&app(), t0());
        assert!(kills(&gone, earlier()));
        assert!(kills(&gone, t0() + TimeDelta::days(1)));
    }
}
