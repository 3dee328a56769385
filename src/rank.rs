//! Ranking: candidates from several generators (exact, prefix, typo, BM25, vector) are fused
//! into one score. Pure functions, so the rules can be tested without a database.
use serde::Serialize;

/// What the generators found about one package.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Signals {
    /// The attribute path equals the query.
    pub exact_attr: bool,
    /// pname (or the last attribute-path segment) equals the query.
    pub exact_name: bool,
    /// meta.mainProgram equals the query.
    pub exact_program: bool,
    /// The name starts with the query.
    pub prefix: bool,
    /// Edit distance of the name to the query, when within the typo budget.
    pub typo: Option<u32>,
    /// 1-based rank in the BM25 list.
    pub bm25_rank: Option<usize>,
    /// 1-based rank in the vector list.
    pub vector_rank: Option<usize>,
    pub vector_similarity: Option<f32>,
    /// BM25 score relative to the best hit (0..=1), when known.
    pub bm25_norm: Option<f64>,
    /// Vector similarity relative to the best hit (0..=1), when known.
    pub vector_norm: Option<f64>,
}

/// One candidate package with what is needed to rank and show it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Candidate {
    pub attribute_path: String,
    pub package_name: String,
    pub version: String,
    pub description: Option<String>,
    pub main_program: Option<String>,
    pub attr_depth: i32,
    pub broken: bool,
    pub insecure: bool,
    /// Number of maintainers: a weak sign of how much a package is used.
    pub maintainers: u32,
    /// How many other packages name this one in their description ("plugin for X",
    /// "X clone", "frontend for X"): how much of nixpkgs is built around it.
    pub mentions: u32,
    /// Platforms the package is built for (`meta.platforms`) and outputs it is split into:
    /// packaging effort, which tends to follow use.
    pub platforms: u32,
    pub outputs: u32,
    pub signals: Signals,
}

/// The weights of the fusion; defaults are the measured ones (see BENCHMARKS.md).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Weights {
    pub exact_attr: f64,
    pub exact_name: f64,
    pub exact_program: f64,
    pub prefix: f64,
    pub typo: f64,
    pub bm25: f64,
    pub vector: f64,
    /// Vector weight multiplier for single-word queries.
    pub single_word_vector: f64,
    /// Rank at which a list's contribution halves.
    pub rank_half: f64,
    /// Multipliers for attribute-path depth 0, 1 and deeper.
    pub depth: [f64; 3],
    /// Prior gain per natural-log unit of (1 + mentions by other packages).
    pub mentions: f64,
    /// Prior gain of the attribute whose last segment is the package's own name.
    pub canonical: f64,
    /// Prior gain per natural-log unit of (1 + platforms), and of the number of outputs.
    pub platforms: f64,
    pub outputs: f64,
    /// BM25 term-frequency saturation and length normalisation used for ranking.
    pub bm25_k1: f64,
    pub bm25_b: f64,
}

impl Default for Weights {
    fn default() -> Self {
        Weights {
            exact_attr: 100.0,
            exact_name: 80.0,
            exact_program: 75.0,
            prefix: 75.0,
            typo: 60.0,
            bm25: 40.0,
            vector: 40.0,
            single_word_vector: 0.6,
            rank_half: 3.0,
            depth: [1.0, 0.7, 0.55],
            mentions: 0.1,
            canonical: 0.05,
            platforms: 0.04,
            outputs: 0.05,
            // Less length normalisation than the fts default (0.75): a long, careful description
            // marks an established package more often than it dilutes one (BENCHMARKS.md).
            bm25_k1: 1.2,
            bm25_b: 0.5,
        }
    }
}

/// Package sets whose members should rarely beat a top-level package of the same name, beyond
/// those named like one (see [`is_package_set`]).
const DEEP_SETS: &[&str] = &["python", "php", "texlive", "linuxKernel", "lua5", "gnomeExtensions", "haskell", "dotnetPackages"];

