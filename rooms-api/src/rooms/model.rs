//! What a room is to the service (docs/spec/rooms-api.md §3), and the validation of create and
//! patch bodies. The wire types that document these are in `api/rooms.rs`.
//!
//! Bodies are parsed from raw bytes here, after authentication and the scope check, so that a
//! bad body never answers before a missing token does.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Datelike};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use server_kit::strict_json::StrictJsonError;
use uuid::Uuid;

use super::store::{Direction, Position};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AccessLevel {
    Public,
    Trusted,
    Restricted,
}

impl AccessLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            AccessLevel::Public => "public",
            AccessLevel::Trusted => "trusted",
            AccessLevel::Restricted => "restricted",
        }
    }
}

impl fmt::Display for AccessLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AccessLevel {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "public" => Ok(Self::Public),
            "trusted" => Ok(Self::Trusted),
            "restricted" => Ok(Self::Restricted),
            other => Err(format!(
                "expected public, trusted or restricted, got {other:?}"
            )),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PublishSource {
    Camera,
    Microphone,
    ScreenShare,
    ScreenShareAudio,
}

/// The only configuration keys a room accepts (stored as this JSON).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomConfiguration {
    /// Which sources participants may publish; absent or null means the server's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub can_publish_sources: Option<Vec<PublishSource>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub everyone_can_mute: Option<bool>,
}

/// A room as the contract shows it: only the listed fields, nothing internal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomView {
    pub id: uuid::Uuid,
    pub name: String,
    pub slug: String,
    pub access_level: AccessLevel,
    pub configuration: RoomConfiguration,
    /// RFC 3339, UTC, microseconds.
    pub created_at: String,
    /// The viewer's role on the room.
    pub role: Option<super::store::Role>,
    /// ROOMS_BASE_URL/slug, when ROOMS_BASE_URL is set.
    pub url: Option<String>,
    /// When TELEPHONY_ENABLED.
    pub telephony: Option<TelephonyView>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TelephonyView {
    pub phone_number: Option<String>,
    pub pin_code: String,
    pub default_country: String,
}

/// One page of a user's rooms, with absolute links to its neighbours.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageView {
    pub count: u64,
    pub next: Option<String>,
    pub previous: Option<String>,
    pub results: Vec<RoomView>,
}

/// A list cursor: base64url of `v1:<created_at µs>:<room id>:<a|b>`, `a` for the rooms after
/// (older than) that position, `b` for those before it. Opaque to integrators.
pub fn encode_cursor(at: Position, direction: Direction) -> String {
    let d = match direction {
        Direction::After => 'a',
        Direction::Before => 'b',
    };
    URL_SAFE_NO_PAD.encode(format!(
        "v1:{}:{}:{d}",
        at.created_at.timestamp_micros(),
        at.id.simple()
    ))
}

/// `None` for anything [`encode_cursor`] did not write.
pub fn decode_cursor(cursor: &str) -> Option<(Position, Direction)> {
    if cursor.len() > 128 {
        return None;
    }
    let raw = URL_SAFE_NO_PAD.decode(cursor).ok()?;
    let text = std::str::from_utf8(&raw).ok()?;
    let mut parts = text.strip_prefix("v1:")?.split(':');
    let micros: i64 = parts.next()?.parse().ok()?;
    let id = Uuid::try_parse(parts.next()?).ok()?;
    let direction = match parts.next()? {
        "a" => Direction::After,
        "b" => Direction::Before,
        _ => return None,
    };
    if parts.next().is_some() {
        return None;
    }
    // Only times a room can have (1970–9999): PostgreSQL refuses to compare with a year it
    // can't hold, and that would be a 500 instead of a 400.
    let created_at = DateTime::from_timestamp_micros(micros)
        .filter(|t| *t >= DateTime::UNIX_EPOCH && t.year() <= 9999)?;
    Some((Position { created_at, id }, direction))
}

