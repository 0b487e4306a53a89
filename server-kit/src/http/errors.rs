//! The error shapes: the one JSON body (RFC 6749 §5.2 style) or an RFC 9457 problem, for the
//! framework's own failures and for helpers that build error responses. Framework text is never
//! echoed: it can quote internals.

use poem::Response;
use poem::http::{HeaderValue, StatusCode, header};

use super::REQUEST_ID_HEADER;
use shared::error::{ErrorBody, ErrorCode};

/// Builds the one error shape with the given status.
pub fn error_response(status: StatusCode, code: ErrorCode, description: &str) -> Response {
    let body = ErrorBody::new(code, description);
    let json = serde_json::to_vec(&body).unwrap_or_default();
    Response::builder()
        .status(status)
        .content_type("application/json; charset=utf-8")
        .body(json)
}

/// Turns an error raised by poem or poem-openapi itself (no route, bad content type, unparsable
/// body, …) into our JSON shape. Its text is never echoed: it can quote internals.
pub fn framework_error_response(status: StatusCode) -> Response {
    let (code, description) = match status {
        StatusCode::NOT_FOUND => (ErrorCode::NotFound, "Not found"),
        StatusCode::METHOD_NOT_ALLOWED => (ErrorCode::MethodNotAllowed, "Method not allowed"),
        StatusCode::PAYLOAD_TOO_LARGE => (ErrorCode::InvalidRequest, "Request body too large"),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => (
            ErrorCode::InvalidRequest,
            "Unsupported content type: use application/x-www-form-urlencoded or application/json",
        ),
        StatusCode::UNAUTHORIZED => (ErrorCode::InvalidClient, "Authentication required"),
        StatusCode::SERVICE_UNAVAILABLE | StatusCode::TOO_MANY_REQUESTS => (
            ErrorCode::TemporarilyUnavailable,
            "The service is temporarily unavailable",
        ),
        s if s.is_client_error() => (ErrorCode::InvalidRequest, "Malformed request"),
        _ => (ErrorCode::ServerError, "internal error"),
    };
    let status = if status.is_client_error() || status == StatusCode::SERVICE_UNAVAILABLE {
        status
    } else if status.is_server_error() {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::BAD_REQUEST
    };
    error_response(status, code, description)
}

/// The body an API's errors take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorShape {
    /// `{"error", "error_description"}` (RFC 6749 §5.2), `application/json`.
    OAuth,
    /// RFC 9457 problem details, `application/problem+json`.
    Problem,
}

pub const PROBLEM_CONTENT_TYPE: &str = "application/problem+json";

/// An RFC 9457 problem: `type` is `about:blank`, so `title` is the status's reason phrase.
pub fn problem_response(status: StatusCode, detail: &str) -> Response {
    let body = serde_json::json!({
        "type": "about:blank",
        "title": status.canonical_reason().unwrap_or("Error"),
        "status": status.as_u16(),
        "detail": detail,
    });
    Response::builder()
        .status(status)
        .content_type(PROBLEM_CONTENT_TYPE)
        .body(body.to_string())
}

/// `framework_error_response` in the given shape.
pub fn framework_error(shape: ErrorShape, status: StatusCode) -> Response {
    let oauth = framework_error_response(status);
    match shape {
        ErrorShape::OAuth => oauth,
        ErrorShape::Problem => {
            let detail = match oauth.status() {
                StatusCode::UNAUTHORIZED => "Authentication required",
                StatusCode::UNSUPPORTED_MEDIA_TYPE => {
                    "Unsupported content type: use application/json"
                }
                StatusCode::NOT_FOUND => "Not found",
                StatusCode::METHOD_NOT_ALLOWED => "Method not allowed",
                StatusCode::PAYLOAD_TOO_LARGE => "Request body too large",
                s if s.is_client_error() => "Malformed request",
                StatusCode::SERVICE_UNAVAILABLE => "The service is temporarily unavailable",
                _ => "Internal error",
            };
            problem_response(oauth.status(), detail)
        }
    }
}

/// Errors from the router or a bare handler must still use the one JSON shape, and must not
/// leak their text.
pub(super) fn replace_non_json_error(
    shape: ErrorShape,
    response: Response,
    status: StatusCode,
    request_id: &str,
) -> Response {
    if status.is_client_error() || status.is_server_error() {
        let expected: &[u8] = match shape {
            ErrorShape::OAuth => b"application/json",
            ErrorShape::Problem => PROBLEM_CONTENT_TYPE.as_bytes(),
        };
        let is_json = response
            .headers()
            .get(header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(expected));
        if !is_json {
            let mut replaced = framework_error(shape, status);
            for (name, value) in response.headers() {
                if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
                    replaced.headers_mut().insert(name.clone(), value.clone());
                }
            }
            if let Ok(value) = HeaderValue::from_str(request_id) {
                replaced.headers_mut().insert(REQUEST_ID_HEADER, value);
            }
            return replaced;
        }
    }
    response
}