/// A first attribute-path segment that names a package set: `python312Packages`,
/// `luajitPackages`, `vimPlugins`, `mpvScripts`, `ankiAddons`, `kdePackages`, …
pub fn is_package_set(first: &str) -> bool {
    const SUFFIXES: &[&str] = &["Packages", "Plugins", "Extensions", "Modules", "Addons", "Scripts", "Pkgs", "packages"];
    DEEP_SETS.iter().any(|s| first.starts_with(s)) || SUFFIXES.iter().any(|s| first.len() > s.len() && (first.ends_with(s) || first.match_indices(s).any(|(i, _)| first[i + s.len()..].starts_with('_'))))
}

/// Words before a name that make it a reference to another package: "plugin *for* zathura",
/// "implementation *of* jq", "inspired *by* hey".
const REF_BEFORE: &[&str] = &["for", "of", "with", "like", "by", "to", "on", "from", "around", "than", "over", "using", "via", "into", "atop"];
/// Words after a name that make it a reference: "jq *clone*", "hyprland *plugin*", "mpd *client*".
const REF_AFTER: &[&str] = &[
    "clone", "plugin", "plugins", "extension", "extensions", "frontend", "front-end", "wrapper", "module", "modules", "bindings", "binding",
    "theme", "themes", "compatible", "alternative", "replacement", "fork", "port", "client", "config", "configuration", "integration",
    "addon", "addons", "script", "scripts", "support", "gui", "tui", "backend", "server", "rewrite", "implementation", "interface",
    "widget", "applet", "companion", "helper", "utility", "tool", "tools", "library", "api", "protocol",
];

/// For each package (lower-cased pname and description), how many *other* pnames refer to it
/// in their descriptions: the name is a word there, right after a word such as "for" or "of"
/// or right before one such as "plugin" or "clone". The context keeps names that are also
/// common words ("hex editor", "release notes") from counting. Words are runs of
/// `[a-z0-9+_-]` starting with a letter or digit, so `magic-wormhole` and `c++` are whole
/// words; each pname counts once however many attribute paths (`python311Packages.x`,
/// `python312Packages.x`) repeat its description.
///
/// Returns the count of every referred word; look a package up by its pname and by the last
/// segment of its attribute path (`ghostscript` is the attribute of pname `ghostscript-with-X`).
pub fn mention_counts(names: &[&str], descriptions: &[Option<&str>]) -> std::collections::HashMap<String, u32> {
    use std::collections::{HashMap, HashSet};
    let mut counts: HashMap<String, u32> = HashMap::new();
    let mut order: Vec<usize> = (0..names.len().min(descriptions.len())).collect();
    order.sort_by_key(|&i| names[i]);
    let mut start = 0;
    while start < order.len() {
        let own = names[order[start]];
        let mut end = start;
        let mut refs: HashSet<String> = HashSet::new();
        while end < order.len() && names[order[end]] == own {
            if let Some(d) = descriptions[order[end]] {
                let words = description_words(d);
                for (i, w) in words.iter().enumerate() {
                    let before = i.checked_sub(1).map(|j| words[j].as_str()).unwrap_or("");
                    let after = words.get(i + 1).map(String::as_str).unwrap_or("");
                    if w.as_str() != own && (REF_BEFORE.contains(&before) || REF_AFTER.contains(&after)) {
                        refs.insert(w.clone());
                    }
                }
            }
            end += 1;
        }
        for w in refs {
            *counts.entry(w).or_default() += 1;
        }
        start = end;
    }
    counts
}

