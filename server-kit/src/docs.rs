//! The served API documents: Swagger UI at `/docs` and the spec at `/openapi.json`.
//!
//! poem-openapi's own endpoints build the Swagger UI page (1.6 MB: the UI's script and styles
//! with the spec inlined) at startup and copy it, and the spec, into every response. The page
//! was 3 MiB of every process's resting heap (two pages in the auth-server), and a copy per
//! response meant an outsider holding `HTTP_MAX_CONNECTIONS` slow downloads of `/docs` made the
//! server keep 1.6 GB. Here the page is built on its first request, once, and every response
//! shares that one buffer, as it shares the spec's.

use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use poem::http::header;
use poem::{Endpoint, Request, Response};

/// `GET /docs`: the Swagger UI page that `build` renders, built when first asked for.
pub fn swagger_ui(build: impl Fn() -> String + Send + Sync + 'static) -> SharedDocument {
    SharedDocument {
        content_type: "text/html; charset=utf-8",
        body: Arc::new(OnceLock::new()),
        build: Arc::new(build),
    }
}

/// `GET /openapi.json`: the rendered spec, shared by every response.
pub fn spec(json: String) -> SharedDocument {
    let body = OnceLock::new();
    let _ = body.set(Bytes::from(json));
    SharedDocument {
        content_type: "application/json",
        body: Arc::new(body),
        build: Arc::new(String::new),
    }
}

type Build = Arc<dyn Fn() -> String + Send + Sync>;

/// A document served from one buffer shared by every response, built on first use.
#[derive(Clone)]
pub struct SharedDocument {
    content_type: &'static str,
    body: Arc<OnceLock<Bytes>>,
    build: Build,
}

impl SharedDocument {
    fn bytes(&self) -> Bytes {
        self.body
            .get_or_init(|| {
                let mut text = (self.build)();
                text.shrink_to_fit();
                Bytes::from(text)
            })
            .clone()
    }
}

impl Endpoint for SharedDocument {
    type Output = Response;

    async fn call(&self, _req: Request) -> poem::Result<Response> {
        Ok(Response::builder()
            .header(header::CONTENT_TYPE, self.content_type)
            .body(self.bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn the_page_is_built_once_on_first_use_and_shared() {
        let built = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&built);
        let ep = swagger_ui(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            "<html>swagger</html>".to_owned()
        });
        assert_eq!(
            built.load(Ordering::SeqCst),
            0,
            "nothing built before a request"
        );
        let a = ep.bytes();
        let b = ep.clone().bytes();
        assert_eq!(built.load(Ordering::SeqCst), 1);
        assert_eq!(a, b);
        assert_eq!(a.as_ptr(), b.as_ptr(), "responses share one buffer");
        let r = ep.call(Request::default()).await.unwrap();
        assert_eq!(
            r.headers().get(header::CONTENT_TYPE).unwrap(),
            "text/html; charset=utf-8"
        );
        assert_eq!(r.into_body().into_bytes().await.unwrap(), a);
    }
}
