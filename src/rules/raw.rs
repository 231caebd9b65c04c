//! The raw stage: a rule file's entries as written, every field optional so
//! that one pass can report every problem.
//!
//! The fields every rule has are read here; the others are left for the
//! rule's kind, which deserialises them into its own `Config` (see
//! [`crate::detect::config`]). Each is still type-checked here as it is read,
//! against the configuration of the kind that declares it, so that serde
//! reports a wrong type where and how it always has.

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;
use std::sync::LazyLock;

use serde::de::{self, DeserializeSeed, IntoDeserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_yaml_ng::Value;

use super::Severity;
use crate::detect::Kind;
use crate::detect::config::{ConfigVisitor, KindConfig};

/// One rule file, as written.
#[derive(Debug, Default)]
pub(super) struct RawRule {
    pub id: Option<String>,
    pub title: Option<String>,
    pub severity: Option<Severity>,
    pub kind: Option<Kind>,
    pub description: Option<String>,
    pub realert: Option<String>,
    pub resolve_after: Option<String>,
    pub notify_resolved: Option<bool>,
    pub mode: Option<super::Mode>,
    pub tests: Vec<RawTest>,
    /// The entries some kind declares, in file order, for the rule's kind
    /// (the values are read again by [`RawRule::kind_values`]).
    pub kind_fields: Vec<String>,
}

/// The fields every rule has.
const COMMON: [&str; 10] = [
    "id",
    "title",
    "severity",
    "kind",
    "description",
    "realert",
    "resolve_after",
    "notify_resolved",
    "mode",
    "tests",
];

/// The order in which an `unknown field` error lists the fields, kept from
/// when one struct held every kind's fields so that the message did not
/// change. A field a kind adds later is listed before `tests`.
const LISTED_ORDER: [&str; 38] = [
    "id",
    "title",
    "severity",
    "kind",
    "description",
    "match",
    "group_by",
    "threshold",
    "window",
    "unique",
    "attempt",
    "realert",
    "on",
    "grace",
    "max_duration",
    "function_timeouts",
    "metric",
    "warmup",
    "factor",
    "sigmas",
    "timeout_fraction",
    "memory_fraction",
    "min_rate",
    "architecture",
    "function_architectures",
    "pricing",
    "points",
    "min_points",
    "monotonicity",
    "horizon",
    "distinct",
    "secrets",
    "steps",
    "within",
    "resolve_after",
    "notify_resolved",
    "mode",
    "tests",
];

/// The order in which fields that do not apply to a rule's kind are
/// reported (kept, like [`LISTED_ORDER`]); a field a kind adds later comes
/// last. The fields from [`MODE_FROM`] on are reported with the rule's mode
/// ([`crate::detect::config::KindConfig::mode`]), as they always were.
const FOREIGN_ORDER: [&str; 28] = [
    "match",
    "group_by",
    "threshold",
    "window",
    "unique",
    "attempt",
    "on",
    "grace",
    "max_duration",
    "function_timeouts",
    "metric",
    "warmup",
    "factor",
    "sigmas",
    "timeout_fraction",
    "memory_fraction",
    "distinct",
    "secrets",
    "steps",
    "within",
    "min_rate",
    "architecture",
    "function_architectures",
    "pricing",
    "points",
    "min_points",
    "monotonicity",
    "horizon",
];

/// Every field of every kind, in the order the kinds declare them.
fn kind_fields() -> Vec<&'static str> {
    let mut all: Vec<&'static str> = Vec::new();
    for kind in Kind::ALL {
        for f in kind.fields() {
            if !all.contains(f) {
                all.push(f);
            }
        }
    }
    all
}

/// `ordered` restricted to `known`, then the rest of `known`.
fn in_order(ordered: &[&'static str], known: &[&'static str]) -> Vec<&'static str> {
    let mut out: Vec<&'static str> = ordered
        .iter()
        .copied()
        .filter(|f| known.contains(f))
        .collect();
    out.extend(known.iter().copied().filter(|f| !ordered.contains(f)));
    out
}

/// Every field a rule file may have, as an `unknown field` error lists them.
static LISTED: LazyLock<Vec<&'static str>> = LazyLock::new(|| {
    let mut known: Vec<&'static str> = COMMON.iter().copied().filter(|f| *f != "tests").collect();
    known.extend(kind_fields());
    let mut out = in_order(&LISTED_ORDER, &known);
    out.push("tests");
    out
});

