//! An application's lifecycle (docs/spec/auth-server.md §8): create, update, rotate its secret,
//! delete — and which earlier tokens each change kills. Both fronts (the CLI and the admin API)
//! call these; neither decides a rule itself. Every change lands in one transaction with its
//! audit event (`audit.rs`).
//!
//! A change that narrows what a token may do or who may hold one (a scope or a domain removed,
//! deactivation, a new secret, deletion) moves `tokens_not_before` to the next whole second
//! (`shared::claims::next_not_before`): every token minted before it dies at once for
//! introspection and within one feed poll for local verifiers. Widening changes (a scope or a
//! domain added, a rename, reactivation, a lifetime change) kill nothing and revive nothing.

use chrono::{DateTime, TimeDelta, Utc};
use secrecy::SecretString;
use serde_json::{Value, json};
use server_kit::random;
use shared::claims::next_not_before;
use shared::client_id::CLIENT_ID_LEN;
use shared::{Allowlist, ClientId, DomainPattern, Scope, ScopeSet};
use uuid::Uuid;

use super::audit::{self, Actor, Change, Resource};
use super::client_keys::{self, KeysError};
use super::client_secret;
use super::paging::{Page, PageRequest};
use super::text;
use crate::model::StoreError;
use crate::model::{Application, AuthMethod};
use crate::store::applications as store;
use crate::store::{self as db_store, Conn, Db};

/// The longest grace a rotation may give the old secret.
pub const MAX_GRACE: TimeDelta = TimeDelta::days(30);

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("no application with client_id {0}")]
    NotFound(ClientId),
    #[error("name must be 1 to 255 characters, none of them a control character")]
    InvalidName,
    #[error("application has no domain {0}")]
    NoSuchDomain(DomainPattern),
    #[error("token lifetime must be 1 to {max} seconds (the server's TOKEN_TTL_SECONDS)")]
    InvalidTokenTtl { max: u32 },
    #[error("grace must be at most 30 days")]
    InvalidGrace,
    #[error(transparent)]
    InvalidKeys(#[from] KeysError),
    #[error("private_key_jwt needs keys: give a JWKS or a jwks_uri")]
    NeedsKeys,
    #[error(
        "this application has no secret: rotate its secret before it authenticates with client_secret"
    )]
    NeedsSecret,
    #[error("an application without a secret authenticates with private_key_jwt")]
    NoSecretNeedsKeyAuth,
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The CSPRNG or the hasher failed while minting a client_id or a secret.
    #[error("cannot mint credentials: {0}")]
    Mint(#[source] anyhow::Error),
}

/// An application's public keys as an operator gives them (validated on the way in).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeysInput {
    /// A JWKS document (RFC 7517 §5).
    Jwks(String),
    /// Where the auth-server fetches the JWKS.
    JwksUri(String),
}

/// A new application as asked for.
#[derive(Debug, Clone, Default)]
pub struct NewApp {
    pub name: String,
    pub scopes: ScopeSet,
    pub domains: Allowlist,
    pub token_ttl_seconds: Option<u32>,
    pub keys: Option<KeysInput>,
    /// Unsaid: `private_key_jwt` without a secret, `client_secret` otherwise.
    pub auth_method: Option<AuthMethod>,
    /// Registers no secret at all (needs keys; implies `private_key_jwt`).
    pub no_secret: bool,
    /// Every token request must carry a DPoP proof.
    pub dpop_bound_access_tokens: bool,
}

/// What `update` may change; every field empty or `None` changes nothing. The CLI adds and
/// removes (`add_*`, `remove_*`); the admin API replaces (`scopes`, `domains`); the rule that
/// decides which tokens die compares before and after, so both say the same thing.
#[derive(Debug, Default, Clone)]
pub struct Changes {
    pub name: Option<String>,
    pub add_scopes: Vec<Scope>,
    pub remove_scopes: Vec<Scope>,
    pub add_domains: Vec<DomainPattern>,
    pub remove_domains: Vec<DomainPattern>,
    /// Every scope the application has after the change.
    pub scopes: Option<ScopeSet>,
    /// Every domain the application admits after the change (empty: any).
    pub domains: Option<Vec<DomainPattern>>,
    /// `Some(false)` deactivates, `Some(true)` activates.
    pub active: Option<bool>,
    /// `Some(None)` goes back to the server's lifetime.
    pub token_ttl_seconds: Option<Option<u32>>,
    /// `Some(None)` removes the keys.
    pub keys: Option<Option<KeysInput>>,
    pub auth_method: Option<AuthMethod>,
    /// `Some(true)`: every token request must carry a DPoP proof from now on.
    pub dpop_bound_access_tokens: Option<bool>,
}

