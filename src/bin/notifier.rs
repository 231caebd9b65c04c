//! `logwarden-notifier`: the Lambda function subscribed to the alert topic.
//! Reads where the Slack webhook is, builds the service once per container and
//! hands each SNS event to [`logwarden::sinks::slack::notifier::NotifierService`].

use std::sync::Arc;

use lambda_runtime::{Error, LambdaEvent, service_fn};
use logwarden::alert::redact::RedactOptions;
use logwarden::sinks::slack::notifier::{NotifierService, Webhook, WebhookConfig};
use logwarden::sinks::slack::{RetryPolicy, SlackClient};
use serde_json::Value;

/// Where the webhook URL comes from, checked.
enum Source {
    /// The URL itself, already parsed into a client.
    Url(SlackClient),
    /// A Secrets Manager secret, read on the first invocation that posts.
    Secret(String),
}

/// The settings, all checked before the runtime starts.
struct Config {
    redact: RedactOptions,
    source: Source,
}

fn config() -> Result<Config, String> {
    logwarden::handler::init_lambda_tracing()?;
    let redact = RedactOptions::from_env()?;
    let source = match WebhookConfig::from_env().map_err(|e| e.to_string())? {
        WebhookConfig::Url(url) => Source::Url(SlackClient::new(&url).map_err(|e| e.to_string())?),
        WebhookConfig::SecretArn(arn) => Source::Secret(arn),
    };
    // Checked last: a wrong setting of ours is the more useful line.
    logwarden::handler::check_lambda_environment(|n| std::env::var(n).ok())?;
    Ok(Config { redact, source })
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let cfg = match config() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("logwarden-notifier: configuration: {e}");
            std::process::exit(1);
        }
    };
    let webhook = match cfg.source {
        Source::Url(client) => Webhook::ready(client),
        Source::Secret(arn) => {
            // Endpoint, region and credentials from the environment
            // (AWS_ENDPOINT_URL points it at an emulator in tests).
            let sdk = logwarden::handler::load_aws_config().await;
            Webhook::from_secret(
                aws_sdk_secretsmanager::Client::new(&sdk),
                arn,
                RetryPolicy::default(),
            )
        }
    };
    let service = Arc::new(NotifierService::new(webhook).with_redaction(cfg.redact));
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
