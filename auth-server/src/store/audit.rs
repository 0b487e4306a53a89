//! The audit trail: append-only rows, read a page at a time along `(at, id)` or
//! `(resource, at, id)`.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect,
};

use super::StoreError;
use super::entity::audit_events::{ActiveModel, Column, Entity, Model};
use crate::model::AuditEvent;

impl From<Model> for AuditEvent {
    fn from(m: Model) -> Self {
        AuditEvent {
            id: m.id,
            at: m.at,
            actor: m.actor,
            action: m.action,
            resource: m.resource,
            resource_id: m.resource_id,
            changes: m.changes,
        }
    }
}

pub async fn insert(db: &impl ConnectionTrait, event: &AuditEvent) -> Result<(), StoreError> {
    ActiveModel {
        id: Set(event.id),
        at: Set(event.at),
        actor: Set(event.actor.clone()),
        action: Set(event.action.clone()),
        resource: Set(event.resource.clone()),
        resource_id: Set(event.resource_id.clone()),
        changes: Set(event.changes.clone()),
    }
    .insert(db)
    .await?;
    Ok(())
}

/// Every event of one resource (the `(resource_id, at)` index), oldest first.
pub async fn of_resource(
    db: &impl ConnectionTrait,
    resource: &str,
    resource_id: &str,
) -> Result<Vec<AuditEvent>, StoreError> {
    Ok(Entity::find()
        .filter(Column::ResourceId.eq(resource_id))
        .filter(Column::Resource.eq(resource))
        .order_by_asc(Column::At)
        .all(db)
        .await?
        .into_iter()
        .map(AuditEvent::from)
        .collect())
}

/// Rewrites one event's `changes`: the only update the trail allows, for erasure.
pub async fn set_changes(
    db: &impl ConnectionTrait,
    id: uuid::Uuid,
    changes: &str,
) -> Result<(), StoreError> {
    Entity::update_many()
        .col_expr(Column::Changes, Expr::value(changes))
        .filter(Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}

/// Filters of a page of events.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub resource: Option<String>,
    pub resource_id: Option<String>,
    pub since: Option<DateTime<Utc>>,
    /// Strictly after this (at, id): the cursor.
    pub after: Option<(DateTime<Utc>, uuid::Uuid)>,
}

pub async fn page(
    db: &impl ConnectionTrait,
    filter: &Filter,
    limit: u64,
) -> Result<Vec<AuditEvent>, StoreError> {
    let mut query = Entity::find();
    if let Some(resource) = &filter.resource {
        query = query.filter(Column::Resource.eq(resource.as_str()));
    }
    if let Some(id) = &filter.resource_id {
        query = query.filter(Column::ResourceId.eq(id.as_str()));
    }
    if let Some(since) = filter.since {
        query = query.filter(Column::At.gte(since));
    }
    if let Some((at, id)) = filter.after {
        query = query.filter(
            Expr::tuple([Expr::col(Column::At), Expr::col(Column::Id)])
                .gt(Expr::tuple([Expr::value(at), Expr::value(id)])),
        );
    }
    Ok(query
        .order_by_asc(Column::At)
        .order_by_asc(Column::Id)
        .limit(limit)
        .all(db)
        .await?
        .into_iter()
        .map(AuditEvent::from)
        .collect())
}
