//! The DuckDB store: `packages`, `packages_fts_source`, `embeddings`, `fdnix_metadata`,
//! a BM25 index (fts extension) and an HNSW index (vss extension), in one file.
//! Extensions load from a local directory; nothing is downloaded at run time.
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{
    ArrayBuilder, ArrayRef, BooleanBuilder, FixedSizeListBuilder, Float32Builder, Int32Builder, Int64Builder, ListBuilder, StringBuilder,
    StructBuilder, TimestampMicrosecondBuilder,
};
use arrow::datatypes::{DataType, Field, Fields, Schema};
use arrow::record_batch::RecordBatch;
use async_trait::async_trait;
use duckdb::{params, Connection};

use crate::error::StoreError;
use crate::model::Package;
use crate::traits::{Counts, DocFields, EmbedFilter, FtsParams, HnswParams, Store, StoreFactory, VectorRow, VectorSpace};

/// The schema DuckDB derives for the FTS index of `packages_fts_source`.
pub const FTS_SCHEMA: &str = "fts_main_packages_fts_source";
pub const HNSW_INDEX: &str = "embeddings_hnsw_idx";
/// The setup script that installs the extensions, named in errors.
pub const SETUP_HINT: &str = "scripts/setup.sh extensions";

/// Snowball stemmers the fts extension knows, plus `none`.
pub const STEMMERS: &[&str] = &[
    "arabic", "basque", "catalan", "danish", "dutch", "english", "finnish", "french", "german", "greek", "hindi", "hungarian",
    "indonesian", "irish", "italian", "lithuanian", "nepali", "norwegian", "porter", "portuguese", "romanian", "russian", "serbian",
    "spanish", "swedish", "tamil", "turkish", "none",
];

fn db(e: duckdb::Error) -> StoreError {
    StoreError::Db(e.to_string())
}

/// A plain SQL identifier: letters, digits and underscores, not starting with a digit.
pub fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && s.len() <= 63
}

/// Where the extensions of this DuckDB build live under `dir`.
pub fn extension_files(dir: &Path) -> (PathBuf, [PathBuf; 2]) {
    let version = format!("v{}", duckdb_version());
    let sub = dir.join(version).join(platform());
    let fts = sub.join("fts.duckdb_extension");
    let vss = sub.join("vss.duckdb_extension");
    (sub, [fts, vss])
}

/// The DuckDB library version, e.g. `1.5.5` (asked once per process).
pub fn duckdb_version() -> String {
    static VERSION: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    VERSION
        .get_or_init(|| {
            Connection::open_in_memory()
                .and_then(|c| c.query_row("SELECT library_version FROM pragma_version()", [], |r| r.get::<_, String>(0)))
                .map(|v| v.trim_start_matches('v').to_string())
                .unwrap_or_else(|_| "unknown".into())
        })
        .clone()
}

fn platform() -> &'static str {
    if cfg!(all(target_os = "linux", target_arch = "x86_64")) {
        "linux_amd64"
    } else if cfg!(all(target_os = "linux", target_arch = "aarch64")) {
        "linux_arm64"
    } else if cfg!(all(target_os = "macos", target_arch = "aarch64")) {
        "osx_arm64"
    } else {
        "osx_amd64"
    }
}

