//! Bedrock Cohere embeddings through the real `aws-sdk-bedrockruntime` client.
//!
//! Up to 96 texts per InvokeModel call, texts cut to 2,048 characters, `truncate: END`
//! (`RIGHT` for v4). Throttling, 408, 500 and 503 are retried with exponential backoff and
//! full jitter beyond the SDK's own retries; a throttle also opens a shared cool-down that
//! every in-flight worker respects, so the whole client slows down together (adaptive).
//! Validation errors fail fast; the driver then splits the batch to isolate the bad text.
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_config::BehaviorVersion;
use aws_sdk_bedrockruntime::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_bedrockruntime::operation::invoke_model::InvokeModelError;
use aws_sdk_bedrockruntime::primitives::Blob;
use aws_sdk_bedrockruntime::Client;
use rand::Rng;
use serde_json::{json, Value};

use crate::error::EmbedError;
use crate::traits::{EmbedStats, Embedder, Purpose};

pub const MAX_TEXTS: usize = 96;
pub const MAX_CHARS: usize = 2048;

#[derive(Debug, Clone)]
pub struct BedrockOptions {
    pub model_id: String,
    /// Cohere v4 only: 256, 512, 1024 or 1536.
    pub output_dimension: Option<u32>,
    /// Calls in flight.
    pub concurrency: usize,
    /// Our attempts per call (each may include the SDK's own retries).
    pub max_attempts: u32,
    /// The SDK's attempts per call (standard retry mode).
    pub sdk_attempts: u32,
    pub call_timeout: Duration,
    pub base_backoff: Duration,
    pub max_backoff: Duration,
    /// Explicit endpoint (tests); otherwise AWS_ENDPOINT_URL_BEDROCK_RUNTIME or the regional one.
    pub endpoint_url: Option<String>,
}

impl Default for BedrockOptions {
    fn default() -> Self {
        BedrockOptions {
            model_id: "cohere.embed-english-v3".into(),
            output_dimension: None,
            concurrency: 8,
            max_attempts: 8,
            sdk_attempts: 3,
            call_timeout: Duration::from_secs(60),
            base_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(20),
            endpoint_url: None,
        }
    }
}

/// Which Cohere request dialect a model speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dialect {
    V3,
    V4,
}

pub struct BedrockEmbedder {
    client: Client,
    opts: BedrockOptions,
    dialect: Dialect,
    dim: usize,
    calls: AtomicU64,
    retries: AtomicU64,
    throttles: AtomicU64,
    cooldown_until: Mutex<Option<Instant>>,
}

/// The dimensions a Cohere model returns.
pub fn model_dimensions(model_id: &str, output_dimension: Option<u32>) -> Result<usize, EmbedError> {
    if model_id.starts_with("cohere.embed-v4") {
        return Ok(output_dimension.unwrap_or(1536) as usize);
    }
    if output_dimension.is_some() {
        return Err(EmbedError::Fatal(format!("FDNIX_BEDROCK_OUTPUT_DIMENSION is only valid for cohere.embed-v4, not {model_id}")));
    }
    match model_id {
        "cohere.embed-english-v3" | "cohere.embed-multilingual-v3" => Ok(1024),
        "cohere.embed-english-light-v3" | "cohere.embed-multilingual-light-v3" => Ok(384),
        other => Err(EmbedError::Fatal(format!("BEDROCK_MODEL_ID: unsupported model `{other}` (cohere.embed-english-v3, cohere.embed-multilingual-v3 or cohere.embed-v4:0)"))),
    }
}

