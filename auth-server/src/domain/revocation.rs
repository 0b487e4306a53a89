//! RFC 7009 revocation (docs/spec/auth-server.md §5) and the revocation feed for locally-verifying
//! resource servers (§6).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Datelike, TimeDelta, Utc};
use shared::claims::not_before_seconds;
use shared::feed::{ClientNotBefore, Feed, RevokedEntry, UserNotBefore};

use super::introspection::{OwnTokens, verify_own};
use crate::model::{Application, StoreError};
use crate::store::{Db, keys, revocations};

/// How long past `exp` a revocation is still kept and published: past the longest leeway any
/// verifier may use (shared::claims::REVOCATION_RETENTION_SECONDS).
pub const LEEWAY: TimeDelta = TimeDelta::seconds(shared::claims::REVOCATION_RETENTION_SECONDS);
/// How far back a cursor query reaches again, so rows committed out of order are not skipped.
pub const OVERLAP: TimeDelta = TimeDelta::seconds(5);

/// Revokes `token` if it is one of ours, issued to `caller`; anything else is silently ignored
/// (RFC 7009 §2.2: the answer is 200 either way).
pub async fn revoke(
    db: &Db,
    own: &OwnTokens,
    caller: &Application,
    token: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let Some(claims) = verify_own(own, token, now) else {
        return Ok(());
    };
    if claims.client_id != caller.client_id.as_str() {
        tracing::info!("revocation of another application's token ignored");
        return Ok(());
    }
    let (Some(jti), Some(exp)) = (
        claims.jti.as_deref(),
        DateTime::from_timestamp(claims.exp, 0),
    ) else {
        return Ok(());
    };
    revocations::revoke(db, jti, &claims.client_id, exp, now).await?;
    tracing::info!(jti, "token revoked");
    Ok(())
}

/// The most entries one feed answer carries (and the default): a page is ~64 B per entry on
/// the wire, so an answer stays under ~320 KiB however large the tables.
pub const MAX_PAGE: u64 = 5_000;

/// The three parts of the feed, sent in this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Revoked,
    Clients,
    Users,
}

impl Part {
    fn code(self) -> char {
        match self {
            Part::Revoked => 'r',
            Part::Clients => 'c',
            Part::Users => 'u',
        }
    }

    fn from_code(c: &str) -> Option<Self> {
        match c {
            "r" => Some(Part::Revoked),
            "c" => Some(Part::Clients),
            "u" => Some(Part::Users),
            _ => None,
        }
    }

    fn next(self) -> Option<Self> {
        match self {
            Part::Revoked => Some(Part::Clients),
            Part::Clients => Some(Part::Users),
            Part::Users => None,
        }
    }
}

/// Where a feed answer starts. A sequence (a snapshot, or the changes since a time) may take
/// several pages; its pages share `start`, the time the sequence began, and the cursor that
/// ends it asks for the changes since `start`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Position {
    start: DateTime<Utc>,
    /// `None`: a snapshot.
    since: Option<DateTime<Utc>>,
    part: Part,
    /// The (order time, key) of the last entry sent in `part`.
    after: Option<(DateTime<Utc>, String)>,
}

