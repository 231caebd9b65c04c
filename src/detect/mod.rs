//! Detectors: one file per kind, pure and synchronous.
//!
//! A detector never reads the clock, does no I/O and owns no state: the engine
//! hands it the event (time, record, body) and the per-key state loaded for the
//! batch, and it says what the event means. State is plain serializable data
//! ([`KindState`]) so any store can hold it. Each kind's file implements
//! [`Detect`]; the `kinds!` list below is the only place that names them all.

pub mod baseline;
pub mod config;
pub mod distinct;
pub mod failure;
pub mod key;
pub mod kind;
pub mod leak;
pub mod lifecycle;
pub mod literals;
pub mod matcher;
pub mod pattern;
pub mod profile;
pub mod rate;
pub mod rule_regex;
pub mod secrets;
pub mod sequence;
pub mod threshold;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use config::{ConfigVisitor, KindConfig};
pub use key::{Located, StateKey};
pub use kind::{At, Detect, Line, Listed, Matching, Opened, Scope, StateOf, Summary};

/// The values that identify one incident of a rule within a log group,
/// e.g. `{"source_ip": "203.0.113.7"}`; empty for per-function rules.
pub type Key = BTreeMap<String, String>;

impl Kind {
    /// "threshold, distinct, …, rate or pattern", for error messages.
    pub fn listed() -> String {
        let names: Vec<&str> = Kind::ALL.iter().map(|k| k.as_str()).collect();
        match names.split_last() {
            Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
            _ => names.join(""),
        }
    }

    /// The fields this kind's configuration reads.
    pub fn fields(self) -> &'static [&'static str] {
        struct Fields;
        impl ConfigVisitor for Fields {
            type Out = &'static [&'static str];
            fn visit<C: KindConfig>(self) -> Self::Out {
                config::fields_of::<C>()
            }
        }
        self.visit(Fields)
    }
}