impl BedrockEmbedder {
    /// Builds the client from the normal AWS chain (credentials, AWS_ENDPOINT_URL_*).
    pub async fn from_env(region: &str, opts: BedrockOptions) -> Result<Self, EmbedError> {
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .region(aws_config::Region::new(region.to_string()))
            .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(opts.sdk_attempts.max(1)))
            .timeout_config(aws_config::timeout::TimeoutConfig::builder().operation_attempt_timeout(opts.call_timeout).build());
        if let Some(url) = &opts.endpoint_url {
            loader = loader.endpoint_url(url);
        }
        let conf = loader.load().await;
        Self::with_client(Client::new(&conf), opts)
    }

    pub fn with_client(client: Client, opts: BedrockOptions) -> Result<Self, EmbedError> {
        let dim = model_dimensions(&opts.model_id, opts.output_dimension)?;
        let dialect = if opts.model_id.starts_with("cohere.embed-v4") { Dialect::V4 } else { Dialect::V3 };
        Ok(BedrockEmbedder {
            client,
            opts,
            dialect,
            dim,
            calls: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            throttles: AtomicU64::new(0),
            cooldown_until: Mutex::new(None),
        })
    }

    fn body(&self, texts: &[String], purpose: Purpose) -> Vec<u8> {
        let input_type = match purpose {
            Purpose::Document => "search_document",
            Purpose::Query => "search_query",
        };
        let texts: Vec<String> = texts.iter().map(|t| crate::doctext::truncate_chars(t, MAX_CHARS)).collect();
        let v = match self.dialect {
            Dialect::V3 => json!({"texts": texts, "input_type": input_type, "truncate": "END"}),
            Dialect::V4 => {
                let mut v = json!({"texts": texts, "input_type": input_type, "truncate": "RIGHT", "embedding_types": ["float"]});
                if let Some(d) = self.opts.output_dimension {
                    v["output_dimension"] = json!(d);
                }
                v
            }
        };
        serde_json::to_vec(&v).unwrap_or_default()
    }

    async fn wait_cooldown(&self) {
        let until = self.cooldown_until.lock().ok().and_then(|g| *g);
        if let Some(t) = until {
            let now = Instant::now();
            if t > now {
                tokio::time::sleep(t - now).await;
            }
        }
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let cap = self.opts.max_backoff.min(self.opts.base_backoff * 2u32.saturating_pow(attempt.min(16)));
        let ms = cap.as_millis().max(1) as u64;
        Duration::from_millis(rand::rng().random_range(ms / 2..=ms))
    }

    fn open_cooldown(&self, d: Duration) {
        if let Ok(mut g) = self.cooldown_until.lock() {
            let t = Instant::now() + d;
            if g.is_none_or(|cur| cur < t) {
                *g = Some(t);
            }
        }
    }

    async fn call_once(&self, body: Vec<u8>) -> Result<Vec<Vec<f32>>, (EmbedError, bool)> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let res = self
            .client
            .invoke_model()
            .model_id(&self.opts.model_id)
            .content_type("application/json")
            .accept("application/json")
            .body(Blob::new(body))
            .send()
            .await;
        match res {
            Ok(out) => parse_response(out.body().as_ref()).map_err(|e| (e, false)),
            Err(e) => Err(classify(e)),
        }
    }
}

/// (error, is_throttle)
fn classify(e: SdkError<InvokeModelError, aws_sdk_bedrockruntime::config::http::HttpResponse>) -> (EmbedError, bool) {
    match e {
        SdkError::ServiceError(se) => {
            let err = se.into_err();
            let msg = format!("{}: {}", err.code().unwrap_or("Unknown"), err.message().unwrap_or(""));
            match &err {
                InvokeModelError::ThrottlingException(_) | InvokeModelError::ModelNotReadyException(_) => (EmbedError::Transient(msg), true),
                InvokeModelError::ServiceQuotaExceededException(_) => (EmbedError::Transient(msg), true),
                InvokeModelError::InternalServerException(_)
                | InvokeModelError::ServiceUnavailableException(_)
                | InvokeModelError::ModelTimeoutException(_)
                | InvokeModelError::ModelErrorException(_) => (EmbedError::Transient(msg), false),
                InvokeModelError::ValidationException(_) => (EmbedError::Invalid(msg), false),
                InvokeModelError::AccessDeniedException(_) | InvokeModelError::ResourceNotFoundException(_) => (EmbedError::Fatal(msg), false),
                _ => match err.code() {
                    Some("ThrottlingException") => (EmbedError::Transient(msg), true),
                    _ => (EmbedError::Transient(msg), false),
                },
            }
        }
        SdkError::TimeoutError(_) => (EmbedError::Transient("call timed out".into()), false),
        SdkError::DispatchFailure(d) => {
            let m = format!("dispatch failure: {d:?}");
            if m.contains("credentials") || m.contains("Credentials") {
                (EmbedError::Fatal(m), false)
            } else {
                (EmbedError::Transient(m), false)
            }
        }
        SdkError::ResponseError(r) => (EmbedError::Transient(format!("unreadable response: {r:?}")), false),
        SdkError::ConstructionFailure(c) => (EmbedError::Fatal(format!("request construction failed: {c:?}")), false),
        other => (EmbedError::Transient(other.to_string()), false),
    }
}

