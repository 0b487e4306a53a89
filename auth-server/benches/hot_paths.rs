//! Micro-benchmarks of the hot paths (run with `cargo bench -p auth-server`):
//! the verified-secret check (cache hit vs argon2), token signing per algorithm, local
//! verification per algorithm, e-mail/domain parsing, and a DPoP proof's checks.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::sync::Arc;

use auth_server::config::Config;
use auth_server::domain::client_secret::{self, Lane, SecretVerifier};
use auth_server::domain::secret_cache::{self, SecretCache};
use criterion::{Criterion, criterion_group, criterion_main};
use secrecy::SecretSlice;
use shared::claims::{Expectations, Issue};
use shared::token::{self, TypPolicy};
use shared::{AccessTokenClaims, Clock, DomainPattern, Email, ScopeSet, SigningAlg, SystemClock};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn secret_check(c: &mut Criterion) {
    let rt = runtime();
    let secret = client_secret::generate().unwrap();
    let phc = client_secret::hash(&secret).unwrap();
    let cache = SecretCache::new(1000, secret_cache::DEFAULT_IDLE).unwrap();
    let key = cache.key("client", &phc, &secret);
    rt.block_on(cache.verify_once(key, async { Ok::<_, ()>(()) }))
        .unwrap();
    let verifier = SecretVerifier::new(2).unwrap();
    let mut g = c.benchmark_group("secret_check");
    g.bench_function("cache_hit_hmac", |b| {
        b.iter(|| {
            let key = cache.key("client", &phc, black_box(&secret));
            assert!(rt.block_on(cache.contains(&key)))
        })
    });
    g.sample_size(20);
    g.bench_function("argon2id_verify", |b| {
        b.iter(|| {
            rt.block_on(verifier.verify(secret.clone(), Some(phc.clone()), Lane::Normal))
                .unwrap()
        })
    });
    g.finish();
}

fn claims() -> AccessTokenClaims {
    AccessTokenClaims::issue(Issue {
        issuer: "http://127.0.0.1:8081",
        audience: "rooms-api",
        user_id: "5af58090-955a-479f-8d2c-2c3b0c1e1d7e",
        client_id: "Jk97JcW7Msn6JMWFHeSmkyGadN3U7qVZwUnb4TSM",
        scopes: ScopeSet::parse("rooms:create rooms:list").unwrap(),
        now: SystemClock.now(),
        ttl_seconds: 3600,
        jti: "19c42c99-872c-4b1d-86c0-55faebfa928d".into(),
        jkt: None,
    })
}

fn signing_and_verification(c: &mut Criterion) {
    let rt = runtime();
    let expect = Expectations {
        issuer: "http://127.0.0.1:8081".into(),
        audience: "rooms-api".into(),
        leeway_seconds: 30,
    };
    for alg in [
        SigningAlg::EdDSA,
        SigningAlg::ES256,
        SigningAlg::RS256,
        SigningAlg::HS256,
    ] {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::with_defaults(format!(
            "sqlite://{}/b.sqlite?mode=rwc",
            dir.path().display()
        ))
        .unwrap();
        config.signing_alg = alg;
        config.hs256_secret = Some(SecretSlice::from(vec![7u8; 48]));
        let state = rt
            .block_on(auth_server::startup::build_state(
                config,
                Arc::new(SystemClock),
            ))
            .unwrap();
        let now = SystemClock.now();
        let claims = claims();
        c.bench_function(&format!("sign/{alg}"), |b| {
            b.iter(|| state.keys.sign(black_box(&claims), now).unwrap())
        });
        let token = state.keys.sign(&claims, now).unwrap();
        let keys = state.keys.snapshot();
        c.bench_function(&format!("verify/{alg}"), |b| {
            b.iter(|| {
                let header = token::decode_header(black_box(&token)).unwrap();
                token::check_typ(&header, TypPolicy::AllowPlainJwt).unwrap();
                let key = keys.find(header.kid.as_deref().unwrap()).unwrap();
                let claims =
                    token::verify_signature(&token, &header, key.alg, key.verifier.as_ref())
                        .unwrap();
                claims.validate(&expect, now).unwrap();
            })
        });
    }
}

fn parsing(c: &mut Criterion) {
    c.bench_function("parse/email", |b| {
        b.iter(|| Email::parse(black_box("Jane.Doe+rooms@Mail.Example.COM")).unwrap())
    });
    c.bench_function("parse/domain_pattern", |b| {
        b.iter(|| DomainPattern::parse(black_box("*.corp.example.co.uk")).unwrap())
    });
}

/// A DPoP proof's checks (`shared::dpop::verify`: parse, key, Ed25519 and ES256 signature,
/// claims, `ath`), what each DPoP request pays on top of its token's verification.
fn dpop_proof(c: &mut Criterion) {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use josekit::jwk::alg::ed::EdCurve;
    use josekit::jws::{ES256, EdDSA, JwsSigner};
    let url = "https://rooms.example/external-api/v1.0/rooms/abc";
    let token = "x".repeat(700);
    let now = SystemClock.now().timestamp();
    let ed = EdDSA.generate_key_pair(EdCurve::Ed25519).unwrap();
    let ec = ES256.generate_key_pair().unwrap();
    let keys: Vec<(&str, Box<dyn JwsSigner>, serde_json::Value)> = vec![
        (
            "EdDSA",
            Box::new(EdDSA.signer_from_der(ed.to_der_private_key()).unwrap()),
            serde_json::Value::Object(ed.to_jwk_public_key().as_ref().clone()),
        ),
        (
            "ES256",
            Box::new(ES256.signer_from_der(ec.to_der_private_key()).unwrap()),
            serde_json::Value::Object(ec.to_jwk_public_key().as_ref().clone()),
        ),
    ];
    for (alg, signer, jwk) in keys {
        let header = serde_json::json!({"typ": "dpop+jwt", "alg": alg, "jwk": jwk});
        let claims = serde_json::json!({"jti": "j", "htm": "GET", "htu": url, "iat": now,
                                        "ath": shared::dpop::token_hash(&token)});
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).unwrap()),
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap())
        );
        let proof = format!(
            "{input}.{}",
            URL_SAFE_NO_PAD.encode(signer.sign(input.as_bytes()).unwrap())
        );
        let request = shared::dpop::Request {
            method: "GET",
            url,
            access_token: Some(&token),
            now,
        };
        c.bench_function(&format!("dpop_verify/{alg}"), |b| {
            b.iter(|| shared::dpop::verify(black_box(&proof), &request).unwrap())
        });
        // The rooms API keeps the verifier built from a client's key (server_kit::dpop_keys).
        let keys = server_kit::dpop_keys::DpopKeys::default();
        c.bench_function(&format!("dpop_verify/{alg}, key kept"), |b| {
            b.iter(|| shared::dpop::verify_with(black_box(&proof), &request, &keys).unwrap())
        });
    }
}

criterion_group!(
    benches,
    secret_check,
    signing_and_verification,
    parsing,
    dpop_proof
);
criterion_main!(benches);
