//! The auth-server's nouns: typed records with the rules that belong to each one.
//!
//! The domain's use cases (`domain/`) rule over these, the store (`store/`) maps database rows
//! to and from them, and the fronts (`api/`, `cli/`) render them. Nothing here does I/O or knows
//! a table: sea-orm's entities stay inside `store/`, so a change of schema stops at the store,
//! and a reviewer reads what an application, a user, an admin key or an audit event *is* in one
//! place. It depends on `shared` only, which is why it is a module of its own and not part of
//! `domain/`: the store needs it too, and the domain calls the store.

mod admin_key;
mod application;
mod audit_event;
mod signing_key;
mod store_error;
mod user;

pub use admin_key::AdminKey;
pub use application::{Application, AuthMethod};
pub use audit_event::AuditEvent;
pub use signing_key::SigningKey;
pub use store_error::StoreError;
pub use user::{User, UserId};
