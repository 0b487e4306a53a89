use std::process::ExitCode;

use clap::Parser;

/// jemalloc, configured in `.cargo/config.toml` to hand freed memory back to the system within
/// a second from a background thread. With glibc's allocator the memory of 1,000 closed
/// connections stayed with the process (rooms API RSS 36 -> 89 MiB, never back, even with
/// `MALLOC_ARENA_MAX=1`; a `malloc_trim(0)` brought it to 38 MiB: free memory kept, not a leak).
/// It also serves C code's `malloc` (SQLite, OpenSSL: `unprefixed_malloc_on_supported_platforms`
/// in the workspace manifest); left on glibc, SQLite's memory after 12 rooms APIs pulled the
/// feed together stayed with the auth-server (56 MiB 5 s after, 43 MiB with this).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> ExitCode {
    rooms_api::cli::run(rooms_api::cli::Cli::parse()).await
}
