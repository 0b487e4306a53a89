//! The middleware every request passes through: request ids, the access log, protective
//! response headers, the body cap, the external-API gate, and refusal of repeated query
//! parameters and duplicate JSON keys. The in-flight queue is `crate::in_flight`'s.

use std::time::Instant;

use poem::http::{HeaderValue, StatusCode, header};
use poem::{Endpoint, IntoResponse, Request, Response};
use tracing::Instrument;

use super::errors::{
    ErrorShape, error_response, framework_error, framework_error_response, problem_response,
    replace_non_json_error,
};
use shared::error::ErrorCode;

pub const REQUEST_ID_HEADER: &str = "x-request-id";
/// Requests whose headers add up to more than this answer 431 (docs/spec/security.md).
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

/// Outermost middleware: gives every request an id (returned as `x-request-id`), runs it inside
/// a span carrying that id so every log line names it, converts framework errors to our JSON
/// shape, and writes one access-log line. The in-flight queue sits further in
/// (`crate::in_flight::queue`), behind whatever reads bodies first.
pub async fn request_context<E: Endpoint>(
    metrics: std::sync::Arc<crate::metrics::HttpMetrics>,
    next: E,
    req: Request,
) -> poem::Result<Response> {
    context(ErrorShape::OAuth, metrics, next, req).await
}

/// `request_context` for an API whose errors are RFC 9457 problem details (the admin API).
pub async fn problem_request_context<E: Endpoint>(
    metrics: std::sync::Arc<crate::metrics::HttpMetrics>,
    next: E,
    req: Request,
) -> poem::Result<Response> {
    context(ErrorShape::Problem, metrics, next, req).await
}

async fn context<E: Endpoint>(
    shape: ErrorShape,
    metrics: std::sync::Arc<crate::metrics::HttpMetrics>,
    next: E,
    req: Request,
) -> poem::Result<Response> {
    let request_id = uuid::Uuid::new_v4().to_string();
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let span = request_span(&request_id, &method, req.headers());
    let started = Instant::now();
    let header_bytes: usize = req
        .headers()
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum();
    let mut response = async {
        if header_bytes > MAX_HEADER_BYTES {
            let detail = "Request headers too large (limit 16 KiB)";
            return match shape {
                ErrorShape::OAuth => error_response(
                    StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                    ErrorCode::InvalidRequest,
                    detail,
                ),
                ErrorShape::Problem => {
                    problem_response(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, detail)
                }
            };
        }
        match next.call(req).await {
            Ok(r) => r.into_response(),
            Err(err) => {
                let status = err.status();
                if status.is_server_error() {
                    tracing::error!(error = %err, "request failed");
                }
                framework_error(shape, status)
            }
        }
    }
    .instrument(span.clone())
    .await;
    let status = response.status();
    let route = metrics.observe(
        method.as_str(),
        &path,
        status,
        started.elapsed().as_secs_f64(),
    );
    span.in_scope(|| {
        tracing::info!(
            method = %method,
            path = %crate::metrics::HttpMetrics::loggable(&path, route),
            status = status.as_u16(),
            elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
            "request"
        );
    });
    if crate::traces::enabled() {
        finish_request_span(&span, &method, route, status);
    }
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    let mut response = replace_non_json_error(shape, response, status, &request_id);
    protect(response.headers_mut());
    Ok(response)
}

/// The span a request runs in: its id, and its trace id when traces are on (every log line of
/// the request shows both). With traces on it is also the request's server span, child of the
/// caller's `traceparent` when there is one; `client_id` is recorded once known
/// (`traces::record_client_id`). Never the raw path: the route template is set at the end.
fn request_span(
    request_id: &str,
    method: &poem::http::Method,
    headers: &poem::http::HeaderMap,
) -> tracing::Span {
    use tracing::field::Empty;
    if !crate::traces::enabled() {
        return tracing::info_span!("request", request_id = %request_id, client_id = Empty);
    }
    let span = tracing::info_span!(
        "request",
        request_id = %request_id,
        trace_id = Empty,
        client_id = Empty,
        otel.kind = "server",
        otel.name = crate::metrics::method_label(method.as_str()),
    );
    if let Some(parent) = crate::traces::incoming_parent(headers) {
        use tracing_opentelemetry::OpenTelemetrySpanExt;
        let _ = span.set_parent(parent);
    }
    if let Some(id) = crate::traces::trace_id(&span) {
        span.record("trace_id", id);
    }
    span
}