/// Why a change to a room's accesses is refused though the caller may make changes (409;
/// decided by `accesses::decide_grant` and `decide_revoke`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Conflict {
    #[error(
        "the user already holds a higher role on this room: send \"replace\": true to lower it"
    )]
    LowerRole,
    #[error("this would leave the room without an owner")]
    LastOwner,
}

/// A validation failure: a message per field.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Invalid {
    pub fields: BTreeMap<String, Vec<String>>,
}

impl Invalid {
    fn one(field: &str, message: impl Into<String>) -> Self {
        let mut fields = BTreeMap::new();
        fields.insert(field.to_owned(), vec![message.into()]);
        Self { fields }
    }

    pub(super) fn add(&mut self, field: &str, message: impl Into<String>) {
        self.fields
            .entry(field.to_owned())
            .or_default()
            .push(message.into());
    }
}

/// What a create or patch asks for, validated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    pub access_level: Option<AccessLevel>,
    pub configuration: Option<RoomConfiguration>,
}

pub(super) fn parse_object(body: &[u8]) -> Result<Map<String, Value>, Invalid> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    // A key named twice is refused: a proxy or log may read the other value (strict_json.rs).
    match server_kit::strict_json::parse(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(Invalid::one("body", "must be a JSON object")),
        Err(StrictJsonError::DuplicateKey(key)) => Err(Invalid::one(
            "body",
            format!(
                "names the key {:?} twice",
                key.chars().take(64).collect::<String>()
            ),
        )),
        Err(StrictJsonError::Invalid) => Err(Invalid::one("body", "is not valid JSON")),
    }
}

fn parse_configuration(value: &Value, errors: &mut Invalid) -> Option<RoomConfiguration> {
    let Value::Object(map) = value else {
        errors.add("configuration", "must be an object");
        return None;
    };
    let mut config = RoomConfiguration::default();
    for (key, v) in map {
        match key.as_str() {
            "can_publish_sources" => match v {
                Value::Null => {}
                Value::Array(items) => {
                    let mut sources = Vec::with_capacity(items.len());
                    for item in items {
                        match serde_json::from_value::<PublishSource>(item.clone()) {
                            Ok(s) if !sources.contains(&s) => sources.push(s),
                            Ok(_) => {}
                            Err(_) => errors.add(
                                "configuration.can_publish_sources",
                                "items must be camera, microphone, screen_share or screen_share_audio",
                            ),
                        }
                    }
                    config.can_publish_sources = Some(sources);
                }
                _ => errors.add(
                    "configuration.can_publish_sources",
                    "must be null or a list",
                ),
            },
            "everyone_can_mute" => match v {
                Value::Null => {}
                Value::Bool(b) => config.everyone_can_mute = Some(*b),
                _ => errors.add(
                    "configuration.everyone_can_mute",
                    "must be null or a boolean",
                ),
            },
            _ => errors.add(
                "configuration",
                "unknown key (allowed: can_publish_sources, everyone_can_mute)",
            ),
        }
    }
    Some(config)
}

fn parse_access_level(value: &Value, errors: &mut Invalid) -> Option<AccessLevel> {
    match value.as_str().map(AccessLevel::from_str) {
        Some(Ok(level)) => Some(level),
        _ => {
            errors.add("access_level", "must be public, trusted or restricted");
            None
        }
    }
}

/// Create: an empty body, `{}` or nulls mean the defaults; unknown top-level keys are ignored.
pub fn parse_create(body: &[u8]) -> Result<Changes, Invalid> {
    let map = parse_object(body)?;
    let mut errors = Invalid::default();
    let mut changes = Changes::default();
    if let Some(v) = map.get("access_level").filter(|v| !v.is_null()) {
        changes.access_level = parse_access_level(v, &mut errors);
    }
    if let Some(v) = map.get("configuration").filter(|v| !v.is_null()) {
        changes.configuration = parse_configuration(v, &mut errors);
    }
    if errors.fields.is_empty() {
        Ok(changes)
    } else {
        Err(errors)
    }
}

