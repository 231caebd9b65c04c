//! The in-memory store: enough for one process (local replay, a single Lambda
//! container with reserved concurrency 1). Anything concurrent needs a shared store.

use std::collections::{BTreeMap, HashMap};
use std::future::{Future, ready};

use super::{StateError, StateStore, Versioned, Write};

/// State held in this process.
///
/// Expired items are dropped as the store grows, so a flood of distinct keys
/// (an attacker varying the source IP on every line) holds memory for only
/// the keys still inside their window, not for every key ever seen.
#[derive(Debug)]
pub struct MemoryStore {
    items: BTreeMap<String, (Versioned, i64)>,
    next_version: u64,
    /// The `now` of the latest load: expiry is judged as load judges it.
    last_now: i64,
    /// Prune when the store reaches this many items.
    prune_at: usize,
}

/// Fewest items before the store bothers pruning.
const MIN_PRUNE_AT: usize = 4096;

/// How far behind the latest load a batch may be and still see state that
/// expired in between (a stream or file lagging behind the others; the
/// engine reads state as of each batch's oldest event).
const PRUNE_LAG_MS: i64 = 3_600_000;

impl Default for MemoryStore {
    fn default() -> Self {
        Self {
            items: BTreeMap::new(),
            next_version: 0,
            last_now: i64::MIN,
            prune_at: MIN_PRUNE_AT,
        }
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of live items (for tests and telemetry).
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether the store holds nothing.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Drop items that expired before `now` (event time).
    pub fn prune(&mut self, now: i64) {
        self.items.retain(|_, (_, exp)| *exp >= now);
    }
}

impl StateStore for MemoryStore {
    fn load(
        &mut self,
        keys: &[String],
        now: i64,
    ) -> impl Future<Output = Result<HashMap<String, Versioned>, StateError>> + Send {
        self.last_now = now;
        let mut found = HashMap::new();
        for k in keys {
            match self.items.get(k) {
                Some((v, exp)) if *exp >= now => {
                    found.insert(k.clone(), v.clone());
                }
                // Expired: gone, as a TTL store would have it, so the writer's
                // expected version 0 (absent) holds.
                Some(_) => {
                    self.items.remove(k);
                }
                None => {}
            }
        }
        ready(Ok(found))
    }

    fn save(&mut self, writes: Vec<Write>) -> impl Future<Output = Result<(), StateError>> + Send {
        // All or nothing: check every version before writing any, so a
        // conflicting batch leaves no half-applied state behind.
        if let Some(w) = writes
            .iter()
            .find(|w| self.items.get(&w.key).map_or(0, |(v, _)| v.version) != w.expected_version)
        {
            return ready(Err(StateError::Conflict { key: w.key.clone() }));
        }
        for w in writes {
            match w.value {
                None => {
                    self.items.remove(&w.key);
                }
                Some(value) => {
                    self.next_version += 1;
                    let version = self.next_version;
                    self.items.insert(
                        w.key,
                        (
                            Versioned {
                                value,
                                version,
                                expires_at: w.expires_at,
                            },
                            w.expires_at,
                        ),
                    );
                }
            }
        }
        if self.items.len() >= self.prune_at {
            // Amortised: the next prune waits until the live set has doubled.
            self.prune(self.last_now.saturating_sub(PRUNE_LAG_MS));
            self.prune_at = (2 * self.items.len()).max(MIN_PRUNE_AT);
        }
        ready(Ok(()))
    }

    fn keys_with_prefix(
        &mut self,
        prefix: &str,
        now: i64,
    ) -> impl Future<Output = Result<Vec<String>, StateError>> + Send {
        let keys = self
            .items
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .filter(|(_, (_, exp))| *exp >= now)
            .map(|(k, _)| k.clone())
            .collect();
        ready(Ok(keys))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::state::{FunctionState, StateValue};

    fn w(key: &str, expected: u64, exp: i64) -> Write {
        Write {
            key: key.into(),
            value: Some(StateValue::Function(FunctionState {
                timeout_ms: Some(1),
            })),
            expires_at: exp,
            expected_version: expected,
        }
    }

    #[tokio::test]
    async fn stale_write_is_a_conflict_and_expired_items_are_invisible() {
        let mut s = MemoryStore::new();
        s.save(vec![w("f|a", 0, 100)]).await.unwrap();
        let got = s.load(&["f|a".into()], 50).await.unwrap();
        let v = got["f|a"].version;
        assert!(matches!(
            s.save(vec![w("f|a", 0, 100)]).await,
            Err(StateError::Conflict { .. })
        ));
        s.save(vec![w("f|a", v, 100)]).await.unwrap();
        assert_eq!(s.keys_with_prefix("f|", 50).await.unwrap(), ["f|a"]);
        assert!(s.keys_with_prefix("f|", 101).await.unwrap().is_empty());
        s.prune(99);
        assert_eq!(s.len(), 1);
        assert!(s.load(&["f|a".into()], 101).await.unwrap().is_empty());
        assert!(s.is_empty());
    }

    #[tokio::test]
    async fn an_expired_key_reads_as_absent_and_can_be_written_again() {
        // Regression: replay of the bench corpus failed with "changed concurrently"
        // because expired items were hidden from load but not from save.
        let mut s = MemoryStore::new();
        s.save(vec![w("f|a", 0, 100)]).await.unwrap();
        assert!(s.load(&["f|a".into()], 200).await.unwrap().is_empty());
        s.save(vec![w("f|a", 0, 300)]).await.unwrap();
    }

    #[tokio::test]
    async fn a_flood_of_distinct_keys_holds_only_the_live_ones() {
        // Each key lives 100 ms of event time; 200,000 keys arrive over
        // 20,000 s, one every 100 ms. Without pruning all of them would stay;
        // with it, about an hour's worth (36,000), twice that just before a prune.
        let mut s = MemoryStore::new();
        let mut most = 0;
        for i in 0..200_000i64 {
            let now = i * 100;
            let key = format!("t|k{i}");
            s.load(std::slice::from_ref(&key), now).await.unwrap();
            s.save(vec![w(&key, 0, now + 100)]).await.unwrap();
            most = most.max(s.len());
        }
        assert!(most < 80_000, "held {most} of 200,000 items at once");
        // Live items are never pruned, nor ones a lagging batch may still see.
        let lagging = 200_000 * 100 - PRUNE_LAG_MS / 2;
        assert!(
            !s.load(&["t|k199999".into()], lagging)
                .await
                .unwrap()
                .is_empty()
        );
        assert!(
            !s.load(&[format!("t|k{}", lagging / 100)], lagging)
                .await
                .unwrap()
                .is_empty()
        );
    }

    #[tokio::test]
    async fn a_conflict_writes_nothing() {
        let mut s = MemoryStore::new();
        s.save(vec![w("f|b", 0, 100)]).await.unwrap();
        let r = s.save(vec![w("f|a", 0, 100), w("f|b", 0, 100)]).await;
        assert!(matches!(r, Err(StateError::Conflict { ref key }) if key == "f|b"));
        assert!(s.load(&["f|a".into()], 0).await.unwrap().is_empty());
    }
}
