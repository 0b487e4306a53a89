//! HTTP plumbing shared by both services: the middleware every request passes through
//! (`middleware.rs`: request ids, access logs, protective headers, input caps and refusals) and the error shapes answered for the framework's own failures
//! (`errors.rs`). The listeners and connections are `crate::server`'s.

mod errors;
mod middleware;

pub use errors::*;
pub use middleware::*;
