//! The DynamoDB store: detector state shared by every Lambda container.
//!
//! One table, key `pk` (string) + `sk` (string): a state key `w|rule|group|key`
//! is stored as `pk = "w|rule"`, `sk = "group|key"`, so the deadline sweep
//! lists one rule's open streams with one `Query`. Each item holds the value
//! as JSON (`v`), a version (`ver`) and its expiry twice: `exp_ms` (event time,
//! exact, filtered on every read, because DynamoDB deletes expired items up to
//! days late) and `expires_at` (epoch seconds, the table's TTL attribute).
//!
//! Reads are one `BatchGetItem` per 100 keys (strongly consistent); writes are
//! one `TransactWriteItems` per 100 changes, each conditional on the version
//! read, so two containers updating the same key cannot both win: the loser
//! gets [`StateError::Conflict`] and the engine processes its batch again on
//! fresh state. Requests per batch therefore grow with the distinct keys a
//! batch touches, not with its events. Throttling and 5xx are retried by the
//! SDK's standard retry strategy; unprocessed keys and transactions cancelled
//! for throttling (reason `ThrottlingError`, which the SDK does not retry)
//! are retried here with backoff.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, Delete, KeySchemaElement, KeyType,
    KeysAndAttributes, Put, ScalarAttributeType, TimeToLiveSpecification, TransactWriteItem,
};

use super::{StateError, StateStore, StateValue, Versioned, Write};

/// Most keys in one `BatchGetItem`.
const MAX_GET: usize = 100;
/// Most actions in one `TransactWriteItems`.
const MAX_TRANSACT: usize = 100;
/// Attempts of a transaction cancelled for throttling (`ThrottlingError`
/// reasons), which the SDK's retry strategy does not retry.
const TRANSACT_ATTEMPTS: u32 = 5;
/// First wait before retrying a throttled transaction; doubles each time.
const TRANSACT_BACKOFF: Duration = Duration::from_millis(100);
/// Longest wait between those attempts.
const TRANSACT_MAX_BACKOFF: Duration = Duration::from_secs(2);

/// Detector state in one DynamoDB table.
#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
    requests: Arc<AtomicU64>,
    /// Versions of items found expired on load: DynamoDB may not have deleted
    /// them yet, so a write that expects "absent" must expect their version.
    expired: HashMap<String, u64>,
}

/// pk = the first two `|`-separated parts (space and rule), sk = the rest.
fn split(key: &str) -> (&str, &str) {
    crate::detect::StateKey::partition(key)
}

fn unavailable(what: &str, e: impl std::fmt::Display) -> StateError {
    StateError::Unavailable(format!("{what}: {e}"))
}

