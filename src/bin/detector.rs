//! `logwarden-detector`: the Lambda function subscribed to log groups.
//! Reads configuration, builds the engine once per container, hands each
//! event to [`logwarden::handler::DetectorService`].

// The SDK config loader is a deeply nested future; the default limit (128) is too low to lay it out.
#![recursion_limit = "256"]

use std::sync::Arc;

use lambda_runtime::{Diagnostic, Error, LambdaEvent, service_fn};
use logwarden::engine::{Engine, EngineConfig, PlaceSettings, Safeguards};
use logwarden::handler::{Delivery, DetectorService, HandlerError};
use logwarden::ingest::{DEFAULT_MAX_DECODED_BYTES, Limits};
use logwarden::rules::RuleSet;
use logwarden::silence::table::SilenceTable;
use logwarden::sinks::sns::SnsSink;
use logwarden::state::Store;
use logwarden::time::{LaggedClock, SystemClock};
use serde_json::value::RawValue;

struct Config {
    topic_arn: Option<String>,
    state_table: Option<String>,
    sweep_lag_ms: i64,
    rules: RuleSet,
    limits: Limits,
    region: String,
    function: String,
    safeguards: Safeguards,
    engine: EngineConfig,
}

fn config() -> Result<Config, String> {
    // Less than one vCPU in Lambda: a second compiling thread only adds memory.
    logwarden::rules::compile_serially();
    let rules = match std::env::var_os("LOGWARDEN_RULES") {
        Some(dir) => RuleSet::load_dir(std::path::Path::new(&dir)),
        None => RuleSet::builtin_for_detection(),
    }
    .map_err(|e| format!("LOGWARDEN_RULES: {}", e.to_string().replace('\n', "; ")))?;
    let max_decoded_bytes = match std::env::var("LOGWARDEN_MAX_DECODED_BYTES") {
        Ok(v) => v.parse::<usize>().ok().filter(|n| *n > 0).ok_or_else(|| {
            format!("LOGWARDEN_MAX_DECODED_BYTES: `{v}` is not a positive number of bytes")
        })?,
        Err(_) => DEFAULT_MAX_DECODED_BYTES,
    };
    let topic_arn = match std::env::var("LOGWARDEN_TOPIC_ARN") {
        Ok(arn) if arn.is_empty() => None,
        Ok(arn) if arn.starts_with("arn:") && arn.split(':').count() >= 6 => Some(arn),
        Ok(arn) => {
            return Err(format!(
                "LOGWARDEN_TOPIC_ARN: `{arn}` is not an SNS topic ARN (arn:aws:sns:REGION:ACCOUNT:NAME)"
            ));
        }
        Err(_) => None,
    };
    let state_table = std::env::var("LOGWARDEN_STATE_TABLE")
        .ok()
        .filter(|t| !t.is_empty());
    let sweep_lag_ms = match std::env::var("LOGWARDEN_SWEEP_LAG") {
        Ok(v) => {
            logwarden::time::parse_duration(&v).map_err(|e| format!("LOGWARDEN_SWEEP_LAG: {e}"))?
        }
        Err(_) => 60_000,
    };
    let region = std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".into());
    let var = |n: &str| std::env::var(n).ok();
    let (home, accounts) = (var("LOGWARDEN_HOME_ACCOUNT"), var("LOGWARDEN_ACCOUNTS"));
    let (portal, role) = (
        var("LOGWARDEN_ACCESS_PORTAL_URL"),
        var("LOGWARDEN_ACCESS_ROLE"),
    );
    let engine = PlaceSettings {
        region: &region,
        home_region: Some(&region),
        home_account: home.as_deref(),
        accounts: accounts.as_deref().map(|a| (a, "LOGWARDEN_ACCOUNTS")),
        access_portal_url: portal.as_deref(),
        access_role: role.as_deref(),
    }
    .engine_config()?;
    // Checked last: a wrong setting of ours is the more useful line.
    logwarden::handler::check_lambda_environment(|n| std::env::var(n).ok())?;
    let function = std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_default();
    // The recursion guard (the function's own log group, and the configured
    // ones, e.g. the notifier's), the alert-storm limit and email redaction.
    let safeguards = Safeguards::for_lambda(&function, |n| std::env::var(n).ok())?;
    Ok(Config {
        safeguards,
        topic_arn,
        state_table,
        sweep_lag_ms,
        rules,
        limits: Limits {
            max_decoded_bytes,
            ..Limits::default()
        },
        region,
        function,
        engine,
    })
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    // One batch per invocation, one after another: reuse their buffers.
    logwarden::alloc::keep_freed_memory(32 << 20);
    let cfg = match logwarden::handler::init_lambda_tracing().and_then(|()| config()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("logwarden-detector: configuration: {e}");
            std::process::exit(1);
        }
    };
    // Clients are built once per container; credentials and the endpoint
    // (AWS_ENDPOINT_URL, for the emulator) come from the environment.
    let needs_aws = cfg.topic_arn.is_some() || cfg.state_table.is_some();
    let conf = if needs_aws {
        // Retries and timeouts: see `handler::aws_retry_config` (README, Faults).
        Some(logwarden::handler::load_aws_config().await)
    } else {
        None
    };
    let delivery = match (&cfg.topic_arn, &conf) {
        (Some(arn), Some(conf)) => Delivery::Sns(SnsSink::new(
            aws_sdk_sns::Client::new(conf),
            arn.clone(),
            cfg.region.clone(),
        )),
        _ => Delivery::Log,
    };
    let rules = Arc::new(cfg.rules);
    let engine_config = cfg.engine;
    let clock = Box::new(LaggedClock::new(SystemClock, cfg.sweep_lag_ms));
    // DynamoDB when a table is configured (shared by every container), else memory.
    let store = Store::for_table(cfg.state_table.as_deref(), conf.as_ref());
    let engine = Engine::new(rules, store, engine_config).with_safeguards(cfg.safeguards);
    let mut service = DetectorService::new(engine, cfg.limits, cfg.function, clock, delivery);
    // Silences live in the state table, read at most once a minute.
    if let (Some(table), Some(conf)) = (&cfg.state_table, &conf) {
        let silences = SilenceTable::new(aws_sdk_dynamodb::Client::new(conf), table.clone());
        service = service.with_silences(silences, Box::new(SystemClock));
    }
    serve(service).await
}

async fn serve(service: DetectorService<Store>) -> Result<(), Error> {
    let service = Arc::new(service);
    // The raw event text: the handler reads the bytes Lambda sent, as the CLI
    // reads a saved event, not a `Value` that has already merged duplicate keys.
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Box<RawValue>>| {
        let service = Arc::clone(&service);
        async move {
            let mut lines = Vec::new();
            let result = service.call(event, &mut lines).await;
            if let Err(e) = std::io::Write::write_all(&mut std::io::stdout(), &lines) {
                tracing::error!(error = %e, "Alert and metric lines not written to the log.");
                return Err(Diagnostic {
                    error_type: "Logwarden.LogWriteFailed".into(),
                    error_message: format!("writing alert and metric lines: {e}"),
                });
            }
            result.map_err(|e| {
                // The runtime's own line for this is silenced (see
                // init_lambda_tracing): this one names the error. An event
                // of another kind loses no data: WARN, not ERROR.
                if matches!(e, HandlerError::Unrecognised(_)) {
                    tracing::warn!(error_type = e.error_type(), error = %e, "Invocation failed.");
                } else {
                    tracing::error!(error_type = e.error_type(), error = %e, "Invocation failed.");
                }
                Diagnostic::from(e)
            })
        }
    }))
    .await
}
