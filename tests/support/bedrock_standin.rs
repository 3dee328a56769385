//! A stand-in for Bedrock's InvokeModel on 127.0.0.1, speaking its wire contract, for the real
//! `aws-sdk-bedrockruntime` client: `POST /model/{modelId}/invoke`, SigV4 with signing name
//! `bedrock`, Cohere v3/v4 request bodies, both response shapes, and Bedrock's errors
//! (`x-amzn-ErrorType` header plus `{"message": …}`). Faults are injected on demand.
//! Plain tokio + a minimal HTTP/1.1 reader, so benchmarks can use it too.
#![allow(dead_code)]
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// A fault the next calls get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    Throttle,
    ModelNotReady,
    Timeout408,
    Internal500,
    Unavailable503,
    Malformed,
    AccessDenied,
}

#[derive(Default)]
pub struct State {
    pub calls: AtomicU64,
    pub texts: AtomicU64,
    pub ok: AtomicU64,
    pub faults_sent: AtomicU64,
    pub rejected_auth: AtomicU64,
    pub validation_errors: AtomicU64,
    pub in_flight: AtomicUsize,
    pub max_in_flight: AtomicUsize,
    /// Latency added to every call.
    pub latency_ms: AtomicU64,
    /// Answer with `embeddings: {float: …}` even when not asked.
    pub by_type: AtomicBool,
    /// Faults served first, in order.
    pub queue: Mutex<Vec<Fault>>,
    /// Every n-th call (n > 0) gets a throttle, then the call after it succeeds.
    pub throttle_every: AtomicU64,
    /// Texts containing this marker make the whole call a ValidationException.
    pub poison: Mutex<Option<String>>,
    /// Texts seen, with how many times each was embedded.
    pub seen: Mutex<HashMap<String, u32>>,
    /// input_type of the last call.
    pub last_input_type: Mutex<Option<String>>,
    pub model_ids: Mutex<Vec<String>>,
}

pub struct StandIn {
    pub addr: SocketAddr,
    pub state: Arc<State>,
    handle: tokio::task::JoinHandle<()>,
}

impl Drop for StandIn {
    fn drop(&mut self) {
        self.handle.abort();
    }
}

impl StandIn {
    pub async fn start() -> std::io::Result<StandIn> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State::default());
        let st = state.clone();
        let handle = tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                let st = st.clone();
                tokio::spawn(async move {
                    let _ = serve(sock, st).await;
                });
            }
        });
        Ok(StandIn { addr, state, handle })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn push_faults(&self, f: &[Fault]) {
        if let Ok(mut q) = self.state.queue.lock() {
            q.extend_from_slice(f);
        }
    }
}

/// The vector the stand-in returns for a text: deterministic, unit length.
pub fn vector_for(text: &str, dim: usize) -> Vec<f32> {
    let d = Sha256::digest(text.as_bytes());
    let mut s = u64::from_le_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]]);
    let mut v: Vec<f32> = (0..dim)
        .map(|_| {
            s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = s;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            ((z ^ (z >> 31)) >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
        })
        .collect();
    let n: f32 = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter_mut().for_each(|x| *x /= n);
    v
}

