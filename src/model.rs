//! Exported document types: what the indexer writes, independent of how nix-env spells it.
use serde::{Deserialize, Serialize};

/// The shape `meta.license` had in the source, kept so that no form is lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum LicenseForm {
    Absent,
    Object,
    ObjectList,
    String,
    StringList,
    MixedList,
    EmptyList,
}

impl LicenseForm {
    pub fn as_str(self) -> &'static str {
        match self {
            LicenseForm::Absent => "absent",
            LicenseForm::Object => "object",
            LicenseForm::ObjectList => "object_list",
            LicenseForm::String => "string",
            LicenseForm::StringList => "string_list",
            LicenseForm::MixedList => "mixed_list",
            LicenseForm::EmptyList => "empty_list",
        }
    }
}

/// One license. A license given as a plain string keeps it in `text`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct License {
    pub spdx_id: Option<String>,
    pub short_name: Option<String>,
    pub full_name: Option<String>,
    pub url: Option<String>,
    pub free: Option<bool>,
    pub redistributable: Option<bool>,
    pub deprecated: Option<bool>,
    /// The license as a bare string (`"MIT"`), when the source gave one.
    pub text: Option<String>,
}

impl License {
    /// The best short label for display and search.
    pub fn label(&self) -> Option<&str> {
        self.spdx_id.as_deref().or(self.short_name.as_deref()).or(self.text.as_deref()).or(self.full_name.as_deref())
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Maintainer {
    pub name: Option<String>,
    pub email: Option<String>,
    pub github: Option<String>,
    pub github_id: Option<i64>,
    pub matrix: Option<String>,
}

/// A normalised package: one row of the `packages` table.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Package {
    /// The attribute path; the primary key.
    pub package_id: String,
    /// pname, else derived from the attribute path.
    pub package_name: String,
    pub version: String,
    pub attribute_path: String,
    /// The derivation name (`name`), e.g. `hello-2.12.1`.
    pub drv_name: String,
    pub system: Option<String>,
    pub output_name: Option<String>,
    pub outputs: Vec<String>,
    pub description: Option<String>,
    pub long_description: Option<String>,
    pub homepage: Vec<String>,
    pub licenses: Vec<License>,
    pub license_form: Option<LicenseForm>,
    pub platforms: Vec<String>,
    /// Platform pattern objects (e.g. `{"kernel":{"name":"linux"}}`) as JSON text.
    pub platform_patterns: Vec<String>,
    pub maintainers: Vec<Maintainer>,
    pub broken: bool,
    pub unfree: bool,
    pub available: bool,
    pub insecure: bool,
    pub unsupported: bool,
    pub main_program: Option<String>,
    pub position: Option<String>,
    pub outputs_to_install: Vec<String>,
    pub known_vulnerabilities: Vec<String>,
    /// Every other `meta` key, as a JSON object (lossless), or None when there are none.
    pub meta_extra: Option<String>,
    /// Number of dots in the attribute path (0 for top-level packages).
    pub attr_depth: i32,
}

impl Package {
    /// Whether every license is known to be free (no license at all counts as unknown).
    pub fn is_free(&self) -> Option<bool> {
        if self.licenses.is_empty() {
            return None;
        }
        let mut all = true;
        for l in &self.licenses {
            match l.free {
                Some(true) => {}
                Some(false) => return Some(false),
                None => all = false,
            }
        }
        if all { Some(true) } else { None }
    }
}

/// Why a package was skipped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skip {
    pub attr_path: String,
    pub reason: String,
}
