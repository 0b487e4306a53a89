//! sea-orm entities: the database's shape, never sent over the wire.

pub mod admin_keys;
pub mod applications;
pub mod audit_events;
pub mod revoked_tokens;
pub mod signing_keys;
pub mod users;
