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
        let found = keys
            .iter()
            .filter_map(|k| {
                self.items
                    .get(k)
                    .filter(|(_, exp)| *exp >= now)
                    .map(|(v, _)| (k.clone(), v.clone()))
            })
            .collect();
        ready(Ok(found))
    }

    fn save(&mut self, writes: Vec<Write>) -> impl Future<Output = Result<(), StateError>> + Send {
        let mut result = Ok(());
        for w in writes {
            let current = self.items.get(&w.key).map_or(0, |(v, _)| v.version);
            if current != w.expected_version {
                result = Err(StateError::Conflict { key: w.key });
                break;
            }
            match w.value {
                None => {
                    self.items.remove(&w.key);
                }
                Some(value) => {
                    self.next_version += 1;
                    let version = self.next_version;
                    self.items
                        .insert(w.key, (Versioned { value, version }, w.expires_at));
                }
            }
        }
        ready(result)
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
        assert!(s.load(&["f|a".into()], 101).await.unwrap().is_empty());
        assert_eq!(s.keys_with_prefix("f|", 50).await.unwrap(), ["f|a"]);
        assert!(s.keys_with_prefix("f|", 101).await.unwrap().is_empty());
        s.prune(101);
        assert!(s.is_empty());
    }
}
