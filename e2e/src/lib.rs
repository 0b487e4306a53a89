//! Nothing here: the crate holds the end-to-end tests (`tests/stack/`), the one place that links
//! both services, so that neither service's own tests link the other.
