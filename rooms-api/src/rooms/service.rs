//! Room rules as plain functions over the store: visibility, roles, paging, creation with
//! collision retries, audit events.

use chrono::{DateTime, SubsecRound, Utc};
use server_kit::db::WriteGate;
use server_kit::random;
use uuid::Uuid;

use super::cache::RoomCache;
use super::model::{
    self, AccessLevel, Changes, Invalid, PageView, RoomConfiguration, RoomView, TelephonyView,
};
use super::settings::RoomSettings;
use super::store::{self, Db, Direction, Listed, Position, Role, RoomRow, StoreError, Viewer};
use crate::principal::Principal;

pub const ROOMS_PATH: &str = "/external-api/v1.0/rooms";
pub const MAX_CREATE_ATTEMPTS: usize = 8;

#[derive(Debug, thiserror::Error)]
pub enum RoomsError {
    #[error("Not found")]
    NotFound,
    #[error("Your role on this room does not allow this")]
    InsufficientRole,
    #[error("Invalid request")]
    Invalid(Invalid),
    #[error("database error")]
    Db(#[from] StoreError),
    #[error("could not allocate a unique slug and PIN")]
    Exhausted,
    /// A change to a room's accesses its current state does not allow (409).
    #[error(transparent)]
    Conflict(model::Conflict),
    /// The e-mail names nobody with an access on this room (404).
    #[error("This user has no access to this room")]
    NoSuchAccess,
    /// Users can't be resolved by e-mail now (503).
    #[error("Sharing rooms by e-mail is unavailable right now")]
    DirectoryUnavailable,
    /// The calling application was deactivated since its token was checked (401).
    #[error("The application is no longer active")]
    ApplicationGone,
}

impl From<Invalid> for RoomsError {
    fn from(i: Invalid) -> Self {
        RoomsError::Invalid(i)
    }
}

pub(super) fn viewer(p: &Principal) -> Viewer<'_> {
    Viewer {
        user_id: &p.user_id,
        client_id: &p.client_id,
    }
}

/// Drops what `viewers` (and the caller) had cached; when they could not be read, the
/// caller's view and everyone else's are dropped whole (`RoomCache::changed_all`).
fn forget(cache: &RoomCache, principal: &Principal, viewers: Option<Vec<(String, String)>>) {
    cache.changed([viewer(principal)]);
    match viewers {
        Some(viewers) => cache.changed(
            viewers
                .iter()
                .map(|(user_id, client_id)| Viewer { user_id, client_id }),
        ),
        None => cache.changed_all(),
    }
}

/// After a change to a room's accesses: every viewer of the room, the user whose access
/// changed (who may see it no more) and the caller see it changed (read even when the change
/// failed: it may have committed before the error reached us).
pub(super) async fn forget_room(
    cache: &RoomCache,
    principal: &Principal,
    room_id: Uuid,
    user_id: &str,
    client_id: &str,
    db: &Db,
) {
    cache.changed([Viewer { user_id, client_id }]);
    let viewers = store::viewers_of(db, room_id).await;
    forget(cache, principal, viewers.ok());
}

fn invalid(field: &str, message: &str) -> RoomsError {
    let mut i = Invalid::default();
    i.fields.insert(field.to_owned(), vec![message.to_owned()]);
    RoomsError::Invalid(i)
}

/// Renders a stored row and the viewer's role on it; only what the contract lists, nothing
/// internal.
pub fn to_room(row: &RoomRow, role: Option<Role>, settings: &RoomSettings) -> RoomView {
    let configuration: RoomConfiguration =
        serde_json::from_str(&row.configuration).unwrap_or_default();
    RoomView {
        id: row.id,
        name: row.name.clone(),
        slug: row.slug.clone(),
        access_level: row.access_level.parse().unwrap_or(AccessLevel::Restricted),
        configuration,
        created_at: row.created_at.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(),
        role,
        url: settings
            .base_url
            .as_ref()
            .map(|base| format!("{}/{}", base.trim_end_matches('/'), row.slug)),
        telephony: settings.telephony_enabled.then(|| TelephonyView {
            phone_number: settings.telephony_phone_number.clone(),
            pin_code: row.pin_code.clone(),
            default_country: settings.telephony_default_country.clone(),
        }),
    }
}

