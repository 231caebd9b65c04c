//! Detector state: plain data behind the [`StateStore`] trait.
//!
//! The engine reads the state of every key a batch touches in one call and
//! writes what changed in one call, so a remote store costs requests per
//! distinct key, not per event. Every write carries the version it was read
//! at; a store shared by several processes refuses a stale write with
//! [`StateError::Conflict`] and the engine processes the batch again.

pub mod dynamodb;
pub mod memory;
pub mod store;

pub use crate::detect::key_text;
use std::collections::HashMap;
use std::future::Future;

use serde::{Deserialize, Serialize};

use crate::detect::KindState;

pub use memory::MemoryStore;
pub use store::Store;

/// What went wrong talking to a state store.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// Another process changed this key since it was read.
    #[error("state key {key} changed concurrently")]
    Conflict {
        /// The key.
        key: String,
    },
    /// The store could not be reached or refused the request; a retry may help.
    #[error("state store unavailable: {0}")]
    Unavailable(String),
    /// A stored value could not be decoded.
    #[error("state key {key} holds an unreadable value: {reason}")]
    Corrupt {
        /// The key.
        key: String,
        /// Why.
        reason: String,
    },
}

/// An open incident of one rule and key: further events inside `until` fold
/// into it instead of raising another alert.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IncidentState {
    /// Fingerprint of the alert that opened it.
    pub id: String,
    /// Event time before which the same rule and key stay silent.
    pub until: i64,
    /// Events or invocations counted.
    pub count: u64,
    /// Hashes of request ids counted, so one invocation counts once.
    pub requests: Vec<u64>,
    /// The alert this incident raised, until a sink confirms it was
    /// delivered: a retried batch re-emits it instead of losing it (outbox).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<Box<crate::alert::Alert>>,
    /// Which batch raised `pending` (0 = a sweep): only a retry of that batch
    /// re-sends it. Another container touching the same incident meanwhile
    /// must not, or an alert in flight would go out twice.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub pending_batch: u64,
    /// Event time of the latest event folded into it (0 in state written
    /// before incidents resolved: such an incident never resolves, it ends
    /// at `until` as it always did).
    #[serde(default, skip_serializing_if = "is_zero_i64")]
    pub last_seen: i64,
    /// Event time it resolves at unless an event folds in first (0: never,
    /// state from before).
    #[serde(default, skip_serializing_if = "is_zero_i64")]
    pub resolves_at: i64,
    /// Clear observations in a row since the last event folded in.
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub clear: u32,
    /// The firing alert last delivered: its resolution is this alert,
    /// resolved. Absent while the firing is pending, and for an incident
    /// folded into a storm digest (which resolves without a message).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fired: Option<Box<crate::alert::Alert>>,
    /// It resolved (its resolution, if any, is `pending` until delivered).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub resolved: bool,
    /// The resolution of the incident this one replaced at the same key,
    /// until a sink confirms it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<Box<crate::alert::Alert>>,
    /// Event time of the sweep that made `pending` (a resolution), when a
    /// sweep did: another sweep re-sends it only well after (see
    /// `engine::lifecycle::SWEEP_RESEND_MS`), so that two sweeping at once
    /// do not both send it.
    #[serde(default, skip_serializing_if = "is_zero_i64")]
    pub pending_at: i64,
    /// Which batch raised `previous` (as `pending_batch`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub previous_batch: u64,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

fn is_zero_i64(v: &i64) -> bool {
    *v == 0
}

fn is_zero_u32(v: &u32) -> bool {
    *v == 0
}

/// A firing alert a silence kept back (stored at `silenced|parked|<id>`):
/// it goes out once when the silence ends, if its incident is still open
/// then; its resolution never goes out without it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParkedAlert {
    /// The latest firing alert of the incident (realerts replace it).
    pub alert: Box<crate::alert::Alert>,
    /// Event time the silence ends at.
    pub until: i64,
    /// The silence's id.
    pub silence: String,
    /// The incident keys the alert stands for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub incidents: Vec<String>,
}

/// What is known about one function (log group) across rules.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FunctionState {
    /// Timeout learned from `Task timed out after N seconds`.
    pub timeout_ms: Option<i64>,
}

