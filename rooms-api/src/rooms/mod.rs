//! The rooms resource: wire types and validation (`model`), rules (`service`), storage (`store`),
//! HTTP (`handlers`).

pub mod entity;
pub mod handlers;
pub mod model;
pub mod service;
pub mod store;