/// Opens a connection with autoinstall/autoload off and the local extension directory set,
/// then loads fts and vss from it. Fails with the setup script's name when they are missing.
pub fn open_connection(path: Option<&Path>, ext_dir: &Path, read_only: bool) -> Result<Connection, StoreError> {
    let (_, files) = extension_files(ext_dir);
    for f in &files {
        if !f.exists() {
            return Err(StoreError::Missing(format!(
                "DuckDB extension {} is missing; install it with `{SETUP_HINT}` (or point FDNIX_EXTENSION_DIR at an installed extension directory)",
                f.display()
            )));
        }
    }
    let ext_dir_str = ext_dir.to_str().ok_or_else(|| StoreError::Setting { name: "FDNIX_EXTENSION_DIR", reason: "is not valid UTF-8".into() })?;
    let mut cfg = duckdb::Config::default()
        .enable_autoload_extension(false)
        .and_then(|c| c.with("autoinstall_known_extensions", "false"))
        .and_then(|c| c.with("extension_directory", ext_dir_str))
        .map_err(db)?;
    if read_only {
        cfg = cfg.access_mode(duckdb::AccessMode::ReadOnly).map_err(db)?;
    }
    let conn = match path {
        Some(p) => Connection::open_with_flags(p, cfg).map_err(db)?,
        None => Connection::open_in_memory_with_flags(cfg).map_err(db)?,
    };
    for stmt in ["LOAD fts", "LOAD vss", "SET hnsw_enable_experimental_persistence = true"] {
        conn.execute_batch(stmt).map_err(|e| {
            StoreError::Missing(format!("cannot load the fts/vss extensions from {}: {e}; reinstall them with `{SETUP_HINT}`", ext_dir.display()))
        })?;
    }
    Ok(conn)
}

/// Opens DuckDB stores on files, loading extensions from `ext_dir`.
#[derive(Debug, Clone)]
pub struct DuckDbStoreFactory {
    pub ext_dir: PathBuf,
}

impl StoreFactory for DuckDbStoreFactory {
    fn open(&self, path: &Path) -> Result<Box<dyn Store>, StoreError> {
        Ok(Box::new(DuckDbStore::open(path, &self.ext_dir)?))
    }
}

pub struct DuckDbStore {
    conn: Connection,
    /// The HNSW index has been dropped for writes and must be rebuilt.
    index_dropped: bool,
}

/// `packages` is loaded without its key and `package_id` becomes the primary key in
/// `finish_packages`: one bulk index build instead of an index insert per appended row.
const PACKAGES_DDL: &str = "CREATE TABLE packages (
    package_id VARCHAR NOT NULL,
    package_name VARCHAR NOT NULL,
    version VARCHAR,
    attribute_path VARCHAR NOT NULL,
    drv_name VARCHAR,
    system VARCHAR,
    output_name VARCHAR,
    outputs VARCHAR[],
    description VARCHAR,
    long_description VARCHAR,
    homepage VARCHAR[],
    license STRUCT(spdx_id VARCHAR, short_name VARCHAR, full_name VARCHAR, url VARCHAR, free BOOLEAN, redistributable BOOLEAN, deprecated BOOLEAN, text VARCHAR)[],
    license_form VARCHAR,
    platforms VARCHAR[],
    platform_patterns VARCHAR[],
    maintainers STRUCT(name VARCHAR, email VARCHAR, github VARCHAR, github_id BIGINT, matrix VARCHAR)[],
    broken BOOLEAN,
    unfree BOOLEAN,
    available BOOLEAN,
    insecure BOOLEAN,
    unsupported BOOLEAN,
    main_program VARCHAR,
    position VARCHAR,
    outputs_to_install VARCHAR[],
    known_vulnerabilities VARCHAR[],
    meta_extra VARCHAR,
    attr_depth INTEGER,
    last_updated TIMESTAMP
)";

impl DuckDbStore {
    pub fn open(path: &Path, ext_dir: &Path) -> Result<Self, StoreError> {
        let conn = open_connection(Some(path), ext_dir, false)?;
        conn.execute_batch("CREATE TABLE IF NOT EXISTS fdnix_metadata (key VARCHAR PRIMARY KEY, value VARCHAR);").map_err(db)?;
        Ok(DuckDbStore { conn, index_dropped: false })
    }

    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    fn table_exists(&self, name: &str) -> Result<bool, StoreError> {
        let n: i64 = self
            .conn
            .query_row("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'main' AND table_name = ?", params![name], |r| r.get(0))
            .map_err(db)?;
        Ok(n > 0)
    }

    fn get_info(&self, key: &str) -> Result<Option<String>, StoreError> {
        let mut st = self.conn.prepare("SELECT value FROM fdnix_metadata WHERE key = ?").map_err(db)?;
        let mut rows = st.query(params![key]).map_err(db)?;
        match rows.next().map_err(db)? {
            Some(r) => Ok(r.get(0).map_err(db)?),
            None => Ok(None),
        }
    }

