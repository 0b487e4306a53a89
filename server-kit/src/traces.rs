//! Distributed traces over OTLP/HTTP (protobuf), configured by the standard OpenTelemetry
//! environment variables (docs/spec/operations.md "Traces"). Off unless an endpoint is set, and
//! then free: no layer is installed, so the spans made for traces only (target `otel`, and
//! sea-orm's statement spans) are disabled at their call sites, and nothing is extracted from or
//! injected into headers.
//!
//! When on, spans leave the request path through a bounded queue (`OTEL_BSP_MAX_QUEUE_SIZE`):
//! a span that finds it full is dropped and counted (`trace_spans_total{outcome="queue_full"}`),
//! never waited for, so a slow or dead collector costs requests nothing but the spans. One
//! thread of its own exports the queue, so a collector's timeouts never hold a request's worker.

use std::collections::HashMap;
use std::sync::{LazyLock, OnceLock};
use std::time::Duration;

use clap::Args;
use clap::builder::BoolishValueParser;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{
    Sampler, SdkTracer, SdkTracerProvider, Span, SpanData, SpanExporter, SpanProcessor,
};
use prometheus::IntCounterVec;
use tokio::sync::mpsc;

/// The target of spans made for traces only (argon2, signing, outbound calls): the logs never
/// show them (`telemetry::init`), and with traces off they cost nothing.
pub const TARGET: &str = "otel";

/// The standard OpenTelemetry variables this server reads (the OTel specification's names and
/// defaults). Only OTLP over HTTP with protobuf is spoken.
#[derive(Debug, Clone, Args, Default)]
pub struct TraceSettings {
    /// Base URL of an OTLP/HTTP collector; traces go to `<url>/v1/traces`. Unset (and no
    /// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`): no traces, at no cost.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT")]
    pub otel_exporter_otlp_endpoint: Option<String>,
    /// Full URL traces are posted to (wins over `OTEL_EXPORTER_OTLP_ENDPOINT`).
    #[arg(long, env = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")]
    pub otel_exporter_otlp_traces_endpoint: Option<String>,
    /// Headers sent to the collector, `key=value,key2=value2` (values percent-encoded); may
    /// carry a credential, so it is never logged.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_HEADERS", hide_env_values = true)]
    pub otel_exporter_otlp_headers: Option<String>,
    /// Milliseconds an export may take before it is abandoned (its spans counted as failed).
    #[arg(long, env = "OTEL_EXPORTER_OTLP_TIMEOUT", default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(1..=600_000))]
    pub otel_exporter_otlp_timeout: u64,
    /// Only `http/protobuf` is spoken; anything else is refused at startup.
    #[arg(
        long,
        env = "OTEL_EXPORTER_OTLP_PROTOCOL",
        default_value = "http/protobuf"
    )]
    pub otel_exporter_otlp_protocol: String,
    /// `service.name` of the spans (default: the binary's name).
    #[arg(long, env = "OTEL_SERVICE_NAME")]
    pub otel_service_name: Option<String>,
    /// More resource attributes, `key=value,key2=value2` (e.g. `deployment.environment=prod`).
    #[arg(long, env = "OTEL_RESOURCE_ATTRIBUTES")]
    pub otel_resource_attributes: Option<String>,
    /// always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off or
    /// parentbased_traceidratio: an incoming `traceparent`'s decision is followed by the
    /// `parentbased_` ones.
    #[arg(
        long,
        env = "OTEL_TRACES_SAMPLER",
        default_value = "parentbased_always_on"
    )]
    pub otel_traces_sampler: String,
    /// The ratio of the `traceidratio` samplers, 0 to 1 (default 1).
    #[arg(long, env = "OTEL_TRACES_SAMPLER_ARG")]
    pub otel_traces_sampler_arg: Option<f64>,
    /// Spans waiting for export at most; past it, new spans are dropped and counted.
    #[arg(long, env = "OTEL_BSP_MAX_QUEUE_SIZE", default_value_t = 2048,
          value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub otel_bsp_max_queue_size: u64,
    /// Milliseconds between exports of what the queue holds.
    #[arg(long, env = "OTEL_BSP_SCHEDULE_DELAY", default_value_t = 5_000,
          value_parser = clap::value_parser!(u64).range(1..=600_000))]
    pub otel_bsp_schedule_delay: u64,
    /// Spans in one export at most (an export also starts as soon as this many wait).
    #[arg(long, env = "OTEL_BSP_MAX_EXPORT_BATCH_SIZE", default_value_t = 512,
          value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub otel_bsp_max_export_batch_size: u64,
    /// `true` turns traces off whatever else is set.
    #[arg(long, env = "OTEL_SDK_DISABLED", default_value = "false",
          value_parser = BoolishValueParser::new(), action = clap::ArgAction::Set)]
    pub otel_sdk_disabled: bool,
}