/// The closed set of detectors, one line per kind: `Variant(type)`, and
/// `state Variant(type)` when the kind keeps state (the variant's
/// snake_case name is the stored `"type"`). It generates [`Detector`], the
/// observations ([`Obs`]), the stored states ([`KindState`]) and the
/// dispatch, which only delegates to the kind's [`Detect`] implementation.
macro_rules! kinds {
    ($( $(#[$doc:meta])* $v:ident($ty:ty)
        $(, state $sv:ident($st:ty))?
        $(, kind $kv:ident = $kname:literal($kcfg:ty))? ;)*) => {
        /// The `kind:` of a rule file: a closed set, each compiled by its
        /// file's `Config` (one `kind` may compile to more than one detector).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum Kind {
            $( $(
                #[doc = concat!("`kind: ", $kname, "`.")]
                #[serde(rename = $kname)]
                $kv,
            )? )*
        }

        impl Kind {
            /// Every kind, in the order error messages list them: the one list, so a
            /// new kind cannot be missing from an error that lists them.
            pub const ALL: [Kind; 0 $( $( + one!($kv) )? )*] = [ $( $( Kind::$kv, )? )* ];

            /// The contract's spelling.
            pub fn as_str(self) -> &'static str {
                match self { $( $( Kind::$kv => $kname, )? )* }
            }

            /// Do `v` with this kind's configuration type (its `Config`, which the
            /// kind's file owns).
            pub fn visit<V: ConfigVisitor>(self, v: V) -> V::Out {
                match self { $( $( Kind::$kv => v.visit::<$kcfg>(), )? )* }
            }
        }

        /// A compiled detector: the closed set of kinds. Adding a kind is
        /// one file here and one line in the `kinds!` list.
        #[derive(Debug, Clone)]
        pub enum Detector {
            $( $(#[$doc])* $v($ty), )*
        }

        /// What one event means for one rule, per kind.
        pub enum Obs<'a> {
            $( #[doc = concat!("A `", stringify!($v), "` observation.")] $v(<$ty as Detect>::Obs<'a>), )*
        }

        /// A kind's stored state; `"type"` names the variant in the stored JSON.
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(tag = "type", rename_all = "snake_case")]
        pub enum KindState {
            $( $( #[doc = concat!("State of `", stringify!($v), "` rules.")] $sv($st), )? )*
        }

        $( $(
            impl StateOf for $st {
                fn wrap(self) -> KindState {
                    KindState::$sv(self)
                }
                fn of(v: &KindState) -> Option<&Self> {
                    match v {
                        KindState::$sv(x) => Some(x),
                        #[allow(unreachable_patterns)]
                        _ => None,
                    }
                }
                fn of_mut(v: &mut KindState) -> Option<&mut Self> {
                    match v {
                        KindState::$sv(x) => Some(x),
                        #[allow(unreachable_patterns)]
                        _ => None,
                    }
                }
            }
        )? )*

        impl Detector {
            /// The line matchers of the rule (empty for kinds that read platform records).
            pub fn matchers(&self) -> &[matcher::Matcher] {
                match self { $( Detector::$v(d) => <$ty as Detect>::matchers(d), )* }
            }

            /// The secret finder of the rule, if it looks for secrets.
            pub fn secrets(&self) -> Option<&secrets::SecretFinder> {
                match self { $( Detector::$v(d) => <$ty as Detect>::secrets(d), )* }
            }

            /// What the event means for the rule ([`Detect::observe`]).
            #[inline]
            pub fn observe<'p>(
                &self,
                line: &Line<'p, '_>,
                m: &mut Matching<'_>,
                out: &mut impl FnMut(Obs<'p>),
            ) {
                match self { $( Detector::$v(d) => <$ty as Detect>::observe(d, line, m, &mut |o| out(Obs::$v(o))), )* }
            }

            /// The incident key of an observation, if it has one ([`Detect::key_of`]).
            pub fn key_of<'o>(obs: &'o Obs<'_>) -> Option<&'o Key> {
                match obs { $( Obs::$v(o) => <$ty as Detect>::key_of(o), )* }
            }

            /// The rule's per-batch state key ([`Detect::batch_key`]).
            pub fn batch_key(&self, rule: &str, group: &str, stream: &str) -> Option<StateKey> {
                match self { $( Detector::$v(d) => <$ty as Detect>::batch_key(d, rule, group, stream), )* }
            }

            /// The rule whose incident this rule reads ([`Detect::follows`]).
            pub fn follows(&self) -> Option<&str> {
                match self { $( Detector::$v(d) => <$ty as Detect>::follows(d), )* }
            }

            /// The rule's state key for an incident key ([`Detect::keyed_key`]).
            pub fn keyed_key(&self, rule: &str, group: &str, key: &Key) -> Option<StateKey> {
                match self { $( Detector::$v(d) => <$ty as Detect>::keyed_key(d, rule, group, key), )* }
            }

            /// Apply an observation of this rule ([`Detect::apply`]).
            pub fn apply<S: Scope>(&self, obs: &Obs<'_>, at: &At<'_>, scope: &mut S) {
                match (self, obs) {
                    $( (Detector::$v(d), Obs::$v(o)) => <$ty as Detect>::apply(d, o, at, scope), )*
                    // An observation is always the rule's own kind's.
                    #[allow(unreachable_patterns)]
                    _ => {}
                }
            }

            /// The summary's first sentence ([`Detect::what`]).
            pub fn what(&self, s: &Summary<'_>) -> String {
                match self { $( Detector::$v(d) => <$ty as Detect>::what(d, s), )* }
            }

            /// What the sweep lists for this rule ([`Detect::listed`]).
            pub fn listed(&self) -> Option<Listed> {
                match self { $( Detector::$v(d) => <$ty as Detect>::listed(d), )* }
            }

            /// Judge deadlines ([`Detect::deadlines`]).
            pub fn deadlines<S: Scope>(&self, scope: &mut S, watermark: i64) {
                match self { $( Detector::$v(d) => <$ty as Detect>::deadlines(d, scope, watermark), )* }
            }

            /// The default `resolve_after` ([`Detect::resolve_after`]).
            pub fn resolve_after(&self, realert_ms: i64) -> i64 {
                match self { $( Detector::$v(d) => <$ty as Detect>::resolve_after(d, realert_ms), )* }
            }

            /// Clear observations that resolve an incident ([`Detect::clear_run`]).
            pub fn clear_run(&self) -> Option<u32> {
                match self { $( Detector::$v(d) => <$ty as Detect>::clear_run(d), )* }
            }

            /// Judge what went quiet ([`Detect::sweep`]).
            pub fn sweep<S: Scope>(&self, scope: &mut S, watermark: i64) {
                match self { $( Detector::$v(d) => <$ty as Detect>::sweep(d, scope, watermark), )* }
            }
        }
    };
}

/// Counts the `kind:` entries of the `kinds!` list.
macro_rules! one {
    ($x:ident) => {
        1
    };
}

// In the order error messages list the kinds.
kinds! {
    /// Count of matching events per key in a sliding window.
    Threshold(threshold::Threshold), state Window(threshold::WindowState),
        kind Threshold = "threshold"(threshold::Config);
    /// Distinct values of a field per key in a sliding window.
    Distinct(distinct::Distinct), state Distinct(distinct::DistinctState),
        kind Distinct = "distinct"(distinct::Config);
    /// START without END/REPORT.
    Lifecycle(lifecycle::Lifecycle), state Stream(lifecycle::StreamState),
        kind Lifecycle = "lifecycle"(lifecycle::Config);
    /// Timeouts, out of memory, runtime exits, init failures.
    Failure(failure::Failure), kind Failure = "failure"(failure::Config);
    /// Duration or memory against a learned per-function baseline.
    Baseline(baseline::Baseline), state Baseline(baseline::BaselineState),
        kind Baseline = "baseline"(baseline::Config);
    /// Invocations per function per bucket against a learned rate.
    Rate(rate::Rate), state Rate(rate::RateState), kind Rate = "rate"(rate::Config);
    /// Memory rising steadily within one log stream (a `baseline` rule with
    /// `metric: memory_trend`, compiled by `baseline`'s `Config`).
    Leak(leak::Leak), state Leak(leak::LeakState);
    /// Every matching event (or secret) is a finding.
    Pattern(pattern::Pattern), kind Pattern = "pattern"(pattern::Config);
    /// Another rule's incident, then a matching event for the same key within a span.
    Sequence(sequence::Sequence), kind Sequence = "sequence"(sequence::Config);
}

/// Something a detector found: the start or the continuation of an incident.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    /// Incident key.
    pub key: Key,
    /// Time of the earliest event that belongs to it.
    pub first_seen: i64,
    /// Time of the latest event that belongs to it.
    pub last_seen: i64,
    /// How many events (or invocations) it stands for.
    pub count: u64,
    /// Log stream of the event that completed the finding.
    pub log_stream: String,
    /// Request ids involved.
    pub request_ids: Vec<String>,
    /// Sample lines, raw (the alert layer truncates and redacts).
    pub evidence: Vec<String>,
    /// Numbers that explain it (`duration_ms`, `baseline_ms`, …).
    pub metrics: BTreeMap<String, f64>,
}

/// Canonical text of a key: `k=v` pairs in key order, `%`, `|`, `=` and `,`
/// escaped. Alert ids hash it ([`crate::alert::fingerprint`]) and state keys
/// embed it, so it must never change.
pub fn key_text(key: &Key) -> String {
    let mut out = String::new();
    push_key_text(&mut out, key);
    out
}

/// [`key_text`] appended to `out`: one pass and no allocation of its own,
/// because state keys and alert ids format it for every keyed observation
/// (the four chained `replace`s and the joined `Vec` this replaces cost
/// 7.2 M of 351 M Ir on the text corpus, callgrind).
pub fn push_key_text(out: &mut String, key: &Key) {
    for (i, (k, v)) in key.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_escaped(out, k);
        out.push('=');
        push_escaped(out, v);
    }
}