/// The first field of [`FOREIGN_ORDER`] reported with the rule's mode.
pub(super) const MODE_FROM: &str = "min_rate";

/// Every kind's fields, in the order "does not apply" errors report them.
pub(super) static FOREIGN: LazyLock<Vec<&'static str>> =
    LazyLock::new(|| in_order(&FOREIGN_ORDER, &kind_fields()));

/// The kind that declares `field`, the first in [`Kind::ALL`] (kinds that
/// share a field give it the same type).
fn owner(field: &str) -> Option<Kind> {
    Kind::ALL.into_iter().find(|k| k.fields().contains(&field))
}

impl RawRule {
    /// The values of the entries for the rule's kind, from the rule's text
    /// (`field: ~` is absent, as for an `Option` field).
    pub fn kind_values(&self, text: &str) -> Vec<(String, Value)> {
        let Ok(Value::Mapping(map)) = serde_yaml_ng::from_str::<Value>(text) else {
            return Vec::new();
        };
        self.kind_fields
            .iter()
            .filter_map(|k| {
                let v = map.get(k.as_str())?;
                (!v.is_null()).then(|| (k.clone(), v.clone()))
            })
            .collect()
    }
}

/// The value of the entry `key`, deserialised (and dropped) as the
/// configuration of `kind` would read it: serde sees the same types, so it
/// fails at the same place with the same message.
struct Typed<'k> {
    key: &'k str,
    kind: Kind,
}

impl<'de> DeserializeSeed<'de> for Typed<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        self.kind.visit(TypedEntry {
            key: self.key,
            value: d,
            de: PhantomData,
        })
    }
}

/// `{key: value}` handed to a kind's configuration type.
struct TypedEntry<'k, 'de, D> {
    key: &'k str,
    value: D,
    de: PhantomData<&'de ()>,
}

impl<'de, D: Deserializer<'de>> ConfigVisitor for TypedEntry<'_, 'de, D> {
    type Out = Result<(), D::Error>;
    fn visit<C: KindConfig>(self) -> Self::Out {
        C::deserialize(self).map(drop)
    }
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for TypedEntry<'_, 'de, D> {
    type Error = D::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        visitor.visit_map(OneEntry {
            key: Some(self.key),
            value: Some(self.value),
        })
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}

struct OneEntry<'k, D> {
    key: Option<&'k str>,
    value: Option<D>,
}

impl<'de, D: Deserializer<'de>> MapAccess<'de> for OneEntry<'_, D> {
    type Error = D::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, D::Error> {
        match self.key.take() {
            Some(k) => seed.deserialize(k.into_deserializer()).map(Some),
            None => Ok(None),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, D::Error> {
        match self.value.take() {
            Some(d) => seed.deserialize(d),
            None => Err(de::Error::custom("a value was read twice")),
        }
    }
}

impl<'de> Deserialize<'de> for RawRule {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<RawRule, D::Error> {
        d.deserialize_struct("RawRule", &LISTED, RuleVisitor)
    }
}

struct RuleVisitor;

/// Set a common field once, as serde's derive does (`id: ~` counts as set).
fn once<'de, T: Deserialize<'de>, A: MapAccess<'de>>(
    slot: &mut Option<Option<T>>,
    name: &'static str,
    map: &mut A,
) -> Result<(), A::Error> {
    if slot.is_some() {
        return Err(de::Error::duplicate_field(name));
    }
    *slot = Some(map.next_value::<Option<T>>()?);
    Ok(())
}

impl<'de> Visitor<'de> for RuleVisitor {
    type Value = RawRule;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("struct RawRule")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawRule, A::Error> {
        let (mut id, mut title, mut description, mut realert) = (None, None, None, None);
        let (mut severity, mut kind) = (None, None);
        let (mut resolve_after, mut notify_resolved, mut mode) = (None, None, None);
        let mut tests: Option<Vec<RawTest>> = None;
        let mut seen: Vec<&'static str> = Vec::new();
        let mut kind_fields = Vec::new();
        while let Some(key) = map.next_key_seed(FieldName)? {
            match key.as_str() {
                "id" => once(&mut id, "id", &mut map)?,
                "title" => once(&mut title, "title", &mut map)?,
                "severity" => once(&mut severity, "severity", &mut map)?,
                "kind" => once(&mut kind, "kind", &mut map)?,
                "description" => once(&mut description, "description", &mut map)?,
                "realert" => once(&mut realert, "realert", &mut map)?,
                "resolve_after" => once(&mut resolve_after, "resolve_after", &mut map)?,
                "notify_resolved" => once(&mut notify_resolved, "notify_resolved", &mut map)?,
                "mode" => once(&mut mode, "mode", &mut map)?,
                "tests" => {
                    if tests.is_some() {
                        return Err(de::Error::duplicate_field("tests"));
                    }
                    tests = Some(map.next_value()?);
                }
                other => {
                    let Some(name) = LISTED.iter().copied().find(|f| *f == other) else {
                        return Err(de::Error::unknown_field(other, &LISTED));
                    };
                    if seen.contains(&name) {
                        return Err(de::Error::duplicate_field(name));
                    }
                    seen.push(name);
                    match owner(name) {
                        Some(kind) => map.next_value_seed(Typed { key: name, kind })?,
                        None => map.next_value::<de::IgnoredAny>().map(drop)?,
                    }
                    kind_fields.push(key);
                }
            }
        }
        Ok(RawRule {
            id: id.flatten(),
            title: title.flatten(),
            severity: severity.flatten(),
            kind: kind.flatten(),
            description: description.flatten(),
            realert: realert.flatten(),
            resolve_after: resolve_after.flatten(),
            notify_resolved: notify_resolved.flatten(),
            mode: mode.flatten(),
            tests: tests.unwrap_or_default(),
            kind_fields,
        })
    }

