//! `logwarden-notifier`: the Lambda function subscribed to the alert topic.
//! Reads where the Slack webhook is, builds the service once per container and
//! hands each SNS event to [`logwarden::sinks::slack::notifier::NotifierService`].

use std::sync::Arc;

use lambda_runtime::{Error, LambdaEvent, service_fn};
use logwarden::alert::redact::RedactOptions;
use logwarden::sinks::slack::notifier::{NotifierService, Webhook, WebhookConfig};
use logwarden::sinks::slack::{RetryPolicy, SlackClient};
use serde_json::Value;

fn fail(e: impl std::fmt::Display) -> ! {
    eprintln!("logwarden-notifier: configuration: {e}");
    std::process::exit(1);
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    logwarden::handler::init_lambda_tracing();
    let redact = RedactOptions::from_env().unwrap_or_else(|e| fail(e));
    let webhook = match WebhookConfig::from_env().unwrap_or_else(|e| fail(e)) {
        WebhookConfig::Url(url) => {
            Webhook::ready(SlackClient::new(&url).unwrap_or_else(|e| fail(e)))
        }
        WebhookConfig::SecretArn(arn) => {
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
    let service = Arc::new(NotifierService::new(webhook).with_redaction(redact));
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let service = Arc::clone(&service);
        // NotifierError becomes a Lambda error with a named type; any error
        // makes SNS retry the invocation.
        async move { service.call(event).await }
    }))
    .await
}
