//! Silences in the DynamoDB state table, in their own key space: `pk =
//! "silence"` (no `|`, so never a state key's partition), `sk` = the
//! silence's id, `v` = its JSON, and the table's TTL attribute at its expiry
//! (DynamoDB deletes it some time after; reads filter on `exp_ms`).

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;

use super::{Silence, SilenceError};
use crate::time::Millis;

const PK: &str = "silence";

/// The silences of one state table.
pub struct SilenceTable {
    client: Client,
    table: String,
}

fn store_error(what: &str, e: impl std::fmt::Display) -> SilenceError {
    SilenceError::Store(format!("DynamoDB {what}: {e}"))
}

impl SilenceTable {
    /// The silences of `table`.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        SilenceTable {
            client,
            table: table.into(),
        }
    }

    /// Store `s`.
    pub async fn add(&self, s: &Silence) -> Result<(), SilenceError> {
        let json = serde_json::to_string(s).map_err(|e| store_error("encode", e))?;
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", AttributeValue::S(PK.into()))
            .item("sk", AttributeValue::S(s.id.clone()))
            .item("v", AttributeValue::S(json))
            .item("exp_ms", AttributeValue::N(s.until.to_string()))
            .item(
                "expires_at",
                AttributeValue::N(s.until.div_euclid(1000).saturating_add(1).to_string()),
            )
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await
            .map_err(|e| {
                store_error("PutItem", aws_sdk_dynamodb::error::DisplayErrorContext(&e))
            })?;
        Ok(())
    }

    /// The silences not yet expired at `now` (event time or clock).
    pub async fn list(&self, now: Millis) -> Result<Vec<Silence>, SilenceError> {
        let mut out = Vec::new();
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        loop {
            let r = self
                .client
                .query()
                .table_name(&self.table)
                .consistent_read(true)
                .key_condition_expression("pk = :pk")
                .filter_expression("exp_ms > :now")
                .expression_attribute_values(":pk", AttributeValue::S(PK.into()))
                .expression_attribute_values(":now", AttributeValue::N(now.to_string()))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| {
                    store_error("Query", aws_sdk_dynamodb::error::DisplayErrorContext(&e))
                })?;
            for item in r.items() {
                let Some(v) = item.get("v").and_then(|v| v.as_s().ok()) else {
                    continue;
                };
                match serde_json::from_str::<Silence>(v) {
                    Ok(s) => out.push(s),
                    Err(e) => tracing::warn!(error = %e, "Skipped an unreadable silence."),
                }
            }
            match r.last_evaluated_key() {
                Some(k) if !k.is_empty() => start = Some(k.clone()),
                _ => break,
            }
        }
        out.sort_by(|a, b| a.until.cmp(&b.until).then(a.id.cmp(&b.id)));
        Ok(out)
    }

    /// Remove silence `id`; an error when there is none.
    pub async fn remove(&self, id: &str) -> Result<(), SilenceError> {
        let r = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(PK.into()))
            .key("sk", AttributeValue::S(id.into()))
            .condition_expression("attribute_exists(pk)")
            .send()
            .await;
        match r {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Err(SilenceError::Invalid(format!("no silence {id}")))
            }
            Err(e) => Err(store_error(
                "DeleteItem",
                aws_sdk_dynamodb::error::DisplayErrorContext(&e),
            )),
        }
    }
}