/// The request span's name (`POST /oauth/token`: the route template, never the raw path) and
/// its HTTP attributes, once the answer is known.
fn finish_request_span(
    span: &tracing::Span,
    method: &poem::http::Method,
    route: &str,
    status: StatusCode,
) {
    use opentelemetry::trace::{Status, TraceContextExt};
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    let method = crate::metrics::method_label(method.as_str());
    // Started already (its trace id was read for the logs): renamed through OpenTelemetry.
    span.context()
        .span()
        .update_name(format!("{method} {route}"));
    span.set_attribute("http.request.method", method);
    span.set_attribute("http.route", route.to_owned());
    span.set_attribute("http.response.status_code", i64::from(status.as_u16()));
    if status.is_server_error() {
        span.set_status(Status::error(status.as_str().to_owned()));
    }
}

/// Headers every response carries (docs/spec/security.md "Input"): no content sniffing, and no
/// framing of any page (the Swagger UI included) by another site, the clickjacking defence.
fn protect(headers: &mut poem::http::HeaderMap) {
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("frame-ancestors 'none'"),
        );
    }
}

/// `EXTERNAL_API_ENABLED=false`: every `/external-api/` path answers 404 JSON; the rest runs.
pub async fn external_api_gate<E: Endpoint>(
    enabled: bool,
    next: E,
    req: Request,
) -> poem::Result<Response> {
    if !enabled && req.uri().path().starts_with("/external-api/") {
        return Ok(framework_error_response(StatusCode::NOT_FOUND));
    }
    Ok(next.get_response(req).await)
}

/// The body length the request declares (`Content-Length`), if it declares one.
fn declared_length(req: &Request) -> Option<u64> {
    req.headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
}

/// Caps request bodies at `limit` bytes (413 JSON), whether or not they declare a length; poem's
/// own `SizeLimit` answers 411 to requests without `Content-Length`, GETs included.
pub async fn body_limit<E: Endpoint>(
    limit: usize,
    next: E,
    mut req: Request,
) -> poem::Result<Response> {
    let declared = declared_length(&req);
    if declared.is_some_and(|n| n > limit as u64) {
        return Ok(framework_error_response(StatusCode::PAYLOAD_TOO_LARGE));
    }
    let body = req.take_body();
    // Boxed, as in `capture_body`: the read's state lives only while the body is read.
    match Box::pin(body.into_bytes_limit(limit)).await {
        Ok(bytes) => req.set_body(bytes),
        Err(poem::error::ReadBodyError::PayloadTooLarge) => {
            return Ok(framework_error_response(StatusCode::PAYLOAD_TOO_LARGE));
        }
        Err(poem::error::ReadBodyError::Io(e)) if e.kind() == std::io::ErrorKind::TimedOut => {
            return Ok(error_response(
                StatusCode::REQUEST_TIMEOUT,
                ErrorCode::InvalidRequest,
                "The request body was not received in time",
            ));
        }
        Err(_) => return Ok(framework_error_response(StatusCode::BAD_REQUEST)),
    }
    Ok(next.get_response(req).await)
}

/// Refuses a query string that names a parameter twice, or a request with more than one
/// `Authorization` header (400 `invalid_request`): which of the two values a proxy and we would
/// each read is anyone's guess (with two credentials, the first used to win here).
pub async fn refuse_repeated_query<E: Endpoint>(next: E, req: Request) -> poem::Result<Response> {
    if req
        .headers()
        .get_all(poem::http::header::AUTHORIZATION)
        .iter()
        .nth(1)
        .is_some()
    {
        tracing::info!("more than one Authorization header");
        return Ok(error_response(
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidRequest,
            "The request carries more than one Authorization header",
        ));
    }
    if let Some(name) = req
        .uri()
        .query()
        .and_then(crate::strict_json::repeated_query_parameter)
    {
        tracing::info!(parameter = %name.escape_debug(), "repeated query parameter");
        return Ok(error_response(
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidRequest,
            "A query parameter is repeated",
        ));
    }
    Ok(next.get_response(req).await)
}

/// A body read before the in-flight queue by `capture_body`, for an extractor that decides on
/// it only later (after authentication).
#[derive(Debug, Clone)]
pub enum CapturedBody {
    Bytes(bytes::Bytes),
    /// Declared or found longer than the limit; not read further.
    TooLarge,
    /// The read failed (the body deadline, a reset).
    Unreadable,
}