/// One stored value: the engine's (incidents, function facts) or a kind's.
///
/// Every value is stored as one JSON object whose `"type"` names it; a
/// kind's state ([`KindState`]) carries its own `"type"`, so the stored text
/// is the same as when all were variants of one enum.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StateValue {
    /// An open incident.
    Incident(IncidentState),
    /// Facts about a function.
    Function(FunctionState),
    /// A firing alert a silence kept back.
    Parked(ParkedAlert),
    /// A kind's state.
    #[serde(untagged)]
    Kind(KindState),
}

/// A value as read, with the version a write must expect.
#[derive(Debug, Clone, PartialEq)]
pub struct Versioned {
    /// The value.
    pub value: StateValue,
    /// Store-defined version, 0 for absent keys.
    pub version: u64,
    /// Event time it expires at, as last written: an update keeps at least this.
    pub expires_at: i64,
}

/// One change to write.
#[derive(Debug, Clone, PartialEq)]
pub struct Write {
    /// The key.
    pub key: String,
    /// New value, or `None` to delete.
    pub value: Option<StateValue>,
    /// Event time after which the value is worthless (drives TTL).
    pub expires_at: i64,
    /// Version read (0 = the key was absent).
    pub expected_version: u64,
}

/// Where detector state lives. Few required methods, as in ripgrep's traits:
/// batched reads and writes, and a listing for the deadline sweep.
pub trait StateStore: Send {
    /// Read these keys; absent or expired keys are simply missing from the map.
    fn load(
        &mut self,
        keys: &[String],
        now: i64,
    ) -> impl Future<Output = Result<HashMap<String, Versioned>, StateError>> + Send;

    /// Write these changes; a write whose expected version is stale fails the
    /// call with [`StateError::Conflict`] (what was written before it stays).
    fn save(&mut self, writes: Vec<Write>) -> impl Future<Output = Result<(), StateError>> + Send;

    /// Keys starting with `prefix` (the sweep lists a rule's states this way).
    fn keys_with_prefix(
        &mut self,
        prefix: &str,
        now: i64,
    ) -> impl Future<Output = Result<Vec<String>, StateError>> + Send;
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::detect::{Key, StateKey};

    #[test]
    fn keys_are_canonical_and_escaped() {
        let k = Key::from([
            ("source_ip".into(), "1.2.3.4".into()),
            ("a".into(), "x|y=z".into()),
        ]);
        assert_eq!(key_text(&k), "a=x%7Cy%3Dz,source_ip=1.2.3.4");
    }

    /// The text of every state key, pinned: stored items are found by it.
    #[test]
    fn every_key_keeps_its_text() {
        let set = crate::rules::RuleSet::builtin().unwrap();
        let rule = |id: &str| &set.rules.iter().find(|r| r.id == id).unwrap().detector;
        let k = Key::from([("source_ip".into(), "203.0.113.7".into())]);
        let (g, s) = ("/aws/lambda/f", "2026/11/22/[$LATEST]abc");
        let keyed = |id: &str| rule(id).keyed_key(id, g, &k).map(StateKey::into_string);
        let batch = |id: &str| rule(id).batch_key(id, g, s).map(StateKey::into_string);
        let listed = |id: &str| rule(id).listed().map(|l| l.space.prefix(id));
        let w = "|/aws/lambda/f|source_ip=203.0.113.7";
        assert_eq!(
            keyed("failed-auth-burst").unwrap(),
            format!("w|failed-auth-burst{w}")
        );
        assert_eq!(
            keyed("password-spraying").unwrap(),
            format!("w|password-spraying{w}")
        );
        assert_eq!(keyed("secret-in-logs"), None);
        assert_eq!(
            batch("missing-end").unwrap(),
            "s|missing-end|/aws/lambda/f|2026/11/22/[$LATEST]abc"
        );
        assert_eq!(listed("missing-end").unwrap(), "s|missing-end|");
        assert_eq!(
            batch("duration-anomaly").unwrap(),
            "b|duration-anomaly|/aws/lambda/f"
        );
        assert_eq!(
            batch("invocation-spike").unwrap(),
            "r|invocation-spike|/aws/lambda/f"
        );
        assert_eq!(listed("invocation-spike").unwrap(), "r|invocation-spike|");
        assert_eq!(
            batch("memory-leak").unwrap(),
            "l|memory-leak|/aws/lambda/f|2026/11/22/[$LATEST]abc"
        );
        assert_eq!(batch("invocation-timeout"), None);
        assert_eq!(
            StateKey::incident("rule-1", g, &Key::new()).as_str(),
            "i|rule-1|/aws/lambda/f|"
        );
        assert_eq!(StateKey::function(g).as_str(), "f|/aws/lambda/f");
    }