/// A setting that can't be used; startup refuses it (exit 2, naming `setting()`).
#[derive(Debug, thiserror::Error)]
pub enum TraceSettingError {
    #[error("unknown sampler {0:?}")]
    Sampler(String),
    #[error("expected a ratio from 0 to 1, got {0}")]
    Ratio(f64),
    #[error("only http/protobuf is supported, got {0:?}")]
    Protocol(String),
    #[error("expected key=value pairs separated by commas")]
    Pairs(&'static str),
    #[error("{0}")]
    Endpoint(String),
    #[error("the exporter can't start: {0}")]
    Exporter(String),
}

impl TraceSettingError {
    /// The variable to fix.
    pub fn setting(&self) -> &'static str {
        match self {
            Self::Sampler(_) => "OTEL_TRACES_SAMPLER",
            Self::Ratio(_) => "OTEL_TRACES_SAMPLER_ARG",
            Self::Protocol(_) => "OTEL_EXPORTER_OTLP_PROTOCOL",
            Self::Pairs(name) => name,
            Self::Endpoint(_) | Self::Exporter(_) => "OTEL_EXPORTER_OTLP_ENDPOINT",
        }
    }
}

/// What `TraceSettings` resolve to when traces are on.
#[derive(Debug, Clone)]
pub struct Export {
    pub url: String,
    pub headers: HashMap<String, String>,
    pub timeout: Duration,
    pub service_name: String,
    pub resource: Vec<(String, String)>,
    pub sampler: SamplerChoice,
    pub queue: usize,
    pub delay: Duration,
    pub batch: usize,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SamplerChoice {
    AlwaysOn,
    AlwaysOff,
    Ratio(f64),
    ParentBasedOn,
    ParentBasedOff,
    ParentBasedRatio(f64),
}

impl SamplerChoice {
    fn sampler(self) -> Sampler {
        match self {
            Self::AlwaysOn => Sampler::AlwaysOn,
            Self::AlwaysOff => Sampler::AlwaysOff,
            Self::Ratio(r) => Sampler::TraceIdRatioBased(r),
            Self::ParentBasedOn => Sampler::ParentBased(Box::new(Sampler::AlwaysOn)),
            Self::ParentBasedOff => Sampler::ParentBased(Box::new(Sampler::AlwaysOff)),
            Self::ParentBasedRatio(r) => {
                Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(r)))
            }
        }
    }
}

