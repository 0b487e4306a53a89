//! docs/spec/security.md "Client authentication": failure limits, bounded argon2, the verified-secret
//! cache, and equal treatment of unknown and known client_ids.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::helpers::{TestApp, TestClient, assert_error, spawn_app_with};

async fn token_from(
    app: &TestApp,
    c: &TestClient,
    secret: &str,
    source: &str,
) -> reqwest::Response {
    app.client
        .post(app.url("/oauth/token"))
        .basic_auth(&c.client_id, Some(secret))
        .header("x-forwarded-for", source)
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", "jane@example.com"),
        ])
        .send()
        .await
        .unwrap()
}

fn trusting_loopback(c: &mut auth_server::config::Config) {
    c.trusted_proxies = auth_server::domain::source::TrustedProxies::parse("127.0.0.1").unwrap();
    c.failure_limit = 3;
}

/// Loopback trusted, and a failure limit no test of cost or counting reaches.
fn trusting_loopback_unlimited(c: &mut auth_server::config::Config) {
    trusting_loopback(c);
    c.failure_limit = 10_000;
}

/// A client_id no application has.
fn unknown_client() -> TestClient {
    TestClient {
        client_id: "U".repeat(40),
        secret: "x".into(),
    }
}

#[tokio::test]
async fn failures_are_limited_per_source_with_429_and_retry_after() {
    let app = spawn_app_with(trusting_loopback).await;
    let c = app.create_client("rooms:list", &[]).await;
    for _ in 0..3 {
        assert_error(
            token_from(&app, &c, "wrong", "198.51.100.7").await,
            401,
            "invalid_client",
        )
        .await;
    }
    let r = token_from(&app, &c, "wrong", "198.51.100.7").await;
    assert_eq!(r.headers()["retry-after"], "60");
    assert_error(r, 429, "temporarily_unavailable").await;
    // The right secret still gets its token from that source (verified on the reserved lane).
    app.create_user("jane@example.com").await;
    assert_eq!(
        token_from(&app, &c, &c.secret, "198.51.100.7")
            .await
            .status(),
        200
    );
    // Another source is unaffected.
    assert_eq!(
        token_from(&app, &c, &c.secret, "198.51.100.8")
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn unknown_client_ids_are_limited_exactly_like_known_ones() {
    let app = spawn_app_with(trusting_loopback).await;
    let ghost = TestClient {
        client_id: "G".repeat(40),
        secret: "x".into(),
    };
    let real = app.create_client("rooms:list", &[]).await;
    let mut bodies = Vec::new();
    for c in [&ghost, &real] {
        for _ in 0..3 {
            token_from(&app, c, "wrong", "203.0.113.1").await;
        }
        let r = token_from(&app, c, "wrong", "203.0.113.1").await;
        bodies.push(assert_error(r, 429, "temporarily_unavailable").await);
    }
    assert_eq!(bodies[0], bodies[1]);
}

#[tokio::test]
async fn an_attacker_guessing_secrets_cannot_lock_out_the_real_client() {
    let app = spawn_app_with(trusting_loopback).await;
    let c = app.create_client("rooms:list", &[]).await;
    app.create_user("jane@example.com").await;
    // The integrator authenticates once: its secret is now in the verified-secret cache.
    assert_eq!(
        token_from(&app, &c, &c.secret, "192.0.2.10").await.status(),
        200
    );
    // The attacker exceeds both the per-source limit and the per-client ceiling (30).
    for i in 0..40u8 {
        token_from(&app, &c, "guess", &format!("198.51.100.{i}")).await;
    }
    assert_eq!(
        token_from(&app, &c, "guess", "198.51.100.200")
            .await
            .status(),
        429,
        "ceiling reached"
    );
    // The real client, from its usual address and from the attacker's, is never refused.
    for source in ["192.0.2.10", "198.51.100.1"] {
        assert_eq!(
            token_from(&app, &c, &c.secret, source).await.status(),
            200,
            "{source}"
        );
    }
}

#[tokio::test]
async fn x_forwarded_for_is_ignored_without_trusted_proxies() {
    let app = spawn_app_with(|c| c.failure_limit = 2).await;
    let c = app.create_client("rooms:list", &[]).await;
    for i in 0..2u8 {
        token_from(&app, &c, "wrong", &format!("10.0.0.{i}")).await;
    }
    // Every request came from 127.0.0.1 whatever the header said.
    assert_eq!(
        token_from(&app, &c, "wrong", "10.0.0.99").await.status(),
        429
    );
}

#[tokio::test]
async fn a_flood_of_wrong_secrets_is_bounded_and_never_stalls_cached_clients() {
    let app = spawn_app_with(|c| {
        c.argon2_max_concurrent = 1;
        c.failure_limit = 10_000;
        // Two in-flight places for 250 flood requests: a request waiting for argon2 must hold
        // none (server_kit::in_flight::released), or the cached client queues behind them.
        c.timeouts.max_in_flight = 2;
    })
    .await;
    let good = app.create_client("rooms:list", &[]).await;
    let victim = app.create_client("rooms:list", &[]).await;
    app.create_user("jane@example.com").await;
    assert_eq!(
        app.token_basic(&good, "jane@example.com").await.status(),
        200
    );
    let hits = || {
        app.state
            .metrics
            .secret_cache
            .with_label_values(&["hit"])
            .get()
    };
    let hits_before = hits();
    // Distinct guesses: identical ones would share one verification.
    let guesses: Vec<String> = (0..250).map(|i| format!("wrong-{i}")).collect();
    let flood = futures::future::join_all(
        guesses
            .iter()
            .map(|g| token_from(&app, &victim, g, "1.1.1.1")),
    );
    let started = Instant::now();
    let flood = async {
        let answers = flood.await;
        (answers, started.elapsed())
    };
    let legit = async {
        // Let the flood fill the argon2 queue first.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let mut statuses = Vec::new();
        let mut slowest = Duration::ZERO;
        for _ in 0..20 {
            let t = Instant::now();
            statuses.push(
                app.token_basic(&good, "jane@example.com")
                    .await
                    .status()
                    .as_u16(),
            );
            let jwks = app
                .client
                .get(app.url("/.well-known/jwks.json"))
                .send()
                .await
                .unwrap();
            statuses.push(jwks.status().as_u16());
            slowest = slowest.max(t.elapsed());
        }
        (statuses, slowest, started.elapsed())
    };
    let ((flooded, flood_took), (legit, slowest, legit_took)) = tokio::join!(flood, legit);
    assert!(legit.iter().all(|s| *s == 200), "{legit:?}");
    // Not stalled: every one of the cached client's requests was a verified-secret cache hit
    // (none entered the argon2 queue, where 250 guesses were ahead of it), all were answered
    // 200, and all while the flood lasted. A request queued behind the flood would have waited
    // until the queue's ARGON2_WAIT refused it (503).
    assert_eq!(
        hits() - hits_before,
        20,
        "each cached request skipped argon2"
    );
    assert!(
        legit_took < flood_took,
        "the cached client was served while the flood lasted ({legit_took:?} vs {flood_took:?})"
    );
    // And a sanity bound on its latency, twice the queue's wait: generous for a debug build on
    // a busy machine (not a speed figure); the proof it never queued is the hit count above.
    assert!(
        slowest < auth_server::domain::client_secret::ARGON2_WAIT * 2,
        "a cached client's request took {slowest:?} during the flood: it waited like the flood"
    );
    let mut busy = 0;
    for r in flooded {
        match r.status().as_u16() {
            401 => {}
            503 => {
                busy += 1;
                assert!(r.headers().contains_key("retry-after"));
                assert_eq!(
                    r.json::<Value>().await.unwrap()["error"],
                    "temporarily_unavailable"
                );
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert!(
        busy > 0,
        "with one argon2 slot and 250 waiting requests some wait longer than 2 s"
    );
}

/// Medians of interleaved samples, so that load from other tests hits every kind alike.
async fn interleaved_medians(app: &TestApp, clients: &[&TestClient], rounds: usize) -> Vec<f64> {
    let mut samples = vec![Vec::with_capacity(rounds); clients.len()];
    for round in 0..rounds {
        for (i, c) in clients.iter().enumerate() {
            let t = Instant::now();
            // A new guess each round: a repeated one is answered without argon2 (the next test).
            let r = token_from(
                app,
                c,
                &format!("wrong-{round}"),
                &format!("100.64.{i}.{round}"),
            )
            .await;
            assert_eq!(r.status(), 401);
            samples[i].push(t.elapsed().as_secs_f64() * 1000.0);
        }
    }
    samples
        .into_iter()
        .map(|mut v| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        })
        .collect()
}

#[tokio::test]
async fn unknown_and_known_client_ids_take_the_same_time_statistically() {
    let app = spawn_app_with(trusting_loopback_unlimited).await;
    let known = app.create_client("rooms:list", &[]).await;
    let unknown = unknown_client();
    let malformed = TestClient {
        client_id: "short".into(),
        secret: "x".into(),
    };
    let medians = interleaved_medians(&app, &[&known, &unknown, &malformed], 21).await;
    // All pay one argon2 verification (~18 ms); without the dummy an unknown id would answer in
    // well under a millisecond (a ratio near 0.02). A wide band keeps this robust under load.
    for (name, v) in [("unknown", medians[1]), ("malformed", medians[2])] {
        let ratio = v / medians[0];
        assert!(
            (0.33..3.0).contains(&ratio),
            "{name}: median {v:.1} ms vs known {:.1} ms",
            medians[0]
        );
    }
}

/// Refused client authentications so far, by reason.
fn failures(app: &TestApp, reason: &str) -> u64 {
    app.state
        .metrics
        .auth_failures
        .with_label_values(&[reason])
        .get()
}

/// argon2 verifications run so far, by lane.
fn verifications(app: &TestApp, lane: &str) -> u64 {
    app.state
        .metrics
        .argon2_verifications
        .with_label_values(&[lane])
        .get()
}

/// A client retrying a refused secret (a stale one after a rotation, in a loop) costs one argon2
/// verification, known client or unknown id alike; every retry is still a 401 and a failure the
/// limits count, another guess is verified, and the correct secret is never held back.
#[tokio::test]
async fn a_refused_secret_sent_again_is_refused_without_another_verification() {
    let app = spawn_app_with(trusting_loopback_unlimited).await;
    let c = app.create_client("rooms:list", &[]).await;
    app.create_user("jane@example.com").await;
    let unknown = unknown_client();
    for (client, reason) in [(&c, "wrong_secret"), (&unknown, "unknown_client")] {
        let (runs, failed) = (verifications(&app, "normal"), failures(&app, reason));
        for i in 0..5 {
            let r = token_from(&app, client, "stale", &format!("192.0.2.{i}")).await;
            assert_error(r, 401, "invalid_client").await;
        }
        assert_eq!(
            verifications(&app, "normal") - runs,
            1,
            "{reason}: one verification"
        );
        assert_eq!(
            failures(&app, reason) - failed,
            5,
            "{reason}: every retry is a failure"
        );
    }
    let runs = verifications(&app, "normal");
    assert_eq!(
        token_from(&app, &c, "another", "192.0.2.9").await.status(),
        401
    );
    assert_eq!(
        verifications(&app, "normal") - runs,
        1,
        "another guess is verified"
    );
    assert_eq!(
        app.state
            .metrics
            .secret_cache
            .with_label_values(&["refused"])
            .get(),
        8
    );
    assert_eq!(
        token_from(&app, &c, &c.secret, "192.0.2.1").await.status(),
        200
    );
}

/// A secret stored with an earlier release's argon2 parameters (m = 19 MiB, t = 2) still
/// authenticates, and after a correct use its hash is made again with the current ones (7 MiB,
/// t = 5): existing deployments get the smaller verification without rotating anything. A wrong
/// secret never rehashes, and the secret itself stays the same.
#[tokio::test]
async fn a_secret_hashed_with_earlier_parameters_is_rehashed_after_a_correct_use() {
    use argon2::PasswordHasher;
    let app = spawn_app_with(trusting_loopback).await;
    let c = app.create_client("rooms:list", &[]).await;
    app.create_user("jane@example.com").await;
    let mut stored = app.find_client(&c).await;
    stored.secret_hash = argon2::Argon2::new(
        argon2::Algorithm::Argon2id,
        argon2::Version::V0x13,
        argon2::Params::new(19_456, 2, 1, None).unwrap(),
    )
    .hash_password(c.secret.as_bytes())
    .unwrap()
    .to_string();
    auth_server::store::applications::save(&app.state.db, &stored)
        .await
        .unwrap();
    let earlier = stored.secret_hash.clone();
    assert_eq!(
        token_from(&app, &c, "wrong", "192.0.2.1").await.status(),
        401
    );
    assert_eq!(app.token_basic(&c, "jane@example.com").await.status(), 200);
    let deadline = Instant::now() + Duration::from_secs(10);
    let upgraded = loop {
        let now = app.find_client(&c).await;
        if now.secret_hash != earlier || Instant::now() > deadline {
            break now;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(
        upgraded
            .secret_hash
            .starts_with("$argon2id$v=19$m=7168,t=5,p=1$"),
        "{}",
        upgraded.secret_hash
    );
    assert_eq!(
        upgraded.updated_at, stored.updated_at,
        "nothing an operator sees"
    );
    let runs = verifications(&app, "normal");
    assert_eq!(app.token_basic(&c, "jane@example.com").await.status(), 200);
    assert_eq!(
        verifications(&app, "normal") - runs,
        1,
        "the new hash is verified once, then cached"
    );
    assert_eq!(
        token_from(&app, &c, "wrong", "192.0.2.2").await.status(),
        401
    );
}

#[tokio::test]
async fn a_fresh_process_lets_the_correct_secret_through_while_guesses_are_refused() {
    let app = spawn_app_with(trusting_loopback).await;
    let c = app.create_client("rooms:list", &[]).await;
    app.create_user("jane@example.com").await;
    // Never authenticated on this process: nothing is cached. The attacker fills the per-client
    // ceiling (30) from ten addresses and the per-source limit at the client's own address.
    for i in 0..40u8 {
        token_from(
            &app,
            &c,
            &format!("guess-{i}"),
            &format!("198.51.100.{}", i % 10),
        )
        .await;
    }
    for i in 0..3 {
        token_from(&app, &c, &format!("again-{i}"), "192.0.2.10").await;
    }
    assert_eq!(
        token_from(&app, &c, "guess", "192.0.2.10").await.status(),
        429,
        "guesses are refused"
    );
    for source in ["192.0.2.10", "198.51.100.1", "192.0.2.99"] {
        assert_eq!(
            token_from(&app, &c, &c.secret, source).await.status(),
            200,
            "{source}"
        );
    }
    assert_eq!(
        token_from(&app, &c, "guess-again", "198.51.100.3")
            .await
            .status(),
        429,
        "the client's success does not reopen the door for guesses"
    );
}

#[tokio::test]
async fn the_correct_secret_gets_through_during_concurrent_guesses_from_its_own_source() {
    // One address for everyone (a load balancer that is not a trusted proxy).
    let app = spawn_app_with(|c| c.failure_limit = 3).await;
    let c = app.create_client("rooms:list", &[]).await;
    app.create_user("jane@example.com").await;
    let stop = std::sync::atomic::AtomicBool::new(false);
    let attacker = async {
        let mut refused = 0;
        // Four guessers in flight at once: fewer than the reserved lane admits per source
        // (client_secret.rs), so the client's attempt always finds a place in the queue.
        let workers = (0..4).map(|w| {
            let stop = &stop;
            let app = &app;
            let c = &c;
            async move {
                let mut n = 0u32;
                let mut refused = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) && n < 400 {
                    let r = token_from(app, c, &format!("guess-{w}-{n}"), "x").await;
                    refused += u32::from(r.status() == 429);
                    n += 1;
                }
                refused
            }
        });
        for r in futures::future::join_all(workers).await {
            refused += r;
        }
        refused
    };
    let client = async {
        // Let the guesses pass the limit first.
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let mut statuses = Vec::new();
        for _ in 0..5 {
            statuses.push(
                app.token_basic(&c, "jane@example.com")
                    .await
                    .status()
                    .as_u16(),
            );
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        statuses
    };
    let (refused, statuses) = tokio::join!(attacker, client);
    assert!(refused > 0, "the guesses were being refused");
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
}

#[tokio::test]
async fn an_active_client_keeps_its_verified_secret_past_the_idle_time() {
    let app = spawn_app_with(|c| {
        trusting_loopback(c);
        c.secret_cache_idle = std::time::Duration::from_secs(1);
    })
    .await;
    let c = app.create_client("rooms:list", &[]).await;
    app.create_user("jane@example.com").await;
    // Active for 3 s, three times the idle time, while guesses hold every limit.
    for i in 0..40u8 {
        token_from(&app, &c, &format!("guess-{i}"), &format!("198.51.100.{i}")).await;
    }
    let before = verifications(&app, "reserved");
    for _ in 0..10 {
        assert_eq!(
            token_from(&app, &c, &c.secret, "192.0.2.10").await.status(),
            200
        );
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
    assert_eq!(
        verifications(&app, "reserved") - before,
        1,
        "one verification, then hits that keep the entry alive"
    );
}

#[tokio::test]
async fn a_busy_client_across_its_entrys_expiry_pays_one_verification() {
    let app = spawn_app_with(|c| {
        c.argon2_max_concurrent = 1;
        c.secret_cache_idle = std::time::Duration::from_secs(1);
    })
    .await;
    let c = app.create_client("rooms:list", &[]).await;
    app.create_user("jane@example.com").await;
    let burst = || async {
        let all =
            futures::future::join_all((0..32).map(|_| app.token_basic(&c, "jane@example.com")))
                .await;
        all.iter().map(|r| r.status().as_u16()).collect::<Vec<_>>()
    };
    // 32 at once on a cold cache, then again after the entry has lapsed.
    let first = burst().await;
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    let second = burst().await;
    for statuses in [first, second] {
        assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    }
    assert_eq!(verifications(&app, "normal"), 2, "one per cold start");
}

#[tokio::test]
async fn concurrent_guesses_are_counted_before_the_work() {
    let app = spawn_app_with(|c| c.failure_limit = 10).await;
    let c = app.create_client("rooms:list", &[]).await;
    let guesses: Vec<String> = (0..16).map(|i| format!("guess-{i}")).collect();
    let all = futures::future::join_all(guesses.iter().map(|g| token_from(&app, &c, g, "x"))).await;
    let unauthorized = all.iter().filter(|r| r.status() == 401).count();
    let limited = all.iter().filter(|r| r.status() == 429).count();
    assert_eq!((unauthorized, limited), (10, 6));
    assert_eq!(verifications(&app, "normal"), 10);
}

#[tokio::test]
async fn one_source_spraying_client_ids_meets_its_own_ceiling() {
    let app = spawn_app_with(trusting_loopback).await;
    let mut statuses = Vec::new();
    for i in 0..40 {
        let ghost = TestClient {
            client_id: format!("{i:0>40}"),
            secret: "x".into(),
        };
        statuses.push(
            token_from(&app, &ghost, "x", "203.0.113.77")
                .await
                .status()
                .as_u16(),
        );
    }
    // Limit 3 per pair, 30 per source: the 31st id from that address is refused.
    assert!(statuses[..30].iter().all(|s| *s == 401), "{statuses:?}");
    assert!(statuses[30..].iter().all(|s| *s == 429), "{statuses:?}");
    assert_eq!(verifications(&app, "normal"), 30);
    // Another address is unaffected.
    let ghost = TestClient {
        client_id: "Z".repeat(40),
        secret: "x".into(),
    };
    assert_eq!(
        token_from(&app, &ghost, "x", "203.0.113.78").await.status(),
        401
    );
}

#[tokio::test]
async fn every_x_forwarded_for_line_counts() {
    let app = spawn_app_with(trusting_loopback).await;
    let c = app.create_client("rooms:list", &[]).await;
    // The client writes its own first line; the trusted proxy appends the real address on a
    // line of its own. The source is the proxy's word, whatever the first line says.
    let mut last = 0;
    for i in 0..4u8 {
        let r = app
            .client
            .post(app.url("/oauth/token"))
            .basic_auth(&c.client_id, Some("wrong"))
            .header("x-forwarded-for", format!("10.66.0.{i}"))
            .header("x-forwarded-for", "198.51.100.50")
            .form(&[
                ("grant_type", "client_credentials"),
                ("scope", "jane@example.com"),
            ])
            .send()
            .await
            .unwrap();
        last = r.status().as_u16();
    }
    assert_eq!(last, 429, "four failures from one source, limit 3");
}

#[tokio::test]
async fn a_json_token_request_that_names_a_key_twice_is_refused() {
    let app = spawn_app_with(|_| {}).await;
    let c = app.create_client("rooms:list", &["example.com"]).await;
    app.create_user("a@example.com").await;
    app.create_user("b@example.com").await;
    let body = format!(
        r#"{{"grant_type":"client_credentials","client_id":"{}","client_secret":"{}","scope":"a@example.com","scope":"b@example.com"}}"#,
        c.client_id, c.secret
    );
    for path in ["/oauth/token", "/external-api/v1.0/application/token"] {
        let r = app
            .client
            .post(app.url(path))
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.headers()["cache-control"], "no-store");
        assert_error(r, 400, "invalid_request").await;
    }
    let r = app
        .client
        .get(app.url("/oauth/revocations?cursor=a&cursor=b"))
        .basic_auth(&c.client_id, Some(&c.secret))
        .send()
        .await
        .unwrap();
    assert_error(r, 400, "invalid_request").await;
}

#[tokio::test]
async fn an_oversized_token_request_is_not_cacheable_and_pages_cannot_be_framed() {
    let app = spawn_app_with(|_| {}).await;
    let r = app
        .client
        .post(app.url("/oauth/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("scope={}", "a".repeat(100_000)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["cache-control"], "no-store");
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    assert_error(r, 413, "invalid_request").await;
    let r = app.client.get(app.url("/docs")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-frame-options"], "DENY");
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
}

/// docs/spec/security.md "Client authentication": on PostgreSQL the failure limits are the
/// fleet's, not each replica's. Two servers on one database; wrong guesses alternate between
/// them and meet one limit. (A SQLite database belongs to one process: nothing to share.)
#[tokio::test]
async fn failure_limits_are_shared_by_replicas_on_postgres() {
    // Replicas of one fleet share the key-encryption key (they read the same signing keys).
    fn replica(c: &mut auth_server::config::Config) {
        trusting_loopback(c);
        c.key_encryption_key = Some(secrecy::SecretSlice::from(vec![7u8; 32]));
    }
    // SQLite is one process with in-memory counters: the shared limit needs PostgreSQL.
    server_kit::testing::require_backend("postgres");
    let a = spawn_app_with(replica).await;
    let b = crate::helpers::spawn_on(
        a.database_url.clone(),
        tempfile::tempdir().unwrap(),
        replica,
    )
    .await;
    assert!(a.state.clients.limits.is_shared() && b.state.clients.limits.is_shared());
    let c = a.create_client("rooms:list", &[]).await;
    a.create_user("jane@example.com").await;
    let source = "198.51.100.40";
    // Limit 3: the three wrong guesses spread over both replicas use up the one limit...
    for replica in [&a, &b, &a] {
        assert_error(
            token_from(replica, &c, "wrong", source).await,
            401,
            "invalid_client",
        )
        .await;
    }
    // ...so the fourth is refused on either replica, with the shared window's Retry-After.
    for replica in [&b, &a] {
        let r = token_from(replica, &c, "wrong", source).await;
        // Seconds left in the window the first guess opened (each test server has its own
        // clock, started a moment apart).
        let after: u64 = r.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((55..=60).contains(&after), "{after}");
        assert_error(r, 429, "temporarily_unavailable").await;
    }
    // The right secret is never refused, on either replica, from the limited source.
    for replica in [&a, &b] {
        assert_eq!(
            token_from(replica, &c, &c.secret, source).await.status(),
            200
        );
    }
    // The per-client ceiling (10 × 3) is the fleet's too: guesses from many sources, half on
    // each replica, then one more from a fresh source is over it.
    for i in 0..30u8 {
        let replica = if i % 2 == 0 { &a } else { &b };
        let r = token_from(replica, &c, "wrong", &format!("203.0.113.{i}")).await;
        assert!(matches!(r.status().as_u16(), 401 | 429), "{}", r.status());
    }
    let r = token_from(&b, &c, "wrong", "192.0.2.200").await;
    assert_error(r, 429, "temporarily_unavailable").await;
    // The counters are rows every replica reads: three keys per attempt, windows not ended.
    let rows = b.state.db.clone();
    let counted = auth_server::store::failure_counters::count(
        &rows,
        &[
            format!("p:{source}|{}", c.client_id),
            format!("c:{}", c.client_id),
            format!("s:{source}"),
        ],
        shared::Clock::now(&*b.clock),
        shared::Clock::now(&*b.clock) + chrono::Duration::seconds(60),
    )
    .await
    .unwrap();
    assert!(counted[0].count >= 6, "{counted:?}");
}

/// The shared counters lock their three rows in one order and give counts back in that order:
/// 64 concurrent attempts over overlapping keys (4 client_ids × 4 sources), failing or giving
/// back at random, never deadlock (PostgreSQL would abort one with 40P01: an error here).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_attempts_on_shared_keys_never_deadlock_on_postgres() {
    server_kit::testing::require_backend("postgres");
    use auth_server::domain::failure_limits::FailureLimits;
    let app = crate::helpers::spawn_app().await;
    let limits = std::sync::Arc::new(FailureLimits::for_database(
        &app.state.db,
        1_000_000,
        Duration::from_secs(60),
    ));
    assert!(limits.is_shared());
    let mut tasks = Vec::new();
    for t in 0..64u32 {
        let limits = limits.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..20u32 {
                let n = t.wrapping_mul(31).wrapping_add(i.wrapping_mul(7));
                let client = format!("client-{}", n % 4);
                let source = std::net::IpAddr::from([10, 0, 0, (n / 4 % 4) as u8]);
                let attempt = limits.begin(&client, source, chrono::Utc::now()).await?;
                if n % 3 == 0 {
                    attempt.failed();
                } // else dropped: its count given back
            }
            Ok::<(), auth_server::store::StoreError>(())
        }));
    }
    for t in tasks {
        t.await
            .unwrap()
            .expect("no attempt failed (a deadlock is an error)");
    }
}

/// Two credentials on one request: which one a proxy and this server would each read is anyone's
/// guess, so the token endpoint, the revocation feed and the admin API refuse the request (400)
/// rather than take the first.
#[tokio::test]
async fn two_authorization_headers_are_refused() {
    let app = spawn_app_with(|_| {}).await;
    let c = app.create_client("rooms:list", &["example.com"]).await;
    let feed = app.create_client("tokens:revocations", &[]).await;
    let (_, admin_key) = app.admin_key("ops").await;
    let basic = |client: &TestClient| {
        use base64::Engine;
        let pair = format!("{}:{}", client.client_id, client.secret);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(pair)
        )
    };
    let twice = |value: String| {
        let mut h = reqwest::header::HeaderMap::new();
        let v = reqwest::header::HeaderValue::from_str(&value).unwrap();
        h.append(reqwest::header::AUTHORIZATION, v.clone());
        h.append(reqwest::header::AUTHORIZATION, v);
        h
    };
    let r = app
        .client
        .post(app.url("/oauth/token"))
        .headers(twice(basic(&c)))
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", "a@example.com"),
        ])
        .send()
        .await
        .unwrap();
    assert_error(r, 400, "invalid_request").await;
    let r = app
        .client
        .get(app.url("/oauth/revocations"))
        .headers(twice(basic(&feed)))
        .send()
        .await
        .unwrap();
    assert_error(r, 400, "invalid_request").await;
    let r = app
        .client
        .get(app.admin_url("/admin/v1/applications"))
        .headers(twice(format!("Bearer {admin_key}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // One header is fine.
    assert_eq!(
        app.client
            .get(app.url("/oauth/revocations"))
            .header("authorization", basic(&feed))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}
