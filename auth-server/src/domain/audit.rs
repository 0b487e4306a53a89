//! The audit trail (docs/spec/admin-api.md "Audit events"): every administrative change, made
//! over the admin API or by the CLI, is appended in the same transaction as the change itself,
//! with who made it, what, and the changed fields before and after. Never a secret: a new
//! secret is recorded as the fact of a rotation, never its value or hash.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::paging::{Page, PageRequest};
use super::text;
use crate::model::AuditEvent;
use crate::model::StoreError;
use crate::store::Conn;
use crate::store::audit::{self as store, Filter};

/// Who made a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// A management command on the server's host.
    Cli,
    /// An admin API call, by the name of the admin key it carried.
    AdminKey(String),
    /// An application's token request (a provisional user), as `client:<client_id>`: the `:`
    /// no admin key name may hold.
    Client(String),
}

impl Actor {
    pub fn client(client_id: &str) -> Self {
        Actor::Client(format!("client:{client_id}"))
    }
}

/// What an erased field reads in the trail.
pub const ERASED: &str = "(erased)";

/// Erases `fields` from every event of one resource (inside the caller's transaction): each
/// before/after value of those fields that is not null becomes `ERASED`. What is left says
/// that the field changed and when, not to what. The one rewrite of an append-only trail: a
/// deleted user's e-mail must not outlive the user (docs/spec/auth-server.md §8).
pub async fn erase(
    db: &impl Conn,
    resource: Resource,
    resource_id: &str,
    fields: &[&str],
) -> Result<(), StoreError> {
    for event in store::of_resource(db, resource.as_str(), resource_id).await? {
        let mut changes: Value = serde_json::from_str(&event.changes)
            .map_err(|e| StoreError::Corrupt(format!("audit event changes: {e}")))?;
        if erase_fields(&mut changes, fields) {
            store::set_changes(db, event.id, &changes.to_string()).await?;
        }
    }
    Ok(())
}

/// `changes` with `fields`' non-null before/after values replaced; whether anything changed.
pub fn erase_fields(changes: &mut Value, fields: &[&str]) -> bool {
    let mut touched = false;
    for field in fields {
        let Some(pair) = changes.get_mut(*field).and_then(Value::as_object_mut) else {
            continue;
        };
        for side in ["before", "after"] {
            if let Some(v) = pair.get_mut(side)
                && !v.is_null()
                && v != ERASED
            {
                *v = Value::from(ERASED);
                touched = true;
            }
        }
    }
    touched
}

/// The actor name the CLI writes; no admin key may take it.
pub const CLI_ACTOR: &str = "cli";

impl Actor {
    pub fn name(&self) -> &str {
        match self {
            Actor::Cli => CLI_ACTOR,
            Actor::AdminKey(name) | Actor::Client(name) => name,
        }
    }
}

/// What the trail knows of kinds of resources.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    Application,
    User,
    SigningKey,
    AdminKey,
}

impl Resource {
    pub const ALL: [Resource; 4] = [
        Resource::Application,
        Resource::User,
        Resource::SigningKey,
        Resource::AdminKey,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Resource::Application => "application",
            Resource::User => "user",
            Resource::SigningKey => "signing_key",
            Resource::AdminKey => "admin_key",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// One change to append.
#[derive(Debug, Clone)]
pub struct Change {
    pub resource: Resource,
    pub resource_id: String,
    /// `create`, `update`, `rotate_secret`, `delete`, `activate`, `rotate`, `retire`, `revoke`…
    pub action: &'static str,
    /// `{field: {"before": …, "after": …}}`
    pub changes: Value,
}

/// The fields of `after` that differ from `before` (both JSON objects), as before/after pairs.
/// A created resource is `diff(&Value::Null, after)`; a deleted one `diff(before, &Value::Null)`.
pub fn diff(before: &Value, after: &Value) -> Value {
    let empty = Map::new();
    let b = before.as_object().unwrap_or(&empty);
    let a = after.as_object().unwrap_or(&empty);
    let mut out = Map::new();
    for key in b.keys().chain(a.keys()) {
        if out.contains_key(key) {
            continue;
        }
        let (old, new) = (
            b.get(key).unwrap_or(&Value::Null),
            a.get(key).unwrap_or(&Value::Null),
        );
        if old != new {
            out.insert(key.clone(), json!({ "before": old, "after": new }));
        }
    }
    Value::Object(out)
}

/// Appends `change` (inside the caller's transaction).
pub async fn record(
    db: &impl Conn,
    actor: &Actor,
    change: Change,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    store::insert(
        db,
        &AuditEvent {
            id: Uuid::now_v7(),
            at: now,
            actor: actor.name().to_owned(),
            action: change.action.to_owned(),
            resource: change.resource.as_str().to_owned(),
            resource_id: change.resource_id,
            changes: change.changes.to_string(),
        },
    )
    .await
}

#[cfg(test)]
mod erasure_tests {
    use super::*;

    #[test]
    fn erasure_keeps_that_a_field_changed_and_drops_its_values() {
        let mut c = json!({
            "email": {"before": null, "after": "ada@example.com"},
            "external_sub": {"before": "emp-1", "after": null},
            "is_active": {"before": true, "after": false},
        });
        assert!(erase_fields(&mut c, &["email", "external_sub"]));
        assert_eq!(
            c,
            json!({
                "email": {"before": null, "after": ERASED},
                "external_sub": {"before": ERASED, "after": null},
                "is_active": {"before": true, "after": false},
            })
        );
        assert!(
            !erase_fields(&mut c, &["email", "external_sub"]),
            "twice is a no-op"
        );
        assert!(!erase_fields(
            &mut json!({"name": {"before": "a", "after": "b"}}),
            &["email"]
        ));
    }
}

/// What the list may be narrowed to.
#[derive(Debug, Clone, Default)]
pub struct Query {
    pub resource: Option<Resource>,
    pub resource_id: Option<String>,
    pub since: Option<DateTime<Utc>>,
}

pub async fn list(
    db: &impl Conn,
    query: Query,
    page: PageRequest,
) -> Result<Page<AuditEvent>, StoreError> {
    // Resource ids are at most 64 printable characters: another one matches nothing, so the
    // list answers empty without asking the database (where a NUL would be an error on
    // PostgreSQL).
    if query
        .resource_id
        .as_deref()
        .is_some_and(|id| !text::printable_within(id, 64))
    {
        return Ok(Page::from_rows(Vec::new(), &page, |e: &AuditEvent| {
            (e.at, e.id)
        }));
    }
    let filter = Filter {
        resource: query.resource.map(|r| r.as_str().to_owned()),
        resource_id: query.resource_id,
        since: query.since,
        after: page.after(),
    };
    let rows = store::page(db, &filter, page.fetch()).await?;
    Ok(Page::from_rows(rows, &page, |e| (e.at, e.id)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_keeps_only_changed_fields() {
        let before = json!({"name": "a", "scopes": ["rooms:list"], "active": true});
        let after = json!({"name": "b", "scopes": ["rooms:list"], "active": true, "ttl": 60});
        assert_eq!(
            diff(&before, &after),
            json!({
                "name": {"before": "a", "after": "b"},
                "ttl": {"before": null, "after": 60},
            })
        );
        assert_eq!(diff(&Value::Null, &json!({"x": 1}))["x"]["after"], 1);
        assert_eq!(diff(&before, &before), json!({}));
    }
}