impl DynamoStore {
    /// A store over an existing table (see [`DynamoStore::create_table`]).
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoStore {
            client,
            table: table.into(),
            requests: Arc::new(AtomicU64::new(0)),
            expired: HashMap::new(),
        }
    }

    /// The table name.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// DynamoDB requests made so far (for cost figures and tests).
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    fn count(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }

    /// Create the table with the project's schema (on-demand, TTL on
    /// `expires_at`) and wait until it is active. An existing table with
    /// that name is an error naming it.
    pub async fn create_table(client: &Client, table: &str) -> Result<(), StateError> {
        let attr = |n: &str| {
            AttributeDefinition::builder()
                .attribute_name(n)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(|e| unavailable("create table", e))
        };
        let key = |n: &str, t: KeyType| {
            KeySchemaElement::builder()
                .attribute_name(n)
                .key_type(t)
                .build()
                .map_err(|e| unavailable("create table", e))
        };
        client
            .create_table()
            .table_name(table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(attr("pk")?)
            .attribute_definitions(attr("sk")?)
            .key_schema(key("pk", KeyType::Hash)?)
            .key_schema(key("sk", KeyType::Range)?)
            .send()
            .await
            .map_err(|e| {
                unavailable(
                    &format!("create table {table}"),
                    aws_sdk_dynamodb::error::DisplayErrorContext(&e),
                )
            })?;
        for _ in 0..60 {
            let d = client
                .describe_table()
                .table_name(table)
                .send()
                .await
                .map_err(|e| {
                    unavailable(
                        "describe table",
                        aws_sdk_dynamodb::error::DisplayErrorContext(&e),
                    )
                })?;
            if d.table().and_then(|t| t.table_status()).map(|s| s.as_str()) == Some("ACTIVE") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let ttl = TimeToLiveSpecification::builder()
            .attribute_name("expires_at")
            .enabled(true)
            .build()
            .map_err(|e| unavailable("TTL", e))?;
        client
            .update_time_to_live()
            .table_name(table)
            .time_to_live_specification(ttl)
            .send()
            .await
            .map_err(|e| {
                unavailable(
                    "update TTL",
                    aws_sdk_dynamodb::error::DisplayErrorContext(&e),
                )
            })?;
        Ok(())
    }

    fn decode(
        key: &str,
        item: &HashMap<String, AttributeValue>,
    ) -> Result<(Versioned, i64), StateError> {
        let corrupt = |reason: &str| StateError::Corrupt {
            key: key.to_string(),
            reason: reason.to_string(),
        };
        let num = |name: &str| -> Result<i64, StateError> {
            item.get(name)
                .and_then(|v| v.as_n().ok())
                .and_then(|n| n.parse().ok())
                .ok_or_else(|| corrupt(&format!("missing or bad `{name}`")))
        };
        let v = item
            .get("v")
            .and_then(|v| v.as_s().ok())
            .ok_or_else(|| corrupt("missing `v`"))?;
        let value: StateValue = serde_json::from_str(v).map_err(|e| corrupt(&e.to_string()))?;
        let version = u64::try_from(num("ver")?).map_err(|_| corrupt("negative `ver`"))?;
        let expires_at = num("exp_ms")?;
        Ok((
            Versioned {
                value,
                version,
                expires_at,
            },
            expires_at,
        ))
    }
}

impl StateStore for DynamoStore {
    async fn load(
        &mut self,
        keys: &[String],
        now: i64,
    ) -> Result<HashMap<String, Versioned>, StateError> {
        let mut out = HashMap::new();
        for chunk in keys.chunks(MAX_GET) {
            let mut ka = KeysAndAttributes::builder().consistent_read(true);
            for k in chunk {
                let (pk, sk) = split(k);
                ka = ka.keys(HashMap::from([
                    ("pk".to_string(), AttributeValue::S(pk.to_string())),
                    ("sk".to_string(), AttributeValue::S(sk.to_string())),
                ]));
            }
            let mut request = HashMap::from([(
                self.table.clone(),
                ka.build().map_err(|e| unavailable("batch get", e))?,
            )]);
            let mut backoff = Duration::from_millis(50);
            for attempt in 0.. {
                self.count();
                let r = self
                    .client
                    .batch_get_item()
                    .set_request_items(Some(request))
                    .send()
                    .await
                    .map_err(|e| {
                        unavailable(
                            "BatchGetItem",
                            aws_sdk_dynamodb::error::DisplayErrorContext(&e),
                        )
                    })?;
                for item in r
                    .responses()
                    .and_then(|m| m.get(&self.table))
                    .into_iter()
                    .flatten()
                {
                    let pk = item
                        .get("pk")
                        .and_then(|v| v.as_s().ok())
                        .cloned()
                        .unwrap_or_default();
                    let sk = item
                        .get("sk")
                        .and_then(|v| v.as_s().ok())
                        .cloned()
                        .unwrap_or_default();
                    let key = if sk.is_empty() {
                        pk
                    } else {
                        format!("{pk}|{sk}")
                    };
                    let (versioned, exp_ms) = Self::decode(&key, item)?;
                    if exp_ms >= now {
                        out.insert(key, versioned);
                    } else {
                        self.expired.insert(key, versioned.version);
                    }
                }
                match r.unprocessed_keys().filter(|m| !m.is_empty()) {
                    None => break,
                    Some(rest) if attempt < 8 => {
                        request = rest.clone();
                        tokio::time::sleep(backoff).await;
                        backoff *= 2;
                    }
                    Some(_) => {
                        return Err(StateError::Unavailable(
                            "BatchGetItem: keys left unprocessed after retries".into(),
                        ));
                    }
                }
            }
        }
        Ok(out)
    }

    async fn save(&mut self, writes: Vec<Write>) -> Result<(), StateError> {
        // More than 100 changes cannot be one transaction; each chunk is still
        // all-or-nothing, and a conflict in a later chunk reruns the batch on
        // state that includes the earlier ones (writes are idempotent per event).
        for chunk in writes.chunks(MAX_TRANSACT) {
            let mut items = Vec::with_capacity(chunk.len());
            for w in chunk {
                let (pk, sk) = split(&w.key);
                let expected = match w.expected_version {
                    0 => self.expired.get(&w.key).copied().unwrap_or(0),
                    v => v,
                };
                let (cond, values) = if expected == 0 {
                    ("attribute_not_exists(pk)".to_string(), None)
                } else {
                    (
                        "ver = :expected".to_string(),
                        Some(HashMap::from([(
                            ":expected".to_string(),
                            AttributeValue::N(expected.to_string()),
                        )])),
                    )
                };
                let key = HashMap::from([
                    ("pk".to_string(), AttributeValue::S(pk.to_string())),
                    ("sk".to_string(), AttributeValue::S(sk.to_string())),
                ]);
                let action = match &w.value {
                    Some(value) => {
                        let json =
                            serde_json::to_string(value).map_err(|e| unavailable("encode", e))?;
                        let mut item = key;
                        item.insert("v".into(), AttributeValue::S(json));
                        item.insert("ver".into(), AttributeValue::N((expected + 1).to_string()));
                        item.insert("exp_ms".into(), AttributeValue::N(w.expires_at.to_string()));
                        // TTL wants epoch seconds; rounded up so it never fires early.
                        let secs = w.expires_at.div_euclid(1000) + 1;
                        item.insert("expires_at".into(), AttributeValue::N(secs.to_string()));
                        let put = Put::builder()
                            .table_name(&self.table)
                            .set_item(Some(item))
                            .condition_expression(cond)
                            .set_expression_attribute_values(values)
                            .build()
                            .map_err(|e| unavailable("put", e))?;
                        TransactWriteItem::builder().put(put).build()
                    }
                    None => {
                        let del = Delete::builder()
                            .table_name(&self.table)
                            .set_key(Some(key))
                            .condition_expression(cond)
                            .set_expression_attribute_values(values)
                            .build()
                            .map_err(|e| unavailable("delete", e))?;
                        TransactWriteItem::builder().delete(del).build()
                    }
                };
                items.push(action);
            }
            if items.is_empty() {
                continue;
            }
            let mut backoff = TRANSACT_BACKOFF;
            let mut attempt = 0;
            loop {
                attempt += 1;
                self.count();
                let r = self
                    .client
                    .transact_write_items()
                    .set_transact_items(Some(items.clone()))
                    .send()
                    .await;
                let Err(e) = r else { break };
                let text = aws_sdk_dynamodb::error::DisplayErrorContext(&e).to_string();
                if let Some(aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(t)) = e.as_service_error() {
                    let reasons: Vec<&str> = t
                        .cancellation_reasons()
                        .iter()
                        .map(|r| r.code().unwrap_or(""))
                        .collect();
                    let at = reasons
                        .iter()
                        .position(|c| *c == "ConditionalCheckFailed" || *c == "TransactionConflict");
                    if at.is_some() || reasons.is_empty() {
                        let key = at
                            .and_then(|i| chunk.get(i))
                            .map_or_else(|| "?".to_string(), |w| w.key.clone());
                        return Err(StateError::Conflict { key });
                    }
                    // A throttled transaction is cancelled with reason
                    // `ThrottlingError`, which the SDK does not retry.
                    let throttled = reasons.contains(&"ThrottlingError")
                        && reasons
                            .iter()
                            .all(|c| matches!(*c, "" | "None" | "ThrottlingError"));
                    if throttled && attempt < TRANSACT_ATTEMPTS {
                        tracing::warn!(attempt, wait_ms = backoff.as_millis() as u64, "DynamoDB throttled the state transaction; retrying.");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(TRANSACT_MAX_BACKOFF);
                        continue;
                    }
                }
                return Err(StateError::Unavailable(format!(
                    "TransactWriteItems: {text}"
                )));
            }
            for w in chunk {
                self.expired.remove(&w.key);
            }
        }
        Ok(())
    }

    async fn keys_with_prefix(
        &mut self,
        prefix: &str,
        now: i64,
    ) -> Result<Vec<String>, StateError> {
        let (pk, sk_prefix) = split(prefix);
        let mut out = Vec::new();
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        loop {
            self.count();
            let mut q = self
                .client
                .query()
                .table_name(&self.table)
                .consistent_read(true)
                .key_condition_expression("pk = :pk AND begins_with(sk, :sk)")
                .filter_expression("exp_ms >= :now")
                .expression_attribute_values(":pk", AttributeValue::S(pk.to_string()))
                .expression_attribute_values(":sk", AttributeValue::S(sk_prefix.to_string()))
                .expression_attribute_values(":now", AttributeValue::N(now.to_string()))
                .projection_expression("pk, sk")
                .set_exclusive_start_key(start.take());
            if sk_prefix.is_empty() {
                q = q
                    .key_condition_expression("pk = :pk")
                    .set_expression_attribute_values(Some(HashMap::from([
                        (":pk".to_string(), AttributeValue::S(pk.to_string())),
                        (":now".to_string(), AttributeValue::N(now.to_string())),
                    ])));
            }
            let r = q.send().await.map_err(|e| {
                unavailable("Query", aws_sdk_dynamodb::error::DisplayErrorContext(&e))
            })?;
            for item in r.items() {
                let sk = item
                    .get("sk")
                    .and_then(|v| v.as_s().ok())
                    .cloned()
                    .unwrap_or_default();
                out.push(format!("{pk}|{sk}"));
            }
            match r.last_evaluated_key() {
                Some(k) if !k.is_empty() => start = Some(k.clone()),
                _ => break,
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_split_into_partition_and_sort_parts() {
        assert_eq!(
            split("w|failed-auth-burst|/aws/lambda/f|source_ip=1.2.3.4"),
            ("w|failed-auth-burst", "/aws/lambda/f|source_ip=1.2.3.4")
        );
        assert_eq!(split("s|missing-end|"), ("s|missing-end", ""));
        assert_eq!(split("f|/aws/lambda/f"), ("f", "/aws/lambda/f"));
        assert_eq!(split("x"), ("x", ""));
    }
}
