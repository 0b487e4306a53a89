//! `auth-server app …`: applications (OAuth clients), over `domain::applications`.

use chrono::{DateTime, Utc};
use clap::Subcommand;
use secrecy::SecretString;
use shared::{Allowlist, ClientId, ScopeSet};

use super::{join_or, print_json, refused};
use crate::config::Config;
use crate::domain::applications::{self, AppError, Changes, KeysInput, NewApp, Rotation};
use crate::domain::audit::Actor;
use crate::domain::input::{self, FieldCheck, FieldIssue};
use crate::domain::summary::ApplicationSummary;
use crate::model::{Application, AuthMethod};
use crate::startup;

#[derive(Debug, Subcommand)]
pub enum AppCommand {
    /// Register an application; prints its client_id and secret (the secret only this once).
    Create {
        /// A name for operators (1 to 255 characters).
        #[arg(long)]
        name: String,
        /// A scope to grant (repeatable): rooms:create rooms:list rooms:retrieve rooms:update
        /// rooms:delete rooms:grant-access tokens:introspect tokens:revocations users:resolve.
        #[arg(long = "scope")]
        scopes: Vec<String>,
        /// An allowed e-mail domain (repeatable): example.com or *.example.com.
        #[arg(long = "domain")]
        domains: Vec<String>,
        /// This application's token lifetime in seconds, at most TOKEN_TTL_SECONDS (default: that).
        #[arg(long)]
        token_ttl: Option<u32>,
        /// The application's public keys, a JWKS file (EdDSA, ES256, RS256 or PS256 keys):
        /// it may then authenticate with private_key_jwt and use the JWT-bearer grant.
        #[arg(long, value_name = "FILE", conflicts_with = "jwks_uri")]
        jwks_file: Option<std::path::PathBuf>,
        /// Where to fetch the application's JWKS (https; http only for a loopback host).
        #[arg(long, value_name = "URL")]
        jwks_uri: Option<String>,
        /// How it authenticates: client_secret (Basic or post) or private_key_jwt (default:
        /// private_key_jwt with --no-secret, client_secret otherwise).
        #[arg(long, value_parser = parse_auth_method)]
        auth_method: Option<AuthMethod>,
        /// Register no secret at all (needs --jwks-file or --jwks-uri).
        #[arg(long)]
        no_secret: bool,
        /// Every token request must carry a DPoP proof (RFC 9449), so every token is bound to
        /// the application's key.
        #[arg(long)]
        dpop_bound_access_tokens: bool,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// List every application (never a secret or its hash).
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show one application.
    Show {
        client_id: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Change an application; removing a scope or a domain, or deactivating, kills its earlier tokens.
    Update {
        client_id: String,
        /// A new name.
        #[arg(long)]
        name: Option<String>,
        /// A scope to grant (repeatable).
        #[arg(long = "add-scope")]
        add_scopes: Vec<String>,
        /// A scope to take away (repeatable).
        #[arg(long = "remove-scope")]
        remove_scopes: Vec<String>,
        /// An e-mail domain to allow (repeatable).
        #[arg(long = "add-domain")]
        add_domains: Vec<String>,
        /// An e-mail domain to stop allowing (repeatable).
        #[arg(long = "remove-domain")]
        remove_domains: Vec<String>,
        /// Let the application get tokens again (earlier tokens stay dead).
        #[arg(long, conflicts_with = "deactivate")]
        activate: bool,
        /// Refuse the application's credentials and kill its tokens.
        #[arg(long)]
        deactivate: bool,
        /// A token lifetime in seconds for this application, at most TOKEN_TTL_SECONDS.
        #[arg(long, conflicts_with = "default_token_ttl")]
        token_ttl: Option<u32>,
        /// Go back to the server's TOKEN_TTL_SECONDS.
        #[arg(long)]
        default_token_ttl: bool,
        /// Replace the application's keys with this JWKS file; tokens obtained before die if
        /// it had keys.
        #[arg(long, value_name = "FILE", conflicts_with_all = ["jwks_uri", "remove_keys"])]
        jwks_file: Option<std::path::PathBuf>,
        /// Replace the application's keys with those at this URL.
        #[arg(long, value_name = "URL", conflicts_with = "remove_keys")]
        jwks_uri: Option<String>,
        /// Remove the application's keys (its tokens obtained before die).
        #[arg(long)]
        remove_keys: bool,
        /// Switch how it authenticates: client_secret or private_key_jwt (earlier tokens die).
        #[arg(long, value_parser = parse_auth_method)]
        auth_method: Option<AuthMethod>,
        /// true: every token request must carry a DPoP proof from now on (earlier tokens
        /// die); false: bearer tokens again.
        #[arg(long, value_name = "true|false")]
        dpop_bound_access_tokens: Option<bool>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Issue a new secret. Without --grace the old one stops working at once (and its tokens,
    /// unless --keep-tokens); with --grace it keeps working until the grace ends (and its tokens
    /// live, unless --revoke-tokens).
    RotateSecret {
        client_id: String,
        /// Keep the old secret valid this long (e.g. 3600, 90m, 24h, 7d; at most 30 days).
        #[arg(long, value_parser = super::parse_duration)]
        grace: Option<chrono::TimeDelta>,
        /// Leave the tokens issued with the old secret alive.
        #[arg(long, conflicts_with = "revoke_tokens")]
        keep_tokens: bool,
        /// Kill the tokens issued before the rotation, even with --grace.
        #[arg(long)]
        revoke_tokens: bool,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Delete an application: its credentials and every token it issued stop working.
    Delete { client_id: String },
}

/// The CLI's view of an application: the domain's summary, printed as JSON (the same JSON the
/// admin API answers) or as text.
fn print_app(
    app: &Application,
    secret: Option<&SecretString>,
    ctx: &Ctx,
    json: bool,
) -> anyhow::Result<()> {
    let view = ApplicationSummary::new(app, secret, ctx.now, ctx.max_ttl);
    if json {
        return print_json(&view);
    }
    println!("name:          {}", view.name);
    println!("client_id:     {}", view.client_id);
    if let Some(secret) = &view.client_secret {
        println!("client_secret: {secret}");
        println!("               (shown only now: store it in your secret manager)");
    }
    println!("id:            {}", view.id);
    println!("active:        {}", view.is_active);
    println!(
        "scopes:        {}",
        join_or(&view.scopes, "(none: this application can do nothing yet)")
    );
    println!(
        "domains:       {}",
        join_or(&view.domains, "(none: any e-mail domain is admitted)")
    );
    println!("auth method:   {}", view.token_endpoint_auth_method);
    if view.dpop_bound_access_tokens {
        println!("tokens:        DPoP-bound (every token request must carry a DPoP proof)");
    }
    if view.secrets.is_empty() {
        println!("secret:        (none)");
    }
    if let Some(kids) = view.jwks_kids() {
        println!("keys:          inline JWKS, kid {}", join_or(&kids, "-"));
    }
    if let Some(uri) = &view.jwks_uri {
        println!("keys:          fetched from {uri}");
    }
    for s in &view.secrets {
        match s.expires_at {
            None => println!("secret:        {} (no expiry)", s.which),
            Some(t) => println!(
                "secret:        {} (valid until {})",
                s.which,
                t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            ),
        }
    }
    println!(
        "token ttl:     {} s{}",
        view.effective_token_ttl_seconds,
        if view.token_ttl_seconds.is_none() {
            " (the server's TOKEN_TTL_SECONDS)"
        } else {
            ""
        }
    );
    println!(
        "last token:    {}",
        view.last_token_at.map_or("never".to_owned(), |t| t
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
    );
    Ok(())
}

/// Domain refusals are one line for the operator; database failures keep their cause.
fn cli_error(e: AppError) -> anyhow::Error {
    match e {
        AppError::Store(e) => e.into(),
        AppError::Mint(e) => e,
        refusal => refused(refusal.to_string()),
    }
}

/// The scope arguments: repeatable, and each may hold several names separated by spaces.
fn scope_args(items: &[String]) -> Vec<String> {
    items
        .iter()
        .flat_map(|s| s.split_ascii_whitespace())
        .map(str::to_owned)
        .collect()
}

/// The domain's per-field refusals, on one line.
fn refused_fields(issues: Vec<FieldIssue>) -> anyhow::Error {
    let messages: Vec<&str> = issues.iter().map(|i| i.message.as_str()).collect();
    refused(messages.join("; "))
}

fn parse_auth_method(s: &str) -> Result<AuthMethod, &'static str> {
    input::auth_method(s)
}

/// The keys named on the command line, read from the file if one is given.
fn keys_input(
    jwks_file: Option<&std::path::Path>,
    jwks_uri: Option<String>,
) -> anyhow::Result<Option<KeysInput>> {
    if let Some(path) = jwks_file {
        let too_big = std::fs::metadata(path)
            .map(|m| m.len() > crate::domain::client_keys::MAX_JWKS_BYTES as u64)
            .unwrap_or(false);
        if too_big {
            return Err(refused("jwks is larger than 16 KiB"));
        }
        let text = std::fs::read_to_string(path)
            .map_err(|e| refused(format!("cannot read {}: {e}", path.display())))?;
        return Ok(Some(KeysInput::Jwks(text)));
    }
    Ok(jwks_uri.map(KeysInput::JwksUri))
}

fn parse_client_id(s: &str) -> anyhow::Result<ClientId> {
    ClientId::parse(s.trim()).map_err(|e| refused(e.to_string()))
}

fn warn_if_open(app: &Application) {
    if !app.domains.is_explicit() {
        eprintln!(
            "warning: application {} has no e-mail domains: it may act for users of any domain",
            app.client_id
        );
    }
}

/// What every view needs besides the application.
struct Ctx {
    now: DateTime<Utc>,
    max_ttl: u32,
}

pub async fn run(cmd: AppCommand, config: &Config, now: DateTime<Utc>) -> anyhow::Result<()> {
    let db = startup::open_database(&config.database_url, 1).await?;
    let max_ttl = u32::try_from(config.token_ttl_seconds).unwrap_or(u32::MAX);
    let ctx = Ctx { now, max_ttl };
    let actor = Actor::Cli;
    match cmd {
        AppCommand::Create {
            name,
            scopes,
            domains,
            token_ttl,
            jwks_file,
            jwks_uri,
            auth_method,
            no_secret,
            dpop_bound_access_tokens,
            json,
        } => {
            let mut check = FieldCheck::default();
            let scopes: ScopeSet = check
                .scopes("scope", &scope_args(&scopes))
                .into_iter()
                .collect();
            let domains = Allowlist::new(check.domains("domain", &domains));
            check.finish().map_err(refused_fields)?;
            let new = NewApp {
                name,
                scopes,
                domains,
                token_ttl_seconds: token_ttl,
                keys: keys_input(jwks_file.as_deref(), jwks_uri)?,
                auth_method,
                no_secret,
                dpop_bound_access_tokens,
            };
            let (app, secret) = applications::create(&db, &actor, new, max_ttl, now)
                .await
                .map_err(cli_error)?;
            warn_if_open(&app);
            print_app(&app, secret.as_ref(), &ctx, json)
        }
        AppCommand::List { json } => {
            let apps = applications::list(&db).await.map_err(cli_error)?;
            let views: Vec<ApplicationSummary> = apps
                .iter()
                .map(|a| ApplicationSummary::new(a, None, ctx.now, ctx.max_ttl))
                .collect();
            if json {
                return print_json(&views);
            }
            println!(
                "{:<40}  {:<6}  {:<24}  SCOPES / DOMAINS",
                "CLIENT_ID", "ACTIVE", "NAME"
            );
            for v in views {
                println!(
                    "{:<40}  {:<6}  {:<24}  {} / {}",
                    v.client_id,
                    v.is_active,
                    v.name,
                    join_or(&v.scopes, "-"),
                    join_or(&v.domains, "any")
                );
            }
            Ok(())
        }
        AppCommand::Show { client_id, json } => {
            let app = applications::find(&db, &parse_client_id(&client_id)?)
                .await
                .map_err(cli_error)?;
            print_app(&app, None, &ctx, json)
        }
        AppCommand::Update {
            client_id,
            name,
            add_scopes,
            remove_scopes,
            add_domains,
            remove_domains,
            activate,
            deactivate,
            token_ttl,
            default_token_ttl,
            jwks_file,
            jwks_uri,
            remove_keys,
            auth_method,
            dpop_bound_access_tokens,
            json,
        } => {
            let client_id = parse_client_id(&client_id)?;
            let mut check = FieldCheck::default();
            let add_scopes = check.scopes("add-scope", &scope_args(&add_scopes));
            let remove_scopes = check.scopes("remove-scope", &scope_args(&remove_scopes));
            let add_domains = check.domains("add-domain", &add_domains);
            let remove_domains = check.domains("remove-domain", &remove_domains);
            check.finish().map_err(refused_fields)?;
            let changes = Changes {
                name,
                add_scopes,
                remove_scopes,
                add_domains,
                remove_domains,
                active: match (activate, deactivate) {
                    (true, _) => Some(true),
                    (_, true) => Some(false),
                    _ => None,
                },
                token_ttl_seconds: match (token_ttl, default_token_ttl) {
                    (Some(t), _) => Some(Some(t)),
                    (None, true) => Some(None),
                    (None, false) => None,
                },
                keys: match keys_input(jwks_file.as_deref(), jwks_uri)? {
                    Some(keys) => Some(Some(keys)),
                    None if remove_keys => Some(None),
                    None => None,
                },
                auth_method,
                dpop_bound_access_tokens,
                ..Changes::default()
            };
            let app = applications::update(&db, &actor, &client_id, changes, max_ttl, now)
                .await
                .map_err(cli_error)?;
            warn_if_open(&app);
            print_app(&app, None, &ctx, json)
        }
        AppCommand::RotateSecret {
            client_id,
            grace,
            keep_tokens,
            revoke_tokens,
            json,
        } => {
            let client_id = parse_client_id(&client_id)?;
            let rotation = Rotation {
                grace,
                revoke_tokens: match (keep_tokens, revoke_tokens) {
                    (true, _) => Some(false),
                    (_, true) => Some(true),
                    _ => None,
                },
            };
            let (app, secret) = applications::rotate_secret(&db, &actor, &client_id, rotation, now)
                .await
                .map_err(cli_error)?;
            print_app(&app, Some(&secret), &ctx, json)
        }
        AppCommand::Delete { client_id } => {
            let app = applications::delete(&db, &actor, &parse_client_id(&client_id)?, now)
                .await
                .map_err(cli_error)?;
            println!("deleted application {}", app.client_id);
            Ok(())
        }
    }
}