/// A secret rotation: with a grace, the old secret keeps working until it ends.
#[derive(Debug, Clone, Copy, Default)]
pub struct Rotation {
    pub grace: Option<TimeDelta>,
    /// Whether tokens issued before the rotation die. Unsaid: they die without a grace (a
    /// leaked secret's tokens must not outlive it), and live with one (the integrator is
    /// still using the old secret while it deploys the new).
    pub revoke_tokens: Option<bool>,
}

fn valid_name(name: &str) -> Result<String, AppError> {
    let name = name.trim();
    // No control characters: a NUL can't be stored in PostgreSQL text (it answered 500), and a
    // line break would forge lines in the CLI's listings.
    if name.is_empty() || !text::printable_within(name, 255) {
        return Err(AppError::InvalidName);
    }
    Ok(name.to_owned())
}

fn valid_ttl(ttl: Option<u32>, max: u32) -> Result<Option<u32>, AppError> {
    match ttl {
        Some(t) if t == 0 || t > max => Err(AppError::InvalidTokenTtl { max }),
        other => Ok(other),
    }
}

/// The stored form of `keys`: (jwks, jwks_uri), each checked.
fn stored_keys(keys: Option<&KeysInput>) -> Result<(Option<String>, Option<String>), AppError> {
    Ok(match keys {
        None => (None, None),
        Some(KeysInput::Jwks(text)) => (Some(client_keys::validate_jwks(text)?), None),
        Some(KeysInput::JwksUri(uri)) => (None, Some(client_keys::validate_jwks_uri(uri)?)),
    })
}

/// The rules that tie the method to the credentials: `private_key_jwt` needs keys,
/// `client_secret` a secret.
fn check_credentials(app: &Application) -> Result<(), AppError> {
    match app.auth_method {
        AuthMethod::PrivateKeyJwt if !app.has_keys() => Err(AppError::NeedsKeys),
        AuthMethod::ClientSecret if app.secret_hash.is_empty() => Err(AppError::NeedsSecret),
        _ => Ok(()),
    }
}

/// The `kid`s of a stored JWKS, for the audit trail and views (public keys, but 16 KiB of
/// them is noise).
pub fn jwks_kids(jwks: &str) -> Vec<String> {
    serde_json::from_str::<Value>(jwks)
        .ok()
        .and_then(|doc| doc.get("keys").and_then(Value::as_array).cloned())
        .unwrap_or_default()
        .iter()
        .map(|k| {
            k.get("kid")
                .and_then(Value::as_str)
                .unwrap_or("(no kid)")
                .to_owned()
        })
        .collect()
}

fn mint_secret() -> Result<(SecretString, String), AppError> {
    let secret = client_secret::generate().map_err(|e| AppError::Mint(e.into()))?;
    let hash = client_secret::hash(&secret).map_err(|e| AppError::Mint(e.into()))?;
    Ok((secret, hash))
}

/// What the audit trail shows of an application: everything an operator may change, never a
/// secret or its hash.
pub fn audit_view(app: &Application) -> Value {
    json!({
        "name": app.name,
        "scopes": app.scopes.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        "domains": app.domains.iter().map(|d| d.to_string()).collect::<Vec<_>>(),
        "is_active": app.is_active,
        "token_ttl_seconds": app.token_ttl_seconds,
        "tokens_not_before": app.tokens_not_before,
        "previous_secret_expires_at": app.previous_secret_expires_at,
        "token_endpoint_auth_method": app.auth_method.as_str(),
        "has_secret": !app.secret_hash.is_empty(),
        "jwks_kids": app.jwks.as_deref().map(jwks_kids),
        "jwks_uri": app.jwks_uri,
        "dpop_bound_access_tokens": app.dpop_bound_access_tokens,
    })
}