    /// The stored JSON of every value, pinned: DynamoDB items and the memory
    /// store hold this text, so a refactoring must read and write it unchanged.
    #[test]
    fn every_value_keeps_its_stored_json() {
        let pinned = [
            r#"{"type":"window","events":[[1795341600000,12,34]],"samples":["Failed password for root from 203.0.113.7"],"request_ids":["r-1"]}"#,
            r#"{"type":"stream","open":[{"request_id":"r-1","start":1795341600000,"superseded_at":null,"line":"START RequestId: r-1 Version: $LATEST"}],"done":[7],"dropped":2}"#,
            r#"{"type":"stream","open":[],"done":[]}"#,
            r#"{"type":"baseline","n":21,"mean":3010.5,"dev":120.25,"recent":[1,2]}"#,
            r#"{"type":"incident","id":"ab","until":5,"count":2,"requests":[1]}"#,
            r#"{"type":"incident","id":"ab","until":5,"count":2,"requests":[1],"pending_batch":9}"#,
            r#"{"type":"function","timeout_ms":3000}"#,
            r#"{"type":"rate","open":[[1795341600000,10]],"closed_until":1795341540000,"clock":1795341600001,"n":25,"mean":10.0,"dev":1.5,"billed_ms":120.0,"billed_n":4,"memory_mb":128,"seen":[[1795341600000,[5,6]]],"samples":[[1795341600000,{"log_stream":"s","line":"START RequestId: r"}]]}"#,
            r#"{"type":"rate","open":[],"closed_until":null,"clock":0,"n":0,"mean":0.0,"dev":0.0,"billed_ms":0.0,"billed_n":0,"memory_mb":null}"#,
            r#"{"type":"leak","used_mb":[100,104],"at":[1,2],"seen":[3,4],"memory_size_mb":512}"#,
            r#"{"type":"distinct","values":[[1795341600000,99]],"samples":["bad user x"],"request_ids":[]}"#,
        ];
        for text in pinned {
            let v: StateValue = serde_json::from_str(text).unwrap();
            assert_eq!(serde_json::to_string(&v).unwrap(), text);
        }
        // A type no one stores is an error (a corrupt item), not a default.
        for text in [r#"{"type":"nope"}"#, r#"{"type":"window"}"#, r#"{"n":1}"#] {
            assert!(serde_json::from_str::<StateValue>(text).is_err(), "{text}");
        }
    }

    #[test]
    fn values_round_trip_as_json() {
        let v = StateValue::Incident(IncidentState {
            id: "ab".into(),
            until: 5,
            count: 2,
            requests: vec![1],
            pending: None,
            pending_batch: 0,
            ..IncidentState::default()
        });
        let text = serde_json::to_string(&v).unwrap();
        assert!(text.starts_with(r#"{"type":"incident""#), "{text}");
        assert_eq!(serde_json::from_str::<StateValue>(&text).unwrap(), v);
    }

    #[test]
    fn an_incident_stored_by_the_previous_version_loads_and_never_resolves() {
        // As the version before resolutions wrote it: no last_seen,
        // resolves_at, fired, resolved or previous.
        let text =
            r#"{"type":"incident","id":"ab","until":5,"count":2,"requests":[1],"pending_batch":7}"#;
        let StateValue::Incident(inc) = serde_json::from_str::<StateValue>(text).unwrap() else {
            panic!("not an incident");
        };
        assert_eq!(
            (inc.id.as_str(), inc.until, inc.pending_batch),
            ("ab", 5, 7)
        );
        assert_eq!((inc.last_seen, inc.resolves_at), (0, 0));
        assert!(inc.fired.is_none() && !inc.resolved && inc.previous.is_none());
        // Written back unchanged: the new fields are left out while unset.
        assert_eq!(
            serde_json::to_string(&StateValue::Incident(inc)).unwrap(),
            text
        );
    }
}