    fn put_info(&self, key: &str, value: &str) -> Result<(), StoreError> {
        self.conn.execute("INSERT OR REPLACE INTO fdnix_metadata VALUES (?, ?)", params![key, value]).map_err(db)?;
        Ok(())
    }

    fn drop_vector_index(&mut self) -> Result<(), StoreError> {
        if !self.index_dropped {
            self.conn.execute_batch(&format!("DROP INDEX IF EXISTS {HNSW_INDEX};")).map_err(db)?;
            self.index_dropped = true;
        }
        Ok(())
    }

    fn vector_index_exists(&self) -> Result<bool, StoreError> {
        let n: i64 = self.conn.query_row("SELECT count(*) FROM duckdb_indexes() WHERE index_name = ?", params![HNSW_INDEX], |r| r.get(0)).map_err(db)?;
        Ok(n > 0)
    }

    fn create_embeddings_table(&self, dim: usize) -> Result<(), StoreError> {
        // `dim` is a number we own, not user text.
        self.conn
            .execute_batch(&format!(
                "CREATE TABLE embeddings (package_id VARCHAR PRIMARY KEY REFERENCES packages(package_id), vector FLOAT[{dim}] NOT NULL, model VARCHAR NOT NULL, text_hash VARCHAR NOT NULL);"
            ))
            .map_err(db)
    }
}

/// Appends the finished arrays as one record batch.
fn append_batch(conn: &Connection, table: &str, cols: Vec<(&str, ArrayRef)>) -> Result<(), StoreError> {
    let schema = Schema::new(cols.iter().map(|(n, a)| Field::new(*n, a.data_type().clone(), true)).collect::<Vec<_>>());
    let batch = RecordBatch::try_new(Arc::new(schema), cols.into_iter().map(|(_, a)| a).collect()).map_err(|e| StoreError::Db(format!("arrow batch: {e}")))?;
    let mut app = conn.appender(table).map_err(db)?;
    app.append_record_batch(batch).map_err(db)?;
    app.flush().map_err(db)?;
    Ok(())
}

fn strings<'a>(it: impl Iterator<Item = Option<&'a str>>) -> ArrayRef {
    let mut b = StringBuilder::new();
    for s in it {
        b.append_option(s);
    }
    Arc::new(b.finish())
}

fn string_lists<'a, I: Iterator<Item = &'a Vec<String>>>(it: I) -> ArrayRef {
    let mut b = ListBuilder::new(StringBuilder::new());
    for v in it {
        for s in v {
            b.values().append_value(s);
        }
        b.append(true);
    }
    Arc::new(b.finish())
}

fn bools(it: impl Iterator<Item = bool>) -> ArrayRef {
    let mut b = BooleanBuilder::new();
    for v in it {
        b.append_value(v);
    }
    Arc::new(b.finish())
}

macro_rules! field {
    ($sb:expr, $i:expr, $t:ty) => {
        $sb.field_builder::<$t>($i).ok_or_else(|| StoreError::Db(format!("arrow struct field {} has an unexpected builder", $i)))?
    };
}

fn license_lists(pkgs: &[Package]) -> Result<ArrayRef, StoreError> {
    let fields = Fields::from(vec![
        Field::new("spdx_id", DataType::Utf8, true),
        Field::new("short_name", DataType::Utf8, true),
        Field::new("full_name", DataType::Utf8, true),
        Field::new("url", DataType::Utf8, true),
        Field::new("free", DataType::Boolean, true),
        Field::new("redistributable", DataType::Boolean, true),
        Field::new("deprecated", DataType::Boolean, true),
        Field::new("text", DataType::Utf8, true),
    ]);
    let builders: Vec<Box<dyn ArrayBuilder>> = vec![
        Box::new(StringBuilder::new()),
        Box::new(StringBuilder::new()),
        Box::new(StringBuilder::new()),
        Box::new(StringBuilder::new()),
        Box::new(BooleanBuilder::new()),
        Box::new(BooleanBuilder::new()),
        Box::new(BooleanBuilder::new()),
        Box::new(StringBuilder::new()),
    ];
    let mut lb = ListBuilder::new(StructBuilder::new(fields, builders));
    for p in pkgs {
        for l in &p.licenses {
            let sb = lb.values();
            field!(sb, 0, StringBuilder).append_option(l.spdx_id.as_deref());
            field!(sb, 1, StringBuilder).append_option(l.short_name.as_deref());
            field!(sb, 2, StringBuilder).append_option(l.full_name.as_deref());
            field!(sb, 3, StringBuilder).append_option(l.url.as_deref());
            field!(sb, 4, BooleanBuilder).append_option(l.free);
            field!(sb, 5, BooleanBuilder).append_option(l.redistributable);
            field!(sb, 6, BooleanBuilder).append_option(l.deprecated);
            field!(sb, 7, StringBuilder).append_option(l.text.as_deref());
            sb.append(true);
        }
        lb.append(true);
    }
    Ok(Arc::new(lb.finish()))
}

