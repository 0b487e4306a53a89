//! Extractors that never fail: they capture the `Authorization` header and the raw body, so the
//! handler can answer in the contract's order — 401, then 403 scope, then 400/413/415.

use std::marker::PhantomData;

use poem::http::header;
use poem::{Request, RequestBody};
use poem_openapi::registry::{MetaMediaType, MetaRequest, MetaSecurityScheme, Registry};
use poem_openapi::types::Type;
use poem_openapi::{ApiExtractor, ApiExtractorType, ExtractParamOptions};
use server_kit::http::CapturedBody;

use crate::auth::bearer::{self, BearerHeader};
use crate::auth::dpop::DpopRequest;
use crate::error::ApiError;
use shared::dpop::ProofHeader;

/// Request bodies above this answer 413.
pub const BODY_LIMIT: usize = 64 * 1024;
pub const SECURITY_SCHEME: &str = "bearerAuth";

/// The bearer credentials, documented as an HTTP bearer security scheme (Swagger UI's
/// "Authorize" button) but checked by the handler; with what a DPoP proof must match.
pub struct BearerAuth {
    pub header: BearerHeader,
    pub dpop: DpopRequest,
}

/// The URL the client addressed: `ROOMS_PUBLIC_URL` when set (behind a proxy, the address
/// this process sees is not the client's), else the `Host` it was sent to; and the path.
fn addressed_url(request: &Request) -> String {
    let path = server_kit::http::ArrivedPath::of(request);
    let base = request
        .data::<std::sync::Arc<crate::state::AppState>>()
        .and_then(|s| s.config.dpop_base_url.clone())
        .or_else(|| {
            request
                .headers()
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .map(|h| format!("http://{h}"))
        })
        .unwrap_or_default();
    format!("{base}{path}")
}

impl<'a> ApiExtractor<'a> for BearerAuth {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::SecurityScheme];
    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        registry.create_security_scheme(
            SECURITY_SCHEME,
            MetaSecurityScheme {
                ty: "http",
                description: Some(
                    "An access token from the auth-server's token endpoint. A DPoP-bound token \
                     (token_type DPoP) is sent as `Authorization: DPoP <token>` with a `DPoP` \
                     header: a proof signed by the client's key for each request (RFC 9449), \
                     which this page can't make. Try the operations here with a bearer token; \
                     see docs/spec/rooms-api.md §1b for DPoP.",
                ),
                name: None,
                key_in: None,
                scheme: Some("bearer"),
                bearer_format: Some("JWT"),
                flows: None,
                openid_connect_url: None,
            },
        );
    }

    fn security_schemes() -> Vec<&'static str> {
        vec![SECURITY_SCHEME]
    }

    async fn from_request(
        request: &'a Request,
        _body: &mut RequestBody,
        _param_opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        let values = request.headers().get_all(header::AUTHORIZATION);
        let proofs = request.headers().get_all("dpop");
        Ok(Self {
            header: bearer::parse(values.iter().map(|v| v.as_bytes())),
            dpop: DpopRequest {
                header: ProofHeader::from_values(proofs.iter().map(|v| v.as_bytes())),
                method: request.method().as_str().to_owned(),
                url: addressed_url(request),
            },
        })
    }
}

enum Captured {
    Bytes(Vec<u8>),
    TooLarge,
    Unreadable,
}

/// A JSON body captured as bytes (up to `BODY_LIMIT`), documented with `T`'s schema.
pub struct JsonBody<T> {
    captured: Captured,
    content_type: Option<String>,
    _schema: PhantomData<T>,
}

impl<T> JsonBody<T> {
    /// The body, once the caller is known to be allowed: 413 if too large, 415 if a non-empty
    /// body is not JSON. An empty body is `{}`.
    pub fn bytes(&self) -> Result<&[u8], ApiError> {
        let bytes = match &self.captured {
            Captured::TooLarge => return Err(ApiError::PayloadTooLarge),
            Captured::Unreadable => {
                return Err(ApiError::invalid_body("the body could not be read"));
            }
            Captured::Bytes(b) => b,
        };
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(&[]);
        }
        let is_json = self.content_type.as_deref().is_some_and(|ct| {
            let essence = ct
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            essence == "application/json" || essence.ends_with("+json")
        });
        if !is_json {
            return Err(ApiError::UnsupportedMediaType);
        }
        Ok(bytes)
    }
}

impl<'a, T: Type> ApiExtractor<'a> for JsonBody<T> {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::RequestObject];
    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        T::register(registry);
    }

    fn request_meta() -> Option<MetaRequest> {
        Some(MetaRequest {
            description: None,
            content: vec![MetaMediaType {
                content_type: "application/json",
                schema: T::schema_ref(),
            }],
            required: false,
        })
    }

    async fn from_request(
        request: &'a Request,
        body: &mut RequestBody,
        _param_opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        // Read before the in-flight queue (`server_kit::http::capture_body`, startup.rs).
        let captured = match request.extensions().get::<CapturedBody>() {
            Some(CapturedBody::Bytes(b)) => Captured::Bytes(b.to_vec()),
            Some(CapturedBody::TooLarge) => Captured::TooLarge,
            Some(CapturedBody::Unreadable) => Captured::Unreadable,
            None => Self::read(body).await,
        };
        Ok(Self {
            captured,
            content_type: request.content_type().map(str::to_owned),
            _schema: PhantomData,
        })
    }
}

impl<T> JsonBody<T> {
    async fn read(body: &mut RequestBody) -> Captured {
        match body.take() {
            Err(_) => Captured::Bytes(Vec::new()),
            Ok(b) => match b.into_bytes_limit(BODY_LIMIT).await {
                Ok(bytes) => Captured::Bytes(bytes.to_vec()),
                Err(poem::error::ReadBodyError::PayloadTooLarge) => Captured::TooLarge,
                Err(_) => Captured::Unreadable,
            },
        }
    }
}

/// A query parameter documented as an integer in `[MIN, MAX]` but captured as raw text: its
/// validation belongs after authentication and the scope check (docs/spec/rooms-api.md §2), where a bad
/// value becomes our 400 with a field message instead of the framework's.
pub struct IntParam<const MIN: u64, const MAX: u64>(pub String);

impl<const MIN: u64, const MAX: u64> poem_openapi::types::Type for IntParam<MIN, MAX> {
    const IS_REQUIRED: bool = true;
    type RawValueType = String;
    type RawElementValueType = String;

    fn name() -> std::borrow::Cow<'static, str> {
        "integer_int64".into()
    }

    fn schema_ref() -> poem_openapi::registry::MetaSchemaRef {
        let mut schema = poem_openapi::registry::MetaSchema::new_with_format("integer", "int64");
        schema.minimum = Some(MIN as f64);
        schema.maximum = Some(MAX as f64);
        poem_openapi::registry::MetaSchemaRef::Inline(Box::new(schema))
    }

    fn as_raw_value(&self) -> Option<&Self::RawValueType> {
        Some(&self.0)
    }

    fn raw_element_iter<'a>(
        &'a self,
    ) -> Box<dyn Iterator<Item = &'a Self::RawElementValueType> + 'a> {
        Box::new(std::iter::once(&self.0))
    }
}

impl<const MIN: u64, const MAX: u64> poem_openapi::types::ParseFromParameter
    for IntParam<MIN, MAX>
{
    fn parse_from_parameter(value: &str) -> poem_openapi::types::ParseResult<Self> {
        Ok(Self(value.to_owned()))
    }
}
