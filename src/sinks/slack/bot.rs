//! Slack with a bot token: one message per incident that follows it.
//!
//! The firing is posted with `chat.postMessage`; its `ts` is kept with the
//! incident ([`Threads`]: in the DynamoDB state table, so another container
//! finds it, else in memory). A realert or the resolution then updates that
//! message with `chat.update` (the resolution replaces it with the resolved
//! message) and replies in its thread (`thread_ts`), so the channel shows one
//! message per incident, in its latest state, with its history underneath.
//! A message deleted in Slack (`message_not_found` on update) is posted anew
//! and its new `ts` kept. A copy of something already done (an SNS retry,
//! in any container) changes nothing: the stored state says so.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{Value, json};

use super::{SlackApi, SlackError, blocks, thread_reply};
use crate::alert::Alert;

/// Environment variable holding the bot token (`xoxb-…`).
pub const BOT_TOKEN_VAR: &str = "LOGWARDEN_SLACK_BOT_TOKEN";
/// Environment variable holding the ARN (or name) of a secret with the token.
pub const BOT_TOKEN_SECRET_VAR: &str = "LOGWARDEN_SLACK_BOT_TOKEN_SECRET_ARN";
/// Environment variable naming the channel (id, or name the bot can post to).
pub const CHANNEL_VAR: &str = "LOGWARDEN_SLACK_CHANNEL";
/// How long a message's `ts` is kept (DynamoDB TTL): longer than any
/// incident stays open.
pub const THREAD_TTL: Duration = Duration::from_secs(30 * 86_400);

/// Where an incident's message is, and what it last said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Posted {
    /// The channel id Slack answered with.
    pub channel: String,
    /// The message's `ts`.
    pub ts: String,
    /// What the message shows: status, last seen and count.
    pub state: String,
}

/// The `ts` of each incident's message, by alert id.
#[derive(Debug, Clone)]
pub enum Threads {
    /// This process only (the CLI, tests, a notifier without a table).
    Memory(Arc<Mutex<HashMap<String, Posted>>>),
    /// The state table, shared by every container: one item per alert id
    /// (`pk = slack|<id>`, `sk = ts`), with the table's TTL attribute.
    Dynamo {
        /// The client.
        client: aws_sdk_dynamodb::Client,
        /// The state table.
        table: String,
    },
}

fn store_err(what: &str, e: impl std::fmt::Display) -> SlackError {
    SlackError::Store(format!("{what}: {e}"))
}

impl Threads {
    /// An empty in-memory store.
    pub fn memory() -> Threads {
        Threads::Memory(Arc::new(Mutex::new(HashMap::new())))
    }

    fn pk(id: &str) -> AttributeValue {
        AttributeValue::S(format!("slack|{id}"))
    }

    /// The message of alert `id`, if one was posted.
    pub async fn get(&self, id: &str) -> Result<Option<Posted>, SlackError> {
        match self {
            Threads::Memory(m) => Ok(m.lock().ok().and_then(|m| m.get(id).cloned())),
            Threads::Dynamo { client, table } => {
                let out = client
                    .get_item()
                    .table_name(table)
                    .key("pk", Threads::pk(id))
                    .key("sk", AttributeValue::S("ts".into()))
                    .consistent_read(true)
                    .send()
                    .await
                    .map_err(|e| {
                        store_err("GetItem", aws_sdk_dynamodb::error::DisplayErrorContext(&e))
                    })?;
                let Some(item) = out.item() else {
                    return Ok(None);
                };
                let s = |k: &str| item.get(k).and_then(|v| v.as_s().ok()).cloned();
                Ok(match (s("channel"), s("ts"), s("state")) {
                    (Some(channel), Some(ts), state) => Some(Posted {
                        channel,
                        ts,
                        state: state.unwrap_or_default(),
                    }),
                    _ => None,
                })
            }
        }
    }

