//! The rooms resource without HTTP: what a room is and body validation (`model`), rules
//! (`service`), storage (`store`, `entity`), and the settings that shape rooms (`settings`).
//! The operations and wire types are in `api/rooms.rs`.

pub mod entity;
pub mod model;
pub mod service;
pub mod settings;
pub mod store;
