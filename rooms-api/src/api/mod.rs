//! The HTTP layer: custom extractors (so authentication runs before body parsing), the rooms
//! operations and their wire types, health, and the OpenAPI service.

pub mod extract;
pub mod health;
pub mod nullable;
pub mod rooms;

use poem_openapi::OpenApiService;

use rooms::RoomsApi;

pub type Apis = (RoomsApi, health::HealthApi);

/// The OpenAPI service; needs no database, so `rooms-api openapi` renders it offline.
pub fn service(server_url: &str) -> OpenApiService<Apis, ()> {
    OpenApiService::new(
        (RoomsApi, health::HealthApi),
        "rooms-api",
        env!("CARGO_PKG_VERSION"),
    )
    .description(
        "Meeting rooms on behalf of a user. Authenticate with a Bearer access token from the \
             auth-server (client_credentials grant with the user's e-mail as `scope`).",
    )
    .server(server_url)
}