pub(super) fn parse_id(id: &str) -> Result<Uuid, RoomsError> {
    Uuid::parse_str(id).map_err(|_| RoomsError::NotFound)
}

fn parse_page_param(
    value: Option<&str>,
    name: &str,
    default: u64,
    max: Option<u64>,
) -> Result<u64, RoomsError> {
    let Some(v) = value else { return Ok(default) };
    let n: u64 = v
        .parse()
        .map_err(|_| invalid(name, "must be a positive integer"))?;
    if n == 0 || max.is_some_and(|m| n > m) {
        return Err(invalid(
            name,
            if max.is_some() {
                "must be between 1 and 100"
            } else {
                "must be at least 1"
            },
        ));
    }
    Ok(n)
}

fn page_url(settings: &RoomSettings, page: u64, page_size: u64) -> String {
    format!(
        "{}{ROOMS_PATH}?page={page}&page_size={page_size}",
        settings.public_url
    )
}

fn cursor_url(settings: &RoomSettings, cursor: &str, page_size: u64) -> String {
    format!(
        "{}{ROOMS_PATH}?cursor={cursor}&page_size={page_size}",
        settings.public_url
    )
}

/// The list, in one of two modes (docs/spec/rooms-api.md, "Lists"):
/// - `?page=N` (offset paging, kept for existing integrators): `next`/`previous` carry page
///   numbers; a page costs O(offset + page_size) index entries.
/// - otherwise (keyset paging): `next`/`previous` carry an opaque `cursor`; every page costs
///   O(page_size), however deep.
///
/// `count` is one row of `room_counts` in both modes, never a count of rooms.
/// A list request's query parameters, as received.
#[derive(Debug, Default, Clone, Copy)]
pub struct ListQuery<'a> {
    pub page: Option<&'a str>,
    pub page_size: Option<&'a str>,
    pub cursor: Option<&'a str>,
    pub slug: Option<&'a str>,
}

pub async fn list(
    db: &Db,
    cache: &RoomCache,
    settings: &RoomSettings,
    principal: &Principal,
    query: ListQuery<'_>,
) -> Result<PageView, RoomsError> {
    let ListQuery {
        page,
        page_size,
        cursor,
        slug,
    } = query;
    let page_size = parse_page_param(page_size, "page_size", 20, Some(100))?;
    if let Some(slug) = slug {
        if page.is_some() || cursor.is_some() {
            return Err(invalid("slug", "cannot be combined with page or cursor"));
        }
        return by_slug(db, settings, principal, slug).await;
    }
    let from = match (page, cursor) {
        (Some(_), Some(_)) => {
            return Err(invalid("cursor", "cannot be combined with page"));
        }
        (Some(page), None) => {
            let page = parse_page_param(Some(page), "page", 1, None)?;
            return list_offset(db, cache, settings, principal, page, page_size).await;
        }
        (None, Some(c)) => {
            Some(model::decode_cursor(c).ok_or_else(|| invalid("cursor", "invalid cursor"))?)
        }
        (None, None) => None,
    };
    let (read, count) = cache
        .keyset_page(db, viewer(principal), from, page_size + 1)
        .await?;
    let more = read.len() as u64 > page_size;
    let kept = read
        .len()
        .min(usize::try_from(page_size).unwrap_or(usize::MAX));
    let (rows, has_newer, has_older) = match from {
        None => (&read[..kept], false, more),
        Some((_, Direction::After)) => (&read[..kept], true, more),
        // Read oldest-first and returned newest-first: the extra row is the newest.
        Some((_, Direction::Before)) => (&read[read.len() - kept..], more, true),
    };
    let link = |row: Option<&Listed>, direction| {
        row.map(|l| {
            let at = Position {
                created_at: l.room.created_at,
                id: l.room.id,
            };
            cursor_url(settings, &model::encode_cursor(at, direction), page_size)
        })
    };
    Ok(PageView {
        count,
        next: if has_older {
            link(rows.last(), Direction::After)
        } else {
            None
        },
        previous: if has_newer {
            link(rows.first(), Direction::Before)
        } else {
            None
        },
        results: rows
            .iter()
            .map(|l| to_room(&l.room, l.role, settings))
            .collect(),
    })
}

