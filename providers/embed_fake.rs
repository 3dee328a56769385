//! Fake embedders: real, deterministic implementations of [`Embedder`] for offline runs and
//! tests. `HashEmbedder` gives each distinct text its own pseudo-random unit vector;
//! `LexicalEmbedder` hashes word and character-trigram features, so texts that share words
//! land near each other and ranking tests mean something.
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use sha2::{Digest, Sha256};

use crate::error::EmbedError;
use crate::traits::{EmbedStats, Embedder, Purpose};

fn normalize(v: &mut [f32]) {
    let n: f32 = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if n > 0.0 {
        v.iter_mut().for_each(|x| *x /= n);
    }
}

/// splitmix64: a tiny, well-mixed PRNG step.
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn seed_of(s: &str) -> u64 {
    let d = Sha256::digest(s.as_bytes());
    u64::from_le_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]])
}

/// A pseudo-random unit vector per distinct text (sha256 seeded).
#[derive(Debug)]
pub struct HashEmbedder {
    dim: usize,
    calls: AtomicU64,
}

impl HashEmbedder {
    pub fn new(dim: usize) -> Self {
        HashEmbedder { dim: dim.max(1), calls: AtomicU64::new(0) }
    }

    pub fn vector(&self, text: &str) -> Vec<f32> {
        let mut st = seed_of(text);
        let mut v: Vec<f32> = (0..self.dim).map(|_| (splitmix(&mut st) >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0).collect();
        normalize(&mut v);
        v
    }
}

#[async_trait]
impl Embedder for HashEmbedder {
    fn model_id(&self) -> String {
        format!("fake-hash-{}", self.dim)
    }
    fn dimensions(&self) -> usize {
        self.dim
    }
    fn max_batch(&self) -> usize {
        256
    }
    async fn embed(&self, texts: &[String], _purpose: Purpose) -> Result<Vec<Vec<f32>>, EmbedError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        Ok(texts.iter().map(|t| self.vector(t)).collect())
    }
    fn stats(&self) -> EmbedStats {
        EmbedStats { calls: self.calls.load(Ordering::Relaxed), ..Default::default() }
    }
}

/// Hashed bag of words plus character trigrams (feature hashing with signs), L2-normalised.
#[derive(Debug)]
pub struct LexicalEmbedder {
    dim: usize,
    calls: AtomicU64,
}

impl LexicalEmbedder {
    pub fn new(dim: usize) -> Self {
        LexicalEmbedder { dim: dim.max(1), calls: AtomicU64::new(0) }
    }

    fn add(&self, v: &mut [f32], feature: &str, weight: f32) {
        let h = seed_of(feature);
        let idx = (h % self.dim as u64) as usize;
        let sign = if (h >> 63) == 0 { 1.0 } else { -1.0 };
        v[idx] += sign * weight;
    }

    pub fn vector(&self, text: &str) -> Vec<f32> {
        let mut v = vec![0f32; self.dim];
        let lower = text.to_lowercase();
        for word in lower.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()) {
            self.add(&mut v, &format!("w:{word}"), 1.0);
            let padded: Vec<char> = format!(" {word} ").chars().collect();
            for tri in padded.windows(3) {
                let t: String = tri.iter().collect();
                self.add(&mut v, &format!("t:{t}"), 0.3);
            }
        }
        normalize(&mut v);
        if v.iter().all(|x| *x == 0.0) {
            // Text without any word: a fixed unit vector rather than zero.
            v[0] = 1.0;
        }
        v
    }
}

#[async_trait]
impl Embedder for LexicalEmbedder {
    fn model_id(&self) -> String {
        format!("fake-lexical-{}", self.dim)
    }
    fn dimensions(&self) -> usize {
        self.dim
    }
    fn max_batch(&self) -> usize {
        256
    }
    async fn embed(&self, texts: &[String], _purpose: Purpose) -> Result<Vec<Vec<f32>>, EmbedError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        Ok(texts.iter().map(|t| self.vector(t)).collect())
    }
    fn stats(&self) -> EmbedStats {
        EmbedStats { calls: self.calls.load(Ordering::Relaxed), ..Default::default() }
    }
}

/// Cosine similarity of two vectors.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    if na == 0.0 || nb == 0.0 { 0.0 } else { dot / (na * nb) }
}
