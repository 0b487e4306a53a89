//! The JWT-bearer grant (docs/spec/auth-server.md §1a, RFC 7523 §2.1): the assertion
//! authenticates the application and names the user, after which the client_credentials steps
//! 7–9 run in the same order (allowlist, user, token).

use shared::{Email, ScopeSet};

use super::{Exchange, Issued, TokenError, TokenRequest, issue, non_blank};
use crate::domain::assertions::AssertionRejection;
use crate::domain::client_auth::{
    self, AuthError, Authenticated, ClientAuthInfo, Lookup, Presented,
};
use crate::domain::dpop;
use crate::model::Application;
use crate::store::applications::UserKey;

/// The JWT-bearer grant (RFC 7523 §2.1): the assertion authenticates the application (its
/// `iss`) and names the user (`sub`); the scopes, a subset of the application's, come from the
/// `scope` parameter or the assertion's `scope` claim. Then steps 7–9 as for
/// client_credentials.
pub(super) async fn exchange(
    deps: Exchange<'_>,
    request: TokenRequest,
    authorization: Option<&str>,
    source: std::net::IpAddr,
) -> Result<Issued, TokenError> {
    // 1. Malformed request.
    let assertion = non_blank(&request.assertion).ok_or(TokenError::InvalidRequest(
        "assertion is required: a JWT signed by the application's key",
    ))?;
    let other_credentials = authorization.is_some_and(shared::basic_auth::is_basic)
        || request.client_secret.is_some()
        || request.client_assertion.is_some()
        || request.client_assertion_type.is_some();
    if other_credentials {
        return Err(TokenError::InvalidRequest(
            "The JWT-bearer grant's assertion authenticates the application: send no other client credentials",
        ));
    }
    let proof = dpop::check(&request.dpop, deps.nonces, deps.clock.now())
        .map_err(TokenError::InvalidDpopProof)?;
    // Read unverified: `iss` finds the application, `sub` picks the user read in the same
    // query; nothing about either is trusted until the assertion checked out.
    let claimed = crate::domain::client_keys::peek(assertion).map(|(_, claims)| claims);
    let claim = |name: &str| {
        claimed
            .as_ref()
            .and_then(|c| c.get(name)?.as_str().map(str::to_owned))
    };
    let (claimed_iss, unverified_sub) = (claim("iss"), claim("sub"));
    if let (Some(id), Some(iss)) = (non_blank(&request.client_id), &claimed_iss)
        && id != iss
    {
        return Err(TokenError::InvalidRequest(
            "client_id differs from the assertion's iss",
        ));
    }
    // 4–5. Authentication by the assertion.
    let parsed_sub = unverified_sub.as_deref().map(Email::parse);
    let lookup = match &parsed_sub {
        Some(Ok(email)) => Lookup::User(UserKey::Email(email)),
        _ => Lookup::Application,
    };
    let presented = Presented::GrantAssertion {
        client_id: claimed_iss.unwrap_or_default(),
        assertion: assertion.to_owned(),
    };
    let authenticated = client_auth::authenticate(
        deps.db,
        deps.clients,
        ClientAuthInfo { presented, source },
        lookup,
        deps.clock.now(),
    )
    .await
    .map_err(|e| match e {
        AuthError::Failed => TokenError::InvalidGrant(AssertionRejection::Invalid),
        AuthError::Assertion(reason) => TokenError::InvalidGrant(reason),
        other => other.into(),
    })?;
    let Authenticated {
        app,
        user: found,
        grant: Some(verified),
        ..
    } = authenticated
    else {
        return Err(TokenError::Internal(anyhow::anyhow!(
            "a grant assertion authenticated without its verified claims"
        )));
    };
    // DPoP: the application's requirement; the proof used once.
    let jkt = dpop::bind(deps.db, &app, proof, deps.clock.now()).await?;
    // The scopes asked for, a subset of the application's; none asked for: all of them.
    let asked = non_blank(&request.scope)
        .map(str::to_owned)
        .or(verified.scope.clone());
    let scopes = down_scope(&app, asked.as_deref())?;
    // 6. The e-mail: the verified `sub`.
    let email = Email::parse(&verified.subject)
        .map_err(|_| TokenError::InvalidGrant(AssertionRejection::UserNotEmail))?;
    // The user read alongside belongs to the verified `sub` only if the two agree.
    let found = found.filter(|_| unverified_sub.as_deref() == Some(verified.subject.as_str()));
    issue(deps, app, found, email, scopes, jkt).await
}

/// The token scopes asked for (space-separated rooms scopes), checked against `app`'s.
fn down_scope(app: &Application, asked: Option<&str>) -> Result<ScopeSet, TokenError> {
    let allowed = app.scopes.token_scopes();
    let Some(asked) = asked.filter(|a| !a.trim().is_empty()) else {
        return Ok(allowed);
    };
    let asked = ScopeSet::parse(asked).map_err(|unknown| {
        TokenError::InvalidScope(format!(
            "unknown scope {:?}: ask for rooms scopes (rooms:create rooms:list rooms:retrieve rooms:update rooms:delete rooms:grant-access)",
            unknown.0.chars().take(64).collect::<String>()
        ))
    })?;
    // `allowed` holds no privilege, so asking for one is refused here too.
    match asked.iter().find(|scope| !allowed.contains(*scope)) {
        Some(scope) => Err(TokenError::InvalidScope(format!(
            "This application may not ask for {scope}"
        ))),
        None => Ok(asked),
    }
}
