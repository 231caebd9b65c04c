//! Where the notifier delivers, as its environment says: Slack (an incoming
//! webhook, or a bot token and a channel) and/or PagerDuty (a routing key),
//! each credential given itself or as a Secrets Manager secret. Checked at
//! start: a wrong combination is one clear line.

use super::pagerduty::{ROUTING_KEY_SECRET_VAR, ROUTING_KEY_VAR};
use super::slack::bot::{BOT_TOKEN_SECRET_VAR, BOT_TOKEN_VAR, CHANNEL_VAR};
use super::slack::notifier::{WEBHOOK_SECRET_VAR, WEBHOOK_URL_VAR, WebhookConfig};

/// Environment variable overriding the Slack Web API base URL (a proxy, a
/// test stand-in).
pub const SLACK_API_URL_VAR: &str = "LOGWARDEN_SLACK_API_URL";
/// Environment variable overriding the PagerDuty Events API URL.
pub const PAGERDUTY_URL_VAR: &str = "LOGWARDEN_PAGERDUTY_URL";

/// A credential: the value itself, or the ARN (or name) of a secret with it.
#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    /// The value (never shown by `Debug`).
    Value(String),
    /// A Secrets Manager secret ARN or name.
    SecretArn(String),
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credential::Value(_) => f.write_str("Value(<hidden>)"),
            Credential::SecretArn(a) => f.debug_tuple("SecretArn").field(a).finish(),
        }
    }
}

/// How the notifier reaches Slack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlackConfig {
    /// An incoming webhook.
    Webhook(WebhookConfig),
    /// A bot token and the channel it posts to.
    Bot {
        /// The token.
        token: Credential,
        /// Channel id or name.
        channel: String,
    },
}

/// Every destination of the notifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifierConfig {
    /// Slack, if configured.
    pub slack: Option<SlackConfig>,
    /// PagerDuty's routing key, if configured.
    pub pagerduty: Option<Credential>,
    /// [`SLACK_API_URL_VAR`], if set.
    pub slack_api_url: Option<String>,
    /// [`PAGERDUTY_URL_VAR`], if set.
    pub pagerduty_url: Option<String>,
}