/// `?slug=`: the one room with that slug the viewer may see, as a page of one, or an empty
/// page — the same answer whether the slug is another's or nobody's. Read from the database
/// (the slug's unique index), never cached.
async fn by_slug(
    db: &Db,
    settings: &RoomSettings,
    principal: &Principal,
    slug: &str,
) -> Result<PageView, RoomsError> {
    const LONGEST_SLUG: usize = 64;
    let found = if slug.len() <= LONGEST_SLUG {
        store::find_visible_by_slug(db, viewer(principal), slug).await?
    } else {
        None
    };
    let results: Vec<RoomView> = found
        .iter()
        .map(|(row, role)| to_room(row, *role, settings))
        .collect();
    Ok(PageView {
        count: results.len() as u64,
        next: None,
        previous: None,
        results,
    })
}

async fn list_offset(
    db: &Db,
    cache: &RoomCache,
    settings: &RoomSettings,
    principal: &Principal,
    page: u64,
    page_size: u64,
) -> Result<PageView, RoomsError> {
    let count = cache.count(db, viewer(principal)).await?;
    let offset = (page - 1).saturating_mul(page_size);
    if page > 1 && offset >= count {
        return Err(RoomsError::NotFound);
    }
    let rows = cache.page(db, viewer(principal), offset, page_size).await?;
    Ok(PageView {
        count,
        next: (offset + page_size < count).then(|| page_url(settings, page + 1, page_size)),
        previous: (page > 1).then(|| page_url(settings, page - 1, page_size)),
        results: rows
            .iter()
            .map(|l| to_room(&l.room, l.role, settings))
            .collect(),
    })
}

fn check_access_level(settings: &RoomSettings, level: AccessLevel) -> Result<(), RoomsError> {
    if level == AccessLevel::Public
        && !settings.allow_public_access
        && settings.default_access_level != AccessLevel::Public
    {
        return Err(invalid(
            "access_level",
            "public rooms are not allowed on this server",
        ));
    }
    Ok(())
}

fn new_slug() -> Result<String, RoomsError> {
    let letters = random::letters(10).map_err(|_| RoomsError::Exhausted)?;
    Ok(format!(
        "{}-{}-{}",
        &letters[..3],
        &letters[3..7],
        &letters[7..]
    ))
}

/// What makes a new room's slug and PIN.
pub type SlugAndPin<'a> =
    dyn FnMut(&RoomSettings) -> Result<(String, String), RoomsError> + Send + 'a;

/// A new room's slug and PIN, from the CSPRNG.
pub fn random_slug_and_pin(settings: &RoomSettings) -> Result<(String, String), RoomsError> {
    Ok((
        new_slug()?,
        random::digits(settings.pin_length).map_err(|_| RoomsError::Exhausted)?,
    ))
}

pub async fn create(
    db: &Db,
    cache: &RoomCache,
    writes: &WriteGate,
    settings: &RoomSettings,
    principal: &Principal,
    now: DateTime<Utc>,
    body: &[u8],
) -> Result<RoomView, RoomsError> {
    create_with(
        db,
        cache,
        writes,
        settings,
        principal,
        now,
        body,
        &mut random_slug_and_pin,
    )
    .await
}