/// Accepts both Cohere response shapes: `embeddings: [[…]]` and `embeddings: {float: [[…]]}`.
pub fn parse_response(body: &[u8]) -> Result<Vec<Vec<f32>>, EmbedError> {
    let v: Value = serde_json::from_slice(body).map_err(|e| EmbedError::Transient(format!("malformed response body: {e}")))?;
    let emb = v.get("embeddings").ok_or_else(|| EmbedError::Transient("response has no `embeddings`".into()))?;
    let rows = match emb {
        Value::Array(rows) => rows,
        Value::Object(m) => m.get("float").and_then(Value::as_array).ok_or_else(|| EmbedError::Transient("response `embeddings` has no `float` list".into()))?,
        _ => return Err(EmbedError::Transient("response `embeddings` is neither a list nor an object".into())),
    };
    rows.iter()
        .map(|r| {
            r.as_array()
                .ok_or_else(|| EmbedError::Transient("an embedding is not a list".into()))?
                .iter()
                .map(|x| x.as_f64().map(|f| f as f32).ok_or_else(|| EmbedError::Transient("an embedding holds a non-number".into())))
                .collect()
        })
        .collect()
}

#[async_trait]
impl Embedder for BedrockEmbedder {
    fn model_id(&self) -> String {
        match self.opts.output_dimension {
            Some(d) => format!("{}@{d}", self.opts.model_id),
            None => self.opts.model_id.clone(),
        }
    }
    fn dimensions(&self) -> usize {
        self.dim
    }
    fn max_batch(&self) -> usize {
        MAX_TEXTS
    }
    fn max_text_chars(&self) -> usize {
        MAX_CHARS
    }
    fn concurrency(&self) -> usize {
        self.opts.concurrency.max(1)
    }

    async fn embed(&self, texts: &[String], purpose: Purpose) -> Result<Vec<Vec<f32>>, EmbedError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        if texts.len() > MAX_TEXTS {
            return Err(EmbedError::Invalid(format!("{} texts in one call; Bedrock Cohere takes at most {MAX_TEXTS}", texts.len())));
        }
        let body = self.body(texts, purpose);
        let mut attempt = 0u32;
        loop {
            self.wait_cooldown().await;
            match self.call_once(body.clone()).await {
                Ok(v) => {
                    if v.len() != texts.len() {
                        return Err(EmbedError::CountMismatch { got: v.len(), want: texts.len() });
                    }
                    if let Some(bad) = v.iter().find(|x| x.len() != self.dim) {
                        return Err(EmbedError::DimensionMismatch { got: bad.len(), want: self.dim });
                    }
                    return Ok(v);
                }
                Err((e @ (EmbedError::Invalid(_) | EmbedError::Fatal(_)), _)) => return Err(e),
                Err((e, throttled)) => {
                    attempt += 1;
                    if throttled {
                        self.throttles.fetch_add(1, Ordering::Relaxed);
                    }
                    if attempt >= self.opts.max_attempts.max(1) {
                        return Err(e);
                    }
                    self.retries.fetch_add(1, Ordering::Relaxed);
                    let wait = self.backoff(attempt);
                    if throttled {
                        self.open_cooldown(wait);
                    }
                    tracing::debug!(attempt, error = %e, wait_ms = wait.as_millis() as u64, "retrying InvokeModel");
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    fn stats(&self) -> EmbedStats {
        EmbedStats {
            calls: self.calls.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
            throttles: self.throttles.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_response_shapes_parse() {
        let a = parse_response(br#"{"id":"x","response_type":"embeddings_floats","embeddings":[[0.1,0.2],[0.3,0.4]],"texts":["a","b"]}"#).unwrap();
        let b = parse_response(br#"{"response_type":"embeddings_by_type","embeddings":{"float":[[0.1,0.2],[0.3,0.4]]}}"#).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.len(), 2);
        assert!(parse_response(b"not json").is_err());
        assert!(parse_response(br#"{"embeddings":{"int8":[[1]]}}"#).is_err());
    }

    #[test]
    fn dimensions_per_model() {
        assert_eq!(model_dimensions("cohere.embed-english-v3", None).unwrap(), 1024);
        assert_eq!(model_dimensions("cohere.embed-v4:0", None).unwrap(), 1536);
        assert_eq!(model_dimensions("cohere.embed-v4:0", Some(256)).unwrap(), 256);
        assert!(model_dimensions("cohere.embed-english-v3", Some(256)).is_err());
        assert!(model_dimensions("amazon.titan", None).is_err());
    }
}
