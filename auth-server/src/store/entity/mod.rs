//! sea-orm entities: the database's shape, never sent over the wire.

pub mod applications;
pub mod revoked_tokens;
pub mod signing_keys;
pub mod users;
