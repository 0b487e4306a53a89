//! The auth-server's users, as far as the rooms API may ask about them: the one call that turns
//! an e-mail into the user an application may act for (`POST /oauth/resolve-user`,
//! docs/spec/auth-server.md §6a), made with the rooms API's own credentials. Sharing a room by
//! e-mail needs it; the rule itself (allowlist, user creation) stays the auth-server's.

use std::time::Duration;

use secrecy::ExposeSecret;
use shared::basic_auth::encode_basic;
use shared::users::{Refusal, ResolvedUser, fields};
use shared::{ErrorBody, ErrorCode};

use crate::config::UsersConfig;
use crate::rooms::accesses::{Directory, DirectoryError, Resolved};

/// A call past this answers 503: the auth-server is on the same network, it answers in ms.
const TIMEOUT: Duration = Duration::from_secs(5);

/// The HTTP client of user resolution; without credentials every call is `NotConfigured`.
#[derive(Debug)]
pub struct AuthServerDirectory {
    config: Option<UsersConfig>,
    http: reqwest::Client,
}

impl AuthServerDirectory {
    pub fn new(config: Option<UsersConfig>) -> anyhow::Result<Self> {
        Ok(Self {
            config,
            http: reqwest::Client::builder().timeout(TIMEOUT).build()?,
        })
    }
}

impl Directory for AuthServerDirectory {
    async fn resolve(
        &self,
        application: &str,
        email: &str,
        create: bool,
    ) -> Result<Resolved, DirectoryError> {
        let Some(config) = &self.config else {
            return Err(DirectoryError::NotConfigured);
        };
        let creds = &config.credentials;
        let request = self
            .http
            .post(&config.url)
            .header(
                "authorization",
                encode_basic(&creds.client_id, creds.secret.expose_secret()),
            )
            .header("accept", "application/json")
            .form(&[
                (fields::APPLICATION, application),
                (fields::EMAIL, email),
                (fields::CREATE, if create { "true" } else { "false" }),
            ]);
        let response = server_kit::traces::send(server_kit::client_span!("resolve user"), request)
            .await
            .map_err(|e| {
                tracing::warn!(error = %e, "user resolution: auth-server unreachable");
                DirectoryError::Unavailable
            })?;
        let status = response.status();
        if status == reqwest::StatusCode::OK {
            let answer: ResolvedUser = response.json().await.map_err(|e| {
                tracing::warn!(error = %e, "user resolution: unreadable answer");
                DirectoryError::Unavailable
            })?;
            return Ok(Resolved {
                user_id: answer.user_id,
                created: answer.created,
            });
        }
        // A refusal about the e-mail or the application says so in its code; anything else
        // (our credentials refused, a 5xx, a proxy's page) is the auth-server being unusable.
        let code = response.json::<ErrorBody>().await.ok().map(|b| b.error);
        match code.and_then(Refusal::from_code) {
            Some(refusal) if status.is_client_error() => Err(DirectoryError::Refused(refusal)),
            _ => {
                tracing::warn!(
                    status = status.as_u16(),
                    code = code.map(ErrorCode::as_str),
                    "user resolution refused the rooms API's call"
                );
                Err(DirectoryError::Unavailable)
            }
        }
    }
}
