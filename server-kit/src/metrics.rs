//! Prometheus metrics both services expose on their separate metrics listener: request counts
//! and latency by route *template* (never a raw path with ids) and status. Each service adds
//! its own counters to the same registry. One registry per server instance, so several servers
//! in one process (tests) never share counters.

use std::sync::Arc;

use poem::http::StatusCode;
use poem::{Endpoint, EndpointExt, Response, Route, get, handler, web::Data};
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, TextEncoder,
};

#[derive(Debug)]
pub struct HttpMetrics {
    pub registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    templates: Vec<&'static str>,
}

/// Registers a counter vector on `registry` (names are static, so failure is a programming
/// error surfaced at startup).
pub fn counter(
    registry: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> prometheus::Result<IntCounterVec> {
    let c = IntCounterVec::new(Opts::new(name, help), labels)?;
    registry.register(Box::new(c.clone()))?;
    Ok(c)
}

impl HttpMetrics {
    /// `templates` are the route templates (`/external-api/v1.0/rooms/{id}`) requests are
    /// reported under; anything else is reported as `other`.
    pub fn new(templates: Vec<&'static str>) -> prometheus::Result<Self> {
        let registry = Registry::new();
        let requests = counter(
            &registry,
            "http_requests_total",
            "HTTP requests by route template, method and status",
            &["route", "method", "status"],
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "Request latency by route template and method",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
            ]),
            &["route", "method"],
        )?;
        registry.register(Box::new(latency.clone()))?;
        registry.register(Box::new(crate::traces::SPANS.clone()))?;
        Ok(Self {
            registry,
            requests,
            latency,
            templates,
        })
    }

    /// The template a path belongs to (`{x}` matches one segment; a trailing slash is ignored).
    pub fn template(&self, path: &str) -> &'static str {
        let path = path.trim_end_matches('/');
        let path = if path.is_empty() { "/" } else { path };
        let segments: Vec<&str> = path.split('/').collect();
        self.templates
            .iter()
            .copied()
            .find(|t| {
                let ts: Vec<&str> = t.split('/').collect();
                ts.len() == segments.len()
                    && ts
                        .iter()
                        .zip(&segments)
                        .all(|(t, s)| (t.starts_with('{') && !s.is_empty()) || t == s)
            })
            .unwrap_or("other")
    }

    /// `path` as the access log may show it, given the `route` template it was reported under
    /// (`observe`'s answer): a segment the template names `{email}` is replaced by that
    /// placeholder, so no e-mail address reaches a log line.
    pub fn loggable<'a>(path: &'a str, route: &str) -> std::borrow::Cow<'a, str> {
        if !route.contains("{email}") {
            return std::borrow::Cow::Borrowed(path);
        }
        let kept: Vec<&str> = path
            .trim_end_matches('/')
            .split('/')
            .zip(route.split('/'))
            .map(|(s, t)| if t == "{email}" { t } else { s })
            .collect();
        std::borrow::Cow::Owned(kept.join("/"))
    }

    /// Counts the request under its route template, and returns that template.
    pub fn observe(
        &self,
        method: &str,
        path: &str,
        status: StatusCode,
        seconds: f64,
    ) -> &'static str {
        let route = self.template(path);
        let method = method_label(method);
        self.requests
            .with_label_values(&[route, method, status.as_str()])
            .inc();
        self.latency
            .with_label_values(&[route, method])
            .observe(seconds);
        route
    }

    pub fn render(&self) -> String {
        let mut out = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}

/// The `method` label: the standard methods, anything else `other`. Any token is a valid HTTP
/// method, so a label taken as sent would let a client grow `/metrics` and memory for good.
pub fn method_label(method: &str) -> &'static str {
    const KNOWN: [&str; 9] = [
        "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT",
    ];
    KNOWN
        .iter()
        .copied()
        .find(|m| *m == method)
        .unwrap_or("other")
}

#[handler]
fn scrape(Data(metrics): Data<&Arc<HttpMetrics>>) -> Response {
    Response::builder()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(metrics.render())
}

/// The metrics listener's routes: `GET /metrics`.
pub fn endpoint(metrics: Arc<HttpMetrics>) -> impl Endpoint {
    Route::new().at("/metrics", get(scrape)).data(metrics)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_map_to_templates() {
        let m = HttpMetrics::new(vec![
            "/external-api/v1.0/rooms",
            "/external-api/v1.0/rooms/{id}",
            "/healthz",
        ])
        .unwrap();
        assert_eq!(
            m.template("/external-api/v1.0/rooms/abc"),
            "/external-api/v1.0/rooms/{id}"
        );
        assert_eq!(
            m.template("/external-api/v1.0/rooms/"),
            "/external-api/v1.0/rooms"
        );
        assert_eq!(m.template("/external-api/v1.0/rooms/a/b"), "other");
        let m2 = HttpMetrics::new(vec!["/external-api/v1.0/rooms/{id}/accesses/{email}"]).unwrap();
        assert_eq!(
            HttpMetrics::loggable(
                "/external-api/v1.0/rooms/r1/accesses/ann%40example.com/",
                m2.template("/external-api/v1.0/rooms/r1/accesses/ann%40example.com/")
            ),
            "/external-api/v1.0/rooms/r1/accesses/{email}"
        );
        assert_eq!(HttpMetrics::loggable("/healthz", "/healthz"), "/healthz");
        assert_eq!(m.template("/nope"), "other");
        m.observe("GET", "/healthz", StatusCode::OK, 0.001);
        assert!(
            m.render()
                .contains(r#"http_requests_total{method="GET",route="/healthz",status="200"} 1"#)
        );
    }
}
