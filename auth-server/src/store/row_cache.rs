//! The rows a token or introspection request reads — its application(s), its user, whether its
//! jti is revoked — kept in memory, so a client that calls again costs no database round trip
//! (on SQLite each is a hand-off to the connection's thread and back: ~30 % of a token
//! request's CPU, ~50 % of an introspection's, bench/RESULTS.md "Profiles").
//!
//! Every entry carries the generation (`changes.rs`) it was read at and is used only while the
//! generation has not moved, so a change takes effect on the next request: at once for this
//! process's writes, at the NOTIFY's arrival for another replica's on PostgreSQL, within
//! `SQLITE_POLL` for a CLI write on SQLite. The generation is read before the database, so an
//! entry read before a change can never be filed under a generation after it. While changes
//! may go unseen (PostgreSQL's LISTEN connection down) nothing is read from the cache.
//!
//! Only what was found is kept (an unknown client_id or e-mail always asks the database, so a
//! stranger can't fill the cache) and only "not revoked" for a jti whose token's signature
//! verified. Each map is bounded in bytes.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use prometheus::IntCounterVec;
use shared::ClientId;
use uuid::Uuid;

use super::applications::{self, TokenKey, UserKey, WithUser};
use super::changes::{ChangeWatch, Generation, Kind};
use super::{Db, StoreError};
use crate::model::{Application, User};

/// Byte budgets (weighed approximately: the strings plus a fixed overhead per entry).
const APPS_BYTES: u64 = 4 << 20;
const USERS_BYTES: u64 = 8 << 20;
const UNREVOKED_BYTES: u64 = 2 << 20;
/// Applications whose `last_token_at` note this process remembers.
const NOTES: u64 = 100_000;
/// An entry is dropped after this long whatever happens: a bound on memory held by rows no
/// longer asked for, not on staleness (the generation is).
const TIME_TO_LIVE: Duration = Duration::from_secs(600);
/// What an entry costs besides its strings (moka's node, the key, the struct).
const OVERHEAD: usize = 256;

#[derive(Clone)]
struct Entry<T> {
    generation: Generation,
    row: Arc<T>,
}

pub struct RowCache {
    watch: ChangeWatch,
    apps: moka::sync::Cache<String, Entry<Application>>,
    users_by_email: moka::sync::Cache<String, Entry<User>>,
    users_by_id: moka::sync::Cache<Uuid, Entry<User>>,
    /// jtis found not revoked, with the revocations generation they were read at.
    unrevoked: moka::sync::Cache<String, Generation>,
    /// When this process last wrote an application's `last_token_at` (the cached row's value
    /// does not move: the column's writes signal nothing).
    notes: moka::sync::Cache<Uuid, DateTime<Utc>>,
    /// `auth_row_cache_total{result}`: `hit`, `miss`, or `off` (changes may go unseen).
    lookups: IntCounterVec,
}

impl std::fmt::Debug for RowCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RowCache")
            .field("apps", &self.apps.entry_count())
            .field("users", &self.users_by_id.entry_count())
            .field("live", &self.watch.changes.is_live())
            .finish_non_exhaustive()
    }
}

fn app_weight(app: &Application) -> usize {
    OVERHEAD
        + app.name.len()
        + app.secret_hash.len()
        + app.previous_secret_hash.as_ref().map_or(0, String::len)
        + app.jwks.as_ref().map_or(0, String::len)
        + app.jwks_uri.as_ref().map_or(0, String::len)
        + app.domains.to_stored().len()
}

fn user_weight(user: &User) -> usize {
    OVERHEAD + 2 * user.email.as_typed().len() + user.external_sub.as_ref().map_or(0, String::len)
}

fn weight(bytes: usize) -> u32 {
    u32::try_from(bytes).unwrap_or(u32::MAX)
}

impl RowCache {
    pub fn new(watch: ChangeWatch, lookups: IntCounterVec) -> Self {
        Self {
            watch,
            apps: moka::sync::Cache::builder()
                .max_capacity(APPS_BYTES)
                .weigher(|k: &String, v: &Entry<Application>| weight(k.len() + app_weight(&v.row)))
                .time_to_live(TIME_TO_LIVE)
                .build(),
            users_by_email: moka::sync::Cache::builder()
                .max_capacity(USERS_BYTES / 2)
                .weigher(|k: &String, v: &Entry<User>| weight(k.len() + user_weight(&v.row)))
                .time_to_live(TIME_TO_LIVE)
                .build(),
            users_by_id: moka::sync::Cache::builder()
                .max_capacity(USERS_BYTES / 2)
                .weigher(|_: &Uuid, v: &Entry<User>| weight(user_weight(&v.row)))
                .time_to_live(TIME_TO_LIVE)
                .build(),
            unrevoked: moka::sync::Cache::builder()
                .max_capacity(UNREVOKED_BYTES)
                .weigher(|k: &String, _: &Generation| weight(k.len() + OVERHEAD / 2))
                .time_to_live(TIME_TO_LIVE)
                .build(),
            notes: moka::sync::Cache::builder().max_capacity(NOTES).build(),
            lookups,
        }
    }