impl TraceSettings {
    /// `None` when traces are off (no endpoint, or `OTEL_SDK_DISABLED`); `default_name` is the
    /// service name when `OTEL_SERVICE_NAME` is unset.
    pub fn resolve(&self, default_name: &str) -> Result<Option<Export>, TraceSettingError> {
        let url = match (
            non_empty(&self.otel_exporter_otlp_traces_endpoint),
            non_empty(&self.otel_exporter_otlp_endpoint),
        ) {
            (Some(full), _) => full.to_owned(),
            (None, Some(base)) => format!("{}/v1/traces", base.trim_end_matches('/')),
            (None, None) => return Ok(None),
        };
        if self.otel_sdk_disabled {
            return Ok(None);
        }
        match reqwest::Url::parse(&url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => {}
            Ok(u) => {
                return Err(TraceSettingError::Endpoint(format!(
                    "{} is not http(s)",
                    u.scheme()
                )));
            }
            Err(e) => return Err(TraceSettingError::Endpoint(e.to_string())),
        }
        if self.otel_exporter_otlp_protocol.trim() != "http/protobuf" {
            return Err(TraceSettingError::Protocol(
                self.otel_exporter_otlp_protocol.clone(),
            ));
        }
        let ratio = match self.otel_traces_sampler_arg {
            None => 1.0,
            Some(r) if (0.0..=1.0).contains(&r) => r,
            Some(r) => return Err(TraceSettingError::Ratio(r)),
        };
        let sampler = match self.otel_traces_sampler.trim() {
            "always_on" => SamplerChoice::AlwaysOn,
            "always_off" => SamplerChoice::AlwaysOff,
            "traceidratio" => SamplerChoice::Ratio(ratio),
            "parentbased_always_on" => SamplerChoice::ParentBasedOn,
            "parentbased_always_off" => SamplerChoice::ParentBasedOff,
            "parentbased_traceidratio" => SamplerChoice::ParentBasedRatio(ratio),
            other => return Err(TraceSettingError::Sampler(other.to_owned())),
        };
        let headers = pairs(
            self.otel_exporter_otlp_headers.as_deref(),
            "OTEL_EXPORTER_OTLP_HEADERS",
        )?
        .into_iter()
        .collect();
        let resource = pairs(
            self.otel_resource_attributes.as_deref(),
            "OTEL_RESOURCE_ATTRIBUTES",
        )?;
        Ok(Some(Export {
            url,
            headers,
            timeout: Duration::from_millis(self.otel_exporter_otlp_timeout),
            service_name: non_empty(&self.otel_service_name)
                .unwrap_or(default_name)
                .to_owned(),
            resource,
            sampler,
            queue: usize::try_from(self.otel_bsp_max_queue_size).unwrap_or(usize::MAX),
            delay: Duration::from_millis(self.otel_bsp_schedule_delay),
            batch: usize::try_from(self.otel_bsp_max_export_batch_size).unwrap_or(usize::MAX),
        }))
    }
}

fn non_empty(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// `key=value,key2=value2`, values percent-decoded (the OTel specification's W3C Baggage form).
fn pairs(
    list: Option<&str>,
    name: &'static str,
) -> Result<Vec<(String, String)>, TraceSettingError> {
    let Some(list) = list else {
        return Ok(Vec::new());
    };
    list.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').ok_or(TraceSettingError::Pairs(name))?;
            let k = k.trim();
            if k.is_empty() {
                return Err(TraceSettingError::Pairs(name));
            }
            let v = percent_encoding::percent_decode_str(v.trim())
                .decode_utf8()
                .map_err(|_| TraceSettingError::Pairs(name))?;
            Ok((k.to_owned(), v.into_owned()))
        })
        .collect()
}

/// Spans by what became of them: `exported`, `queue_full` (dropped: the queue was full),
/// `export_failed` (the collector refused, failed or timed out). One per process, like the
/// exporter; each server's registry shows it (`metrics.rs`).
pub static SPANS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    let counter = IntCounterVec::new(
        prometheus::Opts::new(
            "trace_spans_total",
            "Trace spans by outcome: exported, queue_full (dropped), export_failed",
        ),
        &["outcome"],
    );
    #[allow(clippy::expect_used)] // a static name and label: a programming error, at startup
    let counter = counter.expect("valid metric");
    for outcome in ["exported", "queue_full", "export_failed"] {
        counter.with_label_values(&[outcome]);
    }
    counter
});

/// The longest a shutdown waits for the last export.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(5);

static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

/// Whether this process exports traces (set once, by `telemetry::init`).
pub fn enabled() -> bool {
    PROVIDER.get().is_some()
}

