//! JSON and query strings with every name once (docs/spec/security.md "Input").
//!
//! `serde_json::Value` keeps the last of two equal keys, while a proxy, a WAF or a log reader
//! may act on the first: `{"scope":"a@x","scope":"b@x"}` would be read as two different users.
//! A body or query that names something twice is refused instead.

use std::collections::HashSet;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum StrictJsonError {
    #[error("duplicate key {0:?}")]
    DuplicateKey(String),
    #[error("not valid JSON")]
    Invalid,
}

/// Parses JSON, refusing an object (at any depth) that names a key twice.
pub fn parse(bytes: &[u8]) -> Result<Value, StrictJsonError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    match Strict::deserialize(&mut de).and_then(|v| de.end().map(|()| v)) {
        Ok(Strict(v)) => Ok(v),
        Err(e) => {
            let text = e.to_string();
            match text
                .strip_prefix(DUPLICATE)
                .and_then(|rest| rest.split(DUPLICATE_END).next())
            {
                Some(key) => Err(StrictJsonError::DuplicateKey(key.to_owned())),
                None => Err(StrictJsonError::Invalid),
            }
        }
    }
}

const DUPLICATE: &str = "duplicate key \u{1}";
const DUPLICATE_END: &str = "\u{1}";

struct Strict(Value);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(Strict(v)) = seq.next_element()? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if out.contains_key(&key) {
                return Err(de::Error::custom(format_args!(
                    "{DUPLICATE}{key}{DUPLICATE_END}"
                )));
            }
            let Strict(v) = map.next_value()?;
            out.insert(key, v);
        }
        Ok(Value::Object(out))
    }
}

/// The first parameter name a query string repeats (names compared after percent-decoding).
pub fn repeated_query_parameter(query: &str) -> Option<String> {
    let mut seen = HashSet::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let raw = pair.split('=').next().unwrap_or_default().replace('+', " ");
        let name = percent_encoding::percent_decode_str(&raw)
            .decode_utf8_lossy()
            .into_owned();
        if !seen.insert(name.clone()) {
            return Some(name);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_keys_at_any_depth_are_refused() {
        assert_eq!(
            parse(br#"{"scope":"a@x.com","scope":"b@x.com"}"#),
            Err(StrictJsonError::DuplicateKey("scope".into()))
        );
        assert_eq!(
            parse(br#"{"c":{"k":1,"k":2}}"#),
            Err(StrictJsonError::DuplicateKey("k".into()))
        );
        assert_eq!(
            parse(br#"[{"a":1},{"a":2}]"#).unwrap(),
            serde_json::json!([{"a":1},{"a":2}])
        );
        // An escaped spelling of the same key is the same key.
        assert!(matches!(
            parse(br#"{"scope":1,"sc\u006fpe":2}"#),
            Err(StrictJsonError::DuplicateKey(_))
        ));
        assert_eq!(parse(b"{} x"), Err(StrictJsonError::Invalid));
        assert_eq!(parse(b"{"), Err(StrictJsonError::Invalid));
        assert_eq!(
            parse(br#"{"a":1.5,"b":null,"c":[true]}"#).unwrap(),
            serde_json::json!({"a":1.5,"b":null,"c":[true]})
        );
    }

    #[test]
    fn repeated_query_names_are_found_after_decoding() {
        assert_eq!(repeated_query_parameter("page=1&page_size=2"), None);
        assert_eq!(
            repeated_query_parameter("page=1&page=2"),
            Some("page".into())
        );
        assert_eq!(
            repeated_query_parameter("page=1&pag%65=2"),
            Some("page".into())
        );
        assert_eq!(repeated_query_parameter(""), None);
    }
}