/// `s` with `%` escaped first, then `|`, `=` and `,`: the escapes hold none
/// of `|`, `=` or `,`, so one pass gives what the chained replaces gave.
fn push_escaped(out: &mut String, s: &str) {
    let mut rest = s;
    while let Some(i) = rest
        .bytes()
        .position(|b| matches!(b, b'%' | b'|' | b'=' | b','))
    {
        out.push_str(&rest[..i]);
        out.push_str(match rest.as_bytes()[i] {
            b'%' => "%25",
            b'|' => "%7C",
            b'=' => "%3D",
            _ => "%2C",
        });
        rest = &rest[i + 1..];
    }
    out.push_str(rest);
}

/// 64-bit FNV-1a: stable across processes and builds, unlike std's hasher,
/// which matters because these hashes are stored in shared state.
pub fn stable_hash(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let step = |h: u64, b: u8| (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
    for p in parts {
        // A plain loop and the separator after it: the `chain`ed iterator
        // this replaces compiled to a slower loop (callgrind: 1.2 M Ir of
        // the text corpus on the xor line alone).
        h = p.bytes().fold(h, step);
        h = step(h, 0xff);
    }
    h
}

/// Function name of a Lambda log group (`/aws/lambda/checkout` → `checkout`).
/// A place outside home ([`Located`]) names its group's function too.
pub fn function_name(log_group: &str) -> Option<&str> {
    Located::parse(log_group)
        .group
        .strip_prefix("/aws/lambda/")
        .filter(|f| !f.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_hash_separates_parts() {
        assert_ne!(stable_hash(&["ab", "c"]), stable_hash(&["a", "bc"]));
        assert_eq!(stable_hash(&["x"]), stable_hash(&["x"]));
        // Pinned: stored in shared state, so it must never change.
        assert_eq!(stable_hash(&[""]), 0xaf64_724c_8602_eb6e);
    }

    #[test]
    fn key_text_escapes_as_the_chained_replaces_did() {
        let key = Key::from([
            ("a%|=,b".to_string(), "%7C|x=y,z%".to_string()),
            ("plain".to_string(), String::new()),
        ]);
        let esc = |s: &str| {
            s.replace('%', "%25")
                .replace('|', "%7C")
                .replace('=', "%3D")
                .replace(',', "%2C")
        };
        let want: Vec<String> = key
            .iter()
            .map(|(k, v)| format!("{}={}", esc(k), esc(v)))
            .collect();
        assert_eq!(key_text(&key), want.join(","));
        assert_eq!(key_text(&Key::new()), "");
    }

    #[test]
    fn function_name_from_lambda_log_group() {
        assert_eq!(function_name("/aws/lambda/checkout"), Some("checkout"));
        assert_eq!(function_name("/ecs/web"), None);
        assert_eq!(function_name("/aws/lambda/"), None);
    }
}