/// Builds the exporter and the provider for `export`, and keeps the provider for `shutdown`.
/// Called once per process, by `telemetry::init`.
pub(crate) fn tracer(export: &Export) -> Result<SdkTracer, TraceSettingError> {
    let mut attributes = vec![KeyValue::new(
        "service.version",
        env!("CARGO_PKG_VERSION").to_owned(),
    )];
    attributes.extend(
        export
            .resource
            .iter()
            .map(|(k, v)| KeyValue::new(k.clone(), v.clone())),
    );
    let resource = Resource::builder_empty()
        .with_attributes(attributes)
        .with_service_name(export.service_name.clone())
        .build();
    let mut exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_http_client(reqwest::Client::new())
        .with_endpoint(export.url.clone())
        .with_headers(export.headers.clone())
        .with_timeout(export.timeout)
        .build()
        .map_err(|e| TraceSettingError::Exporter(e.to_string()))?;
    exporter.set_resource(&resource);
    let processor = BoundedProcessor::start(exporter, export)?;
    let provider = SdkTracerProvider::builder()
        .with_span_processor(processor)
        .with_sampler(export.sampler.sampler())
        .with_resource(resource)
        .build();
    let tracer = provider.tracer("server-kit");
    let _ = PROVIDER.set(provider);
    Ok(tracer)
}

/// Exports what the queue still holds (bounded by the export timeout); called once the server
/// has drained, so the last requests' spans are not lost.
pub fn shutdown() {
    if let Some(provider) = PROVIDER.get() {
        let _ = provider.shutdown();
    }
}

/// Names the calling application on the current span (the request's, when called from a
/// handler): in the request's later log lines, and on its server span when traces are on.
pub fn record_client_id(client_id: &str) {
    tracing::Span::current().record("client_id", client_id);
}

/// The parent an incoming request names in `traceparent`/`tracestate` (W3C Trace Context);
/// `None` with traces off, or with no valid header.
pub(crate) fn incoming_parent(headers: &poem::http::HeaderMap) -> Option<Context> {
    if !enabled() {
        return None;
    }
    let cx = TraceContextPropagator::new().extract(&HeaderRead(headers));
    cx.span().span_context().is_valid().then_some(cx)
}

/// `traceparent` (and `tracestate`) for an outgoing call made within `span`: the callee's spans
/// join the caller's trace. Nothing with traces off.
fn outgoing_headers(span: &tracing::Span) -> Vec<(String, String)> {
    if !enabled() {
        return Vec::new();
    }
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    let mut out = HeaderWrite(Vec::new());
    TraceContextPropagator::new().inject_context(&span.context(), &mut out);
    out.0
}

/// The trace id of `span`, when it has one (traces on).
pub(crate) fn trace_id(span: &tracing::Span) -> Option<String> {
    if !enabled() {
        return None;
    }
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    let cx = span.context();
    let sc = cx.span().span_context().clone();
    sc.is_valid().then(|| sc.trace_id().to_string())
}

/// A span for a call to another service (`otel.kind = client`), for `send`. A macro because a
/// span's name is fixed where it is made.
#[macro_export]
macro_rules! client_span {
    ($name:literal) => {
        ::tracing::info_span!(
            target: $crate::traces::TARGET,
            $name,
            otel.kind = "client",
            http.response.status_code = ::tracing::field::Empty,
            otel.status_code = ::tracing::field::Empty,
        )
    };
}

/// Sends `request` within `span` (`client_span!`), carrying `traceparent` so the callee's spans
/// join this trace, and records the answer's status on the span.
pub async fn send(
    span: tracing::Span,
    request: reqwest::RequestBuilder,
) -> reqwest::Result<reqwest::Response> {
    use tracing::Instrument;
    let request = outgoing_headers(&span)
        .into_iter()
        .fold(request, |r, (k, v)| r.header(k, v));
    let result = request.send().instrument(span.clone()).await;
    match &result {
        Ok(r) => {
            span.record("http.response.status_code", r.status().as_u16());
            if !r.status().is_success() {
                span.record("otel.status_code", "ERROR");
            }
        }
        Err(_) => {
            span.record("otel.status_code", "ERROR");
        }
    }
    result
}