fn maintainer_lists(pkgs: &[Package]) -> Result<ArrayRef, StoreError> {
    let fields = Fields::from(vec![
        Field::new("name", DataType::Utf8, true),
        Field::new("email", DataType::Utf8, true),
        Field::new("github", DataType::Utf8, true),
        Field::new("github_id", DataType::Int64, true),
        Field::new("matrix", DataType::Utf8, true),
    ]);
    let builders: Vec<Box<dyn ArrayBuilder>> = vec![
        Box::new(StringBuilder::new()),
        Box::new(StringBuilder::new()),
        Box::new(StringBuilder::new()),
        Box::new(Int64Builder::new()),
        Box::new(StringBuilder::new()),
    ];
    let mut lb = ListBuilder::new(StructBuilder::new(fields, builders));
    for p in pkgs {
        for m in &p.maintainers {
            let sb = lb.values();
            field!(sb, 0, StringBuilder).append_option(m.name.as_deref());
            field!(sb, 1, StringBuilder).append_option(m.email.as_deref());
            field!(sb, 2, StringBuilder).append_option(m.github.as_deref());
            field!(sb, 3, Int64Builder).append_option(m.github_id);
            field!(sb, 4, StringBuilder).append_option(m.matrix.as_deref());
            sb.append(true);
        }
        lb.append(true);
    }
    Ok(Arc::new(lb.finish()))
}

fn now_micros() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_micros() as i64).unwrap_or(0)
}

#[async_trait]
impl Store for DuckDbStore {
    async fn begin_packages(&mut self) -> Result<(), StoreError> {
        self.put_info("packages_complete", "false")?;
        // Keep existing vectors aside: embeddings references packages, which is rebuilt.
        if self.table_exists("embeddings")? {
            self.drop_vector_index()?;
            self.conn
                .execute_batch("DROP TABLE IF EXISTS embeddings_keep; CREATE TABLE embeddings_keep AS SELECT * FROM embeddings; DROP TABLE embeddings;")
                .map_err(db)?;
        }
        self.conn
            .execute_batch(&format!(
                "DROP SCHEMA IF EXISTS {FTS_SCHEMA} CASCADE; DROP TABLE IF EXISTS packages_fts_source; DROP TABLE IF EXISTS search_names; DROP TABLE IF EXISTS fts_postings; DROP TABLE IF EXISTS packages;"
            ))
            .map_err(db)?;
        self.conn.execute_batch(PACKAGES_DDL).map_err(db)?;
        self.conn.execute_batch("CREATE TABLE packages_fts_source (package_id VARCHAR NOT NULL, text VARCHAR NOT NULL);").map_err(db)?;
        Ok(())
    }