fn description_words(d: &str) -> Vec<String> {
    let lower = d.to_lowercase();
    let mut out = Vec::new();
    let mut cur = String::new();
    for c in lower.chars() {
        if c.is_ascii_alphanumeric() || (!cur.is_empty() && matches!(c, '+' | '_' | '-')) {
            cur.push(c);
        } else if !cur.is_empty() {
            out.push(std::mem::take(&mut cur));
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn rank_part(weight: f64, rank: Option<usize>, half: f64) -> f64 {
    match rank {
        Some(r) if r >= 1 => weight / (1.0 + (r as f64 - 1.0) / half),
        _ => 0.0,
    }
}

/// The fused score and the reasons it matched.
pub fn score(query: &str, c: &Candidate, w: &Weights) -> (f64, Vec<String>) {
    let s = &c.signals;
    let mut total = 0.0;
    let mut why = Vec::new();
    if s.exact_attr {
        total += w.exact_attr;
        why.push("exact attribute path".to_string());
    }
    if s.exact_name {
        total += w.exact_name;
        why.push("exact name".to_string());
    }
    if s.exact_program {
        total += w.exact_program;
        why.push(format!("provides program `{}`", c.main_program.as_deref().unwrap_or(query)));
    }
    if s.prefix && !s.exact_name {
        let ql = query.chars().count() as f64;
        // the shortest name that actually starts with the query
        let last = c.attribute_path.rsplit('.').next().unwrap_or(&c.package_name);
        let q = query.to_lowercase();
        let nl = [c.package_name.as_str(), last]
            .iter()
            .filter(|n| n.to_lowercase().starts_with(&q))
            .map(|n| n.chars().count())
            .min()
            .unwrap_or_else(|| c.package_name.chars().count())
            .max(1) as f64;
        total += w.prefix * (ql / nl).min(1.0);
        why.push("name starts with the query".to_string());
    }
    if let Some(d) = s.typo.filter(|d| *d > 0) {
        total += w.typo * (1.0 - 0.25 * d as f64);
        why.push(format!("name within {d} edit(s)"));
    }
    // Relative scores when known (equal scores earn equal credit), else rank decay.
    let b = match s.bm25_norm {
        Some(n) => w.bm25 * n.powi(3),
        None => rank_part(w.bm25, s.bm25_rank, w.rank_half),
    };
    if b > 0.0 {
        total += b;
        why.push(format!("text match (BM25 #{})", s.bm25_rank.unwrap_or(0)));
    }
    // A single word is usually a name: meaning counts less than for a described need.
    let vector_weight = if query.trim().contains(char::is_whitespace) { w.vector } else { w.vector * w.single_word_vector };
    let v = match s.vector_norm {
        Some(n) => vector_weight * n,
        None => rank_part(vector_weight, s.vector_rank, w.rank_half),
    };
    if v > 0.0 {
        total += v;
        why.push(format!("similar meaning (vector #{})", s.vector_rank.unwrap_or(0)));
    }
    (total * prior(c, w), why)
}

/// Plain, well-known packages beat namesakes deep in package sets: depth and set multipliers,
/// and a slight preference for shorter attribute paths.
pub fn prior(c: &Candidate, w: &Weights) -> f64 {
    let depth = match c.attr_depth {
        0 => w.depth[0],
        1 => w.depth[1],
        _ => w.depth[2],
    };
    let first = c.attribute_path.split('.').next().unwrap_or("");
    let set = if c.attr_depth > 0 && is_package_set(first) { 0.85 } else { 1.0 };
    let len = c.attribute_path.chars().count().min(60) as f64;
    // Well-maintained packages are more often the one meant: up to +12 % for 4+ maintainers.
    let care = 1.0 + 0.03 * c.maintainers.min(4) as f64;
    // Software that other packages are built around (plugins, frontends, clones) is more often
    // the one meant: +7 % at 1 mention, +24 % at 10, capped at 100.
    let footprint = 1.0 + w.mentions * (1.0 + c.mentions.min(100) as f64).ln();
    // Among attributes of one package (ghostscript, ghostscriptX, ghostscript_headless), the
    // one named like the package is the canonical build.
    let last = c.attribute_path.rsplit('.').next().unwrap_or("");
    let canonical = if !c.package_name.is_empty() && last.eq_ignore_ascii_case(&c.package_name) { 1.0 + w.canonical } else { 1.0 };
    // Packaging effort: built for every platform nixpkgs has (about 76) rather than Linux alone
    // (about 20), split into outputs (`bin`, `dev`, `man`, …). Together at most about +30 %.
    let effort = (1.0 + w.platforms * (1.0 + c.platforms.min(100) as f64).ln()) * (1.0 + w.outputs * (c.outputs.clamp(1, 8) as f64).ln());
    let mut p = depth * set * care * footprint * canonical * effort * (1.0 - 0.003 * len);
    if c.broken || c.insecure {
        p *= 0.5;
    }
    p
}

/// Sorts candidates by fused score (ties: shorter attribute path, then name).
pub fn fuse(query: &str, cands: Vec<Candidate>, w: &Weights) -> Vec<(Candidate, f64, Vec<String>)> {
    let mut scored: Vec<(Candidate, f64, Vec<String>)> = cands
        .into_iter()
        .map(|c| {
            let (s, why) = score(query, &c, w);
            (c, s, why)
        })
        .filter(|(_, s, _)| *s > 0.0)
        .collect();
    scored.sort_by(|a, b| {
        b.1.partial_cmp(&a.1)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then_with(|| a.0.attribute_path.len().cmp(&b.0.attribute_path.len()))
            .then_with(|| a.0.attribute_path.cmp(&b.0.attribute_path))
    });
    scored
}

/// Typo budget: edits allowed for a query of this many characters.
pub fn typo_budget(len: usize) -> u32 {
    match len {
        0..=3 => 0,
        4..=5 => 1,
        _ => 2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(path: &str, s: Signals) -> Candidate {
        Candidate {
            attribute_path: path.into(),
            package_name: path.rsplit('.').next().unwrap_or(path).into(),
            attr_depth: path.matches('.').count() as i32,
            signals: s,
            ..Default::default()
        }
    }

    #[test]
    fn exact_beats_text_match_and_top_level_beats_deep() {
        let w = Weights::default();
        let exact = cand("curl", Signals { exact_attr: true, exact_name: true, bm25_rank: Some(5), ..Default::default() });
        let deep = cand("python312Packages.curl", Signals { exact_name: true, bm25_rank: Some(1), ..Default::default() });
        let text = cand("curlie", Signals { prefix: true, bm25_rank: Some(2), ..Default::default() });
        let r = fuse("curl", vec![text, deep.clone(), exact], &w);
        assert_eq!(r[0].0.attribute_path, "curl");
        // the same name at top level beats the deep namesake
        let top = cand("curl", Signals { exact_name: true, bm25_rank: Some(1), ..Default::default() });
        assert!(score("curl", &top, &w).0 > score("curl", &deep, &w).0);
    }

    #[test]
    fn program_name_and_typo_rank_high() {
        let w = Weights::default();
        // both have text evidence (ripgrep's document names its program); the program match wins
        let prog = cand("ripgrep", Signals { exact_program: true, bm25_rank: Some(2), ..Default::default() });
        let noise = cand("rgxg", Signals { prefix: true, bm25_rank: Some(1), ..Default::default() });
        assert!(score("rg", &prog, &w).0 > score("rg", &noise, &w).0);
        let typo = cand("blender", Signals { typo: Some(1), ..Default::default() });
        let text = cand("blender-addon", Signals { bm25_rank: Some(1), ..Default::default() });
        assert!(score("blnder", &typo, &w).0 > score("blnder", &text, &w).0);
    }

    #[test]
    fn package_sets_are_recognised_by_name() {
        for set in ["python312Packages", "luajitPackages", "vimPlugins", "mpvScripts", "gnomeExtensions", "ocamlPackages_4_14", "texlive"] {
            assert!(is_package_set(set), "{set}");
        }
        for top in ["ripgrep", "imagemagick", "Packages", "packages", "kitty"] {
            assert!(!is_package_set(top), "{top}");
        }
        // a namesake inside a set with no list entry of its own is still demoted
        let w = Weights::default();
        let top = cand("imagemagick", Signals { exact_program: true, ..Default::default() });
        let deep = cand("luajitPackages.magick", Signals { exact_name: true, ..Default::default() });
        assert!(score("magick", &top, &w).0 > score("magick", &deep, &w).0);
    }

    #[test]
    fn mentions_count_distinct_other_packages() {
        let names = ["zathura", "zathura-pdf-mupdf", "zathura-pdf-mupdf", "tdf", "jaq", "gojq", "jq", "hex", "hexedit", "c++filt"];
        let descs = [
            Some("Highly customizable PDF viewer"),
            Some("PDF plugin for zathura (mupdf backend)"),
            Some("PDF plugin for zathura (mupdf backend)"), // the same pname again: counted once
            Some("Tui-based PDF viewer, like Zathura."),     // case and punctuation do not matter
            Some("Jq clone focused on correctness"),
            Some("Pure Go implementation of jq"),
            Some("Lightweight and flexible command-line JSON processor; jq is not jquery"),
            Some("Futuristic take on hexdump"),
            Some("Hex editor with a curses interface"), // a common word, not a reference
            None,
        ];
        let m = mention_counts(&names, &descs);
        let n = |k: &str| m.get(k).copied().unwrap_or(0);
        assert_eq!(n("zathura"), 2, "zathura: a plugin and tdf");
        assert_eq!(n("tdf"), 0, "tdf");
        assert_eq!(n("jq"), 2, "jq: jaq and gojq, not itself");
        assert_eq!(n("jaq"), 0);
        assert_eq!(n("hex"), 0, "`hex editor` does not refer to the hex package");
        assert!(mention_counts(&[], &[]).is_empty());
    }

    #[test]
    fn mentions_by_other_packages_break_ties() {
        let w = Weights::default();
        let s = Signals { bm25_rank: Some(1), bm25_norm: Some(1.0), ..Default::default() };
        let known = Candidate { mentions: 12, ..cand("zathura", s.clone()) };
        let unknown = cand("tdf", s);
        assert!(score("pdf viewer", &known, &w).0 > score("pdf viewer", &unknown, &w).0);
        // but they do not outweigh an exact name
        let exact = cand("tdf", Signals { exact_name: true, ..Default::default() });
        let famous = Candidate { mentions: 100, ..cand("zathura", Signals { prefix: true, ..Default::default() }) };
        assert!(score("tdf", &exact, &w).0 > score("tdf", &famous, &w).0);
        // and the effect is capped
        let a = Candidate { mentions: 100, ..known.clone() };
        let b = Candidate { mentions: 100_000, ..known };
        assert_eq!(prior(&a, &w), prior(&b, &w));
    }

    #[test]
    fn packaging_effort_breaks_ties_but_not_a_better_match() {
        let w = Weights::default();
        let s = Signals { bm25_rank: Some(1), bm25_norm: Some(1.0), ..Default::default() };
        // the same text evidence: built for every platform and split into outputs wins, even
        // with the longer attribute path
        let everywhere = Candidate { platforms: 76, outputs: 3, ..cand("openshot-qt", s.clone()) };
        let linux_only = Candidate { platforms: 20, outputs: 1, ..cand("avidemux", s) };
        assert!(score("video editor", &everywhere, &w).0 > score("video editor", &linux_only, &w).0);
        // but it does not outweigh a clearly better text match
        let weaker = Candidate { platforms: 100, outputs: 8, ..cand("kdenlive", Signals { bm25_rank: Some(2), bm25_norm: Some(0.7), ..Default::default() }) };
        assert!(score("video editor", &linux_only, &w).0 > score("video editor", &weaker, &w).0);
        // and it is capped
        let a = Candidate { platforms: 100, outputs: 8, ..everywhere.clone() };
        let b = Candidate { platforms: 5000, outputs: 80, ..everywhere };
        assert_eq!(prior(&a, &w), prior(&b, &w));
    }

    #[test]
    fn the_canonical_attribute_beats_its_variants() {
        let w = Weights::default();
        let s = Signals { exact_program: true, ..Default::default() };
        let canon = Candidate { package_name: "ghostscript".into(), ..cand("ghostscript", s.clone()) };
        // a shorter attribute path would otherwise win on length
        let variant = Candidate { package_name: "ghostscript".into(), ..cand("gs9", s) };
        assert!(score("gs", &canon, &w).0 > score("gs", &variant, &w).0);
    }

    #[test]
    fn broken_is_demoted_and_budget_grows_with_length() {
        let w = Weights::default();
        let mut b = cand("x", Signals { exact_name: true, ..Default::default() });
        let ok = score("x", &b, &w).0;
        b.broken = true;
        assert!(score("x", &b, &w).0 < ok);
        assert_eq!(typo_budget(3), 0);
        assert_eq!(typo_budget(5), 1);
        assert_eq!(typo_budget(9), 2);
    }
}
