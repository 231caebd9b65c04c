//! `logwarden-notifier`: the Lambda function subscribed to the alert topic.
//! Reads where to deliver (Slack by webhook or bot token, PagerDuty), builds
//! the service once per container and hands each SNS event to
//! [`logwarden::sinks::slack::notifier::NotifierService`].

use std::sync::Arc;

use lambda_runtime::{Error, LambdaEvent, service_fn};
use logwarden::alert::redact::RedactOptions;
use logwarden::sinks::destinations::{Credential, NotifierConfig, SlackConfig};
use logwarden::sinks::pagerduty::{PagerDutyClient, routing_key_from_secret};
use logwarden::sinks::secret::SecretBacked;
use logwarden::sinks::slack::bot::{SlackBot, Threads};
use logwarden::sinks::slack::notifier::{NotifierService, SlackDest, Webhook, WebhookConfig};
use logwarden::sinks::slack::{RetryPolicy, SlackApi, SlackClient, bot_token_from_secret};
use serde_json::Value;

/// The settings, all checked before the runtime starts.
struct Config {
    redact: RedactOptions,
    destinations: NotifierConfig,
    state_table: Option<String>,
}

fn config() -> Result<Config, String> {
    logwarden::handler::init_lambda_tracing()?;
    let redact = RedactOptions::from_env()?;
    let destinations = NotifierConfig::from_env()?;
    // Credentials given as values are checked now, not on the first alert.
    if let Some(SlackConfig::Webhook(WebhookConfig::Url(url))) = &destinations.slack {
        SlackClient::new(url).map_err(|e| e.to_string())?;
    }
    if let Some(SlackConfig::Bot {
        token: Credential::Value(t),
        ..
    }) = &destinations.slack
    {
        SlackApi::new(t, destinations.slack_api_url.as_deref()).map_err(|e| e.to_string())?;
    }
    if let Some(Credential::Value(k)) = &destinations.pagerduty {
        PagerDutyClient::new(k, destinations.pagerduty_url.as_deref())
            .map_err(|e| e.to_string())?;
    }
    let state_table = std::env::var("LOGWARDEN_STATE_TABLE")
        .ok()
        .filter(|t| !t.trim().is_empty());
    // Checked last: a wrong setting of ours is the more useful line.
    logwarden::handler::check_lambda_environment(|n| std::env::var(n).ok())?;
    Ok(Config {
        redact,
        destinations,
        state_table,
    })
}

/// A value from a credential: built now from the value, or from the secret
/// on first use.
fn credential<T: 'static>(
    c: Credential,
    sdk: &aws_config::SdkConfig,
    build: impl Fn(&str) -> Result<T, String> + Send + Sync + 'static,
    from_secret: fn(&str) -> Result<String, String>,
) -> Result<SecretBacked<T>, String> {
    Ok(match c {
        Credential::Value(v) => SecretBacked::ready(build(&v)?),
        Credential::SecretArn(arn) => {
            SecretBacked::from_secret(aws_sdk_secretsmanager::Client::new(sdk), arn, move |s| {
                build(&from_secret(s)?)
            })
        }
    })
}

async fn service(cfg: Config) -> Result<NotifierService, String> {
    // Endpoint, region and credentials from the environment
    // (AWS_ENDPOINT_URL points it at an emulator in tests).
    let sdk = logwarden::handler::load_aws_config().await;
    let d = cfg.destinations;
    let slack = match d.slack {
        None => None,
        Some(SlackConfig::Webhook(WebhookConfig::Url(url))) => Some(SlackDest::Webhook(
            Webhook::ready(SlackClient::new(&url).map_err(|e| e.to_string())?),
        )),
        Some(SlackConfig::Webhook(WebhookConfig::SecretArn(arn))) => {
            Some(SlackDest::Webhook(Webhook::from_secret(
                aws_sdk_secretsmanager::Client::new(&sdk),
                arn,
                RetryPolicy::default(),
            )))
        }
        Some(SlackConfig::Bot { token, channel }) => {
            // The message of each incident is found by any container
            // through the state table; without one, by this one only.
            let threads = match &cfg.state_table {
                Some(t) => Threads::Dynamo {
                    client: aws_sdk_dynamodb::Client::new(&sdk),
                    table: t.clone(),
                },
                None => Threads::memory(),
            };
            let base = d.slack_api_url.clone();
            let build = move |t: &str| {
                let api = SlackApi::new(t, base.as_deref()).map_err(|e| e.to_string())?;
                Ok(SlackBot::new(api, channel.clone(), threads.clone()))
            };
            Some(SlackDest::Bot(credential(
                token,
                &sdk,
                build,
                bot_token_from_secret,
            )?))
        }
    };
    let pagerduty = match d.pagerduty {
        None => None,
        Some(c) => {
            let url = d.pagerduty_url.clone();
            let build =
                move |k: &str| PagerDutyClient::new(k, url.as_deref()).map_err(|e| e.to_string());
            Some(credential(c, &sdk, build, routing_key_from_secret)?)
        }
    };
    Ok(NotifierService::with_destinations(slack, pagerduty).with_redaction(cfg.redact))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let service = match config() {
        Ok(c) => service(c).await,
        Err(e) => Err(e),
    };
    let service = match service {
        Ok(s) => Arc::new(s),
        Err(e) => {
            eprintln!("logwarden-notifier: configuration: {e}");
            std::process::exit(1);
        }
    };
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let service = Arc::clone(&service);
        // NotifierError becomes a Lambda error with a named type; any error
        // makes SNS retry the invocation. The runtime's own line for it is
        // silenced (see init_lambda_tracing): this one names it.
        async move {
            service.call(event).await.inspect_err(|e| {
                tracing::error!(error_type = e.error_type(), error = %e, "Invocation failed.");
            })
        }
    }))
    .await
}
