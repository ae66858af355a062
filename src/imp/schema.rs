//! The stored form of an experiment's configuration: its schema version,
//! the migration of forms written by earlier releases, and the canonical
//! text whose hash names the experiment directory.
//!
//! # Versions
//! * **1** (releases before this module): tagged enums used three keys
//!   (`type` for the optimizer, `mode` for [`Retrain`](super::Retrain),
//!   `kind` elsewhere); `config.json` had no version.
//! * **2** (current): every tagged enum is tagged by `kind`, and
//!   `config.json` records `"schema_version": 2`.
//!
//! # Directory names never drift
//! The name hashes the settings that differ from a **frozen** baseline,
//! schema 1's defaults ([`DEFAULTS_V1`]), spelled as schema 1 spelled
//! them and written with sorted keys ([`canonical_string`]). So a default
//! that changes in a later release leaves every existing name alone (a
//! configuration keeps its name as long as its values stay), a new tag
//! spelling leaves names alone, and so does serde_json's `preserve_order`
//! feature being switched on by another crate. A setting added after
//! schema 1 is left out of the hash while it holds its own default, so
//! adding an option never renames an experiment either.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The configuration schema this release writes.
pub const SCHEMA_VERSION: u64 = 2;

/// The key under which `config.json` records [`SCHEMA_VERSION`].
pub const SCHEMA_KEY: &str = "schema_version";

/// The one key that tags every tagged enum of a configuration.
pub const TAG_KEY: &str = "kind";

/// Where schema 1 tagged an enum with another key than [`TAG_KEY`]: the
/// JSON pointer of the tagged object in an `ImpConfig`, and the old key.
const V1_TAGS: &[(&str, &str)] = &[("/training/optimizer", "type"), ("/retrain", "mode")];

/// `ImpConfig::default()` as schema 1 serialized it: the frozen baseline
/// that directory names hash the differences from.
pub const DEFAULTS_V1: &str = include_str!("defaults_v1.json");

/// A stored configuration this release cannot read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchemaError {
    /// Written by a newer release.
    #[error(
        "the configuration has schema version {found}, newer than this release's {SCHEMA_VERSION}: upgrade burn-lottery to open it"
    )]
    Newer {
        /// The stored version.
        found: u64,
    },
    /// The version is not a whole number.
    #[error("`{SCHEMA_KEY}` must be a whole number, got {0}")]
    BadVersion(String),
}

/// Brings a stored `ImpConfig` JSON of any schema to the current one and
/// removes its version key. Schema 1's tag keys become [`TAG_KEY`].
pub fn migrate(mut stored: Value) -> Result<Value, SchemaError> {
    let version = match stored.as_object_mut().and_then(|m| m.remove(SCHEMA_KEY)) {
        None => 1,
        Some(v) => v
            .as_u64()
            .ok_or_else(|| SchemaError::BadVersion(v.to_string()))?,
    };
    if version > SCHEMA_VERSION {
        return Err(SchemaError::Newer { found: version });
    }
    if version < 2 {
        for (pointer, old) in V1_TAGS {
            rename_key(&mut stored, pointer, old, TAG_KEY);
        }
    }
    Ok(stored)
}

/// Renames the key `from` of the object at `pointer` to `to` (nothing when
/// the object or the key is absent, or `to` is already there).
pub(crate) fn rename_key(value: &mut Value, pointer: &str, from: &str, to: &str) {
    if let Some(Value::Object(map)) = value.pointer_mut(pointer)
        && !map.contains_key(to)
        && let Some(tag) = map.remove(from)
    {
        map.insert(to.to_string(), tag);
    }
}

/// `config` (an `ImpConfig` in the current spelling) as schema 1 spelled it.
fn to_v1_spelling(mut config: Value) -> Value {
    for (pointer, old) in V1_TAGS {
        rename_key(&mut config, pointer, TAG_KEY, old);
    }
    config
}

/// The part of `config` (an `ImpConfig` in the current spelling) that its
/// directory name hashes: in schema 1's spelling, without the entries equal
/// to [`DEFAULTS_V1`], nor those schema 1 did not have that equal
/// `default` (today's defaults, same spelling as `config`).
pub fn hashed_form(config: Value, default: Value) -> Value {
    let baseline: Value = serde_json::from_str(DEFAULTS_V1).expect("DEFAULTS_V1 is JSON");
    let mut value = to_v1_spelling(config);
    strip(&mut value, &baseline, &to_v1_spelling(default));
    value
}