/// A variable's value, with an empty one (templates pass empty parameters)
/// counted as unset.
fn value(get: &impl Fn(&str) -> Option<String>, name: &str) -> Option<String> {
    get(name)
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

fn credential(
    get: &impl Fn(&str) -> Option<String>,
    value_var: &str,
    secret_var: &str,
) -> Result<Option<Credential>, String> {
    match (value(get, value_var), value(get, secret_var)) {
        (Some(_), Some(_)) => Err(format!(
            "both {value_var} and {secret_var} are set; set exactly one"
        )),
        (Some(v), None) => Ok(Some(Credential::Value(v))),
        (None, Some(a)) => Ok(Some(Credential::SecretArn(a))),
        (None, None) => Ok(None),
    }
}

impl NotifierConfig {
    /// Read the process environment.
    pub fn from_env() -> Result<NotifierConfig, String> {
        NotifierConfig::from_lookup(|n| std::env::var(n).ok())
    }

    /// Read the variables through `get`. At least one destination; Slack
    /// by webhook or by bot, not both; a bot needs its channel.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<NotifierConfig, String> {
        let webhook =
            value(&get, WEBHOOK_URL_VAR).is_some() || value(&get, WEBHOOK_SECRET_VAR).is_some();
        let bot = credential(&get, BOT_TOKEN_VAR, BOT_TOKEN_SECRET_VAR)?;
        let channel = value(&get, CHANNEL_VAR);
        let slack = match (webhook, bot, channel) {
            (true, Some(_), _) => {
                return Err(format!(
                    "both a Slack webhook ({WEBHOOK_URL_VAR}/{WEBHOOK_SECRET_VAR}) and a bot token ({BOT_TOKEN_VAR}/{BOT_TOKEN_SECRET_VAR}) are set; set one"
                ));
            }
            (true, None, _) => Some(SlackConfig::Webhook(
                WebhookConfig::from_values(
                    get(WEBHOOK_URL_VAR).as_deref(),
                    get(WEBHOOK_SECRET_VAR).as_deref(),
                )
                .map_err(|e| e.to_string())?,
            )),
            (false, Some(token), Some(channel)) => Some(SlackConfig::Bot { token, channel }),
            (false, Some(_), None) => {
                return Err(format!(
                    "{CHANNEL_VAR} must name the channel the bot posts to"
                ));
            }
            (false, None, Some(_)) => {
                return Err(format!(
                    "{CHANNEL_VAR} is set without a bot token ({BOT_TOKEN_VAR} or {BOT_TOKEN_SECRET_VAR})"
                ));
            }
            (false, None, None) => None,
        };
        let pagerduty = credential(&get, ROUTING_KEY_VAR, ROUTING_KEY_SECRET_VAR)?;
        if slack.is_none() && pagerduty.is_none() {
            return Err(format!(
                "set {WEBHOOK_URL_VAR} or {WEBHOOK_SECRET_VAR} (Slack webhook), {BOT_TOKEN_VAR} or {BOT_TOKEN_SECRET_VAR} with {CHANNEL_VAR} (Slack bot), or {ROUTING_KEY_VAR} or {ROUTING_KEY_SECRET_VAR} (PagerDuty): no destination is configured"
            ));
        }
        Ok(NotifierConfig {
            slack,
            pagerduty,
            slack_api_url: value(&get, SLACK_API_URL_VAR),
            pagerduty_url: value(&get, PAGERDUTY_URL_VAR),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn cfg(vars: &[(&str, &str)]) -> Result<NotifierConfig, String> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        NotifierConfig::from_lookup(|n| vars.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone()))
    }

    #[test]
    fn destinations_combine_and_wrong_combinations_are_one_clear_line() {
        let e = cfg(&[]).unwrap_err();
        assert!(
            e.contains("no destination") && e.contains(ROUTING_KEY_VAR),
            "{e}"
        );
        let pd = cfg(&[(ROUTING_KEY_SECRET_VAR, "arn:aws:secretsmanager:x")]).unwrap();
        assert_eq!(pd.slack, None);
        assert_eq!(
            pd.pagerduty,
            Some(Credential::SecretArn("arn:aws:secretsmanager:x".into()))
        );
        let both = cfg(&[
            (WEBHOOK_URL_VAR, "https://hooks.slack.com/services/T/B/X"),
            (ROUTING_KEY_VAR, "SECRETKEY"),
        ])
        .unwrap();
        assert!(matches!(both.slack, Some(SlackConfig::Webhook(_))));
        assert!(!format!("{both:?}").contains("SECRETKEY"));
        let bot = cfg(&[(BOT_TOKEN_VAR, "xoxb-1"), (CHANNEL_VAR, "C123")]).unwrap();
        assert_eq!(
            bot.slack,
            Some(SlackConfig::Bot {
                token: Credential::Value("xoxb-1".into()),
                channel: "C123".into()
            })
        );
        for (vars, want) in [
            (vec![(BOT_TOKEN_VAR, "xoxb-1")], CHANNEL_VAR),
            (vec![(CHANNEL_VAR, "C1")], "without a bot token"),
            (
                vec![
                    (BOT_TOKEN_VAR, "x"),
                    (BOT_TOKEN_SECRET_VAR, "arn"),
                    (CHANNEL_VAR, "C"),
                ],
                "set exactly one",
            ),
            (
                vec![
                    (WEBHOOK_SECRET_VAR, "arn"),
                    (BOT_TOKEN_VAR, "x"),
                    (CHANNEL_VAR, "C"),
                ],
                "set one",
            ),
            (
                vec![(ROUTING_KEY_VAR, "k"), (ROUTING_KEY_SECRET_VAR, "arn")],
                "set exactly one",
            ),
        ] {
            let e = cfg(&vars).unwrap_err();
            assert!(e.contains(want) && !e.contains('\n'), "{vars:?}: {e}");
        }
    }
}