    async fn write_packages(&mut self, pkgs: &[Package], fts_texts: &[String]) -> Result<(), StoreError> {
        if pkgs.len() != fts_texts.len() {
            return Err(StoreError::Db(format!("{} packages but {} FTS texts", pkgs.len(), fts_texts.len())));
        }
        if pkgs.is_empty() {
            return Ok(());
        }
        let now = now_micros();
        let mut depth = Int32Builder::new();
        let mut ts = TimestampMicrosecondBuilder::new();
        for p in pkgs {
            depth.append_value(p.attr_depth);
            ts.append_value(now);
        }
        let cols: Vec<(&str, ArrayRef)> = vec![
            ("package_id", strings(pkgs.iter().map(|p| Some(p.package_id.as_str())))),
            ("package_name", strings(pkgs.iter().map(|p| Some(p.package_name.as_str())))),
            ("version", strings(pkgs.iter().map(|p| Some(p.version.as_str())))),
            ("attribute_path", strings(pkgs.iter().map(|p| Some(p.attribute_path.as_str())))),
            ("drv_name", strings(pkgs.iter().map(|p| Some(p.drv_name.as_str())))),
            ("system", strings(pkgs.iter().map(|p| p.system.as_deref()))),
            ("output_name", strings(pkgs.iter().map(|p| p.output_name.as_deref()))),
            ("outputs", string_lists(pkgs.iter().map(|p| &p.outputs))),
            ("description", strings(pkgs.iter().map(|p| p.description.as_deref()))),
            ("long_description", strings(pkgs.iter().map(|p| p.long_description.as_deref()))),
            ("homepage", string_lists(pkgs.iter().map(|p| &p.homepage))),
            ("license", license_lists(pkgs)?),
            ("license_form", strings(pkgs.iter().map(|p| p.license_form.map(|f| f.as_str())))),
            ("platforms", string_lists(pkgs.iter().map(|p| &p.platforms))),
            ("platform_patterns", string_lists(pkgs.iter().map(|p| &p.platform_patterns))),
            ("maintainers", maintainer_lists(pkgs)?),
            ("broken", bools(pkgs.iter().map(|p| p.broken))),
            ("unfree", bools(pkgs.iter().map(|p| p.unfree))),
            ("available", bools(pkgs.iter().map(|p| p.available))),
            ("insecure", bools(pkgs.iter().map(|p| p.insecure))),
            ("unsupported", bools(pkgs.iter().map(|p| p.unsupported))),
            ("main_program", strings(pkgs.iter().map(|p| p.main_program.as_deref()))),
            ("position", strings(pkgs.iter().map(|p| p.position.as_deref()))),
            ("outputs_to_install", string_lists(pkgs.iter().map(|p| &p.outputs_to_install))),
            ("known_vulnerabilities", string_lists(pkgs.iter().map(|p| &p.known_vulnerabilities))),
            ("meta_extra", strings(pkgs.iter().map(|p| p.meta_extra.as_deref()))),
            ("attr_depth", Arc::new(depth.finish())),
            ("last_updated", Arc::new(ts.finish())),
        ];
        append_batch(&self.conn, "packages", cols)?;
        append_batch(
            &self.conn,
            "packages_fts_source",
            vec![
                ("package_id", strings(pkgs.iter().map(|p| Some(p.package_id.as_str())))),
                ("text", strings(fts_texts.iter().map(|t| Some(t.as_str())))),
            ],
        )?;
        Ok(())
    }