    /// A rule file that is a YAML list: serde's derive reads the fields in
    /// order from it, and always fails on the missing ones; so does this,
    /// with the same message.
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawRule, A::Error> {
        let len = LISTED.len();
        for i in 0..len {
            let present = match LISTED.get(i).copied() {
                Some("severity") => seq.next_element::<Option<Severity>>()?.is_some(),
                Some("kind") => seq.next_element::<Option<Kind>>()?.is_some(),
                Some("id" | "title" | "description" | "realert") => {
                    seq.next_element::<Option<String>>()?.is_some()
                }
                _ => seq.next_element::<Value>()?.is_some(),
            };
            if !present {
                let expected = format!("struct RawRule with {len} elements");
                return Err(de::Error::invalid_length(i, &expected.as_str()));
            }
        }
        Ok(RawRule::default())
    }
}

/// A field name, as serde's derive reads one.
struct FieldName;

impl<'de> DeserializeSeed<'de> for FieldName {
    type Value = String;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<String, D::Error> {
        d.deserialize_identifier(self)
    }
}

impl Visitor<'_> for FieldName {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("field identifier")
    }

    // An unknown field is refused here, while the key is read, as serde's
    // derive does: serde_yaml_ng then locates the error at the key.
    fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
        if LISTED.contains(&v) {
            Ok(v.to_string())
        } else {
            Err(E::unknown_field(v, &LISTED))
        }
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<String, E> {
        self.visit_str(&String::from_utf8_lossy(v))
    }
}

/// An inline test, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTest {
    pub name: String,
    pub log_group: Option<String>,
    pub lines: Option<Vec<String>>,
    pub events: Option<Vec<RawTestEvent>>,
    pub now: Option<String>,
    pub expect_alerts: usize,
    pub expect_key: Option<BTreeMap<String, String>>,
    pub expect_count: Option<u64>,
}

/// One event of an inline test, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTestEvent {
    /// RFC 3339, or `+90s` after the test's start time.
    pub t: String,
    pub message: String,
    pub stream: Option<String>,
    /// This event `repeat` times, `every` apart from `t` on (rate tests need
    /// hundreds of invocations); `{n}` in the message becomes 0, 1, 2, …
    pub repeat: Option<usize>,
    pub every: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kept_orders_name_every_field_of_every_kind_once() {
        let mut known: Vec<&str> = COMMON.to_vec();
        known.extend(kind_fields());
        known.sort_unstable();
        let mut listed = LISTED_ORDER.to_vec();
        listed.sort_unstable();
        assert_eq!(listed, known);
        let mut foreign = FOREIGN_ORDER.to_vec();
        foreign.sort_unstable();
        let mut fields = kind_fields();
        fields.sort_unstable();
        assert_eq!(foreign, fields);
        assert_eq!(LISTED.as_slice(), LISTED_ORDER);
    }

    #[test]
    fn a_field_shared_by_kinds_belongs_to_the_first_that_declares_it() {
        assert_eq!(owner("window"), Some(Kind::Threshold));
        assert_eq!(owner("pricing"), Some(Kind::Rate));
        assert_eq!(owner("realert"), None);
    }
}
