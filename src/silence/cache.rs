//! The detector's view of the silences in the table: read at most once a
//! minute (by the injected clock), so a busy Lambda costs one `Query` a
//! minute per container, and a new silence is in force within a minute.

use std::future::Future;

use super::{Silence, SilenceError, SilenceSet};
use crate::time::{Clock, Millis};

/// How long a read of the silences is used before the next.
pub const REFRESH_MS: Millis = 60_000;

/// The silences last read, and when.
pub struct SilenceCache<C> {
    clock: C,
    read_at: Option<Millis>,
    set: SilenceSet,
    reads: u64,
}

impl<C: Clock> SilenceCache<C> {
    /// An empty cache reading by `clock`.
    pub fn new(clock: C) -> Self {
        SilenceCache {
            clock,
            read_at: None,
            set: SilenceSet::default(),
            reads: 0,
        }
    }

    /// Reads made so far.
    pub fn reads(&self) -> u64 {
        self.reads
    }

    /// The silences, read with `read` when the last read is a minute old or
    /// more. A failed read keeps the previous silences (an outage of the
    /// table must not page everyone a pen test silenced) and is tried again
    /// a minute on.
    pub async fn get<F, Fut>(&mut self, read: F) -> &SilenceSet
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Vec<Silence>, SilenceError>>,
    {
        let now = self.clock.now_ms();
        if self
            .read_at
            .is_none_or(|t| now.saturating_sub(t) >= REFRESH_MS)
        {
            self.read_at = Some(now);
            self.reads += 1;
            match read().await {
                Ok(s) => self.set = SilenceSet::new(s),
                Err(e) => {
                    tracing::warn!(error = %e, "Could not read the silences; keeping the last ones read.");
                }
            }
        }
        &self.set
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicI64, Ordering};

    use super::*;

    #[derive(Clone)]
    struct Manual(Arc<AtomicI64>);

    impl Clock for Manual {
        fn now_ms(&self) -> Millis {
            self.0.load(Ordering::Relaxed)
        }
    }

    fn silence(id: &str) -> Silence {
        Silence {
            id: id.into(),
            rule: "*".into(),
            key: Default::default(),
            log_group: None,
            until: 10_000_000,
            created: 0,
            reason: "test".into(),
            by: String::new(),
        }
    }

    #[tokio::test]
    async fn the_table_is_read_at_most_once_a_minute() {
        let t = Arc::new(AtomicI64::new(1_000_000));
        let mut c = SilenceCache::new(Manual(Arc::clone(&t)));
        let got = c.get(|| async { Ok(vec![silence("s-1")]) }).await;
        assert_eq!(got.silences.len(), 1);
        t.fetch_add(59_999, Ordering::Relaxed);
        let got = c
            .get(|| async { Ok(vec![silence("s-1"), silence("s-2")]) })
            .await;
        assert_eq!(got.silences.len(), 1, "read again within the minute");
        assert_eq!(c.reads(), 1);
        t.fetch_add(1, Ordering::Relaxed);
        let got = c
            .get(|| async { Ok(vec![silence("s-1"), silence("s-2")]) })
            .await;
        assert_eq!(got.silences.len(), 2);
        assert_eq!(c.reads(), 2);
        // A failed read keeps what was read, and waits a minute too.
        t.fetch_add(60_000, Ordering::Relaxed);
        let got = c
            .get(|| async { Err(SilenceError::Store("down".into())) })
            .await;
        assert_eq!(got.silences.len(), 2);
        let got = c.get(|| async { Ok(Vec::new()) }).await;
        assert_eq!(got.silences.len(), 2);
        assert_eq!(c.reads(), 3);
    }
}