impl Position {
    fn fresh(since: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Self {
        Position {
            start: now,
            since,
            part: Part::Revoked,
            after: None,
        }
    }
}

/// The cursor that ends a sequence begun at `t` (also what clients before paging sent back).
fn encode_since(t: DateTime<Utc>) -> String {
    URL_SAFE_NO_PAD.encode(format!("v1:{}", t.timestamp_micros()))
}

/// A cursor inside a sequence: `v2:start:since|-:part:after-time|-:after-key`.
fn encode_position(p: &Position) -> String {
    let micros =
        |t: Option<DateTime<Utc>>| t.map_or("-".to_owned(), |t| t.timestamp_micros().to_string());
    let (at, key) = match &p.after {
        Some((t, k)) => (Some(*t), k.as_str()),
        None => (None, ""),
    };
    URL_SAFE_NO_PAD.encode(format!(
        "v2:{}:{}:{}:{}:{key}",
        p.start.timestamp_micros(),
        micros(p.since),
        p.part.code(),
        micros(at),
    ))
}

/// A time this server could have written: from 1970 to 9999. Anything else is refused before it
/// meets arithmetic (`since - OVERLAP` panicked at chrono's minimum) or a database (PostgreSQL
/// refuses years before 4713 BC).
fn time_from_micros(micros: &str) -> Option<DateTime<Utc>> {
    let t = DateTime::from_timestamp_micros(micros.parse().ok()?)?;
    (t >= DateTime::UNIX_EPOCH && t.year() <= 9999).then_some(t)
}

fn decode_micros(s: &str) -> Option<Option<DateTime<Utc>>> {
    if s == "-" {
        return Some(None);
    }
    Some(Some(time_from_micros(s)?))
}

/// `None` for garbage, a cursor from the future, or one this server never wrote: the caller
/// then gets a snapshot.
fn decode_cursor(c: &str, now: DateTime<Utc>) -> Option<Position> {
    if c.len() > 512 {
        return None;
    }
    let raw = URL_SAFE_NO_PAD.decode(c).ok()?;
    let text = std::str::from_utf8(&raw).ok()?;
    if let Some(micros) = text.strip_prefix("v1:") {
        let since = time_from_micros(micros)?;
        return (since <= now).then(|| Position::fresh(Some(since), now));
    }
    let mut fields = text.strip_prefix("v2:")?.splitn(5, ':');
    let start = decode_micros(fields.next()?)??;
    let since = decode_micros(fields.next()?)?;
    let part = Part::from_code(fields.next()?)?;
    let at = decode_micros(fields.next()?)?;
    let key = fields.next()?;
    if start > now || since.is_some_and(|s| s > start) {
        return None;
    }
    let after = match at {
        Some(t) if !key.is_empty() => Some((t, key.to_owned())),
        None if key.is_empty() => None,
        _ => return None,
    };
    Some(Position {
        start,
        since,
        part,
        after,
    })
}

/// One page of the feed (docs/spec/auth-server.md §6): without a cursor (or with one this server
/// can't read) the first page of a snapshot (`complete: true`: replace what you hold);
/// otherwise the next page of a sequence, or the changes since the end of the last one, with
/// `OVERLAP` re-sent (applying an entry twice is harmless). `more: true` says the sequence goes
/// on: ask again at once with `cursor`.
///
/// The cost is O(`limit`) index entries per page, whatever the size of the tables: revocations
/// whose token has expired past any leeway and `tokens_not_before` times older than the token
/// lifetime are never read. `token_ttl_seconds` bounds how long a not-before time matters.
pub async fn feed(
    db: &Db,
    cursor: Option<&str>,
    limit: Option<u64>,
    token_ttl_seconds: i64,
    now: DateTime<Utc>,
) -> Result<Feed, StoreError> {
    let limit = limit.unwrap_or(MAX_PAGE).clamp(1, MAX_PAGE);
    let mut at = cursor
        .and_then(|c| decode_cursor(c, now))
        .unwrap_or_else(|| Position::fresh(None, now));
    let complete = at.since.is_none() && at.part == Part::Revoked && at.after.is_none();
    let alive_after = now - LEEWAY;
    let relevant_after = now - TimeDelta::seconds(token_ttl_seconds) - LEEWAY;
    // A delta reaches back OVERLAP before its start, so rows committed out of order are sent.
    let changed_after = at.since.map(|s| (s - OVERLAP).max(relevant_after));
    let mut page = Feed {
        cursor: String::new(),
        complete,
        more: false,
        revoked: Vec::new(),
        clients_not_before: Vec::new(),
        users_not_before: Vec::new(),
        kids: Vec::new(),
        retired_kids: Vec::new(),
    };
    let mut room = limit;
    loop {
        let after = at.after.take();
        let last = match at.part {
            Part::Revoked => {
                let range = match at.since {
                    None => revocations::RevokedRange::Alive { alive_after },
                    Some(s) => revocations::RevokedRange::Since {
                        since: s - OVERLAP,
                        alive_after,
                    },
                };
                let rows = revocations::revoked_page(db, range, after, room).await?;
                let last = rows.last().map(|(jti, _, t)| (*t, jti.clone()));
                page.revoked
                    .extend(rows.into_iter().map(|(jti, exp, _)| RevokedEntry {
                        jti,
                        exp: exp.timestamp(),
                    }));
                last
            }
            Part::Clients => {
                let lower = changed_after.unwrap_or(relevant_after);
                let rows = revocations::clients_page(db, lower, after, room).await?;
                let last = rows.last().map(|(c, t)| (*t, c.clone()));
                page.clients_not_before
                    .extend(rows.into_iter().map(|(client_id, t)| ClientNotBefore {
                        client_id,
                        not_before: not_before_seconds(t),
                    }));
                last
            }
            Part::Users => {
                let lower = changed_after.unwrap_or(relevant_after);
                let after = match after {
                    Some((t, k)) => match uuid::Uuid::try_parse(&k) {
                        Ok(id) => Some((t, id)),
                        // Not a key this server wrote: the part starts over (harmless).
                        Err(_) => None,
                    },
                    None => None,
                };
                let rows = revocations::users_page(db, lower, after, room).await?;
                let last = rows.last().map(|(id, t)| (*t, id.to_string()));
                page.users_not_before
                    .extend(rows.into_iter().map(|(id, t)| UserNotBefore {
                        user_id: id.to_string(),
                        not_before: not_before_seconds(t),
                    }));
                last
            }
        };
        let sent = (page.revoked.len()
            + page.clients_not_before.len()
            + page.users_not_before.len()) as u64;
        room = limit.saturating_sub(sent);
        if room == 0 {
            // Full: the next page resumes after the last entry sent.
            at.after = last;
            page.more = true;
            page.cursor = encode_position(&at);
            break;
        }
        match at.part.next() {
            Some(p) => at.part = p,
            None => {
                page.cursor = encode_since(at.start);
                break;
            }
        }
    }
    // A few rows: every key the table holds, on every page.
    let keys = keys::all(db).await?;
    page.kids = keys
        .iter()
        .filter(|k| k.retired_at.is_none())
        .map(|k| k.kid.clone())
        .collect();
    page.retired_kids = keys
        .into_iter()
        .filter(|k| k.retired_at.is_some())
        .map(|k| k.kid)
        .collect();
    Ok(page)
}

/// Deletes revocations and tombstones that can no longer matter.
pub async fn purge(db: &Db, token_ttl_seconds: i64, now: DateTime<Utc>) -> Result<u64, StoreError> {
    let ttl = TimeDelta::seconds(token_ttl_seconds);
    revocations::purge(db, now - LEEWAY, now - ttl - LEEWAY).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_ignored() {
        let t = DateTime::from_timestamp_micros(1_700_000_000_123_456).unwrap();
        let now = t + TimeDelta::seconds(1);
        assert_eq!(
            decode_cursor(&encode_since(t), now),
            Some(Position::fresh(Some(t), now))
        );
        let inside = Position {
            start: t,
            since: Some(t - TimeDelta::seconds(10)),
            part: Part::Clients,
            after: Some((t, "a:b".to_owned())),
        };
        assert_eq!(
            decode_cursor(&encode_position(&inside), now),
            Some(inside.clone())
        );
        let snapshot = Position {
            since: None,
            after: None,
            ..inside.clone()
        };
        assert_eq!(
            decode_cursor(&encode_position(&snapshot), now),
            Some(snapshot)
        );
        // From the future, garbage, half a position: a snapshot instead.
        assert_eq!(
            decode_cursor(&encode_position(&inside), t - TimeDelta::seconds(1)),
            None
        );
        for bad in ["garbage", "", "djI6MTox"] {
            assert_eq!(decode_cursor(bad, now), None, "{bad}");
        }
    }

    /// A position names the last entry sent by its time and its key together: a cursor with one
    /// and not the other was never written here, and gets a snapshot, not a resumed walk.
    #[test]
    fn a_cursor_with_a_time_and_no_key_or_a_key_and_no_time_is_not_read() {
        let t = DateTime::from_timestamp_micros(1_700_000_000_123_456).unwrap();
        let now = t + TimeDelta::seconds(1);
        let start = t.timestamp_micros();
        let since = (t - TimeDelta::seconds(10)).timestamp_micros();
        let forged = |at: &str, key: &str| {
            URL_SAFE_NO_PAD.encode(format!("v2:{start}:{since}:c:{at}:{key}"))
        };
        // The same fields with both halves, or neither, are read.
        assert!(decode_cursor(&forged(&start.to_string(), "k"), now).is_some());
        assert!(decode_cursor(&forged("-", ""), now).is_some());
        assert_eq!(decode_cursor(&forged(&start.to_string(), ""), now), None);
        assert_eq!(decode_cursor(&forged("-", "k"), now), None);
    }

    /// The length cap bounds what a cursor costs to decode; a cursor this server wrote is far
    /// shorter, so the cap is checked with keys grown to reach it: 512 characters are read, the
    /// next longer encoding (514) is not.
    #[test]
    fn a_cursor_of_exactly_512_characters_is_read_and_a_longer_one_is_not() {
        let t = DateTime::from_timestamp_micros(1_700_000_000_123_456).unwrap();
        let now = t + TimeDelta::seconds(1);
        let with_key = |len: usize| Position {
            start: t,
            since: Some(t - TimeDelta::seconds(10)),
            part: Part::Clients,
            after: Some((t, "k".repeat(len))),
        };
        let bare = URL_SAFE_NO_PAD
            .decode(encode_position(&with_key(0)))
            .unwrap()
            .len();
        // 384 bytes encode to exactly 512 characters of unpadded base64; 385 to 514.
        let key_for = |bytes: usize| bytes - bare;
        let at_cap = with_key(key_for(384));
        assert_eq!(encode_position(&at_cap).len(), 512);
        assert_eq!(decode_cursor(&encode_position(&at_cap), now), Some(at_cap));
        let over = with_key(key_for(385));
        assert_eq!(encode_position(&over).len(), 514);
        assert_eq!(decode_cursor(&encode_position(&over), now), None);
    }
}