    async fn finish_packages(&mut self, fts: &FtsParams) -> Result<u64, StoreError> {
        let stemmer = if fts.stemmer.trim().is_empty() { "none".to_string() } else { fts.stemmer.trim().to_ascii_lowercase() };
        if !STEMMERS.contains(&stemmer.as_str()) {
            return Err(StoreError::Setting { name: "FTS_STEMMER", reason: format!("`{}` is not a known stemmer (one of {})", fts.stemmer, STEMMERS.join(", ")) });
        }
        let stopwords = if fts.stopwords.trim().is_empty() { "none".to_string() } else { fts.stopwords.trim().to_string() };
        if stopwords != "english" && stopwords != "none" {
            if !is_identifier(&stopwords) || !self.table_exists(&stopwords)? {
                return Err(StoreError::Setting {
                    name: "FTS_STOPWORDS",
                    reason: format!("`{stopwords}` is neither english, none nor an existing table of stopwords"),
                });
            }
        }
        if !is_identifier(&fts.index_name) || ["packages", "packages_fts_source", "embeddings", "fdnix_metadata"].contains(&fts.index_name.as_str()) {
            return Err(StoreError::Setting {
                name: "FTS_INDEX_NAME",
                reason: format!("`{}` must be a plain SQL identifier ([A-Za-z_][A-Za-z0-9_]*) that is not a table name", fts.index_name),
            });
        }
        self.conn.execute_batch("ALTER TABLE packages ADD PRIMARY KEY (package_id);").map_err(|e| {
            StoreError::Db(format!("making package_id the primary key of packages (is an attribute path listed twice?): {e}"))
        })?;
        // Every value formatted below was checked against a fixed list or the identifier rule.
        self.conn
            .execute_batch(&format!(
                "PRAGMA create_fts_index('packages_fts_source', 'package_id', 'text', stemmer = '{stemmer}', stopwords = '{stopwords}', ignore = '(\\.|[^a-z0-9])+', strip_accents = 1, lower = 1, overwrite = 1)"
            ))
            .map_err(db)?;
        // Lower-cased names for the search generators (exact, prefix, typo) and the free-license
        // flag, computed once here instead of on every query.
        self.conn
            .execute_batch(
                "CREATE OR REPLACE TABLE search_names AS
                 SELECT package_id, lower(package_name) AS name, lower(regexp_extract(attribute_path, '[^.]+$')) AS last,
                        lower(attribute_path) AS attr, lower(main_program) AS program,
                        len(license) > 0 AND list_bool_and(list_transform(license, lambda l: coalesce(l.free, false))) AS free
                 FROM packages ORDER BY package_id;",
            )
            .map_err(db)?;
        // Postings aggregated per (term, document) and ordered by term, so a query reads only
        // the row groups of its own terms (see search::bm25_cte).
        self.conn
            .execute_batch(&format!(
                "CREATE OR REPLACE TABLE fts_postings AS SELECT termid, docid, count(*)::INTEGER AS tf FROM {FTS_SCHEMA}.terms GROUP BY ALL ORDER BY termid, docid;"
            ))
            .map_err(db)?;
        let name = &fts.index_name;
        self.conn
            .execute_batch(&format!(
                "CREATE OR REPLACE MACRO {name}(q) AS TABLE SELECT package_id, score FROM (SELECT package_id, {FTS_SCHEMA}.match_bm25(package_id, q) AS score FROM packages_fts_source) WHERE score IS NOT NULL ORDER BY score DESC;"
            ))
            .map_err(db)?;
        // Bring kept vectors back for packages that still exist.
        if self.table_exists("embeddings_keep")? {
            let dim: Option<usize> = self.get_info("embedding_dimensions")?.and_then(|d| d.parse().ok());
            if let Some(dim) = dim {
                self.create_embeddings_table(dim)?;
                self.conn
                    .execute_batch("INSERT INTO embeddings SELECT k.* FROM embeddings_keep k SEMI JOIN packages p ON p.package_id = k.package_id; DROP TABLE embeddings_keep;")
                    .map_err(db)?;
            } else {
                self.conn.execute_batch("DROP TABLE embeddings_keep;").map_err(db)?;
            }
            self.index_dropped = true;
        }
        let n: i64 = self.conn.query_row("SELECT count(*) FROM packages_fts_source", [], |r| r.get(0)).map_err(db)?;
        for (k, v) in [("fts_stemmer", stemmer.as_str()), ("fts_stopwords", stopwords.as_str()), ("fts_index_name", name.as_str()), ("fts_schema", FTS_SCHEMA), ("packages_complete", "true")] {
            self.put_info(k, v)?;
        }
        Ok(n as u64)
    }