struct Req {
    method: String,
    path: String,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

async fn read_req(r: &mut BufReader<TcpStream>) -> std::io::Result<Option<Req>> {
    let mut line = String::new();
    if r.read_line(&mut line).await? == 0 {
        return Ok(None);
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let path = parts.next().unwrap_or("").to_string();
    let mut headers = HashMap::new();
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).await? == 0 {
            return Ok(None);
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let len: usize = headers.get("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).await?;
    Ok(Some(Req { method, path, headers, body }))
}

async fn respond(w: &mut BufReader<TcpStream>, status: u16, error_type: Option<&str>, body: &[u8]) -> std::io::Result<()> {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        408 => "Request Timeout",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Error",
    };
    let mut head = format!("HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nx-amzn-requestid: standin\r\n", body.len());
    if let Some(t) = error_type {
        head.push_str(&format!("x-amzn-errortype: {t}\r\n"));
    }
    head.push_str("\r\n");
    let s = w.get_mut();
    s.write_all(head.as_bytes()).await?;
    s.write_all(body).await?;
    s.flush().await
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn serve(sock: TcpStream, st: Arc<State>) -> std::io::Result<()> {
    let mut r = BufReader::new(sock);
    while let Some(req) = read_req(&mut r).await? {
        let n = st.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        st.max_in_flight.fetch_max(n, Ordering::SeqCst);
        let res = handle(&mut r, &st, req).await;
        st.in_flight.fetch_sub(1, Ordering::SeqCst);
        res?;
    }
    Ok(())
}

fn error(msg: &str) -> Vec<u8> {
    json!({ "message": msg }).to_string().into_bytes()
}

async fn handle(w: &mut BufReader<TcpStream>, st: &State, req: Req) -> std::io::Result<()> {
    let call = st.calls.fetch_add(1, Ordering::SeqCst) + 1;
    let lat = st.latency_ms.load(Ordering::Relaxed);
    if lat > 0 {
        tokio::time::sleep(Duration::from_millis(lat)).await;
    }
    // Route: POST /model/{modelId}/invoke
    let model = match (req.method.as_str(), req.path.strip_prefix("/model/").and_then(|p| p.strip_suffix("/invoke"))) {
        ("POST", Some(m)) => percent_decode(m),
        _ => return respond(w, 404, Some("UnknownOperationException"), &error("unknown route")).await,
    };
    if let Ok(mut m) = st.model_ids.lock() {
        m.push(model.clone());
    }
    // SigV4 with signing name bedrock.
    let auth = req.headers.get("authorization").cloned().unwrap_or_default();
    if !auth.starts_with("AWS4-HMAC-SHA256 ") || !auth.contains("/bedrock/aws4_request") || !auth.contains("Signature=") {
        st.rejected_auth.fetch_add(1, Ordering::SeqCst);
        return respond(w, 403, Some("AccessDeniedException"), &error("missing or invalid SigV4 signature")).await;
    }
    let fault = {
        let mut q = st.queue.lock().map_err(|_| std::io::Error::other("poisoned"))?;
        if q.is_empty() { None } else { Some(q.remove(0)) }
    };
    let every = st.throttle_every.load(Ordering::Relaxed);
    let fault = fault.or(if every > 0 && call % every == 0 { Some(Fault::Throttle) } else { None });
    if let Some(f) = fault {
        st.faults_sent.fetch_add(1, Ordering::SeqCst);
        return match f {
            Fault::Throttle => respond(w, 429, Some("ThrottlingException"), &error("Too many requests, please wait before trying again.")).await,
            Fault::ModelNotReady => respond(w, 429, Some("ModelNotReadyException"), &error("Model is not ready")).await,
            Fault::Timeout408 => respond(w, 408, Some("ModelTimeoutException"), &error("Model has timed out")).await,
            Fault::Internal500 => respond(w, 500, Some("InternalServerException"), &error("Internal server error")).await,
            Fault::Unavailable503 => respond(w, 503, Some("ServiceUnavailableException"), &error("Service unavailable")).await,
            Fault::AccessDenied => respond(w, 403, Some("AccessDeniedException"), &error("not authorized")).await,
            Fault::Malformed => respond(w, 200, None, b"{\"embeddings\": [[0.1, 0.2").await,
        };
    }
    let body: Value = match serde_json::from_slice(&req.body) {
        Ok(v) => v,
        Err(e) => {
            st.validation_errors.fetch_add(1, Ordering::SeqCst);
            return respond(w, 400, Some("ValidationException"), &error(&format!("Malformed input request: {e}"))).await;
        }
    };
    let texts: Vec<String> = body.get("texts").and_then(Value::as_array).map(|a| a.iter().filter_map(|t| t.as_str().map(str::to_string)).collect()).unwrap_or_default();
    let input_type = body.get("input_type").and_then(Value::as_str).map(str::to_string);
    let v4 = model.starts_with("cohere.embed-v4");
    let invalid = if texts.is_empty() {
        Some("texts must not be empty".to_string())
    } else if texts.len() > 96 {
        Some(format!("texts has {} items; at most 96 are allowed", texts.len()))
    } else if input_type.is_none() {
        Some("input_type is required".to_string())
    } else if texts.iter().any(|t| t.chars().count() > 2048) {
        Some("a text is longer than 2048 characters".to_string())
    } else if !model.starts_with("cohere.embed") {
        Some(format!("model {model} is not an embedding model"))
    } else {
        let poison = st.poison.lock().ok().and_then(|p| p.clone());
        poison.and_then(|p| texts.iter().find(|t| t.contains(&p)).map(|_| "input contains a rejected text".to_string()))
    };
    if let Some(msg) = invalid {
        st.validation_errors.fetch_add(1, Ordering::SeqCst);
        return respond(w, 400, Some("ValidationException"), &error(&msg)).await;
    }
    if let Ok(mut l) = st.last_input_type.lock() {
        *l = input_type;
    }
    let dim = if v4 { body.get("output_dimension").and_then(Value::as_u64).unwrap_or(1536) as usize } else { 1024 };
    let vectors: Vec<Vec<f32>> = texts.iter().map(|t| vector_for(t, dim)).collect();
    if let Ok(mut seen) = st.seen.lock() {
        for t in &texts {
            *seen.entry(t.clone()).or_default() += 1;
        }
    }
    st.texts.fetch_add(texts.len() as u64, Ordering::SeqCst);
    st.ok.fetch_add(1, Ordering::SeqCst);
    let by_type = body.get("embedding_types").is_some() || st.by_type.load(Ordering::Relaxed);
    let resp = if by_type {
        json!({"id": format!("standin-{call}"), "response_type": "embeddings_by_type", "embeddings": {"float": vectors}, "texts": texts})
    } else {
        json!({"id": format!("standin-{call}"), "response_type": "embeddings_floats", "embeddings": vectors, "texts": texts})
    };
    respond(w, 200, None, resp.to_string().as_bytes()).await
}