    fn count(&self, result: &str) {
        self.lookups.with_label_values(&[result]).inc();
    }

    fn generation(&self, kind: Kind) -> Option<Generation> {
        let generation = self.watch.changes.current(kind);
        if generation.is_none() {
            self.count("off");
        }
        generation
    }

    fn app(&self, client_id: &ClientId, at: Generation) -> Option<Arc<Application>> {
        self.apps
            .get(client_id.as_str())
            .filter(|e| e.generation == at)
            .map(|e| e.row)
    }

    fn user(&self, key: UserKey<'_>, at: Generation) -> Option<Arc<User>> {
        match key {
            UserKey::Email(email) => self.users_by_email.get(email.normalized()),
            UserKey::Id(id) => self.users_by_id.get(&id),
        }
        .filter(|e| e.generation == at)
        .map(|e| e.row)
    }

    fn keep_app(&self, app: &Application, at: Generation) {
        self.apps.insert(
            app.client_id.to_string(),
            Entry {
                generation: at,
                row: Arc::new(app.clone()),
            },
        );
    }

    fn keep_user(&self, user: &User, at: Generation) {
        let row = Arc::new(user.clone());
        self.users_by_email.insert(
            user.email.normalized().to_owned(),
            Entry {
                generation: at,
                row: Arc::clone(&row),
            },
        );
        self.users_by_id.insert(
            user.id.0,
            Entry {
                generation: at,
                row,
            },
        );
    }

    /// `applications::find_by_client_id`, from memory when it can be.
    pub async fn find_by_client_id(
        &self,
        db: &Db,
        client_id: &ClientId,
    ) -> Result<Option<Application>, StoreError> {
        let at = self.generation(Kind::Clients);
        if let Some(app) = at.and_then(|at| self.app(client_id, at)) {
            self.count("hit");
            return Ok(Some((*app).clone()));
        }
        let found = applications::find_by_client_id(db, client_id).await?;
        if let (Some(at), Some(app)) = (at, &found) {
            self.count("miss");
            self.keep_app(app, at);
        }
        Ok(found)
    }

    /// `applications::find_with_user`, from memory when both rows are there.
    pub async fn find_with_user(
        &self,
        db: &Db,
        client_id: &ClientId,
        user: UserKey<'_>,
    ) -> Result<Option<WithUser>, StoreError> {
        let at = self.generation(Kind::Clients);
        if let Some(at) = at
            && let Some(app) = self.app(client_id, at)
            && let Some(found) = self.user(user, at)
        {
            self.count("hit");
            return Ok(Some(WithUser {
                app: (*app).clone(),
                user: Some((*found).clone()),
                jti_revoked: false,
            }));
        }
        let found = applications::find_with_user(db, client_id, user).await?;
        if let (Some(at), Some(found)) = (at, &found) {
            self.count("miss");
            self.keep_app(&found.app, at);
            if let Some(user) = &found.user {
                self.keep_user(user, at);
            }
        }
        Ok(found)
    }

    /// `applications::find_caller_and_token`, from memory when every part is there (the
    /// caller, the token's application and user, and "not revoked" for its jti).
    pub async fn find_caller_and_token(
        &self,
        db: &Db,
        caller: &ClientId,
        token: &TokenKey,
    ) -> Result<(Option<Application>, Option<WithUser>), StoreError> {
        // Both kinds are live or neither is (one LISTEN connection, one poll): asked once, so
        // an "off" lookup counts once.
        let at = self.generation(Kind::Clients);
        let revocations = at.and(self.watch.changes.current(Kind::Revocations));
        if let (Some(at), Some(revocations)) = (at, revocations)
            && let Some(caller_app) = self.app(caller, at)
            && let Some(app) = self.app(&token.client_id, at)
            && let Some(user) = self.user(UserKey::Id(token.user_id), at)
            && self.unrevoked.get(&token.jti) == Some(revocations)
        {
            self.count("hit");
            return Ok((
                Some((*caller_app).clone()),
                Some(WithUser {
                    app: (*app).clone(),
                    user: Some((*user).clone()),
                    jti_revoked: false,
                }),
            ));
        }
        let (caller_app, found) = applications::find_caller_and_token(db, caller, token).await?;
        if let (Some(at), Some(revocations)) = (at, revocations) {
            self.count("miss");
            if let Some(app) = &caller_app {
                self.keep_app(app, at);
            }
            if let Some(found) = &found {
                self.keep_app(&found.app, at);
                if let Some(user) = &found.user {
                    self.keep_user(user, at);
                }
                if !found.jti_revoked {
                    self.unrevoked.insert(token.jti.clone(), revocations);
                }
            }
        }
        Ok((caller_app, found))
    }

    /// Whether `app`'s `last_token_at` is due a write at `now` (none in the last minute, by
    /// the row or by this process), recording `now` as written if so.
    pub fn note_due(&self, app: &Application, now: DateTime<Utc>) -> bool {
        let last = [app.last_token_at, self.notes.get(&app.id)]
            .into_iter()
            .flatten()
            .max();
        if last.is_some_and(|t| now - t < TimeDelta::minutes(1)) {
            return false;
        }
        self.notes.insert(app.id, now);
        true
    }
}
