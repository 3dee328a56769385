//! A local sentence-embedding model on the CPU: all-MiniLM-L6-v2 (384-d) with candle.
//! Mean pooling over the attention mask, then L2 normalisation, as sentence-transformers does.
//! The weights come from `scripts/setup.sh model`; nothing is downloaded at run time.
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config as BertConfig};
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

use crate::error::EmbedError;
use crate::traits::{EmbedStats, Embedder, Purpose};

pub const MODEL_ID: &str = "sentence-transformers/all-MiniLM-L6-v2";
pub const SETUP_HINT: &str = "scripts/setup.sh model";
/// Tokens per text, as sentence-transformers configures this model.
pub const MAX_TOKENS: usize = 256;

/// A loaded model. `embed` runs on a blocking thread; the driver keeps one call in flight per
/// worker, and each worker computes with a single thread (measured faster than one batch over
/// both cores).
pub struct LocalEmbedder {
    inner: Arc<Inner>,
    workers: usize,
    calls: AtomicU64,
}

struct Inner {
    model: BertModel,
    tokenizer: Tokenizer,
    device: Device,
    dim: usize,
}

fn fatal(what: &str, e: impl std::fmt::Display) -> EmbedError {
    EmbedError::Fatal(format!("{what}: {e}"))
}

impl LocalEmbedder {
    /// Loads the model from `dir` (model.safetensors, tokenizer.json, config.json).
    /// `threads` is the number of workers (0: one per core).
    pub fn load(dir: &Path, threads: usize) -> Result<Self, EmbedError> {
        let file = |n: &str| -> Result<PathBuf, EmbedError> {
            let p = dir.join(n);
            if p.exists() {
                Ok(p)
            } else {
                Err(EmbedError::Fatal(format!(
                    "local embedding model file {} is missing; install the model with `{SETUP_HINT}` (or set FDNIX_MODEL_DIR)",
                    p.display()
                )))
            }
        };
        let weights = file("model.safetensors")?;
        let tok_path = file("tokenizer.json")?;
        let cfg_path = file("config.json")?;
        // One compute thread per worker, unless the user chose otherwise.
        if std::env::var_os("RAYON_NUM_THREADS").is_none() && std::env::var_os("CANDLE_NUM_THREADS").is_none() {
            std::env::set_var("RAYON_NUM_THREADS", "1");
        }
        let cfg_text = std::fs::read_to_string(&cfg_path).map_err(|e| fatal(&cfg_path.display().to_string(), e))?;
        let cfg: BertConfig = serde_json::from_str(&cfg_text).map_err(|e| fatal("config.json", e))?;
        let device = Device::Cpu;
        // SAFETY: the weights file is not modified while mapped (it is installed read-only by the setup script).
        let vb = unsafe { VarBuilder::from_mmaped_safetensors(&[weights], DType::F32, &device) }.map_err(|e| fatal("model.safetensors", e))?;
        let model = BertModel::load(vb, &cfg).map_err(|e| fatal("loading BERT weights", e))?;
        let mut tokenizer = Tokenizer::from_file(&tok_path).map_err(|e| fatal("tokenizer.json", e))?;
        tokenizer.with_padding(Some(PaddingParams { strategy: PaddingStrategy::BatchLongest, ..Default::default() }));
        tokenizer
            .with_truncation(Some(TruncationParams { max_length: MAX_TOKENS, ..Default::default() }))
            .map_err(|e| fatal("tokenizer truncation", e))?;
        let workers = if threads == 0 { std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1) } else { threads };
        Ok(LocalEmbedder { inner: Arc::new(Inner { model, tokenizer, device, dim: cfg.hidden_size }), workers, calls: AtomicU64::new(0) })
    }
}

impl Inner {
    fn embed_sync(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let inv = |e: &dyn std::fmt::Display| EmbedError::Invalid(format!("local model: {e}"));
        let enc = self.tokenizer.encode_batch(texts.to_vec(), true).map_err(|e| inv(&e))?;
        let n = enc.len();
        let len = enc.first().map(|e| e.get_ids().len()).unwrap_or(0);
        let mut ids = Vec::with_capacity(n * len);
        let mut mask = Vec::with_capacity(n * len);
        for e in &enc {
            ids.extend(e.get_ids().iter().copied());
            mask.extend(e.get_attention_mask().iter().copied());
        }
        let run = || -> candle_core::Result<Vec<Vec<f32>>> {
            let input = Tensor::from_vec(ids, (n, len), &self.device)?;
            let mask_t = Tensor::from_vec(mask, (n, len), &self.device)?;
            let types = input.zeros_like()?;
            let out = self.model.forward(&input, &types, Some(&mask_t))?; // (n, len, dim)
            let m = mask_t.to_dtype(DType::F32)?.unsqueeze(2)?; // (n, len, 1)
            let summed = out.broadcast_mul(&m)?.sum(1)?; // (n, dim)
            let counts = m.sum(1)?.clamp(1e-9, f64::MAX)?; // (n, 1)
            let mean = summed.broadcast_div(&counts)?;
            let norm = mean.sqr()?.sum_keepdim(1)?.sqrt()?.clamp(1e-12, f64::MAX)?;
            mean.broadcast_div(&norm)?.to_vec2::<f32>()
        };
        run().map_err(|e| inv(&e))
    }
}

#[async_trait]
impl Embedder for LocalEmbedder {
    fn model_id(&self) -> String {
        MODEL_ID.to_string()
    }
    fn dimensions(&self) -> usize {
        self.inner.dim
    }
    fn max_batch(&self) -> usize {
        32
    }
    fn max_text_chars(&self) -> usize {
        // About 150 word pieces: the name, program and description (or the start of the long
        // description when there is none), where what a package does is said. Longer inputs
        // cost quadratic attention time and move the mean-pooled vector away from that summary.
        600
    }
    fn concurrency(&self) -> usize {
        self.workers
    }
    async fn embed(&self, texts: &[String], _purpose: Purpose) -> Result<Vec<Vec<f32>>, EmbedError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let inner = self.inner.clone();
        let texts = texts.to_vec();
        tokio::task::spawn_blocking(move || inner.embed_sync(&texts)).await.map_err(|e| EmbedError::Fatal(format!("embedding worker: {e}")))?
    }
    fn stats(&self) -> EmbedStats {
        EmbedStats { calls: self.calls.load(Ordering::Relaxed), ..Default::default() }
    }
}

impl LocalEmbedder {
    /// Embeds on the calling thread (for benchmarks and the search command).
    pub fn embed_blocking(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        self.inner.embed_sync(texts)
    }
}