fn change(app: &Application, action: &'static str, changes: Value) -> Change {
    Change {
        resource: Resource::Application,
        resource_id: app.client_id.to_string(),
        action,
        changes,
    }
}

/// Registers an application and returns it with its secret — the only time the secret exists
/// outside the caller's hands; the database keeps its argon2id hash. An application registered
/// with keys and `no_secret` has no secret at all.
pub async fn create(
    db: &Db,
    actor: &Actor,
    new: NewApp,
    max_ttl: u32,
    now: DateTime<Utc>,
) -> Result<(Application, Option<SecretString>), AppError> {
    let name = valid_name(&new.name)?;
    let token_ttl_seconds = valid_ttl(new.token_ttl_seconds, max_ttl)?;
    let (jwks, jwks_uri) = stored_keys(new.keys.as_ref())?;
    let auth_method = match (new.auth_method, new.no_secret) {
        (Some(AuthMethod::ClientSecret), true) => return Err(AppError::NoSecretNeedsKeyAuth),
        (Some(m), _) => m,
        (None, true) => AuthMethod::PrivateKeyJwt,
        (None, false) => AuthMethod::ClientSecret,
    };
    let (secret, secret_hash) = if new.no_secret {
        (None, String::new())
    } else {
        let (secret, hash) = mint_secret()?;
        (Some(secret), hash)
    };
    let client_id = random::base62(CLIENT_ID_LEN)
        .map_err(|e| AppError::Mint(e.into()))
        .and_then(|raw| ClientId::parse(&raw).map_err(|e| AppError::Mint(e.into())))?;
    let app = Application {
        id: Uuid::new_v4(),
        client_id,
        name,
        secret_hash,
        previous_secret_hash: None,
        previous_secret_expires_at: None,
        scopes: new.scopes,
        domains: new.domains,
        is_active: true,
        tokens_not_before: None,
        token_ttl_seconds,
        last_token_at: None,
        auth_method,
        jwks,
        jwks_uri,
        dpop_bound_access_tokens: new.dpop_bound_access_tokens,
        created_at: now,
        updated_at: now,
    };
    check_credentials(&app)?;
    let tx = db_store::begin(db).await?;
    store::insert(&tx, &app).await?;
    let diff = audit::diff(&Value::Null, &audit_view(&app));
    audit::record(&tx, actor, change(&app, "create", diff), now).await?;
    db_store::commit(tx).await?;
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

/// A page of applications, oldest first, optionally those whose name contains `name`
/// (case-insensitive).
pub async fn page(
    db: &impl Conn,
    name: Option<&str>,
    page: PageRequest,
) -> Result<Page<Application>, AppError> {
    let name = name.map(str::trim).filter(|n| !n.is_empty());
    // A name is at most 255 characters and holds no control character (`valid_name`): a
    // longer or unprintable search matches nothing, so it is answered without the database
    // (where a NUL would be an error on PostgreSQL, and a long pattern only costs).
    if name.is_some_and(|n| !text::printable_within(n, 255)) {
        return Ok(Page::from_rows(Vec::new(), &page, |a: &Application| {
            (a.created_at, a.id)
        }));
    }
    let rows = store::page(db, page.after(), name, page.fetch()).await?;
    Ok(Page::from_rows(rows, &page, |a| (a.created_at, a.id)))
}

/// The rule of `update`, without the database: the application as it is after `changes`.
/// Nothing is changed when a change is refused.
pub fn apply(
    app: &Application,
    changes: Changes,
    max_ttl: u32,
    now: DateTime<Utc>,
) -> Result<Application, AppError> {
    let mut next = app.clone();
    if let Some(name) = &changes.name {
        next.name = valid_name(name)?;
    }
    if let Some(scopes) = changes.scopes {
        next.scopes = scopes;
    }
    for s in changes.add_scopes {
        next.scopes.insert(s);
    }
    for s in changes.remove_scopes {
        next.scopes.remove(s);
    }
    if let Some(domains) = changes.domains {
        next.domains = Allowlist::new(domains);
    }
    for d in changes.add_domains {
        next.domains.insert(d);
    }
    for d in &changes.remove_domains {
        if !next.domains.remove(d) {
            return Err(AppError::NoSuchDomain(d.clone()));
        }
    }
    if let Some(ttl) = changes.token_ttl_seconds {
        next.token_ttl_seconds = valid_ttl(ttl, max_ttl)?;
    }
    let deactivated = changes.active == Some(false);
    if let Some(active) = changes.active {
        next.is_active = active;
    }
    if let Some(keys) = &changes.keys {
        (next.jwks, next.jwks_uri) = stored_keys(keys.as_ref())?;
    }
    if let Some(method) = changes.auth_method {
        next.auth_method = method;
    }
    if let Some(bound) = changes.dpop_bound_access_tokens {
        next.dpop_bound_access_tokens = bound;
    }
    check_credentials(&next)?;
    // A token for a user of a removed domain, or with a removed scope, must not outlive the
    // removal; nor any token of a deactivated application (reactivation revives none); nor,
    // as with a new secret, any token obtained with credentials that no longer work (keys
    // replaced or removed, the method switched). Keys added where there were none kill nothing.
    let lost_scope = !next.scopes.is_superset(app.scopes);
    let lost_domain = app
        .domains
        .iter()
        .any(|d| !next.domains.iter().any(|n| n == d));
    // Requiring DPoP from now on kills the tokens obtained without: a bearer token stolen
    // before the switch must not outlive it.
    let lost_credentials = next.auth_method != app.auth_method
        || (app.has_keys() && (next.jwks != app.jwks || next.jwks_uri != app.jwks_uri))
        || (next.dpop_bound_access_tokens && !app.dpop_bound_access_tokens);
    if lost_scope || lost_domain || deactivated || lost_credentials {
        next.tokens_not_before = Some(next_not_before(now));
    }
    next.updated_at = now;
    Ok(next)
}

pub async fn update(
    db: &Db,
    actor: &Actor,
    client_id: &ClientId,
    changes: Changes,
    max_ttl: u32,
    now: DateTime<Utc>,
) -> Result<Application, AppError> {
    let tx = db_store::begin(db).await?;
    let before = find(&tx, client_id).await?;
    let app = apply(&before, changes, max_ttl, now)?;
    store::save(&tx, &app).await?;
    let diff = audit::diff(&audit_view(&before), &audit_view(&app));
    audit::record(&tx, actor, change(&app, "update", diff), now).await?;
    db_store::commit(tx).await?;
    Ok(app)
}

/// The rule of `rotate_secret`: the new hash; with a grace the old hash stays valid until it
/// ends (two secrets at most: a second rotation within a grace drops the oldest at once); and
/// unless kept, the end of every token issued before.
pub fn with_secret(
    app: &Application,
    secret_hash: String,
    rotation: Rotation,
    now: DateTime<Utc>,
) -> Result<Application, AppError> {
    let grace = rotation.grace.filter(|g| *g > TimeDelta::zero());
    if grace.is_some_and(|g| g > MAX_GRACE) || rotation.grace.is_some_and(|g| g < TimeDelta::zero())
    {
        return Err(AppError::InvalidGrace);
    }
    let mut next = app.clone();
    // An application without a secret has no old one to keep.
    match grace.filter(|_| !app.secret_hash.is_empty()) {
        Some(grace) => {
            next.previous_secret_hash = Some(std::mem::replace(&mut next.secret_hash, secret_hash));
            next.previous_secret_expires_at = Some(now + grace);
        }
        None => {
            next.secret_hash = secret_hash;
            next.previous_secret_hash = None;
            next.previous_secret_expires_at = None;
        }
    }
    if rotation.revoke_tokens.unwrap_or(grace.is_none()) {
        next.tokens_not_before = Some(next_not_before(now));
    }
    next.updated_at = now;
    Ok(next)
}

/// Issues a new secret. Without a grace the old one stops working at once, on every replica
/// (the verified-secret cache is bound to the stored hashes); with one, at the grace's end.
pub async fn rotate_secret(
    db: &Db,
    actor: &Actor,
    client_id: &ClientId,
    rotation: Rotation,
    now: DateTime<Utc>,
) -> Result<(Application, SecretString), AppError> {
    let (secret, hash) = mint_secret()?;
    let tx = db_store::begin(db).await?;
    let before = find(&tx, client_id).await?;
    let app = with_secret(&before, hash, rotation, now)?;
    store::save(&tx, &app).await?;
    let mut diff = audit::diff(&audit_view(&before), &audit_view(&app));
    if let Value::Object(fields) = &mut diff {
        // The fact of a new secret, never the secret.
        fields.insert(
            "secret".into(),
            json!({ "before": "(previous)", "after": "(new)" }),
        );
    }
    audit::record(&tx, actor, change(&app, "rotate_secret", diff), now).await?;
    db_store::commit(tx).await?;
    Ok((app, secret))
}

/// The rule of `delete`: inactive, and every token it ever issued refused.
pub fn deleted(app: &Application, now: DateTime<Utc>) -> Application {
    let mut next = app.clone();
    next.is_active = false;
    next.tokens_not_before = Some(now);
    next.previous_secret_hash = None;
    next.updated_at = now;
    next
}

/// Deletes by tombstone, so local verifiers still learn of it from the feed.
pub async fn delete(
    db: &Db,
    actor: &Actor,
    client_id: &ClientId,
    now: DateTime<Utc>,
) -> Result<Application, AppError> {
    let tx = db_store::begin(db).await?;
    let before = find(&tx, client_id).await?;
    let app = deleted(&before, now);
    store::delete(&tx, &app, now).await?;
    let diff = audit::diff(&audit_view(&before), &Value::Null);
    audit::record(&tx, actor, change(&app, "delete", diff), now).await?;
    db_store::commit(tx).await?;
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

    /// `private_key_jwt` needs keys (inline or by URI), `client_secret` a secret; each method
    /// is judged on its own credentials only.
    #[test]
    fn each_method_needs_its_own_credentials() {
        let mut app = Application::fixture(t0());
        app.auth_method = AuthMethod::PrivateKeyJwt;
        app.jwks = None;
        app.jwks_uri = None;
        app.secret_hash = String::new();
        assert!(matches!(check_credentials(&app), Err(AppError::NeedsKeys)));
        app.jwks_uri = Some("https://keys.example.com/jwks.json".into());
        assert!(check_credentials(&app).is_ok(), "no secret needed");
        app.jwks_uri = None;
        app.jwks = Some(r#"{"keys":[]}"#.into());
        assert!(check_credentials(&app).is_ok());
        app.auth_method = AuthMethod::ClientSecret;
        assert!(matches!(
            check_credentials(&app),
            Err(AppError::NeedsSecret)
        ));
        app.jwks = None;
        app.secret_hash = "$argon2id$v=19$m=7168,t=5,p=1$c2FsdA$aGFzaA".into();
        assert!(check_credentials(&app).is_ok(), "no keys needed");
    }

    /// The audit trail names a stored JWKS by its kids, in order; a key without one says so,
    /// and text that is no JWKS names none.
    #[test]
    fn a_stored_jwks_is_named_by_its_kids() {
        assert_eq!(
            jwks_kids(r#"{"keys":[{"kid":"b","kty":"OKP"},{"kty":"OKP"},{"kid":"a"}]}"#),
            ["b", "(no kid)", "a"]
        );
        assert!(jwks_kids("not json").is_empty());
        assert!(jwks_kids(r#"{"keys":{}}"#).is_empty());
    }

    /// A name is 1 to 255 characters (not bytes), trimmed, without control characters: the
    /// longest is kept, one more is refused.
    #[test]
    fn a_name_of_exactly_255_characters_is_kept_and_one_more_is_refused() {
        let longest = "é".repeat(255);
        assert_eq!(valid_name(&format!("  {longest} ")).unwrap(), longest);
        assert!(matches!(
            valid_name(&"é".repeat(256)),
            Err(AppError::InvalidName)
        ));
        for bad in ["", "   ", "a\nb", "nul\0"] {
            assert!(
                matches!(valid_name(bad), Err(AppError::InvalidName)),
                "{bad:?}"
            );
        }
    }

    /// An application's token lifetime is 1 second to the server's `TOKEN_TTL_SECONDS`: the
    /// server's own is allowed, one second more is refused, and so is 0.
    #[test]
    fn a_token_ttl_of_exactly_the_servers_is_kept_and_one_more_is_refused() {
        assert_eq!(valid_ttl(Some(3600), 3600).unwrap(), Some(3600));
        assert_eq!(valid_ttl(Some(1), 3600).unwrap(), Some(1));
        assert_eq!(valid_ttl(None, 3600).unwrap(), None);
        for bad in [0, 3601] {
            assert!(matches!(
                valid_ttl(Some(bad), 3600),
                Err(AppError::InvalidTokenTtl { max: 3600 })
            ));
        }
    }

    fn app() -> Application {
        Application {
            secret_hash: "old".into(),
            scopes: [Scope::RoomsCreate, Scope::RoomsList].into_iter().collect(),
            domains: Allowlist::new([domain("example.com")]),
            ..Application::fixture(t0())
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
            let after = apply(&app(), changes.clone(), 3600, t0()).unwrap();
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
            let after = apply(&app(), changes.clone(), 3600, t0()).unwrap();
            assert!(!kills(&after, earlier()), "{changes:?} must kill nothing");
        }
        let off = apply(
            &app(),
            Changes {
                active: Some(false),
                ..Changes::default()
            },
            3600,
            t0(),
        )
        .unwrap();
        let on = apply(
            &off,
            Changes {
                active: Some(true),
                ..Changes::default()
            },
            3600,
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
            3600,
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
                3600,
                t0()
            ),
            Err(AppError::InvalidName)
        ));
        assert!(!kills(&before, earlier()));
    }

    #[test]
    fn a_new_secret_kills_earlier_tokens_unless_kept() {
        let rotated = with_secret(&app(), "new".into(), Rotation::default(), t0()).unwrap();
        assert_eq!(rotated.secret_hash, "new");
        assert_eq!(rotated.accepted_hashes(t0()), ["new"]);
        assert!(kills(&rotated, earlier()));
        let kept = Rotation {
            revoke_tokens: Some(false),
            ..Rotation::default()
        };
        let kept = with_secret(&app(), "new".into(), kept, t0()).unwrap();
        assert_eq!(kept.secret_hash, "new");
        assert!(!kills(&kept, earlier()));
    }

    #[test]
    fn a_grace_keeps_two_secrets_until_it_ends_and_the_tokens_by_default() {
        let grace = Rotation {
            grace: Some(TimeDelta::hours(1)),
            ..Rotation::default()
        };
        let once = with_secret(&app(), "new".into(), grace, t0()).unwrap();
        assert_eq!(once.accepted_hashes(t0()), ["new", "old"]);
        assert_eq!(
            once.accepted_hashes(t0() + TimeDelta::hours(1)),
            ["new"],
            "the old secret stops at the grace's end"
        );
        assert!(!kills(&once, earlier()));
        // Two secrets at most: a second rotation within the grace drops the oldest.
        let twice = with_secret(&once, "newer".into(), grace, t0()).unwrap();
        assert_eq!(twice.accepted_hashes(t0()), ["newer", "new"]);
        let revoked = Rotation {
            revoke_tokens: Some(true),
            ..grace
        };
        assert!(kills(
            &with_secret(&app(), "new".into(), revoked, t0()).unwrap(),
            earlier()
        ));
        for bad in [TimeDelta::days(31), TimeDelta::seconds(-1)] {
            let r = Rotation {
                grace: Some(bad),
                ..Rotation::default()
            };
            assert!(matches!(
                with_secret(&app(), "x".into(), r, t0()),
                Err(AppError::InvalidGrace)
            ));
        }
    }

    /// A grace of zero is no grace: the old secret and earlier tokens die at once. A grace of
    /// exactly 30 days is allowed (the cap is "at most").
    #[test]
    fn a_zero_grace_is_none_and_thirty_days_is_the_longest() {
        let zero = Rotation {
            grace: Some(TimeDelta::zero()),
            ..Rotation::default()
        };
        let rotated = with_secret(&app(), "new".into(), zero, t0()).unwrap();
        assert_eq!(rotated.previous_secret_hash, None);
        assert_eq!(rotated.previous_secret_expires_at, None);
        assert!(kills(&rotated, earlier()));
        let longest = Rotation {
            grace: Some(MAX_GRACE),
            ..Rotation::default()
        };
        let rotated = with_secret(&app(), "new".into(), longest, t0()).unwrap();
        assert_eq!(rotated.previous_secret_expires_at, Some(t0() + MAX_GRACE));
        let longer = Rotation {
            grace: Some(MAX_GRACE + TimeDelta::seconds(1)),
            ..Rotation::default()
        };
        assert!(matches!(
            with_secret(&app(), "x".into(), longer, t0()),
            Err(AppError::InvalidGrace)
        ));
    }

    #[test]
    fn replacing_lists_narrows_like_removing_and_ttl_is_bounded() {
        let replaced = apply(
            &app(),
            Changes {
                domains: Some(vec![domain("example.org")]),
                ..Changes::default()
            },
            3600,
            t0(),
        )
        .unwrap();
        assert!(kills(&replaced, earlier()), "example.com was removed");
        let ttl = |t| Changes {
            token_ttl_seconds: Some(t),
            ..Changes::default()
        };
        let short = apply(&app(), ttl(Some(60)), 3600, t0()).unwrap();
        assert_eq!(short.token_ttl_seconds, Some(60));
        assert!(!kills(&short, earlier()));
        for bad in [Some(0), Some(3601)] {
            assert!(matches!(
                apply(&app(), ttl(bad), 3600, t0()),
                Err(AppError::InvalidTokenTtl { max: 3600 })
            ));
        }
        assert_eq!(
            apply(&short, ttl(None), 3600, t0())
                .unwrap()
                .token_ttl_seconds,
            None
        );
    }

    #[test]
    fn changed_credentials_kill_earlier_tokens_and_new_or_unchanged_ones_kill_nothing() {
        let uri = |u: &str| Changes {
            keys: Some(Some(KeysInput::JwksUri(format!(
                "https://keys.example.com/{u}"
            )))),
            ..Changes::default()
        };
        let rename = || Changes {
            name: Some("renamed".into()),
            ..Changes::default()
        };
        let dpop = |on| Changes {
            dpop_bound_access_tokens: Some(on),
            ..Changes::default()
        };
        // Keys added where there were none: nothing obtained before used them.
        let keyed = apply(&app(), uri("a"), 3600, t0()).unwrap();
        assert!(!kills(&keyed, earlier()), "new keys kill nothing");
        // With keys: the same keys again, or another field, kill nothing ...
        for changes in [uri("a"), rename()] {
            let after = apply(&keyed, changes.clone(), 3600, t0()).unwrap();
            assert!(!kills(&after, earlier()), "{changes:?} must kill nothing");
        }
        // ... other keys, or another method, do.
        let switched = Changes {
            auth_method: Some(AuthMethod::PrivateKeyJwt),
            ..Changes::default()
        };
        for changes in [uri("b"), switched] {
            let after = apply(&keyed, changes.clone(), 3600, t0()).unwrap();
            assert!(
                kills(&after, earlier()),
                "{changes:?} must kill earlier tokens"
            );
        }
        // Requiring DPoP kills the bearer tokens obtained before; keeping or dropping it does not.
        let bound = apply(&app(), dpop(true), 3600, t0()).unwrap();
        assert!(bound.dpop_bound_access_tokens);
        assert!(
            kills(&bound, earlier()),
            "requiring DPoP kills bearer tokens"
        );
        let later = t0() + TimeDelta::seconds(5);
        for changes in [dpop(true), rename(), dpop(false)] {
            let after = apply(&bound, changes.clone(), 3600, later).unwrap();
            assert!(!kills(&after, later), "{changes:?} must kill nothing more");
        }
    }

    #[test]
    fn deletion_kills_every_token() {
        let gone = deleted(&app(), t0());
        assert!(kills(&gone, earlier()));
        assert!(kills(&gone, t0() + TimeDelta::days(1)));
    }
}
