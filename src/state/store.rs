//! The one store type the binaries build: in memory (one process) or a
//! DynamoDB table (shared by every container), chosen at start, so each
//! binary builds one engine type whichever it is.

use std::collections::HashMap;

use super::dynamodb::DynamoStore;
use super::{MemoryStore, StateError, StateStore, Versioned, Write};

/// Where detector state lives, as configured.
#[derive(Debug)]
pub enum Store {
    /// This process only.
    Memory(MemoryStore),
    /// A DynamoDB table.
    Dynamo(DynamoStore),
}

impl Store {
    /// The DynamoDB table `table` when one is named (with the SDK
    /// configuration `conf`), else memory.
    pub fn for_table(table: Option<&str>, conf: Option<&aws_config::SdkConfig>) -> Store {
        match (table, conf) {
            (Some(table), Some(conf)) => {
                Store::Dynamo(DynamoStore::new(aws_sdk_dynamodb::Client::new(conf), table))
            }
            _ => Store::Memory(MemoryStore::new()),
        }
    }
}

impl Default for Store {
    fn default() -> Self {
        Store::Memory(MemoryStore::new())
    }
}

impl StateStore for Store {
    async fn load(
        &mut self,
        keys: &[String],
        now: i64,
    ) -> Result<HashMap<String, Versioned>, StateError> {
        match self {
            Store::Memory(s) => s.load(keys, now).await,
            Store::Dynamo(s) => s.load(keys, now).await,
        }
    }

    async fn save(&mut self, writes: Vec<Write>) -> Result<(), StateError> {
        match self {
            Store::Memory(s) => s.save(writes).await,
            Store::Dynamo(s) => s.save(writes).await,
        }
    }

    async fn keys_with_prefix(
        &mut self,
        prefix: &str,
        now: i64,
    ) -> Result<Vec<String>, StateError> {
        match self {
            Store::Memory(s) => s.keys_with_prefix(prefix, now).await,
            Store::Dynamo(s) => s.keys_with_prefix(prefix, now).await,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn without_a_table_state_is_the_memory_store_and_its_versions_hold() {
        let mut s = Store::for_table(Some("t"), None);
        assert!(matches!(s, Store::Memory(_)));
        let stale = Write {
            key: "k".to_string(),
            expires_at: 100,
            value: None,
            expected_version: 3,
        };
        let e = s.save(vec![stale.clone()]).await.unwrap_err();
        assert!(
            matches!(e, StateError::Conflict { ref key } if key == "k"),
            "{e}"
        );
        let fresh = Write {
            expected_version: 0,
            ..stale
        };
        s.save(vec![fresh]).await.unwrap();
        assert!(s.load(&["k".to_string()], 0).await.unwrap().is_empty());
        assert!(s.keys_with_prefix("", 0).await.unwrap().is_empty());
    }
}