struct HeaderRead<'a>(&'a poem::http::HeaderMap);

impl Extractor for HeaderRead<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

struct HeaderWrite(Vec<(String, String)>);

impl Injector for HeaderWrite {
    fn set(&mut self, key: &str, value: String) {
        self.0.push((key.to_owned(), value));
    }
}

enum Control {
    Flush(std::sync::mpsc::SyncSender<()>),
    Shutdown(std::sync::mpsc::SyncSender<()>),
}

/// The span processor: a bounded queue in front of one exporting thread (the module's doc).
#[derive(Debug)]
struct BoundedProcessor {
    spans: mpsc::Sender<SpanData>,
    control: mpsc::UnboundedSender<Control>,
    /// How long a flush or shutdown waits for the exporting thread at most.
    wait: Duration,
}

impl std::fmt::Debug for Control {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Control")
    }
}

impl BoundedProcessor {
    fn start<E: SpanExporter + 'static>(
        exporter: E,
        export: &Export,
    ) -> Result<Self, TraceSettingError> {
        let (spans, queue) = mpsc::channel(export.queue.max(1));
        let (control, orders) = mpsc::unbounded_channel();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| TraceSettingError::Exporter(e.to_string()))?;
        let worker = Worker {
            exporter,
            batch: export.batch.max(1),
            delay: export.delay,
            timeout: export.timeout,
            failing: false,
        };
        std::thread::Builder::new()
            .name("otlp-export".into())
            .spawn(move || runtime.block_on(worker.run(queue, orders)))
            .map_err(|e| TraceSettingError::Exporter(e.to_string()))?;
        Ok(Self {
            spans,
            control,
            // A shutdown (SIGTERM) waits for the last export this long at most, whatever
            // the export timeout: a dead collector must not hold a rollout.
            wait: export.timeout.min(SHUTDOWN_WAIT),
        })
    }

    fn order(&self, make: fn(std::sync::mpsc::SyncSender<()>) -> Control) -> OTelSdkResult {
        let (reply, done) = std::sync::mpsc::sync_channel(1);
        self.control
            .send(make(reply))
            .map_err(|_| OTelSdkError::AlreadyShutdown)?;
        done.recv_timeout(self.wait)
            .map_err(|_| OTelSdkError::Timeout(self.wait))
    }
}

impl SpanProcessor for BoundedProcessor {
    fn on_start(&self, _span: &mut Span, _cx: &Context) {}

