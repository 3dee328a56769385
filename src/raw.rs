//! Raw import types: exactly what `nix-env -qaP --json --meta` prints, kept apart from the
//! exported [`crate::model::Package`] document (as flake-info does). Fields whose type varies
//! in the wild are kept as JSON values; [`crate::normalize`] decides what they mean.
//!
//! [`parse_package_map_slice`] reads the document as a stream: one entry at a time is
//! deserialised and handed on, so the whole text and a JSON DOM are never held together.
use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::error::SourceError;

/// One package as nix-env prints it.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
pub struct RawPackage {
    #[serde(default)]
    pub name: Option<Value>,
    #[serde(default)]
    pub pname: Option<Value>,
    #[serde(default)]
    pub version: Option<Value>,
    #[serde(default)]
    pub system: Option<Value>,
    #[serde(default, rename = "outputName")]
    pub output_name: Option<Value>,
    #[serde(default)]
    pub outputs: Option<Value>,
    #[serde(default)]
    pub meta: Option<Value>,
}

/// One entry of the package map: the attribute path and either the package or the
/// reason it could not even be read as an object.
#[derive(Debug, Clone, PartialEq)]
pub struct RawEntry {
    pub attr_path: String,
    pub package: Result<RawPackage, String>,
}

impl RawEntry {
    pub fn ok(attr_path: impl Into<String>, package: RawPackage) -> Self {
        Self { attr_path: attr_path.into(), package: Ok(package) }
    }
}

/// An entry value: a package object, or anything else (kept as an error, not fatal).
struct EntryValue(Result<RawPackage, String>);

impl<'de> Deserialize<'de> for EntryValue {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = EntryValue;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a package object")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<EntryValue, A::Error> {
                let p = RawPackage::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(EntryValue(Ok(p)))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<EntryValue, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(EntryValue(Err("entry is a JSON array, not a package object".into())))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<EntryValue, E> {
                Ok(EntryValue(Err("entry is a JSON string, not a package object".into())))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<EntryValue, E> {
                Ok(EntryValue(Err("entry is a JSON boolean, not a package object".into())))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<EntryValue, E> {
                Ok(EntryValue(Err("entry is a JSON number, not a package object".into())))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<EntryValue, E> {
                Ok(EntryValue(Err("entry is a JSON number, not a package object".into())))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<EntryValue, E> {
                Ok(EntryValue(Err("entry is a JSON number, not a package object".into())))
            }
            fn visit_unit<E: de::Error>(self) -> Result<EntryValue, E> {
                Ok(EntryValue(Err("entry is JSON null, not a package object".into())))
            }
        }
        d.deserialize_any(V)
    }
}

/// Seed that streams the entries of a package map into `emit`.
struct PackageMapSeed<'a, F: FnMut(RawEntry) -> bool> {
    emit: &'a mut F,
    top_level: bool,
    count: &'a mut u64,
}

impl<'de, F: FnMut(RawEntry) -> bool> DeserializeSeed<'de> for PackageMapSeed<'_, F> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de, F: FnMut(RawEntry) -> bool> Visitor<'de> for PackageMapSeed<'_, F> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object mapping attribute paths to packages")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        // A channel's packages.json wraps the map as {"version": 2, "packages": {...}}.
        let mut wrapped = false;
        let mut first = true;
        while let Some(key) = map.next_key::<String>()? {
            if self.top_level && first && key == "version" {
                first = false;
                let v: Value = map.next_value()?;
                if v.is_number() {
                    wrapped = true;
                    continue;
                }
                // an attribute literally called "version": treat as a package entry
                let package = match v {
                    Value::Object(_) => RawPackage::deserialize(v).map_err(|e| e.to_string()),
                    _ => Err("entry is not a package object".to_string()),
                };
                *self.count += 1;
                if !(self.emit)(RawEntry { attr_path: key, package }) {
                    return Err(de::Error::custom(STOPPED));
                }
                continue;
            }
            first = false;
            if wrapped && key == "packages" {
                let seed = PackageMapSeed { emit: &mut *self.emit, top_level: false, count: &mut *self.count };
                map.next_value_seed(seed)?;
                continue;
            }
            if wrapped {
                map.next_value::<IgnoredAny>()?;
                continue;
            }
            let EntryValue(package) = map.next_value()?;
            *self.count += 1;
            if !(self.emit)(RawEntry { attr_path: key, package }) {
                return Err(de::Error::custom(STOPPED));
            }
        }
        Ok(())
    }
}

const STOPPED: &str = "fdnix: consumer stopped reading";

