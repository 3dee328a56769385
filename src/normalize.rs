//! Raw nix-env entries → [`Package`] documents. Every odd shape of the real dump is handled;
//! a value of the wrong type skips the package with a reason that names the field.
use serde_json::{Map, Value};

use crate::model::{License, LicenseForm, Maintainer, Package, Skip};
use crate::raw::RawEntry;

/// Longest description kept whole. Longer text is cut at a character boundary and the
/// cut is reported as a warning (never silently).
pub const TEXT_CAP: usize = 64 * 1024;

/// The result of normalising one entry.
#[derive(Debug)]
pub struct Normalized {
    pub package: Package,
    /// Non-fatal notes, e.g. a truncated description.
    pub warnings: Vec<String>,
}

/// Normalises one raw entry.
pub fn normalize(entry: RawEntry) -> Result<Normalized, Skip> {
    let attr = entry.attr_path;
    let skip = |reason: String| Skip { attr_path: attr.clone(), reason };
    if attr.trim().is_empty() {
        return Err(skip("attribute path is empty".into()));
    }
    let raw = entry.package.map_err(&skip)?;
    let mut warnings = Vec::new();

    let pname = opt_string(raw.pname, "pname").map_err(&skip)?;
    let drv_name = opt_string(raw.name, "name").map_err(&skip)?.unwrap_or_default();
    let version = opt_string(raw.version, "version").map_err(&skip)?.unwrap_or_default();
    let system = opt_string(raw.system, "system").map_err(&skip)?;
    let output_name = opt_string(raw.output_name, "outputName").map_err(&skip)?;
    let outputs = match raw.outputs {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Object(m)) => m.keys().map(|k| clean(k)).collect(),
        Some(Value::Array(a)) => string_list(Value::Array(a), "outputs").map_err(&skip)?,
        Some(other) => return Err(skip(format!("outputs: expected an object, got {}", kind(&other)))),
    };
    let package_name = match pname {
        Some(p) if !p.is_empty() => p,
        _ => name_from_attr(&attr),
    };

    let mut meta: Map<String, Value> = match raw.meta {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m,
        Some(other) => return Err(skip(format!("meta: expected an object, got {}", kind(&other)))),
    };

    let description = take_text(&mut meta, "description", &mut warnings).map_err(&skip)?;
    let long_description = take_text(&mut meta, "longDescription", &mut warnings).map_err(&skip)?;
    let homepage = match meta.remove("homepage") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => vec![clean_owned(s)],
        Some(v @ Value::Array(_)) => string_list(v, "meta.homepage").map_err(&skip)?,
        Some(other) => return Err(skip(format!("meta.homepage: expected a string or list of strings, got {}", kind(&other)))),
    };
    let (licenses, license_form) = licenses(meta.remove("license")).map_err(&skip)?;
    let maintainers = maintainers(meta.remove("maintainers")).map_err(&skip)?;
    let (platforms, platform_patterns) = platforms(meta.remove("platforms")).map_err(&skip)?;
    let broken = take_bool(&mut meta, "broken", false).map_err(&skip)?;
    let unfree = take_bool(&mut meta, "unfree", false).map_err(&skip)?;
    let available = take_bool(&mut meta, "available", true).map_err(&skip)?;
    let insecure = take_bool(&mut meta, "insecure", false).map_err(&skip)?;
    let unsupported = take_bool(&mut meta, "unsupported", false).map_err(&skip)?;
    let main_program = opt_string(meta.remove("mainProgram"), "meta.mainProgram").map_err(&skip)?;
    let position = opt_string(meta.remove("position"), "meta.position").map_err(&skip)?;
    let outputs_to_install = match meta.remove("outputsToInstall") {
        None | Some(Value::Null) => Vec::new(),
        Some(v) => string_list(v, "meta.outputsToInstall").map_err(&skip)?,
    };
    let known_vulnerabilities = match meta.remove("knownVulnerabilities") {
        None | Some(Value::Null) => Vec::new(),
        Some(v) => string_list(v, "meta.knownVulnerabilities").map_err(&skip)?,
    };
    // meta.name duplicates the derivation name; keep it only when it says something else.
    if let Some(Value::String(n)) = meta.get("name") {
        if *n == drv_name {
            meta.remove("name");
        }
    }
    let meta_extra = if meta.is_empty() {
        None
    } else {
        let s = serde_json::to_string(&Value::Object(meta)).map_err(|e| skip(format!("meta: {e}")))?;
        Some(s.replace('\0', "").replace("\\u0000", ""))
    };

    let attr_clean = clean(&attr);
    let attr_depth = attr_clean.matches('.').count() as i32;
    Ok(Normalized {
        package: Package {
            package_id: attr_clean.clone(),
            package_name,
            version,
            attribute_path: attr_clean,
            drv_name,
            system,
            output_name,
            outputs,
            description,
            long_description,
            homepage,
            licenses,
            license_form: Some(license_form),
            platforms,
            platform_patterns,
            maintainers,
            broken,
            unfree,
            available,
            insecure,
            unsupported,
            main_program,
            position,
            outputs_to_install,
            known_vulnerabilities,
            meta_extra,
            attr_depth,
        },
        warnings,
    })
}

