//! The client_credentials grant with user delegation (docs/spec/auth-server.md §1), in its exact
//! order: each step's failure is the answer and nothing later runs.

use shared::{Email, GrantType};

use super::{Exchange, Issued, TokenError, TokenRequest, issue, non_blank};
use crate::domain::client_auth::{
    self, AssertionFields, Authenticated, ClientAuthInfo, Lookup, Presented,
};
use crate::domain::dpop;
use crate::store::applications::UserKey;

/// client_credentials with user delegation: the application authenticates itself and names
/// the user by e-mail in `scope`. `grant` is the parsed `grant_type`, `None` for an unknown
/// one, refused at step 2.
pub(super) async fn exchange(
    deps: Exchange<'_>,
    request: TokenRequest,
    grant: Option<GrantType>,
    authorization: Option<&str>,
    source: std::net::IpAddr,
) -> Result<Issued, TokenError> {
    // 1. Malformed request (grant_type present: checked by the dispatch).
    let scope = non_blank(&request.scope).ok_or(TokenError::InvalidRequest(
        "scope is required: the e-mail address of the user to act for",
    ))?;
    let presented = client_auth::presented(
        authorization,
        request.client_id.as_deref(),
        request.client_secret.clone(),
        AssertionFields {
            client_assertion_type: request.client_assertion_type.clone(),
            client_assertion: request.client_assertion.clone(),
        },
    )
    .map_err(|e| TokenError::InvalidRequest(e.0))?;
    let proof = dpop::check(&request.dpop, deps.nonces, deps.clock.now())
        .map_err(TokenError::InvalidDpopProof)?;
    // 2. Grant type.
    grant.ok_or(TokenError::UnsupportedGrantType)?;
    // 3. Credentials present at all.
    if matches!(presented, Presented::None) {
        return Err(TokenError::NoCredentials);
    }
    // 4. (failure limits: docs/spec/security.md) 5. Client authentication. A well-formed e-mail's user
    // is read in the same query as the application; nothing about it is used before step 8.
    let parsed = Email::parse(scope);
    let lookup = match &parsed {
        Ok(email) => Lookup::User(UserKey::Email(email)),
        Err(_) => Lookup::Application,
    };
    let Authenticated {
        app, user: found, ..
    } = client_auth::authenticate(
        deps.db,
        deps.clients,
        ClientAuthInfo { presented, source },
        lookup,
        deps.clock.now(),
    )
    .await?;
    // 5b. DPoP: the application's requirement; the proof used once.
    let jkt = dpop::bind(deps.db, &app, proof, deps.clock.now()).await?;
    // 6. The e-mail.
    let email = parsed.map_err(|_| TokenError::MalformedEmail)?;
    let scopes = app.scopes.token_scopes();
    issue(deps, app, found, email, scopes, jkt).await
}
