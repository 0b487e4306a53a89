//! The middleware every request passes through: request ids, the access log, the in-flight
//! queue, protective response headers, the body cap, the external-API gate, and refusal of
//! repeated query parameters and duplicate JSON keys.

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
/// shape, and writes one access-log line.
///
/// At most `in_flight`'s permits worth of requests without a body go further at once
/// (`HTTP_MAX_IN_FLIGHT`); the others wait here, in arrival order, holding only this function's
/// state. 1,000 connections that each sent a request took the rooms API from 32 to 77 MiB RSS
/// with every request inside the stack at once, 61 MiB with 32 at a time (`scripts/bench
/// sizes`); two cores gain nothing from more. A request that declares a body never waits: it
/// would hold its permit while the client sends the body, and 32 slow senders would stall
/// everyone (its memory is bounded by the body cap and `HTTP_MAX_CONNECTIONS`).
pub async fn request_context<E: Endpoint>(
    metrics: std::sync::Arc<crate::metrics::HttpMetrics>,
    in_flight: std::sync::Arc<tokio::sync::Semaphore>,
    next: E,
    req: Request,
) -> poem::Result<Response> {
    context(ErrorShape::OAuth, metrics, in_flight, next, req).await
}

/// `request_context` for an API whose errors are RFC 9457 problem details (the admin API).
pub async fn problem_request_context<E: Endpoint>(
    metrics: std::sync::Arc<crate::metrics::HttpMetrics>,
    in_flight: std::sync::Arc<tokio::sync::Semaphore>,
    next: E,
    req: Request,
) -> poem::Result<Response> {
    context(ErrorShape::Problem, metrics, in_flight, next, req).await
}

async fn context<E: Endpoint>(
    shape: ErrorShape,
    metrics: std::sync::Arc<crate::metrics::HttpMetrics>,
    in_flight: std::sync::Arc<tokio::sync::Semaphore>,
    next: E,
    req: Request,
) -> poem::Result<Response> {
    let request_id = uuid::Uuid::new_v4().to_string();
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let span = tracing::info_span!("request", request_id = %request_id);
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
        // Never closed, so acquiring can't fail; if it ever did, the request goes on unqueued.
        let _permit = if crate::timeouts::declares_body(&req) {
            None
        } else {
            in_flight.acquire().await.ok()
        };
        // Boxed, so the future a waiting request holds is this function's state alone: inline,
        // the whole stack's future (~13 KiB in the rooms API) was allocated for every request
        // from its arrival, queued or not.
        match Box::pin(next.call(req)).await {
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
    metrics.observe(
        method.as_str(),
        &path,
        status,
        started.elapsed().as_secs_f64(),
    );
    span.in_scope(|| {
        tracing::info!(
            method = %method,
            path = %path,
            status = status.as_u16(),
            elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
            "request"
        );
    });
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    let mut response = replace_non_json_error(shape, response, status, &request_id);
    protect(response.headers_mut());
    Ok(response)
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

/// Caps request bodies at `limit` bytes (413 JSON), whether or not they declare a length; poem's
/// own `SizeLimit` answers 411 to requests without `Content-Length`, GETs included.
pub async fn body_limit<E: Endpoint>(
    limit: usize,
    next: E,
    mut req: Request,
) -> poem::Result<Response> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Ok(framework_error_response(StatusCode::PAYLOAD_TOO_LARGE));
    }
    let body = req.take_body();
    match body.into_bytes_limit(limit).await {
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

    /// An endpoint whose future is large: it keeps 64 KiB across an await.
    struct Heavy;

    impl Endpoint for Heavy {
        type Output = Response;

        async fn call(&self, _req: Request) -> poem::Result<Response> {
            let scratch = [1u8; 64 * 1024];
            tokio::task::yield_now().await;
            Ok(Response::builder().body(
                scratch
                    .iter()
                    .map(|b| u64::from(*b))
                    .sum::<u64>()
                    .to_string(),
            ))
        }
    }

    /// A request queued for a permit holds this middleware's future: it must not grow with the
    /// stack behind it (1,000 queued rooms-API requests held ~13 MiB when it did).
    #[test]
    fn a_queued_request_does_not_hold_the_stack_behind_it() {
        let metrics = std::sync::Arc::new(crate::metrics::HttpMetrics::new(vec![]).unwrap());
        let in_flight = std::sync::Arc::new(tokio::sync::Semaphore::new(1));
        let fut = request_context(metrics, in_flight, Heavy, Request::default());
        let size = std::mem::size_of_val(&fut);
        assert!(size < 4096, "the middleware's future is {size} bytes");
    }

    /// Records the order requests reach it; request 0 holds its place until released.
    struct Recorder {
        order: std::sync::Arc<std::sync::Mutex<Vec<u32>>>,
        release: std::sync::Arc<tokio::sync::Notify>,
    }

    impl Endpoint for Recorder {
        type Output = Response;

        async fn call(&self, req: Request) -> poem::Result<Response> {
            let n: u32 = req
                .uri()
                .path()
                .trim_start_matches('/')
                .parse()
                .unwrap_or(999);
            self.order.lock().unwrap_or_else(|p| p.into_inner()).push(n);
            if n == 0 {
                self.release.notified().await;
            }
            Ok(Response::builder().body(""))
        }
    }

    /// Requests past `HTTP_MAX_IN_FLIGHT` wait in arrival order: tokio's semaphore is fair, and
    /// nothing here lets a later request take a freed place first.
    #[tokio::test(flavor = "current_thread")]
    async fn waiting_requests_get_their_place_in_arrival_order() {
        let metrics = std::sync::Arc::new(crate::metrics::HttpMetrics::new(vec![]).unwrap());
        let in_flight = std::sync::Arc::new(tokio::sync::Semaphore::new(1));
        let order = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let release = std::sync::Arc::new(tokio::sync::Notify::new());
        let mut tasks = Vec::new();
        for n in 0..6u32 {
            let ep = Recorder {
                order: order.clone(),
                release: release.clone(),
            };
            let req = Request::builder().uri_str(format!("/{n}")).finish();
            tasks.push(tokio::spawn(request_context(
                metrics.clone(),
                in_flight.clone(),
                ep,
                req,
            )));
            // Let it run until it holds the place (0) or waits for it (the others).
            for _ in 0..10 {
                tokio::task::yield_now().await;
            }
        }
        assert_eq!(*order.lock().unwrap(), [0], "one at a time");
        release.notify_one();
        for t in tasks {
            assert_eq!(t.await.unwrap().unwrap().status(), StatusCode::OK);
        }
        assert_eq!(*order.lock().unwrap(), [0, 1, 2, 3, 4, 5]);
    }

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