/// The last segment of an attribute path: `python312Packages.numpy` → `numpy`.
pub fn name_from_attr(attr: &str) -> String {
    clean(attr.rsplit('.').next().unwrap_or(attr).trim_matches('"'))
}

/// Removes NUL bytes, which DuckDB strings and most consumers cannot carry.
pub fn clean(s: &str) -> String {
    clean_owned(s.to_string())
}

/// [`clean`] for an owned string: no copy when there is nothing to strip (the common case;
/// the dump has millions of platform strings).
pub fn clean_owned(s: String) -> String {
    if s.contains('\0') { s.replace('\0', "") } else { s }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

fn opt_string(v: Option<Value>, field: &str) -> Result<Option<String>, String> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(clean_owned(s))),
        Some(other) => Err(format!("{field}: expected a string, got {}", kind(&other))),
    }
}

fn take_text(meta: &mut Map<String, Value>, key: &str, warnings: &mut Vec<String>) -> Result<Option<String>, String> {
    let Some(s) = opt_string(meta.remove(key), &format!("meta.{key}"))? else { return Ok(None) };
    if s.len() <= TEXT_CAP {
        return Ok(Some(s));
    }
    let mut cut = TEXT_CAP;
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    warnings.push(format!("meta.{key} truncated from {} to {cut} bytes", s.len()));
    Ok(Some(s[..cut].to_string()))
}

fn take_bool(meta: &mut Map<String, Value>, key: &str, default: bool) -> Result<bool, String> {
    match meta.remove(key) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Bool(b)) => Ok(b),
        Some(other) => Err(format!("meta.{key}: expected a boolean, got {}", kind(&other))),
    }
}

fn string_list(v: Value, field: &str) -> Result<Vec<String>, String> {
    match v {
        Value::Array(items) => items
            .into_iter()
            .enumerate()
            .map(|(i, it)| match it {
                Value::String(s) => Ok(clean_owned(s)),
                other => Err(format!("{field}[{i}]: expected a string, got {}", kind(&other))),
            })
            .collect(),
        Value::String(s) => Ok(vec![clean_owned(s)]),
        other => Err(format!("{field}: expected a list of strings, got {}", kind(&other))),
    }
}

fn license_object(m: &Map<String, Value>, field: &str) -> Result<License, String> {
    let s = |k: &str| -> Result<Option<String>, String> { opt_string(m.get(k).cloned(), &format!("{field}.{k}")) };
    let b = |k: &str| -> Result<Option<bool>, String> {
        match m.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(other) => Err(format!("{field}.{k}: expected a boolean, got {}", kind(other))),
        }
    };
    Ok(License {
        spdx_id: s("spdxId")?,
        short_name: s("shortName")?,
        full_name: s("fullName")?,
        url: s("url")?,
        free: b("free")?,
        redistributable: b("redistributable")?,
        deprecated: b("deprecated")?,
        text: None,
    })
}