/// Removes from `value` every object entry equal to the same entry of
/// `baseline`, or, for keys the baseline lacks, of `default` (recursively;
/// arrays and scalars compare whole).
fn strip(value: &mut Value, baseline: &Value, default: &Value) {
    let Value::Object(map) = value else { return };
    let empty = Map::new();
    let base = baseline.as_object().unwrap_or(&empty);
    let defaults = default.as_object().unwrap_or(&empty);
    map.retain(|key, v| {
        let (reference, fallback) = match base.get(key) {
            Some(b) => (Some(b), defaults.get(key).unwrap_or(&Value::Null)),
            None => (defaults.get(key), &Value::Null),
        };
        match reference {
            Some(r) if r == v => false,
            Some(r) => {
                strip(v, r, fallback);
                true
            }
            None => true,
        }
    });
}

/// `value` as compact JSON with every object's keys in sorted order,
/// whatever order the map keeps them in (serde_json's `preserve_order`
/// keeps insertion order).
pub fn canonical_string(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (key, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(v, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(v, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// Parses `value` as `T`, refusing any field `T` does not have: what `T`
/// writes back must hold every key that was read, at every depth.
pub(crate) fn parse_strict<T: Serialize + DeserializeOwned>(
    value: Value,
    what: &str,
) -> Result<T, String> {
    let parsed: T = serde_json::from_value(value.clone()).map_err(|e| format!("{what}: {e}"))?;
    let written = serde_json::to_value(&parsed).map_err(|e| format!("{what}: {e}"))?;
    match unknown_key(&value, &written) {
        Some(key) => Err(format!("unknown field `{key}` in {what}")),
        None => Ok(parsed),
    }
}

/// The first key of `read` (depth first) that `written` lacks.
fn unknown_key(read: &Value, written: &Value) -> Option<String> {
    match (read, written) {
        (Value::Object(r), Value::Object(w)) => r.iter().find_map(|(key, v)| match w.get(key) {
            None if !v.is_null() => Some(key.clone()),
            None => None,
            Some(w) => unknown_key(v, w),
        }),
        (Value::Array(r), Value::Array(w)) => r.iter().zip(w).find_map(|(r, w)| unknown_key(r, w)),
        _ => None,
    }
}

/// A `deserialize_with` for fields whose type serde cannot make refuse
/// unknown fields by itself (unit variants of internally tagged enums
/// ignore extra keys): [`parse_strict`] on the field's JSON.
pub(crate) fn deserialize_strict<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Serialize + DeserializeOwned,
{
    let value = Value::deserialize(deserializer)?;
    parse_strict(
        value,
        std::any::type_name::<T>()
            .rsplit("::")
            .next()
            .unwrap_or("the field"),
    )
    .map_err(serde::de::Error::custom)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn canonical_text_sorts_keys_at_every_depth() {
        let mut inner = Map::new();
        inner.insert("z".into(), json!(1));
        inner.insert("a".into(), json!([{"y": 2, "b": 0.1}]));
        let mut outer = Map::new();
        outer.insert("m".into(), Value::Object(inner));
        outer.insert("b".into(), json!("x\"y"));
        assert_eq!(
            canonical_string(&Value::Object(outer)),
            r#"{"b":"x\"y","m":{"a":[{"b":0.1,"y":2}],"z":1}}"#
        );
    }

    #[test]
    fn version_1_tags_are_renamed_and_newer_versions_refused() {
        let v1 = json!({"training": {"optimizer": {"type": "adam"}}, "retrain": {"mode": "fine_tuning"}});
        let migrated = migrate(v1).unwrap();
        assert_eq!(migrated["training"]["optimizer"], json!({"kind": "adam"}));
        assert_eq!(migrated["retrain"], json!({"kind": "fine_tuning"}));
        let v2 = json!({"schema_version": 2, "retrain": {"kind": "weight_rewinding"}});
        assert_eq!(
            migrate(v2).unwrap(),
            json!({"retrain": {"kind": "weight_rewinding"}})
        );
        assert_eq!(
            migrate(json!({"schema_version": 3})),
            Err(SchemaError::Newer { found: 3 })
        );
        assert!(matches!(
            migrate(json!({"schema_version": "2"})),
            Err(SchemaError::BadVersion(_))
        ));
    }

    #[test]
    fn entries_schema_1_lacked_are_compared_with_todays_default() {
        let baseline: Value = serde_json::from_str(DEFAULTS_V1).unwrap();
        let mut config = baseline.clone();
        config["new_option"] = json!(null);
        let mut default = baseline.clone();
        default["new_option"] = json!(null);
        assert_eq!(hashed_form(config.clone(), default.clone()), json!({}));
        config["new_option"] = json!(3);
        assert_eq!(hashed_form(config, default), json!({"new_option": 3}));
    }
}
