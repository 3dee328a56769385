//! The texts that get indexed: the BM25 document and the embedding document.
use sha2::{Digest, Sha256};

use crate::model::Package;
use crate::traits::DocFields;

/// Splits identifiers into the words a user types: `python312Packages.numpy` → `python312 Packages numpy`,
/// `nix-output-monitor` → `nix output monitor`, `libreoffice-still` → `libreoffice still`.
pub fn split_words(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    let mut prev: Option<char> = None;
    for c in s.chars() {
        if !c.is_alphanumeric() {
            if !out.ends_with(' ') && !out.is_empty() {
                out.push(' ');
            }
            prev = None;
            continue;
        }
        if let Some(p) = prev {
            if (p.is_lowercase() || p.is_ascii_digit()) && c.is_uppercase() && !out.ends_with(' ') {
                out.push(' ');
            }
        }
        out.push(c);
        prev = Some(c);
    }
    out.trim_end().to_string()
}

/// The host of a URL, split into words (`https://www.gnu.org/x` → `gnu org`).
fn host_words(url: &str) -> String {
    let rest = url.split("://").nth(1).unwrap_or(url);
    let host = rest.split('/').next().unwrap_or("");
    let host = host.strip_prefix("www.").unwrap_or(host);
    split_words(host)
}

/// The BM25 document for a package: names, attribute path,
/// program, descriptions, homepage host, maintainers and licenses.
pub fn fts_text(p: &Package) -> String {
    let mut parts: Vec<String> = Vec::with_capacity(16);
    // Each name once: the name generators (exact, prefix, typo) already carry name matches,
    // and a shorter document builds a faster index. The attribute path is split into words
    // (`python312Packages.numpy` → `python312 Packages numpy`), so its last segment and the
    // set name both count; camel case is split because the tokenizer lower-cases first.
    parts.push(p.package_name.clone());
    let name_words = split_words(&p.package_name);
    if name_words != p.package_name {
        parts.push(name_words);
    }
    if p.attribute_path != p.package_name {
        parts.push(split_words(&p.attribute_path));
    }
    if let Some(mp) = p.main_program.as_deref().filter(|mp| *mp != p.package_name) {
        parts.push(mp.to_string());
    }
    if let Some(d) = &p.description {
        parts.push(d.clone());
    }
    if let Some(d) = &p.long_description {
        parts.push(d.clone());
    }
    for h in &p.homepage {
        parts.push(host_words(h));
    }
    for m in &p.maintainers {
        if let Some(g) = &m.github {
            parts.push(g.clone());
        }
        if let Some(n) = &m.name {
            parts.push(n.clone());
        }
    }
    for l in &p.licenses {
        if let Some(s) = l.label() {
            parts.push(s.to_string());
        }
    }
    parts.join(" \n")
}

impl From<&Package> for DocFields {
    fn from(p: &Package) -> Self {
        DocFields {
            package_id: p.package_id.clone(),
            package_name: p.package_name.clone(),
            main_program: p.main_program.clone(),
            description: p.description.clone(),
            long_description: p.long_description.clone(),
            homepage: p.homepage.clone(),
            licenses: p.licenses.iter().filter_map(|l| l.label().map(str::to_string)).collect(),
        }
    }
}

/// The embedding document: name, program and the one-line description; the long description
/// only stands in when there is no description. A described need ("pdf viewer") is matched
/// against what a package says it is. Mean-pooled over a long text, that summary is diluted,
/// and it is the established packages that tend to carry long descriptions, so including
/// them ranked well-known tools below terse lookalikes (measured: BENCHMARKS.md). Homepages,
/// licenses and the long description stay searchable through BM25.
pub fn embedding_text(d: &DocFields, max_chars: usize) -> String {
    let mut s = String::with_capacity(256);
    s.push_str(&d.package_name);
    if let Some(mp) = d.main_program.as_deref().filter(|mp| *mp != d.package_name) {
        s.push_str(" (");
        s.push_str(mp);
        s.push(')');
    }
    let clean = |x: &str| x.split_whitespace().collect::<Vec<_>>().join(" ");
    let summary = d
        .description
        .as_deref()
        .filter(|x| !x.trim().is_empty())
        .or_else(|| d.long_description.as_deref().filter(|x| !x.trim().is_empty()));
    if let Some(desc) = summary {
        s.push_str(": ");
        s.push_str(clean(desc).trim_end_matches('.'));
        s.push('.');
    }
    truncate_chars(&s, max_chars)
}

/// Cuts a string to at most `n` characters (not bytes).
pub fn truncate_chars(s: &str, n: usize) -> String {
    match s.char_indices().nth(n) {
        Some((i, _)) => s[..i].to_string(),
        None => s.to_string(),
    }
}

/// Stable hash of an embedding document (hex sha256, 32 hex digits).
pub fn text_hash(text: &str) -> String {
    let d = Sha256::digest(text.as_bytes());
    hex::encode(&d[..16])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_words_handles_camel_case_and_separators() {
        assert_eq!(split_words("python312Packages.numpy"), "python312 Packages numpy");
        assert_eq!(split_words("nix-output-monitor"), "nix output monitor");
        assert_eq!(split_words("emacsPackages.image+"), "emacs Packages image");
    }

    #[test]
    fn fts_text_contains_what_users_search() {
        let p = Package {
            package_id: "ripgrep".into(),
            package_name: "ripgrep".into(),
            attribute_path: "ripgrep".into(),
            main_program: Some("rg".into()),
            description: Some("Utility that combines the usability of The Silver Searcher".into()),
            homepage: vec!["https://github.com/BurntSushi/ripgrep".into()],
            licenses: vec![crate::model::License { spdx_id: Some("MIT".into()), ..Default::default() }],
            maintainers: vec![crate::model::Maintainer { github: Some("someone".into()), ..Default::default() }],
            ..Default::default()
        };
        let t = fts_text(&p);
        for w in ["ripgrep", "rg", "Silver", "github com", "MIT", "someone"] {
            assert!(t.contains(w), "{w} missing from {t}");
        }
    }

    #[test]
    fn embedding_text_is_capped_and_hash_is_stable() {
        let d = DocFields {
            package_id: "x".into(),
            package_name: "zathura".into(),
            main_program: Some("zathura".into()),
            description: Some("A highly customizable and functional PDF viewer".into()),
            long_description: Some("long ".repeat(1000)),
            homepage: vec!["https://pwmt.org/projects/zathura".into()],
            licenses: vec!["Zlib".into()],
            ..Default::default()
        };
        let short = embedding_text(&DocFields { long_description: None, ..d.clone() }, 300);
        assert_eq!(short, "zathura: A highly customizable and functional PDF viewer.", "homepage and license stay out of the vector text");
        let t = embedding_text(&d, 30);
        assert_eq!(t, "zathura: A highly customizable");
        assert_eq!(embedding_text(&d, 300), "zathura: A highly customizable and functional PDF viewer.", "no long description next to a description");
        let only_long = DocFields { description: None, long_description: Some("Views  PDF\nfiles.".into()), ..d.clone() };
        assert_eq!(embedding_text(&only_long, 300), "zathura: Views PDF files.", "the long description stands in for a missing one");
        assert_eq!(text_hash(&t), text_hash(&t.clone()));
        assert_ne!(text_hash(&t), text_hash("zathura"));
        assert_eq!(truncate_chars("héllo", 2), "hé");
    }
}