/// Every form of `meta.license` seen in nixpkgs.
pub fn licenses(v: Option<Value>) -> Result<(Vec<License>, LicenseForm), String> {
    match v {
        None | Some(Value::Null) => Ok((Vec::new(), LicenseForm::Absent)),
        Some(Value::Object(m)) => Ok((vec![license_object(&m, "meta.license")?], LicenseForm::Object)),
        Some(Value::String(s)) => Ok((vec![License { text: Some(clean_owned(s)), ..Default::default() }], LicenseForm::String)),
        Some(Value::Array(items)) => {
            if items.is_empty() {
                return Ok((Vec::new(), LicenseForm::EmptyList));
            }
            let (mut objects, mut strings) = (0, 0);
            let mut out = Vec::with_capacity(items.len());
            for (i, it) in items.into_iter().enumerate() {
                match it {
                    Value::Object(m) => {
                        objects += 1;
                        out.push(license_object(&m, &format!("meta.license[{i}]"))?);
                    }
                    Value::String(s) => {
                        strings += 1;
                        out.push(License { text: Some(clean_owned(s)), ..Default::default() });
                    }
                    other => return Err(format!("meta.license[{i}]: expected an object or a string, got {}", kind(&other))),
                }
            }
            let form = match (objects, strings) {
                (_, 0) => LicenseForm::ObjectList,
                (0, _) => LicenseForm::StringList,
                _ => LicenseForm::MixedList,
            };
            Ok((out, form))
        }
        Some(other) => Err(format!("meta.license: expected an object, string or list, got {}", kind(&other))),
    }
}

fn maintainers(v: Option<Value>) -> Result<Vec<Maintainer>, String> {
    let items = match v {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(o @ Value::Object(_)) => vec![o],
        Some(other) => return Err(format!("meta.maintainers: expected a list, got {}", kind(&other))),
    };
    items
        .into_iter()
        .enumerate()
        .map(|(i, it)| match it {
            Value::Object(m) => {
                let f = format!("meta.maintainers[{i}]");
                let s = |k: &str| opt_string(m.get(k).cloned(), &format!("{f}.{k}"));
                let github_id = match m.get("githubId") {
                    None | Some(Value::Null) => None,
                    Some(Value::Number(n)) => n.as_i64(),
                    Some(Value::String(s)) => s.parse().ok(),
                    Some(other) => return Err(format!("{f}.githubId: expected a number, got {}", kind(other))),
                };
                Ok(Maintainer { name: s("name")?, email: s("email")?, github: s("github")?, github_id, matrix: s("matrix")? })
            }
            Value::String(s) => Ok(Maintainer { name: Some(clean_owned(s)), ..Default::default() }),
            other => Err(format!("meta.maintainers[{i}]: expected an object, got {}", kind(&other))),
        })
        .collect()
}