/// Streams the package map in `text`, calling `emit` once per entry; `emit` returns false to
/// stop early. Entries are deserialised one at a time into typed raw structs: the text is held,
/// never a DOM of the whole document (parsing a slice is about 3x faster than `io::Read`).
/// Returns the number of entries seen.
pub fn parse_package_map_slice<F: FnMut(RawEntry) -> bool>(text: &[u8], mut emit: F) -> Result<u64, SourceError> {
    let mut de = serde_json::Deserializer::from_slice(text);
    let mut count = 0u64;
    let seed = PackageMapSeed { emit: &mut emit, top_level: true, count: &mut count };
    let res = seed.deserialize(&mut de);
    finish(res, count, || de.end())
}

fn finish(res: Result<(), serde_json::Error>, count: u64, end: impl FnOnce() -> Result<(), serde_json::Error>) -> Result<u64, SourceError> {
    match res {
        Ok(()) => {}
        Err(e) if e.to_string().starts_with(STOPPED) => return Ok(count),
        Err(e) => {
            return Err(match e.classify() {
                serde_json::error::Category::Data if count == 0 && e.line() <= 1 && e.column() <= 1 || is_not_object(&e) => {
                    SourceError::NotAnObject(e.to_string())
                }
                serde_json::error::Category::Eof => SourceError::Json(format!("document ends early: {e}")),
                serde_json::error::Category::Io => SourceError::Json(format!("read error: {e}")),
                _ => SourceError::Json(e.to_string()),
            })
        }
    }
    end().map_err(|e| SourceError::Json(format!("trailing data after the package map: {e}")))?;
    Ok(count)
}

fn is_not_object(e: &serde_json::Error) -> bool {
    e.to_string().contains("expected a JSON object mapping attribute paths")
}

/// Helper for tests and tools: the `meta` object of a raw package, if it is one.
pub fn meta_object(p: &RawPackage) -> Option<&Map<String, Value>> {
    p.meta.as_ref().and_then(Value::as_object)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(doc: &str) -> Result<Vec<RawEntry>, SourceError> {
        let mut out = Vec::new();
        parse_package_map_slice(doc.as_bytes(), |e| {
            out.push(e);
            true
        })?;
        Ok(out)
    }

    #[test]
    fn streams_entries_in_order() {
        let v = collect(r#"{"b":{"pname":"b","meta":{"x":1}},"a":{"pname":"a"}}"#).unwrap();
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].attr_path, "b");
        assert_eq!(v[1].attr_path, "a");
        assert_eq!(v[0].package.as_ref().unwrap().pname, Some(Value::String("b".into())));
    }

    #[test]
    fn non_object_entries_are_kept_as_errors() {
        let v = collect(r#"{"ok":{"pname":"ok"},"bad":[1,2],"worse":"x","n":null}"#).unwrap();
        assert_eq!(v.len(), 4);
        assert!(v[0].package.is_ok());
        assert!(v[1].package.as_ref().unwrap_err().contains("array"));
        assert!(v[2].package.as_ref().unwrap_err().contains("string"));
        assert!(v[3].package.as_ref().unwrap_err().contains("null"));
    }

    #[test]
    fn non_object_document_is_a_clear_error() {
        for doc in ["[1,2,3]", "\"hello\"", "42"] {
            let e = collect(doc).unwrap_err();
            assert!(matches!(e, SourceError::NotAnObject(_)), "{doc}: {e}");
            assert!(e.to_string().contains("not a JSON object"), "{e}");
        }
    }

    #[test]
    fn truncated_and_trailing_documents_fail() {
        assert!(matches!(collect(r#"{"a":{"pname":"a"}"#).unwrap_err(), SourceError::Json(_)));
        assert!(matches!(collect(r#"{"a":{"pname":"a"}} {}"#).unwrap_err(), SourceError::Json(_)));
    }

    #[test]
    fn channel_wrapper_is_unwrapped() {
        let v = collect(r#"{"version":2,"packages":{"hello":{"pname":"hello"},"x":{"pname":"x"}}}"#).unwrap();
        let names: Vec<_> = v.iter().map(|e| e.attr_path.as_str()).collect();
        assert_eq!(names, ["hello", "x"]);
    }

    #[test]
    fn early_stop_is_not_an_error() {
        let mut n = 0;
        let seen = parse_package_map_slice(r#"{"a":{},"b":{},"c":{}}"#.as_bytes(), |_| {
            n += 1;
            n < 2
        })
        .unwrap();
        assert_eq!(seen, 2);
    }
}
