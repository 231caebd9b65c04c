//! The mutable side of one batch: the state values being worked on, the
//! alerts being assembled, and the state keys formatted once per batch.

use std::collections::HashMap;

use super::finish::Draft;
use crate::detect::{Key, StateKey, StateOf};
use crate::ingest::Payload;
use crate::rules::RuleSet;
use crate::state::{FunctionState, StateValue, Versioned, Write};

/// State keys that do not depend on the event, formatted once per batch
/// (formatting them per event was a tenth of the engine's time).
pub(super) struct BatchKeys {
    pub(super) function: StateKey,
    /// Per rule: its incident key without a key part.
    pub(super) incident: Vec<StateKey>,
    /// Per rule: its kind's state key for the batch's group and stream
    /// ([`crate::detect::Detect::batch_key`]).
    pub(super) kind: Vec<Option<StateKey>>,
}

impl BatchKeys {
    pub(super) fn new(rules: &RuleSet, p: &Payload<'_>) -> Self {
        let empty = Key::new();
        BatchKeys {
            function: StateKey::function(&p.log_group),
            incident: rules
                .rules
                .iter()
                .map(|r| StateKey::incident(&r.id, &p.log_group, &empty))
                .collect(),
            kind: rules
                .rules
                .iter()
                .map(|r| r.detector.batch_key(&r.id, &p.log_group, &p.log_stream))
                .collect(),
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

/// A map of one batch's work, keyed by state keys: foldhash, randomly
/// seeded per map, instead of SipHash. State keys are long (rule, log group,
/// key values): SipHash of them was 2.5 % of a replay's instructions
/// (callgrind, 8 text batches: 9.8 M in `Work::slot` alone).
pub(super) type WorkMap<V> = hashbrown::HashMap<String, V, foldhash::fast::RandomState>;

/// The mutable side of one batch.
pub(super) struct Work {
    pub(super) slots: WorkMap<Slot>,
    pub(super) drafts: Vec<Draft>,
    pub(super) open_drafts: WorkMap<usize>,
    /// The step ([`Work::step`]) that opened each draft's incident.
    pub(super) opened_at_step: WorkMap<u64>,
    /// What the engine is doing: one observation applied, or one rule's
    /// deadlines judged. Findings of the step that opened an alert are the
    /// alert; later ones only count into the incident.
    pub(super) step: u64,
    pub(super) suppressed: u64,
    /// STARTs a full stream could not track.
    pub(super) open_dropped: u64,
    /// Identity of the batch (0 in a sweep): what a retry re-sends from the outbox.
    pub(super) batch: u64,
    /// Resolutions made during the batch, with their incident keys.
    pub(super) resolutions: Vec<(String, crate::alert::Alert)>,
    /// The watermark the batch or sweep is judged at.
    pub(super) now: i64,
    /// Incidents that fired and resolved in this batch.
    pub(super) deferred: Vec<super::lifecycle::Deferred>,
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
            open_drafts: WorkMap::default(),
            opened_at_step: WorkMap::default(),
            step: 0,
            suppressed: 0,
            open_dropped: 0,
            batch: 0,
            resolutions: Vec::new(),
            deferred: Vec::new(),
            now: i64::MIN,
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

    /// The slot at `key`, created empty when absent, marked changed.
    fn slot(&mut self, key: &str, expires_at: i64) -> &mut Slot {
        // One lookup, and the key allocated only when inserted (std's
        // `entry` allocates it every time; contains_key then get_mut hashed
        // and compared the key twice: Work::slot was 487 instructions a call
        // over the 64-file text corpus, callgrind).
        let slot = self.slots.entry_ref(key).or_insert_with(|| Slot {
            value: None,
            version: 0,
            dirty: false,
            expires_at,
        });
        slot.dirty = true;
        slot.expires_at = slot.expires_at.max(expires_at);
        slot
    }

    /// A kind's state at `key`, created empty when absent or of another type.
    pub(super) fn state<T: StateOf>(&mut self, key: &str, expires_at: i64) -> &mut T {
        let slot = self.slot(key, expires_at);
        let fits = matches!(&slot.value, Some(StateValue::Kind(k)) if T::of(k).is_some());
        if !fits {
            slot.value = Some(StateValue::Kind(T::default().wrap()));
        }
        match &mut slot.value {
            Some(StateValue::Kind(k)) => match T::of_mut(k) {
                Some(v) => v,
                None => unreachable!("set just above"),
            },
            _ => unreachable!("set just above"),
        }
    }

    /// A kind's state at `key` as loaded, not marked changed.
    pub(super) fn existing<T: StateOf>(&mut self, key: &str) -> Option<&mut T> {
        match &mut self.slots.get_mut(key)?.value {
            Some(StateValue::Kind(k)) => T::of_mut(k),
            _ => None,
        }
    }

    /// What is known about a function, created empty when absent.
    pub(super) fn function(&mut self, key: &str, expires_at: i64) -> &mut FunctionState {
        let slot = self.slot(key, expires_at);
        if !matches!(slot.value, Some(StateValue::Function(_))) {
            slot.value = Some(StateValue::Function(FunctionState::default()));
        }
        match &mut slot.value {
            Some(StateValue::Function(f)) => f,
            _ => unreachable!("set just above"),
        }
    }

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
        matches!(self.peek(ikey), Some(StateValue::Incident(i)) if i.open_at(ts))
    }
}
