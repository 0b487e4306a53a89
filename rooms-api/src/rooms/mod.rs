//! The rooms resource without HTTP: what a room is and body validation (`model`), rules
//! (`service`; sharing a room: `accesses`), storage (`store`, `entity`), reads kept in memory per viewer
//! (`cache`, fresh by `changes`), and the settings that shape rooms (`settings`).
//! The operations and wire types are in `api/rooms.rs`.

pub mod accesses;
pub mod cache;
pub mod changes;
pub mod entity;
pub mod model;
pub mod service;
pub mod settings;
pub mod store;