fn platforms(v: Option<Value>) -> Result<(Vec<String>, Vec<String>), String> {
    let items = match v {
        None | Some(Value::Null) => return Ok((Vec::new(), Vec::new())),
        Some(Value::Array(items)) => items,
        Some(Value::String(s)) => return Ok((vec![clean_owned(s)], Vec::new())),
        Some(o @ Value::Object(_)) => vec![o],
        Some(other) => return Err(format!("meta.platforms: expected a list, got {}", kind(&other))),
    };
    let (mut names, mut patterns) = (Vec::new(), Vec::new());
    for (i, it) in items.into_iter().enumerate() {
        match it {
            Value::String(s) => names.push(clean_owned(s)),
            o @ Value::Object(_) => patterns.push(clean_owned(o.to_string())),
            other => return Err(format!("meta.platforms[{i}]: expected a string or a pattern object, got {}", kind(&other))),
        }
    }
    Ok((names, patterns))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raw::RawPackage;
    use serde_json::json;

    fn entry(attr: &str, v: Value) -> RawEntry {
        RawEntry::ok(attr, serde_json::from_value::<RawPackage>(v).unwrap())
    }

    #[test]
    fn pname_falls_back_to_attribute_path() {
        let p = normalize(entry("python312Packages.numpy", json!({"name":"numpy-1.0","version":"1.0"}))).unwrap().package;
        assert_eq!(p.package_name, "numpy");
        assert_eq!(p.attr_depth, 1);
        let p = normalize(entry("hello", json!({"pname":"","name":"hello-1"}))).unwrap().package;
        assert_eq!(p.package_name, "hello");
    }

    #[test]
    fn every_license_form() {
        let cases = [
            (json!(null), LicenseForm::Absent, 0),
            (json!({"spdxId":"MIT","free":true}), LicenseForm::Object, 1),
            (json!([{"spdxId":"MIT"},{"spdxId":"GPL-2.0"}]), LicenseForm::ObjectList, 2),
            (json!("MIT"), LicenseForm::String, 1),
            (json!(["MIT","BSD"]), LicenseForm::StringList, 2),
            (json!([{"spdxId":"MIT"},"custom"]), LicenseForm::MixedList, 2),
            (json!([]), LicenseForm::EmptyList, 0),
        ];
        for (lic, form, n) in cases {
            let (l, f) = licenses(if lic.is_null() { None } else { Some(lic.clone()) }).unwrap();
            assert_eq!(f, form, "{lic}");
            assert_eq!(l.len(), n, "{lic}");
        }
        let (l, _) = licenses(Some(json!([{"spdxId":"MIT"},"custom"]))).unwrap();
        assert_eq!(l[1].text.as_deref(), Some("custom"));
        assert_eq!(l[0].label(), Some("MIT"));
    }

    #[test]
    fn wrong_types_name_the_field() {
        let e = normalize(entry("x", json!({"meta":{"broken":"yes"}}))).unwrap_err();
        assert_eq!(e.attr_path, "x");
        assert!(e.reason.contains("meta.broken"), "{}", e.reason);
        let e = normalize(entry("x", json!({"meta":{"license":[{"spdxId":"MIT"}, 3]}}))).unwrap_err();
        assert!(e.reason.contains("meta.license[1]"), "{}", e.reason);
        let e = normalize(entry("x", json!({"version": 3}))).unwrap_err();
        assert!(e.reason.contains("version"), "{}", e.reason);
        let e = normalize(RawEntry { attr_path: "y".into(), package: Err("entry is a JSON array".into()) }).unwrap_err();
        assert_eq!(e.reason, "entry is a JSON array");
    }

    #[test]
    fn nul_bytes_are_stripped_and_long_text_is_reported() {
        let long = "a".repeat(TEXT_CAP + 10);
        let n = normalize(entry("x", json!({"meta":{"description":"a\u{0}b","longDescription": long}}))).unwrap();
        assert_eq!(n.package.description.as_deref(), Some("ab"));
        assert_eq!(n.package.long_description.as_ref().map(String::len), Some(TEXT_CAP));
        assert_eq!(n.warnings.len(), 1);
        assert!(n.warnings[0].contains("meta.longDescription"));
    }

    #[test]
    fn platform_patterns_and_maintainers_without_github_survive() {
        let n = normalize(entry(
            "zfs",
            json!({"meta":{"platforms":["x86_64-linux",{"kernel":{"name":"linux"}}],
                   "maintainers":[{"name":"A","email":"a@x"},{"name":"B","github":"b","githubId":7}]}}),
        ))
        .unwrap()
        .package;
        assert_eq!(n.platforms, vec!["x86_64-linux"]);
        assert_eq!(n.platform_patterns.len(), 1);
        assert!(n.platform_patterns[0].contains("kernel"));
        assert_eq!(n.maintainers[0].github, None);
        assert_eq!(n.maintainers[1].github_id, Some(7));
    }

    #[test]
    fn unknown_meta_keys_are_kept() {
        let n = normalize(entry("x", json!({"name":"x-1","meta":{"name":"x-1","changelog":"http://c","priority":5}}))).unwrap();
        let extra: Value = serde_json::from_str(n.package.meta_extra.as_deref().unwrap()).unwrap();
        assert_eq!(extra["changelog"], "http://c");
        assert_eq!(extra["priority"], 5);
        assert!(extra.get("name").is_none());
    }
}
