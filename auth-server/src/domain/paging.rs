//! Cursor paging for the admin lists: a page is read along an index from the last row of the
//! page before, so page 1,000 costs what page 1 does. The cursor is opaque to clients
//! (base64url of `v1:<µs since epoch>:<uuid>`); a cursor that does not decode is refused, not
//! ignored, so a client never silently restarts from the beginning.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use uuid::Uuid;

pub const DEFAULT_LIMIT: u64 = 50;
pub const MAX_LIMIT: u64 = 200;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PagingError {
    #[error("cursor is not one this server issued")]
    BadCursor,
    #[error("limit must be 1 to {MAX_LIMIT}")]
    BadLimit,
}

/// The position after a row: its sort time and id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub at: DateTime<Utc>,
    pub id: Uuid,
}

impl Cursor {
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!("v1:{}:{}", self.at.timestamp_micros(), self.id))
    }

    pub fn decode(s: &str) -> Result<Self, PagingError> {
        let raw = URL_SAFE_NO_PAD
            .decode(s.as_bytes())
            .map_err(|_| PagingError::BadCursor)?;
        let raw = std::str::from_utf8(&raw).map_err(|_| PagingError::BadCursor)?;
        let mut parts = raw.splitn(3, ':');
        let (Some("v1"), Some(micros), Some(id)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(PagingError::BadCursor);
        };
        let micros: i64 = micros.parse().map_err(|_| PagingError::BadCursor)?;
        let at = DateTime::from_timestamp_micros(micros)
            // Only times both databases can hold (cf. the rooms list's cursors).
            .filter(|t| (0..=253_402_300_799).contains(&t.timestamp()))
            .ok_or(PagingError::BadCursor)?;
        let id = Uuid::parse_str(id).map_err(|_| PagingError::BadCursor)?;
        Ok(Self { at, id })
    }
}

/// What a list request asks for, checked.
#[derive(Debug, Clone, Copy, Default)]
pub struct PageRequest {
    pub after: Option<Cursor>,
    pub limit: u64,
}

impl PageRequest {
    pub fn parse(cursor: Option<&str>, limit: Option<u64>) -> Result<Self, PagingError> {
        let limit = limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(PagingError::BadLimit);
        }
        let after = cursor
            .filter(|c| !c.is_empty())
            .map(Cursor::decode)
            .transpose()?;
        Ok(Self { after, limit })
    }

    /// The store's lower bound.
    pub fn after(&self) -> Option<(DateTime<Utc>, Uuid)> {
        self.after.map(|c| (c.at, c.id))
    }

    /// One more row than the page, to know whether another page follows.
    pub fn fetch(&self) -> u64 {
        self.limit + 1
    }
}

/// A page of items and the cursor of the next one (none on the last page).
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
}

impl<T> Page<T> {
    /// Cuts the extra row `PageRequest::fetch` asked for; `key` gives a row's position.
    pub fn from_rows(
        mut rows: Vec<T>,
        request: &PageRequest,
        key: impl Fn(&T) -> (DateTime<Utc>, Uuid),
    ) -> Self {
        let more = rows.len() as u64 > request.limit;
        rows.truncate(usize::try_from(request.limit).unwrap_or(usize::MAX));
        let next = more
            .then(|| rows.last().map(&key))
            .flatten()
            .map(|(at, id)| Cursor { at, id }.encode());
        Self { items: rows, next }
    }

    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            next: self.next,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_forgeries_are_refused() {
        let c = Cursor {
            at: DateTime::from_timestamp_micros(1_800_000_000_123_456).unwrap(),
            id: Uuid::new_v4(),
        };
        assert_eq!(Cursor::decode(&c.encode()), Ok(c));
        for bad in [
            "",
            "!!",
            "djE6MTox",
            &URL_SAFE_NO_PAD.encode("v1:-99999999999999999:00000000-0000-0000-0000-000000000000"),
            &URL_SAFE_NO_PAD.encode("v2:1:00000000-0000-0000-0000-000000000000"),
        ] {
            assert_eq!(Cursor::decode(bad), Err(PagingError::BadCursor), "{bad}");
        }
        assert_eq!(
            PageRequest::parse(None, Some(0)).err(),
            Some(PagingError::BadLimit)
        );
        assert_eq!(
            PageRequest::parse(None, Some(MAX_LIMIT + 1)).err(),
            Some(PagingError::BadLimit)
        );
    }

    #[test]
    fn a_page_cuts_the_extra_row_and_points_past_its_last() {
        let t = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let rows: Vec<(DateTime<Utc>, Uuid)> = (0..3).map(|_| (t, Uuid::new_v4())).collect();
        let req = PageRequest::parse(None, Some(2)).unwrap();
        let page = Page::from_rows(rows.clone(), &req, |r| *r);
        assert_eq!(page.items.len(), 2);
        let next = Cursor::decode(page.next.as_deref().unwrap()).unwrap();
        assert_eq!((next.at, next.id), rows[1]);
        let last = Page::from_rows(rows[..2].to_vec(), &req, |r| *r);
        assert!(last.next.is_none());
    }
}