    /// Keep `p` as alert `id`'s message.
    pub async fn put(&self, id: &str, p: &Posted) -> Result<(), SlackError> {
        match self {
            Threads::Memory(m) => {
                if let Ok(mut m) = m.lock() {
                    m.insert(id.to_string(), p.clone());
                }
                Ok(())
            }
            Threads::Dynamo { client, table } => {
                let expires = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap_or_default()
                    + THREAD_TTL;
                client
                    .put_item()
                    .table_name(table)
                    .item("pk", Threads::pk(id))
                    .item("sk", AttributeValue::S("ts".into()))
                    .item("channel", AttributeValue::S(p.channel.clone()))
                    .item("ts", AttributeValue::S(p.ts.clone()))
                    .item("state", AttributeValue::S(p.state.clone()))
                    .item(
                        "expires_at",
                        AttributeValue::N(expires.as_secs().to_string()),
                    )
                    .send()
                    .await
                    .map_err(|e| {
                        store_err("PutItem", aws_sdk_dynamodb::error::DisplayErrorContext(&e))
                    })?;
                Ok(())
            }
        }
    }
}

/// What [`SlackBot::deliver`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BotOutcome {
    /// A new message (a firing, or a resolution whose firing is unknown here).
    Posted,
    /// The incident's message updated and a reply posted in its thread.
    Updated,
    /// The incident's message was gone (`message_not_found`): posted anew.
    Reposted,
    /// The message already shows this (a retried delivery): nothing done.
    Unchanged,
}

/// Posts and updates incident messages in one channel.
#[derive(Debug)]
pub struct SlackBot {
    api: SlackApi,
    channel: String,
    threads: Threads,
}

impl SlackBot {
    /// A bot posting to `channel` through `api`, keeping `ts` in `threads`.
    pub fn new(api: SlackApi, channel: impl Into<String>, threads: Threads) -> SlackBot {
        SlackBot {
            api,
            channel: channel.into(),
            threads,
        }
    }

    /// Deliver one alert (already redacted by the caller if it wants more
    /// than the renderer's own redaction) within `budget`.
    pub async fn deliver(&self, alert: &Alert, budget: Duration) -> Result<BotOutcome, SlackError> {
        let deadline = self.api.deadline(budget);
        let state = format!("{}|{}|{}", alert.status, alert.last_seen, alert.count);
        let message = blocks(alert);
        let Some(p) = self.threads.get(&alert.id).await? else {
            self.post_new(alert, &message, state, deadline).await?;
            return Ok(BotOutcome::Posted);
        };
        if p.state == state {
            return Ok(BotOutcome::Unchanged);
        }
        let update = json!({
            "channel": p.channel, "ts": p.ts,
            "text": message["text"], "blocks": message["blocks"],
        });
        match self.api.call("chat.update", &update, deadline).await {
            Ok(_) => {}
            Err(SlackError::Api { error, .. }) if error == "message_not_found" => {
                tracing::warn!(alert = %alert.id, "The incident's Slack message is gone; posting it again.");
                self.post_new(alert, &message, state, deadline).await?;
                return Ok(BotOutcome::Reposted);
            }
            Err(e) => return Err(e),
        }
        let reply = json!({
            "channel": p.channel, "thread_ts": p.ts,
            "text": thread_reply(alert), "unfurl_links": false,
        });
        self.api.call("chat.postMessage", &reply, deadline).await?;
        self.threads.put(&alert.id, &Posted { state, ..p }).await?;
        Ok(BotOutcome::Updated)
    }

    /// Post a message that follows no incident (an alarm, anything else
    /// on the topic) within `budget`.
    pub async fn post_message(&self, message: &Value, budget: Duration) -> Result<(), SlackError> {
        let body = json!({
            "channel": self.channel, "text": message["text"], "blocks": message["blocks"],
            "unfurl_links": false, "unfurl_media": false,
        });
        self.api
            .call("chat.postMessage", &body, self.api.deadline(budget))
            .await
            .map(drop)
    }

    async fn post_new(
        &self,
        alert: &Alert,
        message: &Value,
        state: String,
        deadline: std::time::Instant,
    ) -> Result<(), SlackError> {
        let body = json!({
            "channel": self.channel, "text": message["text"], "blocks": message["blocks"],
            "unfurl_links": false, "unfurl_media": false,
        });
        let answer = self.api.call("chat.postMessage", &body, deadline).await?;
        let (Some(channel), Some(ts)) = (answer["channel"].as_str(), answer["ts"].as_str()) else {
            return Err(SlackError::Api {
                method: "chat.postMessage".into(),
                error: "answer without channel and ts".into(),
            });
        };
        let p = Posted {
            channel: channel.to_string(),
            ts: ts.to_string(),
            state,
        };
        self.threads.put(&alert.id, &p).await
    }
}