/// Reads the body (at most `limit` bytes) before the requests behind it wait for a place, and
/// leaves the outcome in the request's extensions: a request then waits holding only its bytes
/// and the outer middleware, not the whole stack's future, and a slow sender trickles its body
/// without holding a place. Unlike `body_limit` it answers nothing itself, so a service whose
/// contract puts 401/403 before 413 (the rooms API) keeps that order.
pub async fn capture_body<E: Endpoint>(
    limit: usize,
    next: E,
    mut req: Request,
) -> poem::Result<Response> {
    if !crate::timeouts::declares_body(&req) {
        return Ok(next.get_response(req).await);
    }
    let declared = declared_length(&req);
    let captured = if declared.is_some_and(|n| n > limit as u64) {
        CapturedBody::TooLarge
    } else {
        // Boxed: the read's own state (poem's 4 KiB copy buffer among it) is allocated while
        // the body is read and freed after, instead of sizing this middleware's future — which
        // a request holds for its whole life, waiting in the in-flight queue included.
        match Box::pin(req.take_body().into_bytes_limit(limit)).await {
            Ok(bytes) => CapturedBody::Bytes(bytes),
            Err(poem::error::ReadBodyError::PayloadTooLarge) => CapturedBody::TooLarge,
            Err(_) => CapturedBody::Unreadable,
        }
    };
    req.extensions_mut().insert(captured);
    Ok(next.get_response(req).await)
}

/// Refuses a JSON body that names a key twice (400 `invalid_request`); runs inside
/// `body_limit`, which has buffered the body.
pub async fn refuse_duplicate_json_keys<E: Endpoint>(
    next: E,
    mut req: Request,
) -> poem::Result<Response> {
    let is_json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            let v = v.trim_start().to_ascii_lowercase();
            v.starts_with("application/json") || v.contains("+json")
        });
    if is_json {
        let body = req.take_body().into_bytes().await.unwrap_or_default();
        if let Err(crate::strict_json::StrictJsonError::DuplicateKey(_)) =
            crate::strict_json::parse(&body)
        {
            return Ok(error_response(
                StatusCode::BAD_REQUEST,
                ErrorCode::InvalidRequest,
                "The request body names a key twice",
            ));
        }
        req.set_body(body);
    }
    Ok(next.get_response(req).await)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn framework_errors_keep_their_status_and_never_500_for_client_errors() {
        for (status, want_status, code) in [
            (StatusCode::NOT_FOUND, StatusCode::NOT_FOUND, "not_found"),
            (
                StatusCode::METHOD_NOT_ALLOWED,
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
            ),
            (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "invalid_request",
            ),
            (
                StatusCode::PAYLOAD_TOO_LARGE,
                StatusCode::PAYLOAD_TOO_LARGE,
                "invalid_request",
            ),
            (
                StatusCode::BAD_REQUEST,
                StatusCode::BAD_REQUEST,
                "invalid_request",
            ),
            (
                StatusCode::IM_A_TEAPOT,
                StatusCode::IM_A_TEAPOT,
                "invalid_request",
            ),
            (
                StatusCode::UNAUTHORIZED,
                StatusCode::UNAUTHORIZED,
                "invalid_client",
            ),
            (
                StatusCode::TOO_MANY_REQUESTS,
                StatusCode::TOO_MANY_REQUESTS,
                "temporarily_unavailable",
            ),
            (
                StatusCode::SERVICE_UNAVAILABLE,
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
            ),
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
            ),
            // Another 5xx is a 500 saying only "internal error".
            (
                StatusCode::BAD_GATEWAY,
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
            ),
        ] {
            let r = framework_error_response(status);
            assert_eq!(r.status(), want_status, "{status}");
            let body: serde_json::Value =
                serde_json::from_str(&r.into_body().into_string().await.unwrap()).unwrap();
            assert_eq!(body["error"], code, "{status}: {body}");
            if want_status == StatusCode::INTERNAL_SERVER_ERROR {
                assert_eq!(body["error_description"], "internal error", "{status}");
            }
        }
    }
}

/// The request's path as it arrived, before `NormalizePath` trimmed a trailing slash: what a
/// client's DPoP proof names in `htu` (RFC 9449 §4.3; upstream's paths end in `/`, and a
/// client that addressed one must have its proof checked against the URL it addressed).
#[derive(Debug, Clone)]
pub struct ArrivedPath(pub String);

impl ArrivedPath {
    /// The path `keep_arrived_path` kept, else the request's own.
    pub fn of(req: &Request) -> &str {
        req.extensions()
            .get::<ArrivedPath>()
            .map_or_else(|| req.uri().path(), |p| p.0.as_str())
    }
}

/// Keeps the path as it arrived (`ArrivedPath`); runs outside `NormalizePath`.
pub async fn keep_arrived_path<E: Endpoint>(next: E, mut req: Request) -> poem::Result<Response> {
    let path = req.uri().path().to_owned();
    req.extensions_mut().insert(ArrivedPath(path));
    Ok(next.get_response(req).await)
}
