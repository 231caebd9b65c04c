//! The in-memory store: enough for one process (local replay, a single Lambda
//! container with reserved concurrency 1). Anything concurrent needs a shared store.

use std::collections::{BTreeMap, HashMap};
use std::future::{Future, ready};

use super::{StateError, StateStore, Versioned, Write};

/// State held in this process.
#[derive(Debug, Default)]
pub struct MemoryStore {
    items: BTreeMap<String, (Versioned, i64)>,
    next_version: u64,
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
    async fn a_conflict_writes_nothing() {
        let mut s = MemoryStore::new();
        s.save(vec![w("f|b", 0, 100)]).await.unwrap();
        let r = s.save(vec![w("f|a", 0, 100), w("f|b", 0, 100)]).await;
        assert!(matches!(r, Err(StateError::Conflict { ref key }) if key == "f|b"));
        assert!(s.load(&["f|a".into()], 0).await.unwrap().is_empty());
    }
}
