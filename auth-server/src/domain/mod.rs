//! The auth-server's rules, as plain functions and types over the store. No HTTP framework
//! here (wire types live in `api/`, their status mapping in `error.rs`), and no `AppState`:
//! each function takes the parts it needs and the time.

/// The database handle every use case takes: fronts pass it along without knowing the store.
pub use crate::store::Db;

pub mod admin_keys;
pub mod applications;
pub mod assertions;
pub mod audit;
pub mod client_auth;
pub mod client_keys;
pub mod client_secret;
pub mod delegation;
pub mod dpop;
pub mod failure_limits;
pub mod grant;
pub mod input;
pub mod introspection;
pub mod key_encryption;
pub mod key_lifecycle;
pub mod paging;
pub mod reach;
pub mod revocation;
pub mod secret_cache;
pub mod signing;
pub mod summary;
pub mod text;
pub use server_kit::source;
pub mod users;

/// Runs `change` (a CLI command, in a process of its own) and returns only once every running
/// server has had time to see what it wrote (`store::changes::SETTLE`): an operator who
/// deactivates an application is told it is done when it is in force, not a poll later.
pub async fn settled<T>(change: impl std::future::Future<Output = T>) -> T {
    use crate::store::changes;
    let before = changes::commits_here();
    let outcome = change.await;
    if changes::commits_here() != before {
        tokio::time::sleep(changes::SETTLE).await;
    }
    outcome
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    /// A command that committed waits `SETTLE` before it returns; one that changed nothing
    /// returns at once.
    #[tokio::test(start_paused = true)]
    async fn a_command_that_changed_something_returns_after_the_settle_time() {
        let start = tokio::time::Instant::now();
        super::settled(async {}).await;
        assert_eq!(start.elapsed(), Duration::ZERO);
        super::settled(async { crate::store::changes::committed_here() }).await;
        assert!(start.elapsed() >= crate::store::changes::SETTLE);
    }
}