/// `create`, with the slug and PIN from `fresh`: a slug or PIN another room holds makes the
/// whole transaction start again with new ones, `MAX_CREATE_ATTEMPTS` times at most (tests
/// inject a generator that collides).
// `create`'s dependencies, each explicit, plus the generator tests replace.
#[allow(clippy::too_many_arguments)]
pub async fn create_with(
    db: &Db,
    cache: &RoomCache,
    writes: &WriteGate,
    settings: &RoomSettings,
    principal: &Principal,
    now: DateTime<Utc>,
    body: &[u8],
    fresh: &mut SlugAndPin<'_>,
) -> Result<RoomView, RoomsError> {
    let Changes {
        access_level,
        configuration,
    } = model::parse_create(body)?;
    let access_level = access_level.unwrap_or(settings.default_access_level);
    check_access_level(settings, access_level)?;
    let configuration = serde_json::to_string(&configuration.unwrap_or_default())
        .map_err(|e| RoomsError::Db(store::encoding_error(&e)))?;
    for _ in 0..MAX_CREATE_ATTEMPTS {
        let (slug, pin_code) = fresh(settings)?;
        let row = RoomRow {
            id: Uuid::new_v4(),
            name: slug.clone(),
            slug,
            access_level: access_level.as_str().to_owned(),
            configuration: configuration.clone(),
            pin_code,
            client_id: principal.client_id.clone(),
            // Microseconds, as PostgreSQL keeps them: a list cursor names this exact value.
            created_at: now.trunc_subsecs(6),
        };
        let write = writes.enter().await;
        let inserted = store::insert_with_owner(db, row.clone(), &principal.user_id).await;
        drop(write);
        match inserted {
            Ok(()) => {
                // The owner's list and count changed.
                cache.changed([viewer(principal)]);
                tracing::info!(target: "audit", event = "room_created", room_id = %row.id,
                    user_id = %principal.user_id, client_id = %principal.client_id,
                    verification_mode = principal.mode, "room_created");
                return Ok(to_room(&row, Some(Role::Owner), settings));
            }
            // A slug or PIN collision: the whole transaction is retried with new values.
            Err(e) if store::is_unique_violation(&e) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(RoomsError::Exhausted)
}

pub async fn retrieve(
    db: &Db,
    cache: &RoomCache,
    settings: &RoomSettings,
    principal: &Principal,
    id: &str,
) -> Result<RoomView, RoomsError> {
    let id = parse_id(id)?;
    let (row, role) = cache
        .find_visible(db, viewer(principal), id)
        .await?
        .ok_or(RoomsError::NotFound)?;
    Ok(to_room(&row, role, settings))
}

/// Decides on the room and the role as the database has them, never as cached.
pub async fn update(
    db: &Db,
    cache: &RoomCache,
    writes: &WriteGate,
    settings: &RoomSettings,
    principal: &Principal,
    id: &str,
    body: &[u8],
) -> Result<RoomView, RoomsError> {
    let changes = model::parse_patch(body)?;
    if let Some(level) = changes.access_level {
        check_access_level(settings, level)?;
    }
    let id = parse_id(id)?;
    let (mut row, role) = store::find_visible(db, viewer(principal), id)
        .await?
        .ok_or(RoomsError::NotFound)?;
    if !matches!(role, Some(Role::Owner | Role::Admin)) {
        return Err(RoomsError::InsufficientRole);
    }
    let configuration = changes
        .configuration
        .as_ref()
        .map(serde_json::to_string)
        .transpose()
        .map_err(|e| RoomsError::Db(store::encoding_error(&e)))?;
    let write = writes.enter().await;
    let updated = store::update(
        db,
        id,
        changes.access_level.map(AccessLevel::as_str),
        configuration.as_deref(),
    )
    .await;
    drop(write);
    // Whoever can see the room sees it changed (read even when the update failed: it may
    // have committed before the error reached us).
    let viewers = store::viewers_of(db, id).await;
    forget(cache, principal, viewers.ok());
    updated?;
    if let Some(level) = changes.access_level {
        row.access_level = level.as_str().to_owned();
    }
    if let Some(c) = configuration {
        row.configuration = c;
    }
    tracing::info!(target: "audit", event = "room_updated", room_id = %id,
        user_id = %principal.user_id, client_id = %principal.client_id,
        verification_mode = principal.mode, "room_updated");
    Ok(to_room(&row, role, settings))
}

/// Decides on the role as the database has it, never as cached.
pub async fn delete(
    db: &Db,
    cache: &RoomCache,
    writes: &WriteGate,
    principal: &Principal,
    id: &str,
) -> Result<(), RoomsError> {
    let id = parse_id(id)?;
    let (_, role) = store::find_visible(db, viewer(principal), id)
        .await?
        .ok_or(RoomsError::NotFound)?;
    if role != Some(Role::Owner) {
        return Err(RoomsError::InsufficientRole);
    }
    let write = writes.enter().await;
    let deleted = store::delete(db, id).await;
    drop(write);
    let deleted = match deleted {
        Ok((deleted, viewers)) => {
            forget(cache, principal, Some(viewers));
            deleted
        }
        Err(e) => {
            // It may have committed before the error reached us.
            forget(cache, principal, None);
            return Err(e.into());
        }
    };
    // Another delete of the same room won the race: this one found nothing to delete.
    if !deleted {
        return Err(RoomsError::NotFound);
    }
    tracing::info!(target: "audit", event = "room_deleted", room_id = %id,
        user_id = %principal.user_id, client_id = %principal.client_id,
        verification_mode = principal.mode, "room_deleted");
    Ok(())
}