/// Patch: like create, but `null` for either field is an error.
pub fn parse_patch(body: &[u8]) -> Result<Changes, Invalid> {
    let map = parse_object(body)?;
    let mut errors = Invalid::default();
    let mut changes = Changes::default();
    match map.get("access_level") {
        Some(Value::Null) => errors.add("access_level", "may not be null"),
        Some(v) => changes.access_level = parse_access_level(v, &mut errors),
        None => {}
    }
    match map.get("configuration") {
        Some(Value::Null) => errors.add("configuration", "may not be null"),
        Some(v) => changes.configuration = parse_configuration(v, &mut errors),
        None => {}
    }
    if errors.fields.is_empty() {
        Ok(changes)
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_anything_else_is_refused() {
        let at = Position {
            created_at: DateTime::from_timestamp_micros(1_700_000_000_123_456).unwrap(),
            id: Uuid::new_v4(),
        };
        for d in [Direction::After, Direction::Before] {
            assert_eq!(decode_cursor(&encode_cursor(at, d)), Some((at, d)));
        }
        let forged = URL_SAFE_NO_PAD.encode(format!("v1:1:{}:x", at.id.simple()));
        let trailing = URL_SAFE_NO_PAD.encode(format!("v1:1:{}:a:b", at.id.simple()));
        let ancient = URL_SAFE_NO_PAD.encode(format!("v1:-1:{}:a", at.id.simple()));
        let distant = URL_SAFE_NO_PAD.encode(format!("v1:{}:{}:a", i64::MAX / 2, at.id.simple()));
        for bad in [
            "",
            "garbage",
            "!!!",
            &forged,
            &trailing,
            &ancient,
            &distant,
            &"A".repeat(200),
        ] {
            assert_eq!(decode_cursor(bad), None, "{bad}");
        }
    }

    #[test]
    fn create_accepts_empty_and_ignores_unknown_top_level_keys() {
        assert_eq!(parse_create(b""), Ok(Changes::default()));
        assert_eq!(parse_create(b"{}"), Ok(Changes::default()));
        let c = parse_create(br#"{"id": 1, "slug": "x", "access_level": "restricted",
            "configuration": {"can_publish_sources": ["camera", "camera"], "everyone_can_mute": true}}"#)
        .unwrap();
        assert_eq!(c.access_level, Some(AccessLevel::Restricted));
        let cfg = c.configuration.unwrap();
        assert_eq!(cfg.can_publish_sources, Some(vec![PublishSource::Camera]));
        assert_eq!(cfg.everyone_can_mute, Some(true));
    }

    #[test]
    fn create_refuses_bad_values_with_field_messages() {
        for (body, field) in [
            (&br#"{"access_level": "secret"}"#[..], "access_level"),
            (br#"{"access_level": 3}"#, "access_level"),
            (br#"{"configuration": []}"#, "configuration"),
            (br#"{"configuration": {"x": 1}}"#, "configuration"),
            (
                br#"{"configuration": {"can_publish_sources": ["laser"]}}"#,
                "configuration.can_publish_sources",
            ),
            (
                br#"{"configuration": {"can_publish_sources": "camera"}}"#,
                "configuration.can_publish_sources",
            ),
            (
                br#"{"configuration": {"everyone_can_mute": "yes"}}"#,
                "configuration.everyone_can_mute",
            ),
            (br#"[1]"#, "body"),
            (br#"{"#, "body"),
        ] {
            let e = parse_create(body).unwrap_err();
            assert!(e.fields.contains_key(field), "{field}: {e:?}");
        }
    }

    #[test]
    fn patch_refuses_nulls() {
        assert!(
            parse_patch(br#"{"access_level": null}"#)
                .unwrap_err()
                .fields
                .contains_key("access_level")
        );
        assert!(
            parse_patch(br#"{"configuration": null}"#)
                .unwrap_err()
                .fields
                .contains_key("configuration")
        );
        assert_eq!(parse_patch(br#"{"name": "x"}"#), Ok(Changes::default()));
    }
}
