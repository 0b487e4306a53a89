//! The signing-key changes an operator makes (rotate, retire), each with its audit event. The
//! rules themselves are `signing.rs`'s; this adds who did it, in the same transaction.

use chrono::{DateTime, Utc};
use serde_json::json;

use super::audit::{self, Actor, Change, Resource};
use super::signing::{self, KeyError, KeyRing, RetireError};
use crate::store::{self as db_store, Db};

/// `keys rotate [--now]`: the new key's kid.
pub async fn rotate(
    db: &Db,
    ring: &KeyRing,
    actor: &Actor,
    immediately: bool,
    now: DateTime<Utc>,
) -> Result<String, KeyError> {
    let tx = db_store::begin(db).await?;
    let kid = ring.rotate(&tx, now, immediately).await?;
    let activates_at = if immediately {
        now
    } else {
        now + signing::PUBLISH_AHEAD
    };
    let change = Change {
        resource: Resource::SigningKey,
        resource_id: kid.clone(),
        action: "rotate",
        changes: json!({
            "state": { "before": null, "after": if immediately { "active" } else { "pending" } },
            "activates_at": { "before": null, "after": activates_at },
        }),
    };
    audit::record(&tx, actor, change, now).await?;
    db_store::commit(tx).await?;
    Ok(kid)
}

/// `keys retire KID`.
pub async fn retire(
    db: &Db,
    actor: &Actor,
    kid: &str,
    now: DateTime<Utc>,
) -> Result<(), RetireError> {
    let tx = db_store::begin(db).await?;
    signing::retire(&tx, kid, now).await?;
    let change = Change {
        resource: Resource::SigningKey,
        resource_id: kid.to_owned(),
        action: "retire",
        changes: json!({ "retired_at": { "before": null, "after": now } }),
    };
    audit::record(&tx, actor, change, now).await?;
    db_store::commit(tx).await?;
    Ok(())
}
