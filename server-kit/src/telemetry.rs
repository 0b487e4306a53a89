//! Log setup: `RUST_LOG` filters, `LOG_FORMAT` picks text or one JSON object per line; and the
//! trace exporter beside it when `OTEL_EXPORTER_OTLP_ENDPOINT` is set (`crate::traces`).

use std::str::FromStr;

use tracing::Subscriber;
use tracing_subscriber::filter::{FilterExt, Targets, filter_fn};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::traces::{Export, TARGET, TraceSettingError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

impl FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "text" => Ok(Self::Text),
            "json" => Ok(Self::Json),
            other => Err(format!("expected text or json, got {other:?}")),
        }
    }
}

/// Whether the logs show this span: not the spans made for traces only (target `otel`, and
/// sea-orm's one per statement), so a log line keeps the request's id and trace id and no
/// statement, and with traces off those spans are disabled where they are made.
fn logged_span(meta: &tracing::Metadata<'_>) -> bool {
    !(meta.is_span() && (meta.target() == TARGET || meta.target().starts_with("sea_orm")))
}

/// Installs the global subscriber once; later calls (tests spawning many apps) are no-ops.
/// With `traces` (`TraceSettings::resolve`), spans of this service's crates and its database
/// statements are exported too; never those of the HTTP client the exporter itself uses.
pub fn init(format: LogFormat, traces: Option<&Export>) -> Result<(), TraceSettingError> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let logs = match format {
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_writer(std::io::stderr)
            .boxed(),
    }
    .with_filter(filter.and(filter_fn(logged_span)));
    let registry = tracing_subscriber::registry().with(logs);
    let _ = match traces {
        None => registry.try_init(),
        Some(export) => {
            let tracer = crate::traces::tracer(export)?;
            registry.with(trace_layer(tracer)).try_init()
        }
    };
    Ok(())
}

fn trace_layer<S>(tracer: opentelemetry_sdk::trace::SdkTracer) -> impl Layer<S>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let ours = Targets::new()
        .with_target(TARGET, tracing::Level::INFO)
        .with_target("sea_orm", tracing::Level::INFO)
        .with_target("server_kit", tracing::Level::INFO)
        .with_target("auth_server", tracing::Level::INFO)
        .with_target("rooms_api", tracing::Level::INFO);
    // Spans, and the warnings and errors within them as their events; not the info log lines
    // (the access log names the raw path: a span names the route template only).
    let spans_and_problems =
        filter_fn(|meta| meta.is_span() || *meta.level() <= tracing::Level::WARN);
    tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_location(false)
        .with_threads(false)
        .with_target(false)
        .with_tracked_inactivity(false)
        // No OpenTelemetry `Context::current()` kept in step with every poll (an attach and a
        // detach on each enter and exit): nothing here reads it, parents and `traceparent`
        // come from the tracing spans.
        .with_context_activation(false)
        .with_filter(ours.and(spans_and_problems))
}
