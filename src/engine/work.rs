//! The mutable side of one batch: the state values being worked on, the
//! alerts being assembled, and the state keys formatted once per batch.

use std::collections::HashMap;

use super::finish::Draft;
use crate::detect::Key;
use crate::detect::baseline::BaselineState;
use crate::detect::distinct::DistinctState;
use crate::detect::leak::LeakState;
use crate::detect::lifecycle::StreamState;
use crate::detect::rate::RateState;
use crate::detect::threshold::WindowState;
use crate::ingest::Payload;
use crate::rules::{Rule, RuleSet};
use crate::state::{self, FunctionState, StateValue, Versioned, Write};

/// State keys that do not depend on the event, formatted once per batch
/// (formatting them per event was a tenth of the engine's time).
pub(super) struct BatchKeys {
    pub(super) function: String,
    /// Per rule: its incident key without a key part.
    pub(super) incident: Vec<String>,
    /// Per rule: its stream key for the batch's stream.
    pub(super) stream: Vec<String>,
    /// Per rule: its baseline key for the batch's log group.
    pub(super) baseline: Vec<String>,
    /// Per rule: its rate key for the batch's log group.
    pub(super) rate: Vec<String>,
    /// Per rule: its memory-trend key for the batch's stream.
    pub(super) leak: Vec<String>,
}

impl BatchKeys {
    pub(super) fn new(rules: &RuleSet, p: &Payload<'_>) -> Self {
        let empty = Key::new();
        let per_rule = |f: &dyn Fn(&Rule) -> String| rules.rules.iter().map(|r| f(r)).collect();
        BatchKeys {
            function: state::function_key(&p.log_group),
            incident: per_rule(&|r| state::incident_key(&r.id, &p.log_group, &empty)),
            stream: per_rule(&|r| state::stream_key(&r.id, &p.log_group, &p.log_stream)),
            baseline: per_rule(&|r| state::baseline_key(&r.id, &p.log_group)),
            rate: per_rule(&|r| state::rate_key(&r.id, &p.log_group)),
            leak: per_rule(&|r| state::leak_key(&r.id, &p.log_group, &p.log_stream)),
        }
    }
}

/// A value being worked on during one batch.
pub(super) struct Slot {
    pub(super) value: Option<StateValue>,
    pub(super) version: u64,
    pub(super) dirty: bool,
    pub(super) expires_at: i64,
}

/// The mutable side of one batch.
pub(super) struct Work {
    pub(super) slots: HashMap<String, Slot>,
    pub(super) drafts: Vec<Draft>,
    pub(super) open_drafts: HashMap<String, usize>,
    pub(super) suppressed: u64,
    /// STARTs a full stream could not track.
    pub(super) open_dropped: u64,
}

macro_rules! slot_as {
    ($name:ident, $variant:ident, $ty:ty) => {
        pub(super) fn $name(&mut self, key: &str, expires_at: i64) -> &mut $ty {
            // Look up before inserting: `entry` would allocate the key every time.
            if !self.slots.contains_key(key) {
                self.slots.insert(
                    key.to_string(),
                    Slot {
                        value: None,
                        version: 0,
                        dirty: false,
                        expires_at,
                    },
                );
            }
            let Some(slot) = self.slots.get_mut(key) else {
                unreachable!("inserted just above")
            };
            slot.dirty = true;
            slot.expires_at = slot.expires_at.max(expires_at);
            if !matches!(slot.value, Some(StateValue::$variant(_))) {
                slot.value = Some(StateValue::$variant(<$ty>::default()));
            }
            match slot.value {
                Some(StateValue::$variant(ref mut v)) => v,
                // Set just above; a different variant cannot be here.
                _ => unreachable!(),
            }
        }
    };
}

impl Work {
    /// The work of a batch over the values read from the store.
    pub(super) fn loaded(loaded: HashMap<String, Versioned>) -> Work {
        Work {
            slots: loaded
                .into_iter()
                .map(
                    |(
                        k,
                        Versioned {
                            value,
                            version,
                            expires_at,
                        },
                    )| {
                        (
                            k,
                            Slot {
                                value: Some(value),
                                version,
                                dirty: false,
                                expires_at,
                            },
                        )
                    },
                )
                .collect(),
            drafts: Vec::new(),
            open_drafts: HashMap::new(),
            suppressed: 0,
            open_dropped: 0,
        }
    }

    /// What changed, as versioned writes.
    pub(super) fn writes(&self) -> Vec<Write> {
        self.slots
            .iter()
            .filter(|(_, s)| s.dirty)
            .map(|(k, s)| Write {
                key: k.clone(),
                value: s.value.clone(),
                expires_at: s.expires_at,
                expected_version: s.version,
            })
            .collect()
    }

    slot_as!(window, Window, WindowState);
    slot_as!(stream, Stream, StreamState);
    slot_as!(baseline, Baseline, BaselineState);
    slot_as!(function, Function, FunctionState);
    slot_as!(rate, Rate, RateState);
    slot_as!(leak, Leak, LeakState);
    slot_as!(distinct, Distinct, DistinctState);

    pub(super) fn peek(&self, key: &str) -> Option<&StateValue> {
        self.slots.get(key).and_then(|s| s.value.as_ref())
    }

    pub(super) fn learned_timeout(&self, function_key: &str) -> Option<i64> {
        match self.peek(function_key) {
            Some(StateValue::Function(f)) => f.timeout_ms,
            _ => None,
        }
    }

    pub(super) fn open_incident(&self, ikey: &str, ts: i64) -> bool {
        matches!(self.peek(ikey), Some(StateValue::Incident(i)) if ts < i.until)
    }
}
