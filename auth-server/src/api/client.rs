//! The edge of client authentication: what a request presents, read once. `ClientEdge` is
//! extracted from every request to an endpoint a client authenticates to (its `Authorization`
//! header and its source address behind `TRUSTED_PROXIES`, the way Kanidm's `ClientAuthInfo`
//! extractor does it); the handler adds the body's credential fields with `ClientEdge::info`,
//! and the domain's one `client_auth::authenticate` does the rest.

use std::net::IpAddr;
use std::sync::Arc;

use poem::http::header;
use poem::{Request, RequestBody};
use shared::Scope;

use crate::domain::client_auth::{self, AssertionFields, ClientAuthInfo, Lookup, Presented};
use crate::error::{ClientEndpointError, invalid_request, unauthorized};
use crate::model::Application;
use crate::state::AppState;

/// What the request says about its client before the body is read.
pub struct ClientEdge {
    authorization: Option<String>,
    source: IpAddr,
}

impl ClientEdge {
    /// Reads the edge of `req` (also used by the token endpoint, which is not an operation of
    /// its own extractor list).
    pub fn read(state: &AppState, req: &Request) -> Self {
        let authorization = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Self {
            authorization,
            source: source_address(state, req),
        }
    }

    pub fn authorization(&self) -> Option<&str> {
        self.authorization.as_deref()
    }

    pub fn source(&self) -> IpAddr {
        self.source
    }

    /// The credentials the request presented, header and body together; none at all is a 401
    /// before any lookup, conflicting ones a 400.
    pub fn info(
        &self,
        body_client_id: Option<&str>,
        body_client_secret: Option<String>,
        assertion: AssertionFields,
    ) -> Result<ClientAuthInfo, ClientEndpointError> {
        let presented = client_auth::presented(
            self.authorization(),
            body_client_id,
            body_client_secret,
            assertion,
        )
        .map_err(|e| invalid_request(e.0))?;
        if matches!(presented, Presented::None) {
            return Err(unauthorized("Client authentication required"));
        }
        Ok(ClientAuthInfo {
            presented,
            source: self.source,
        })
    }
}

/// The OpenAPI security scheme of the endpoints a client authenticates to, so Swagger UI's
/// "Authorize" takes a client_id and secret (`client_secret_basic`). Optional (an empty
/// requirement beside it): `client_secret_post` and `private_key_jwt` send their credentials in
/// the body instead.
pub const CLIENT_BASIC: &str = "clientBasic";

impl<'a> poem_openapi::ApiExtractor<'a> for ClientEdge {
    const TYPES: &'static [poem_openapi::ApiExtractorType] =
        &[poem_openapi::ApiExtractorType::SecurityScheme];
    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut poem_openapi::registry::Registry) {
        registry.create_security_scheme(
            CLIENT_BASIC,
            poem_openapi::registry::MetaSecurityScheme {
                ty: "http",
                description: Some(
                    "The application's client_id and secret (client_secret_basic). Or send \
                     client_id and client_secret, or a client_assertion, in the form body.",
                ),
                name: None,
                key_in: None,
                scheme: Some("basic"),
                bearer_format: None,
                flows: None,
                openid_connect_url: None,
            },
        );
    }

    fn security_schemes() -> Vec<&'static str> {
        vec![CLIENT_BASIC]
    }

    fn has_security_fallback() -> bool {
        true
    }

    async fn from_request(
        req: &'a Request,
        _body: &mut RequestBody,
        _param_opts: poem_openapi::ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        let state = req.data::<Arc<AppState>>().ok_or_else(|| {
            poem::Error::from_string(
                "application state missing",
                poem::http::StatusCode::INTERNAL_SERVER_ERROR,
            )
        })?;
        Ok(Self::read(state, req))
    }
}

/// The request's source address, for the failure limits.
pub fn source_address(state: &AppState, req: &Request) -> IpAddr {
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
    caller: ClientAuthInfo,
    privilege: Option<Scope>,
) -> Result<Application, ClientEndpointError> {
    let authenticated = client_auth::authenticate(
        &state.db,
        &state.clients,
        caller,
        Lookup::Application,
        state.clock.now(),
    )
    .await?;
    if let Some(p) = privilege {
        client_auth::require(&authenticated.app, p)?;
    }
    Ok(authenticated.app)
}