    async fn embedding_inputs(&mut self, f: &EmbedFilter) -> Result<Vec<DocFields>, StoreError> {
        let mut st = self
            .conn
            .prepare(
                "SELECT package_id, package_name, main_program, description, long_description,
                        array_to_string(homepage, chr(31)),
                        array_to_string(list_filter(list_transform(license, lambda l: coalesce(l.spdx_id, l.short_name, l.text, l.full_name)), lambda x: x IS NOT NULL), chr(31))
                 FROM packages
                 WHERE (? OR NOT broken) AND (? OR NOT insecure) AND (? OR NOT unsupported) AND (? OR available)
                 ORDER BY package_id",
            )
            .map_err(db)?;
        let split = |s: Option<String>| -> Vec<String> { s.map(|s| s.split('\u{1f}').filter(|x| !x.is_empty()).map(str::to_string).collect()).unwrap_or_default() };
        let rows = st
            .query_map(params![f.include_broken, f.include_insecure, f.include_unsupported, f.include_unavailable], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, Option<String>>(2)?, r.get::<_, Option<String>>(3)?, r.get::<_, Option<String>>(4)?, r.get::<_, Option<String>>(5)?, r.get::<_, Option<String>>(6)?))
            })
            .map_err(db)?;
        let mut out = Vec::new();
        for r in rows {
            let (package_id, package_name, main_program, description, long_description, homepage, licenses) = r.map_err(db)?;
            out.push(DocFields { package_id, package_name, main_program, description, long_description, homepage: split(homepage), licenses: split(licenses) });
        }
        Ok(out)
    }

    async fn prepare_vectors(&mut self, space: &VectorSpace) -> Result<HashMap<String, String>, StoreError> {
        let model = self.get_info("embedding_model")?;
        let dim: Option<usize> = self.get_info("embedding_dimensions")?.and_then(|d| d.parse().ok());
        let exists = self.table_exists("embeddings")?;
        if exists && (model.as_deref() != Some(space.model.as_str()) || dim != Some(space.dimensions)) {
            tracing::info!(old_model = ?model, old_dimensions = ?dim, new_model = %space.model, new_dimensions = space.dimensions, "vector space changed; dropping every vector");
            self.drop_vector_index()?;
            self.conn.execute_batch("DROP TABLE embeddings;").map_err(db)?;
        }
        if !self.table_exists("embeddings")? {
            self.create_embeddings_table(space.dimensions)?;
            self.index_dropped = true;
        }
        self.put_info("embedding_model", &space.model)?;
        self.put_info("embedding_dimensions", &space.dimensions.to_string())?;
        let mut st = self.conn.prepare("SELECT package_id, text_hash FROM embeddings WHERE model = ?").map_err(db)?;
        let rows = st.query_map(params![space.model], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))).map_err(db)?;
        let mut out = HashMap::new();
        for r in rows {
            let (id, h) = r.map_err(db)?;
            out.insert(id, h);
        }
        Ok(out)
    }

    async fn delete_vectors(&mut self, ids: &[String]) -> Result<u64, StoreError> {
        if ids.is_empty() {
            return Ok(0);
        }
        self.drop_vector_index()?;
        self.conn.execute_batch("CREATE OR REPLACE TABLE fdnix_delete_ids (package_id VARCHAR);").map_err(db)?;
        append_batch(&self.conn, "fdnix_delete_ids", vec![("package_id", strings(ids.iter().map(|s| Some(s.as_str()))))])?;
        let n = self.conn.execute("DELETE FROM embeddings WHERE package_id IN (SELECT package_id FROM fdnix_delete_ids)", []).map_err(db)?;
        self.conn.execute_batch("DROP TABLE fdnix_delete_ids;").map_err(db)?;
        Ok(n as u64)
    }

    async fn write_vectors(&mut self, rows: &[VectorRow]) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        self.drop_vector_index()?;
        let model = self.get_info("embedding_model")?.ok_or_else(|| StoreError::Db("write_vectors before prepare_vectors".into()))?;
        let dim = rows[0].vector.len();
        let mut lb = FixedSizeListBuilder::new(Float32Builder::with_capacity(rows.len() * dim), dim as i32);
        for r in rows {
            if r.vector.len() != dim {
                return Err(StoreError::Db(format!("vector of {} has {} dimensions, expected {dim}", r.package_id, r.vector.len())));
            }
            lb.values().append_slice(&r.vector);
            lb.append(true);
        }
        // Replace any vector these packages already have, in one transaction.
        let ids: Vec<String> = rows.iter().map(|r| r.package_id.clone()).collect();
        self.conn.execute_batch("CREATE OR REPLACE TABLE fdnix_vec_stage AS SELECT * FROM embeddings LIMIT 0;").map_err(db)?;
        append_batch(
            &self.conn,
            "fdnix_vec_stage",
            vec![
                ("package_id", strings(ids.iter().map(|s| Some(s.as_str())))),
                ("vector", Arc::new(lb.finish())),
                ("model", strings(rows.iter().map(|_| Some(model.as_str())))),
                ("text_hash", strings(rows.iter().map(|r| Some(r.text_hash.as_str())))),
            ],
        )?;
        self.conn
            .execute_batch(
                "BEGIN TRANSACTION;
                 DELETE FROM embeddings WHERE package_id IN (SELECT package_id FROM fdnix_vec_stage);
                 COMMIT;
                 BEGIN TRANSACTION;
                 INSERT INTO embeddings SELECT * FROM fdnix_vec_stage;
                 COMMIT;
                 DROP TABLE fdnix_vec_stage;",
            )
            .map_err(|e| {
                let _ = self.conn.execute_batch("ROLLBACK;");
                db(e)
            })?;
        Ok(())
    }

    async fn build_vector_index(&mut self, p: &HnswParams) -> Result<(), StoreError> {
        let wanted = format!("m={},ef_construction={}", p.m, p.ef_construction);
        let have = self.get_info("hnsw_params")?;
        self.put_info("hnsw_ef_search", &p.ef_search.to_string())?;
        if self.vector_index_exists()? && have.as_deref() == Some(wanted.as_str()) && !self.index_dropped {
            tracing::info!("vector index unchanged; keeping it");
            return Ok(());
        }
        self.conn.execute_batch(&format!("DROP INDEX IF EXISTS {HNSW_INDEX};")).map_err(db)?;
        let n: i64 = self.conn.query_row("SELECT count(*) FROM embeddings", [], |r| r.get(0)).map_err(db)?;
        if n == 0 {
            self.put_info("hnsw_params", "")?;
            return Ok(());
        }
        // m and ef_construction are integers we validated.
        self.conn
            .execute_batch(&format!(
                "CREATE INDEX {HNSW_INDEX} ON embeddings USING HNSW (vector) WITH (metric = 'cosine', M = {}, ef_construction = {});",
                p.m, p.ef_construction
            ))
            .map_err(db)?;
        self.put_info("hnsw_params", &wanted)?;
        self.put_info("hnsw_metric", "cosine")?;
        self.index_dropped = false;
        Ok(())
    }

    async fn set_info(&mut self, entries: &[(String, String)]) -> Result<(), StoreError> {
        for (k, v) in entries {
            self.put_info(k, v)?;
        }
        Ok(())
    }

    async fn info(&mut self) -> Result<BTreeMap<String, String>, StoreError> {
        let mut st = self.conn.prepare("SELECT key, value FROM fdnix_metadata").map_err(db)?;
        let rows = st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?.unwrap_or_default()))).map_err(db)?;
        let mut out = BTreeMap::new();
        for r in rows {
            let (k, v) = r.map_err(db)?;
            out.insert(k, v);
        }
        Ok(out)
    }

    async fn counts(&mut self) -> Result<Counts, StoreError> {
        let mut c = Counts::default();
        for (t, slot) in [("packages", &mut c.packages), ("packages_fts_source", &mut c.fts_rows), ("embeddings", &mut c.embeddings)] {
            if self.table_exists(t)? {
                // t is one of three fixed names.
                let n: i64 = self.conn.query_row(&format!("SELECT count(*) FROM {t}"), [], |r| r.get(0)).map_err(db)?;
                *slot = n as u64;
            }
        }
        Ok(c)
    }

    async fn close(self: Box<Self>) -> Result<(), StoreError> {
        self.put_info("schema_version", &crate::driver::SCHEMA_VERSION.to_string())?;
        self.put_info("tool_version", crate::driver::TOOL_VERSION)?;
        self.put_info("build_time", &crate::driver::now_rfc3339())?;
        self.put_info("duckdb_version", &duckdb_version())?;
        self.conn.execute_batch("CHECKPOINT;").map_err(db)?;
        self.conn.close().map_err(|(_, e)| db(e))?;
        Ok(())
    }
}
