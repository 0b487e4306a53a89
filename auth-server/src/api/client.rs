//! Client authentication for the endpoints other than the token endpoint (introspection,
//! revocation, the feed): the same credentials rules (a secret or, on introspection and
//! revocation, a client assertion), with these endpoints' error answers.

use poem::Request;
use poem::http::header;
use shared::Scope;

use crate::domain::client_auth::{self, AssertionFields, AuthError, Presented};
use crate::error::{ClientEndpointError, invalid_request, unauthorized};
use crate::model::Application;
use crate::state::AppState;

/// The request's source address, for the failure limits.
pub fn source_address(state: &AppState, req: &Request) -> std::net::IpAddr {
    let peer = req.remote_addr().as_socket_addr().map(|a| a.ip());
    // Every line, in order (RFC 9110 §5.3); a line that is not text reads as garbage.
    let forwarded = req
        .headers()
        .get_all("x-forwarded-for")
        .iter()
        .map(|v| v.to_str().unwrap_or("?"));
    state.config.trusted_proxies.source(peer, forwarded)
}

/// Authenticates the calling application and checks it holds `privilege` (if any).
pub async fn authenticate(
    state: &AppState,
    req: &Request,
    body_client_id: Option<&str>,
    body_client_secret: Option<String>,
    assertion: AssertionFields,
    privilege: Option<Scope>,
) -> Result<Application, ClientEndpointError> {
    let presented = credentials(req, body_client_id, body_client_secret, assertion)?;
    let source = source_address(state, req);
    let result = client_auth::authenticate(
        &state.db,
        &state.clients,
        presented,
        source,
        state.clock.now(),
    )
    .await;
    Ok(authorized(result.map(|app| (app, ())), privilege)?.0)
}

/// The credentials of the request; none at all is a 401 before any lookup.
pub fn credentials(
    req: &Request,
    body_client_id: Option<&str>,
    body_client_secret: Option<String>,
    assertion: AssertionFields,
) -> Result<Presented, ClientEndpointError> {
    let authorization = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let presented =
        client_auth::presented(authorization, body_client_id, body_client_secret, assertion)
            .map_err(|e| invalid_request(e.0))?;
    if matches!(presented, Presented::None) {
        return Err(unauthorized("Client authentication required"));
    }
    Ok(presented)
}

/// The answer to an authentication outcome (with what was read alongside the application),
/// and the privilege check.
pub fn authorized<T>(
    result: Result<(Application, T), AuthError>,
    privilege: Option<Scope>,
) -> Result<(Application, T), ClientEndpointError> {
    let (app, extra) = result?;
    if let Some(p) = privilege
        && !app.scopes.contains(p)
    {
        return Err(ClientEndpointError::lacks(p));
    }
    Ok((app, extra))
}
