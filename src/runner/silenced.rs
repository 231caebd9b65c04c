//! Silences applied to a batch's alerts, next to the shadow filter.
//!
//! A firing alert a silence covers (at its `last_seen`) is not delivered:
//! it is parked in the state store (`silenced|parked|<alert id>`, as
//! [`ParkedAlert`]) with the silence's `until`, and the engine confirms it as
//! if delivered, so the incident lives on (folds, realerts, resolves). A
//! realert while silenced replaces the parked alert (the latest count).
//!
//! The first sweep, or batch with alerts, whose watermark passes `until`
//! (or any, once the silence was removed) looks at the incident: still open at
//! that time, the parked alert goes out then, once (it is taken out of the
//! store before it is published, so two containers do not both send it);
//! resolved meanwhile, nothing goes out. A resolution of an incident whose
//! firing is parked is not delivered either: no sink sees a resolution
//! without its firing.

use std::collections::BTreeMap;

use crate::alert::Alert;
use crate::engine::Engine;
use crate::silence::SilenceSet;
use crate::state::{IncidentState, ParkedAlert, StateError, StateStore, StateValue, Write};
use crate::time::{parse_rfc3339, rfc3339};

/// Prefix of the keys parked alerts are stored at.
pub const PARKED_PREFIX: &str = "silenced|parked|";

/// A parked alert is kept this long past its silence's end, so a sweep run
/// late (or a source quiet for days) still finds it.
const PARKED_KEPT_MS: i64 = 7 * 86_400_000;

/// One parked entry as read, and what this run does to it.
struct Entry {
    value: Option<ParkedAlert>,
    version: u64,
    changed: bool,
}

/// A batch's alerts, sorted by the silences.
#[derive(Default)]
pub(super) struct Sorted {
    /// To publish: parked alerts whose silence ended first, then the live ones.
    pub(super) live: Vec<Alert>,
    /// The parked alerts in `live`, taken out of the store.
    pub(super) flushed: Vec<ParkedAlert>,
    /// Alerts kept back, each with the silence's id.
    pub(super) silenced: Vec<(Alert, String)>,
    /// Parks, replacements and removals to write before publishing.
    pub(super) writes: Vec<Write>,
}

fn parked_key(id: &str) -> String {
    format!("{PARKED_PREFIX}{id}")
}

fn parked_write(key: String, p: &Option<ParkedAlert>, version: u64) -> Write {
    Write {
        expires_at: p
            .as_ref()
            .map_or(0, |p| p.until.saturating_add(PARKED_KEPT_MS)),
        key,
        value: p.clone().map(StateValue::Parked),
        expected_version: version,
    }
}

/// The write that parks `p` again (its delivery failed after it was taken).
pub(super) fn repark(p: &ParkedAlert) -> Write {
    parked_write(parked_key(&p.alert.id), &Some(p.clone()), 0)
}