    fn on_end(&self, span: SpanData) {
        if !span.span_context.is_sampled() {
            return;
        }
        if self.spans.try_send(span).is_err() {
            SPANS.with_label_values(&["queue_full"]).inc();
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.order(Control::Flush)
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        self.order(Control::Shutdown)
    }
}

struct Worker<E> {
    exporter: E,
    batch: usize,
    delay: Duration,
    timeout: Duration,
    /// The last export failed: the next failure is not logged again, a success is.
    failing: bool,
}

impl<E: SpanExporter> Worker<E> {
    async fn run(
        mut self,
        mut queue: mpsc::Receiver<SpanData>,
        mut orders: mpsc::UnboundedReceiver<Control>,
    ) {
        let mut waiting = Vec::with_capacity(self.batch);
        let mut tick = tokio::time::interval(self.delay);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                span = queue.recv() => match span {
                    Some(span) => {
                        waiting.push(span);
                        if waiting.len() >= self.batch {
                            self.export(&mut waiting).await;
                        }
                    }
                    None => {
                        // The provider is gone without a shutdown: what waits is still sent.
                        self.export(&mut waiting).await;
                        break;
                    }
                },
                _ = tick.tick() => self.export(&mut waiting).await,
                order = orders.recv() => {
                    while let Ok(span) = queue.try_recv() {
                        waiting.push(span);
                        if waiting.len() >= self.batch {
                            self.export(&mut waiting).await;
                        }
                    }
                    self.export(&mut waiting).await;
                    match order {
                        Some(Control::Flush(done)) => {
                            let _ = done.send(());
                        }
                        Some(Control::Shutdown(done)) => {
                            let _ = self.exporter.shutdown();
                            let _ = done.send(());
                            break;
                        }
                        None => break,
                    }
                }
            }
        }
    }

    async fn export(&mut self, waiting: &mut Vec<SpanData>) {
        if waiting.is_empty() {
            return;
        }
        let spans = std::mem::replace(waiting, Vec::with_capacity(self.batch));
        let n = spans.len() as u64;
        let outcome = tokio::time::timeout(self.timeout, self.exporter.export(spans)).await;
        match outcome {
            Ok(Ok(())) => {
                SPANS.with_label_values(&["exported"]).inc_by(n);
                if std::mem::take(&mut self.failing) {
                    tracing::info!("trace export works again");
                }
            }
            Ok(Err(e)) => self.failed(n, &e.to_string()),
            Err(_) => self.failed(n, "timed out"),
        }
    }

    fn failed(&mut self, n: u64, why: &str) {
        SPANS.with_label_values(&["export_failed"]).inc_by(n);
        if !std::mem::replace(&mut self.failing, true) {
            tracing::warn!(error = %why, "trace export failed; spans are dropped until it works");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> TraceSettings {
        TraceSettings {
            otel_exporter_otlp_timeout: 10_000,
            otel_exporter_otlp_protocol: "http/protobuf".into(),
            otel_traces_sampler: "parentbased_always_on".into(),
            otel_bsp_max_queue_size: 2048,
            otel_bsp_schedule_delay: 5000,
            otel_bsp_max_export_batch_size: 512,
            ..Default::default()
        }
    }

    #[test]
    fn off_without_an_endpoint_or_when_disabled() {
        assert!(settings().resolve("x").unwrap().is_none());
        let s = TraceSettings {
            otel_exporter_otlp_endpoint: Some("http://c:4318".into()),
            otel_sdk_disabled: true,
            ..settings()
        };
        assert!(s.resolve("x").unwrap().is_none());
    }

    #[test]
    fn the_base_endpoint_gets_the_traces_path_and_the_full_one_wins() {
        let s = TraceSettings {
            otel_exporter_otlp_endpoint: Some("http://c:4318/".into()),
            ..settings()
        };
        let e = s.resolve("auth-server").unwrap().unwrap();
        assert_eq!(e.url, "http://c:4318/v1/traces");
        assert_eq!(e.service_name, "auth-server");
        assert_eq!(e.sampler, SamplerChoice::ParentBasedOn);
        let s = TraceSettings {
            otel_exporter_otlp_traces_endpoint: Some("http://t:1/x".into()),
            otel_service_name: Some("rooms-eu".into()),
            ..s
        };
        let e = s.resolve("auth-server").unwrap().unwrap();
        assert_eq!(e.url, "http://t:1/x");
        assert_eq!(e.service_name, "rooms-eu");
    }

    #[test]
    fn samplers_ratios_headers_and_protocols_are_checked() {
        let on = TraceSettings {
            otel_exporter_otlp_endpoint: Some("http://c:4318".into()),
            ..settings()
        };
        let with = |sampler: &str, arg: Option<f64>| {
            TraceSettings {
                otel_traces_sampler: sampler.into(),
                otel_traces_sampler_arg: arg,
                ..on.clone()
            }
            .resolve("x")
            .map(|e| e.map(|e| e.sampler))
        };
        assert_eq!(
            with("parentbased_traceidratio", Some(0.25)).unwrap(),
            Some(SamplerChoice::ParentBasedRatio(0.25))
        );
        assert_eq!(
            with("traceidratio", None).unwrap(),
            Some(SamplerChoice::Ratio(1.0))
        );
        assert_eq!(
            with("always_off", None).unwrap(),
            Some(SamplerChoice::AlwaysOff)
        );
        assert!(matches!(
            with("sometimes", None),
            Err(TraceSettingError::Sampler(_))
        ));
        assert!(matches!(
            with("traceidratio", Some(1.5)),
            Err(TraceSettingError::Ratio(_))
        ));
        let grpc = TraceSettings {
            otel_exporter_otlp_protocol: "grpc".into(),
            ..on.clone()
        };
        assert!(matches!(
            grpc.resolve("x"),
            Err(TraceSettingError::Protocol(_))
        ));
        let headers = TraceSettings {
            otel_exporter_otlp_headers: Some("api-key=a%20b, x-team = rooms".into()),
            otel_resource_attributes: Some("deployment.environment=prod".into()),
            ..on.clone()
        };
        let e = headers.resolve("x").unwrap().unwrap();
        assert_eq!(e.headers["api-key"], "a b");
        assert_eq!(e.headers["x-team"], "rooms");
        assert_eq!(
            e.resource,
            vec![("deployment.environment".into(), "prod".into())]
        );
        let bad = TraceSettings {
            otel_exporter_otlp_headers: Some("novalue".into()),
            ..on.clone()
        };
        assert!(matches!(bad.resolve("x"), Err(TraceSettingError::Pairs(_))));
        let ftp = TraceSettings {
            otel_exporter_otlp_endpoint: Some("ftp://c".into()),
            ..on
        };
        assert!(matches!(
            ftp.resolve("x"),
            Err(TraceSettingError::Endpoint(_))
        ));
    }
}

#[cfg(test)]
mod processor_tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// An exporter that keeps what it is given, or hangs forever when `hang`.
    #[derive(Debug, Clone, Default)]
    struct Keep {
        got: Arc<Mutex<Vec<SpanData>>>,
        hang: bool,
    }

    impl SpanExporter for Keep {
        async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
            if self.hang {
                std::future::pending::<()>().await;
            }
            self.got.lock().unwrap().extend(batch);
            Ok(())
        }
    }

    fn export(queue: usize) -> Export {
        Export {
            url: String::new(),
            headers: HashMap::new(),
            timeout: Duration::from_secs(600),
            service_name: "t".into(),
            resource: Vec::new(),
            sampler: SamplerChoice::AlwaysOn,
            queue,
            delay: Duration::from_millis(10),
            batch: 1,
        }
    }

    #[test]
    fn a_flush_returns_once_every_finished_span_is_exported() {
        use opentelemetry::trace::{Span as _, Tracer as _};
        let keep = Keep::default();
        let mut slow = export(64);
        // Without the flush's order, nothing would be exported for a minute.
        slow.delay = Duration::from_secs(60);
        slow.batch = 1000;
        let provider = SdkTracerProvider::builder()
            .with_span_processor(BoundedProcessor::start(keep.clone(), &slow).unwrap())
            .build();
        let tracer = provider.tracer("t");
        for name in ["a", "b", "c"] {
            tracer.start(name).end();
        }
        provider.force_flush().unwrap();
        let names: Vec<String> = keep
            .got
            .lock()
            .unwrap()
            .iter()
            .map(|s| s.name.to_string())
            .collect();
        assert_eq!(names, ["a", "b", "c"]);
    }

    #[test]
    fn a_full_queue_drops_and_counts_without_waiting() {
        use opentelemetry::trace::{Span as _, Tracer as _};
        let hang = Keep {
            hang: true,
            ..Keep::default()
        };
        let provider = SdkTracerProvider::builder()
            .with_span_processor(BoundedProcessor::start(hang, &export(4)).unwrap())
            .build();
        let tracer = provider.tracer("t");
        let before = SPANS.with_label_values(&["queue_full"]).get();
        // One span in the hanging export, four queued: the rest are dropped, and counted.
        for _ in 0..20 {
            tracer.start("s").end();
            std::thread::sleep(Duration::from_millis(2));
        }
        let dropped = SPANS.with_label_values(&["queue_full"]).get() - before;
        assert!((15..=16).contains(&dropped), "{dropped}");
    }
}
