//! docs/spec/operations.md "Traces": both real binaries export their spans over OTLP/HTTP to a
//! receiver in this test, which decodes them with the official protobuf definitions
//! (`opentelemetry-proto`) and checks the span trees an integrator's calls make, the incoming
//! `traceparent` honoured and carried on to the auth-server, the trace id in the log lines,
//! nothing secret in a span, and that a dead collector costs spans, not requests.

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use poem::listener::{Acceptor, Listener};
use prost::Message;
use serde_json::Value;

use crate::binaries::{Bins, Process, app, bins, free_port, prepare, terminate, token, wait_ready};

/// One exported span, flattened.
#[derive(Debug, Clone)]
struct Exported {
    service: String,
    name: String,
    kind: i32,
    trace_id: String,
    span_id: String,
    parent: String,
    attributes: HashMap<String, String>,
    /// The attribute values of the span's events (its log lines), for the secret check.
    event_values: Vec<String>,
}

const SERVER: i32 = 2;
const CLIENT: i32 = 3;

fn text(value: &Option<opentelemetry_proto::tonic::common::v1::AnyValue>) -> String {
    match value.as_ref().and_then(|v| v.value.as_ref()) {
        Some(AnyValue::StringValue(s)) => s.clone(),
        Some(AnyValue::IntValue(i)) => i.to_string(),
        Some(AnyValue::BoolValue(b)) => b.to_string(),
        Some(AnyValue::DoubleValue(d)) => d.to_string(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

fn attributes(kvs: &[KeyValue]) -> HashMap<String, String> {
    kvs.iter()
        .map(|kv| (kv.key.clone(), text(&kv.value)))
        .collect()
}

fn flatten(requests: &[ExportTraceServiceRequest]) -> Vec<Exported> {
    let mut out = Vec::new();
    for request in requests {
        for rs in &request.resource_spans {
            let resource = rs
                .resource
                .as_ref()
                .map(|r| attributes(&r.attributes))
                .unwrap_or_default();
            let service = resource.get("service.name").cloned().unwrap_or_default();
            for ss in &rs.scope_spans {
                for span in &ss.spans {
                    out.push(Exported {
                        service: service.clone(),
                        name: span.name.clone(),
                        kind: span.kind,
                        trace_id: hex(&span.trace_id),
                        span_id: hex(&span.span_id),
                        parent: hex(&span.parent_span_id),
                        attributes: attributes(&span.attributes),
                        event_values: span
                            .events
                            .iter()
                            .flat_map(|e| e.attributes.iter().map(|kv| text(&kv.value)))
                            .collect(),
                    });
                }
            }
        }
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// An OTLP/HTTP receiver: keeps every export it is sent, answers 200.
struct Receiver {
    url: String,
    got: Arc<Mutex<Vec<ExportTraceServiceRequest>>>,
}

impl Receiver {
    async fn start() -> Self {
        let got: Arc<Mutex<Vec<ExportTraceServiceRequest>>> = Arc::default();
        let kept = Arc::clone(&got);
        let app = poem::Route::new().at(
            "/v1/traces",
            poem::post(poem::endpoint::make(move |req: poem::Request| {
                let kept = Arc::clone(&kept);
                async move {
                    assert_eq!(
                        req.content_type(),
                        Some("application/x-protobuf"),
                        "OTLP/HTTP with protobuf"
                    );
                    let body = req.into_body().into_vec().await.unwrap();
                    let decoded = ExportTraceServiceRequest::decode(body.as_slice()).unwrap();
                    kept.lock().unwrap().push(decoded);
                    poem::Response::builder()
                        .content_type("application/x-protobuf")
                        .body(ExportTraceServiceResponse::default().encode_to_vec())
                }
            })),
        );
        let acceptor = poem::listener::TcpListener::bind("127.0.0.1:0")
            .into_acceptor()
            .await
            .unwrap();
        let port = acceptor.local_addr()[0].as_socket_addr().unwrap().port();
        tokio::spawn(poem::Server::new_with_acceptor(acceptor).run(app));
        Self {
            url: format!("http://127.0.0.1:{port}"),
            got,
        }
    }

    fn spans(&self) -> Vec<Exported> {
        flatten(&self.got.lock().unwrap())
    }

    /// The spans of `trace_id` once `done` holds for them (exports arrive every 100 ms).
    async fn wait_for(&self, trace_id: &str, done: impl Fn(&[Exported]) -> bool) -> Vec<Exported> {
        for _ in 0..200 {
            let of_trace: Vec<Exported> = self
                .spans()
                .into_iter()
                .filter(|s| s.trace_id == trace_id)
                .collect();
            if done(&of_trace) {
                return of_trace;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "trace {trace_id} incomplete; got: {:#?}",
            self.spans()
                .iter()
                .filter(|s| s.trace_id == trace_id)
                .map(|s| (&s.service, &s.name, &s.attributes))
                .collect::<Vec<_>>()
        );
    }
}

fn named<'a>(spans: &'a [Exported], service: &str, name: &str) -> &'a Exported {
    spans
        .iter()
        .find(|s| s.service == service && s.name == name)
        .unwrap_or_else(|| {
            panic!(
                "no {service} span {name:?} in {:?}",
                spans
                    .iter()
                    .map(|s| (&s.service, &s.name))
                    .collect::<Vec<_>>()
            )
        })
}

/// Whether `span` sits under `ancestor` in `spans`.
fn descends(spans: &[Exported], span: &Exported, ancestor: &Exported) -> bool {
    let mut parent = span.parent.clone();
    for _ in 0..32 {
        if parent == ancestor.span_id {
            return true;
        }
        match spans.iter().find(|s| s.span_id == parent) {
            Some(p) => parent = p.parent.clone(),
            None => return false,
        }
    }
    false
}

struct Stack {
    _dir: tempfile::TempDir,
    auth: Process,
    rooms: Process,
    auth_url: String,
    rooms_url: String,
    rooms_log: std::path::PathBuf,
    app: (String, String),
    rs_id: String,
    rs_secret: String,
}

/// Both servers exporting to `collector`; the rooms API verifies tokens by introspection, so a
/// room request calls the auth-server within its trace.
async fn stack(b: &Bins, collector: &str, otel: &[(&str, &str)]) -> Stack {
    let dir = tempfile::tempdir().unwrap();
    let auth_db = format!("sqlite://{}/auth.sqlite?mode=rwc", dir.path().display());
    let rooms_db = format!("sqlite://{}/rooms.sqlite?mode=rwc", dir.path().display());
    prepare(b, &auth_db, "jane@example.com");
    let client = app(b, &auth_db, "A", &["rooms:create", "rooms:retrieve"]);
    let (rs_id, rs_secret) = app(b, &auth_db, "RS", &["tokens:introspect"]);
    let (auth_port, rooms_port) = (free_port(), free_port());
    let auth_url = format!("http://127.0.0.1:{auth_port}");
    let rooms_url = format!("http://127.0.0.1:{rooms_port}");
    let auth_log = dir.path().join("auth.log");
    let rooms_log = dir.path().join("rooms.log");
    let mut auth = Command::new(&b.auth);
    auth.env_clear()
        .env("AUTH_DATABASE_URL", &auth_db)
        .env("AUTH_LISTEN", format!("127.0.0.1:{auth_port}"))
        .env("AUTH_ISSUER", &auth_url)
        .env("AUTH_METRICS_LISTEN", format!("127.0.0.1:{}", free_port()))
        .env("AUTH_ADMIN_LISTEN", "")
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", collector)
        .stderr(Stdio::from(std::fs::File::create(&auth_log).unwrap()));
    let mut rooms = Command::new(&b.rooms);
    rooms
        .env_clear()
        .env("ROOMS_DATABASE_URL", &rooms_db)
        .env("ROOMS_LISTEN", format!("127.0.0.1:{rooms_port}"))
        .env("ROOMS_METRICS_LISTEN", format!("127.0.0.1:{}", free_port()))
        .env("TOKEN_ISSUER", &auth_url)
        .env("AUTH_SERVER_URL", &auth_url)
        .env("TOKEN_VERIFICATION", "introspection")
        .env("INTROSPECTION_CLIENT_ID", &rs_id)
        .env("INTROSPECTION_CLIENT_SECRET", &rs_secret)
        .env("LOG_FORMAT", "json")
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", collector)
        .stderr(Stdio::from(std::fs::File::create(&rooms_log).unwrap()));
    for (k, v) in otel {
        auth.env(k, v);
        rooms.env(k, v);
    }
    let auth = Process(auth.spawn().unwrap());
    let rooms = Process(rooms.spawn().unwrap());
    let http = reqwest::Client::new();
    wait_ready(&http, &auth_url, &auth_log).await;
    wait_ready(&http, &rooms_url, &rooms_log).await;
    Stack {
        _dir: dir,
        auth,
        rooms,
        auth_url,
        rooms_url,
        rooms_log,
        app: client,
        rs_id,
        rs_secret,
    }
}

/// A caller's W3C `traceparent` (sampled): its trace id, its span id, and the header value.
fn traceparent() -> (String, String, String) {
    let mut b = [0u8; 24];
    getrandom::fill(&mut b).unwrap();
    let (trace, span) = (hex(&b[..16]), hex(&b[16..]));
    let header = format!("00-{trace}-{span}-01");
    (trace, span, header)
}

#[tokio::test]
async fn a_token_and_a_room_request_are_one_trace_each_from_the_callers_traceparent() {
    let b = bins();
    let receiver = Receiver::start().await;
    let mut s = stack(&b, &receiver.url, &[("OTEL_BSP_SCHEDULE_DELAY", "100")]).await;
    let http = reqwest::Client::new();
    let (id, secret) = (s.app.0.as_str(), s.app.1.as_str());

    // The token request, as part of the integrator's trace A.
    let (trace_a, caller_a, header_a) = traceparent();
    let token = token(
        &http,
        &s.auth_url,
        (id, secret),
        "jane@example.com",
        &[("traceparent", header_a)],
    )
    .await;
    let spans = receiver
        .wait_for(&trace_a, |spans| {
            ["POST /oauth/token", "argon2 queue", "sign"]
                .iter()
                .all(|n| spans.iter().any(|s| s.name == *n))
        })
        .await;
    let server = named(&spans, "auth-server", "POST /oauth/token");
    assert_eq!(server.kind, SERVER);
    assert_eq!(server.parent, caller_a, "the caller's span is the parent");
    assert_eq!(server.attributes["http.route"], "/oauth/token");
    assert_eq!(server.attributes["http.request.method"], "POST");
    assert_eq!(server.attributes["http.response.status_code"], "200");
    assert_eq!(&server.attributes["client_id"], id);
    let verify = named(&spans, "auth-server", "argon2 verify");
    let queue = named(&spans, "auth-server", "argon2 queue");
    assert_eq!(
        queue.parent, verify.span_id,
        "the queue wait is inside the verification"
    );
    for child in [verify, named(&spans, "auth-server", "sign")] {
        assert!(
            descends(&spans, child, server),
            "{} under the request",
            child.name
        );
    }
    let statements: Vec<&Exported> = spans
        .iter()
        .filter(|s| s.attributes.get("db.system").is_some_and(|d| d == "sqlite"))
        .collect();
    assert!(!statements.is_empty(), "database statements are spans");
    for st in &statements {
        assert!(
            descends(&spans, st, server),
            "{} under the request",
            st.name
        );
        assert!(st.attributes.contains_key("db.operation"));
    }

    // A room request in trace B: the rooms API's span, its introspection call, and the
    // auth-server's answer to that call, one tree.
    let (trace_b, caller_b, header_b) = traceparent();
    let created = http
        .post(format!("{}/external-api/v1.0/rooms", s.rooms_url))
        .bearer_auth(&token)
        .header("traceparent", header_b)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let request_id = created.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let room_id = created.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let spans = receiver
        .wait_for(&trace_b, |spans| {
            [
                "POST /external-api/v1.0/rooms",
                "introspection",
                "POST /oauth/introspect",
            ]
            .iter()
            .all(|n| spans.iter().any(|s| s.name == *n))
                && spans
                    .iter()
                    .any(|s| s.service == "rooms-api" && s.attributes.contains_key("db.operation"))
        })
        .await;
    let room = named(&spans, "rooms-api", "POST /external-api/v1.0/rooms");
    assert_eq!(room.kind, SERVER);
    assert_eq!(room.parent, caller_b);
    assert_eq!(room.attributes["http.route"], "/external-api/v1.0/rooms");
    assert_eq!(room.attributes["http.response.status_code"], "201");
    assert_eq!(&room.attributes["client_id"], id);
    let call = named(&spans, "rooms-api", "introspection");
    assert_eq!(call.kind, CLIENT);
    assert!(descends(&spans, call, room));
    assert_eq!(call.attributes["http.response.status_code"], "200");
    let answered = named(&spans, "auth-server", "POST /oauth/introspect");
    assert_eq!(
        answered.attributes["client_id"], s.rs_id,
        "the introspecting caller is named"
    );
    assert_eq!(
        answered.parent, call.span_id,
        "the auth-server continues the rooms API's trace through traceparent"
    );
    let insert = spans
        .iter()
        .find(|s| {
            s.service == "rooms-api"
                && s.attributes
                    .get("db.operation")
                    .is_some_and(|o| o == "INSERT")
        })
        .expect("the room's INSERT is a span");
    assert!(descends(&spans, insert, room));

    // A room path with an id is named by its template, never the raw path.
    let (trace_c, _, header_c) = traceparent();
    let got = http
        .get(format!("{}/external-api/v1.0/rooms/{room_id}", s.rooms_url))
        .bearer_auth(&token)
        .header("traceparent", header_c)
        .send()
        .await
        .unwrap();
    assert_eq!(got.status(), 200);
    let spans = receiver
        .wait_for(&trace_c, |spans| {
            spans
                .iter()
                .any(|s| s.service == "rooms-api" && s.kind == SERVER)
        })
        .await;
    let get = spans
        .iter()
        .find(|s| s.kind == SERVER && s.service == "rooms-api")
        .unwrap();
    assert_eq!(get.name, "GET /external-api/v1.0/rooms/{id}");
    assert_eq!(
        get.attributes["http.route"],
        "/external-api/v1.0/rooms/{id}"
    );

    assert!(terminate(&mut s.rooms.0).success());
    assert!(terminate(&mut s.auth.0).success());

    // The trace id is in the request's log lines, beside the request id.
    let logs = std::fs::read_to_string(&s.rooms_log).unwrap();
    let access = logs
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|l| l["span"]["request_id"] == request_id.as_str())
        .expect("a log line of the room request");
    assert_eq!(access["span"]["trace_id"], trace_b.as_str(), "{access}");

    // Nothing secret or personal in any span, attribute or event.
    let everything = receiver.spans();
    let signature = token.rsplit('.').next().unwrap();
    for span in &everything {
        for value in span.attributes.values().chain(span.event_values.iter()) {
            for (what, needle) in [
                ("client secret", secret),
                ("resource-server secret", s.rs_secret.as_str()),
                ("token signature", signature),
                ("e-mail", "jane@example.com"),
                ("room id in a path", room_id.as_str()),
            ] {
                if what == "room id in a path" && !value.contains('/') {
                    continue;
                }
                assert!(
                    !value.contains(needle),
                    "{what} in span {}: {value}",
                    span.name
                );
            }
        }
    }
}

fn metric(text: &str, series: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("{series} not in metrics"))
}

#[tokio::test]
async fn a_collector_that_never_answers_costs_spans_not_requests() {
    let b = bins();
    // Accepts connections and never reads or answers: every export hangs until its timeout.
    let dead = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead_url = format!("http://{}", dead.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((conn, _)) = dead.accept().await {
            held.push(conn);
        }
    });
    let metrics_port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let auth_port = free_port();
    let auth_url = format!("http://127.0.0.1:{auth_port}");
    let log = dir.path().join("auth.log");
    let mut auth = Command::new(&b.auth)
        .env_clear()
        .env(
            "AUTH_DATABASE_URL",
            format!("sqlite://{}/auth.sqlite?mode=rwc", dir.path().display()),
        )
        .env("AUTH_LISTEN", format!("127.0.0.1:{auth_port}"))
        .env("AUTH_ISSUER", &auth_url)
        .env("AUTH_METRICS_LISTEN", format!("127.0.0.1:{metrics_port}"))
        .env("AUTH_ADMIN_LISTEN", "")
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &dead_url)
        .env("OTEL_EXPORTER_OTLP_TIMEOUT", "120000")
        .env("OTEL_BSP_MAX_QUEUE_SIZE", "4")
        .env("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "1")
        .env("OTEL_BSP_SCHEDULE_DELAY", "10")
        .stderr(Stdio::from(std::fs::File::create(&log).unwrap()))
        .spawn()
        .map(Process)
        .unwrap();
    // Each request must be answered long before one export could time out (120 s).
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    wait_ready(&http, &auth_url, &log).await;
    for _ in 0..50 {
        let r = http
            .get(format!("{auth_url}/.well-known/oauth-authorization-server"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let text = http
        .get(format!("http://127.0.0.1:{metrics_port}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let dropped = metric(&text, "trace_spans_total{outcome=\"queue_full\"}");
    assert!(
        dropped >= 40,
        "a full queue drops spans and counts them ({dropped}):\n{text}"
    );
    assert_eq!(metric(&text, "trace_spans_total{outcome=\"exported\"}"), 0);
    // SIGTERM still ends the process: the last export is waited for 5 s, not its 120 s.
    let asked = std::time::Instant::now();
    assert!(terminate(&mut auth.0).success());
    assert!(
        asked.elapsed() < Duration::from_secs(60),
        "SIGTERM took {:?}",
        asked.elapsed()
    );
}

#[test]
fn a_setting_that_cannot_be_used_stops_startup_naming_it() {
    let b = bins();
    // `migrate`, in a folder of its own: were the setting accepted, the command would end (0),
    // not serve forever.
    let dir = tempfile::tempdir().unwrap();
    for (bin, name, value) in [
        (&b.auth, "OTEL_TRACES_SAMPLER", "sometimes"),
        (&b.rooms, "OTEL_TRACES_SAMPLER_ARG", "2"),
        (&b.auth, "OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
    ] {
        let out = Command::new(bin)
            .env_clear()
            .env("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
            .env("OTEL_TRACES_SAMPLER", "parentbased_traceidratio")
            .env(name, value)
            .current_dir(dir.path())
            .arg("migrate")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{name}={value}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(name), "{name}: {stderr}");
    }
}