/// Sort `alerts` (shadow ones already out) by `set` at `watermark`.
pub(super) async fn sort<S: StateStore>(
    engine: &mut Engine<S>,
    set: &SilenceSet,
    alerts: Vec<Alert>,
    watermark: i64,
) -> Result<Sorted, StateError> {
    let mut parked = load_parked(engine.store_mut(), watermark).await?;
    let mut out = Sorted::default();
    let mut live = Vec::new();
    // When a silence ends for a parked alert: its until, or now once removed.
    let end = |p: &ParkedAlert| {
        if set.silences.iter().any(|s| s.id == p.silence) {
            p.until
        } else {
            p.until.min(watermark)
        }
    };
    for a in alerts {
        let key = parked_key(&a.id);
        if !a.status.is_resolved() {
            if let Some(s) = set.covering(&a) {
                let e = parked.entry(key).or_insert(Entry {
                    value: None,
                    version: 0,
                    changed: false,
                });
                let old = e.value.take();
                let mut incidents = engine.incident_keys(&a.id);
                if incidents.is_empty() {
                    incidents = old
                        .as_ref()
                        .map(|o| o.incidents.clone())
                        .unwrap_or_default();
                }
                e.value = Some(ParkedAlert {
                    alert: Box::new(a.clone()),
                    until: old.map_or(s.until, |o| o.until.max(s.until)),
                    silence: s.id.clone(),
                    incidents,
                });
                e.changed = true;
                out.silenced.push((a, s.id.clone()));
                continue;
            }
        } else if let Some(e) = parked.get_mut(&key)
            && let Some(p) = e.value.take()
        {
            e.changed = true;
            let resolved_at = a.resolved_at.as_deref().and_then(|t| parse_rfc3339(t).ok());
            if resolved_at.is_none_or(|t| t < end(&p)) {
                // Resolved while silenced: neither goes out.
                out.silenced.push((a, p.silence.clone()));
            } else {
                live.push((*p.alert).clone());
                out.flushed.push(p);
                live.push(a);
            }
            continue;
        }
        live.push(a);
    }
    let mut flushed = Vec::new();
    for (key, e) in parked.iter_mut() {
        let Some(p) = &e.value else { continue };
        let at = end(p);
        if e.changed || watermark < at {
            continue;
        }
        match still_open(engine.store_mut(), p, at).await? {
            At::Open(inc) => {
                // As the incident stands now: every event folded in while
                // silenced counts.
                let mut a = (*p.alert).clone();
                if inc.last_seen > 0 {
                    a.count = a.count.max(inc.count);
                    a.last_seen = rfc3339(inc.last_seen);
                }
                flushed.push(a);
                out.flushed.extend(e.value.take());
                e.changed = true;
            }
            // Resolved meanwhile: its resolution (on its way) removes it.
            At::Resolved => {}
            // The incident is gone from the store: nothing will come.
            At::Gone => {
                e.value = None;
                e.changed = true;
                tracing::debug!(key = %key, "Dropped a parked alert whose incident is gone.");
            }
        }
    }
    flushed.extend(live);
    out.live = flushed;
    out.writes = parked
        .into_iter()
        .filter(|(_, e)| e.changed)
        .map(|(k, e)| parked_write(k, &e.value, e.version))
        .collect();
    Ok(out)
}

/// Every parked alert in the store.
async fn load_parked<S: StateStore>(
    store: &mut S,
    watermark: i64,
) -> Result<BTreeMap<String, Entry>, StateError> {
    let keys = store.keys_with_prefix(PARKED_PREFIX, watermark).await?;
    if keys.is_empty() {
        return Ok(BTreeMap::new());
    }
    let loaded = store.load(&keys, watermark).await?;
    Ok(loaded
        .into_iter()
        .filter_map(|(k, v)| match v.value {
            StateValue::Parked(p) => Some((
                k,
                Entry {
                    value: Some(p),
                    version: v.version,
                    changed: false,
                },
            )),
            _ => None,
        })
        .collect())
}

/// Where a parked alert's incident stood when its silence ended.
enum At {
    /// Still open (as stored now).
    Open(IncidentState),
    /// Resolved before the silence ended, or replaced by another incident.
    Resolved,
    /// No longer in the store.
    Gone,
}

/// Whether `p`'s incident was still open at event time `at`.
async fn still_open<S: StateStore>(
    store: &mut S,
    p: &ParkedAlert,
    at: i64,
) -> Result<At, StateError> {
    if p.incidents.is_empty() {
        return Ok(At::Open(IncidentState::default()));
    }
    let loaded = store.load(&p.incidents, i64::MIN).await?;
    let mut any = false;
    for v in loaded.into_values() {
        if let StateValue::Incident(inc) = v.value {
            any = true;
            let open = if inc.resolves_at == 0 {
                !inc.resolved
            } else {
                inc.resolves_at > at
            };
            if inc.id == p.alert.id && open {
                return Ok(At::Open(inc));
            }
        }
    }
    Ok(if any { At::Resolved } else { At::Gone })
}
