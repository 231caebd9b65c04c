//! End to end: the built `logwarden-detector` binary runs as Lambda runs it,
//! against a minimal Lambda Runtime API stand-in on 127.0.0.1, is invoked with
//! a real awslogs event, and the alert arrives in an SQS queue subscribed to
//! the SNS topic in moto. Skipped when `MOTO_ENDPOINT` is not set.

use crate::support;
use crate::support::runtime_api;

use std::time::Duration;

use runtime_api::{Outcome, RuntimeApi, lambda_env};
use serde_json::{Value, json};
use support::*;
use tokio::io::AsyncReadExt;

#[tokio::test]
async fn the_detector_binary_publishes_an_alert_that_reaches_sqs() {
    let Some(ep) = moto("the_detector_binary_publishes_an_alert_that_reaches_sqs") else {
        return;
    };
    let conf = aws(&ep).await;
    let t = topic_with_queue(&conf, &unique("lw-e2e"), None).await;
    let p = payload(
        "/aws/lambda/report-builder",
        "2026/11/22/[$LATEST]e2e",
        &[
            (
                1_795_341_600_000,
                "START RequestId: e2e-1 Version: $LATEST\n",
            ),
            (
                1_795_341_603_000,
                "2026-11-22T10:00:03.000Z e2e-1 Task timed out after 3.00 seconds\n",
            ),
            (1_795_341_603_001, "END RequestId: e2e-1\n"),
        ],
    );
    let mut api = RuntimeApi::start(
        vec![json!({"awslogs": {"data": b64gz(&p)}})],
        Duration::from_secs(30),
    )
    .await;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_logwarden-detector"))
        .envs(lambda_env(api.addr))
        .env("LOGWARDEN_TOPIC_ARN", &t.topic_arn)
        .env("AWS_ENDPOINT_URL", &ep)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("LOGWARDEN_STATE_TABLE")
        .kill_on_drop(true)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let outcome = api.next_outcome(Duration::from_secs(60)).await;
    child.kill().await.unwrap();
    match outcome {
        Some(Outcome::Response(v)) => assert_eq!(v, Value::Null),
        Some(Outcome::Error(e)) => panic!("the detector reported an error: {e}"),
        other => panic!("no response from the detector: {other:?}"),
    }
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .await
        .unwrap();
    assert!(
        out.contains("\"AlertsRaised\":1"),
        "EMF line missing: {out}"
    );
    let got = t.drain().await;
    assert_eq!(got.len(), 1, "{got:?}");
    let a: Value = serde_json::from_str(got[0]["Message"].as_str().unwrap()).unwrap();
    assert_eq!(a["rule"], "invocation-timeout");
    assert_eq!(a["function"], "report-builder");
    assert_eq!(a["request_ids"], json!(["e2e-1"]));
}

#[tokio::test]
async fn a_bad_topic_setting_stops_the_detector_with_one_clear_line() {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_logwarden-detector"))
        .env("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9")
        .env("LOGWARDEN_TOPIC_ARN", "my-topic")
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("LOGWARDEN_TOPIC_ARN: `my-topic` is not an SNS topic ARN"),
        "{err}"
    );
}

// ------------------------------------------------------------------
// Start-up, errors and logs of the three binaries (no services needed)
// ------------------------------------------------------------------

/// Runs `bin` with only `env` set (a cleared environment) and `stdin`.
fn run_bare(bin: &str, args: &[&str], env: &[(&str, &str)], stdin: &[u8]) -> std::process::Output {
    use std::io::Write as _;
    let mut child = std::process::Command::new(bin)
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

/// Exit code and the one stderr line (the test fails on more lines).
fn one_line(out: &std::process::Output) -> (Option<i32>, String) {
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(err.lines().count(), 1, "not one line: {err}");
    assert!(!err.to_lowercase().contains("panic"), "{err}");
    (out.status.code(), err.trim_end().to_owned())
}

#[test]
fn the_detector_started_outside_lambda_says_so_in_one_line_and_exits_one() {
    let out = run_bare(env!("CARGO_BIN_EXE_logwarden-detector"), &[], &[], b"");
    let (code, line) = one_line(&out);
    assert_eq!(code, Some(1), "{line}");
    assert!(
        line.starts_with("logwarden-detector: configuration: not running in AWS Lambda: ")
            && line.contains("AWS_LAMBDA_FUNCTION_NAME")
            && line.contains("AWS_LAMBDA_RUNTIME_API"),
        "{line}"
    );
}

#[test]
fn the_notifier_started_outside_lambda_says_so_in_one_line_and_exits_one() {
    let out = run_bare(
        env!("CARGO_BIN_EXE_logwarden-notifier"),
        &[],
        &[(
            "LOGWARDEN_SLACK_WEBHOOK_URL",
            "https://hooks.slack.com/services/T/B/SECRETTOKEN",
        )],
        b"",
    );
    let (code, line) = one_line(&out);
    assert_eq!(code, Some(1), "{line}");
    assert!(
        line.starts_with("logwarden-notifier: configuration: not running in AWS Lambda: "),
        "{line}"
    );
    assert!(!line.contains("SECRETTOKEN"), "{line}");
}

#[test]
fn the_notifier_says_configuration_once() {
    let out = run_bare(env!("CARGO_BIN_EXE_logwarden-notifier"), &[], &[], b"");
    let (code, line) = one_line(&out);
    assert_eq!(code, Some(1), "{line}");
    assert_eq!(line.matches("configuration:").count(), 1, "{line}");
    assert!(
        line.starts_with("logwarden-notifier: configuration: set LOGWARDEN_SLACK_WEBHOOK_URL"),
        "{line}"
    );
}

#[test]
fn a_bad_log_filter_is_a_configuration_error_of_every_binary() {
    let bad = "info,logwarden=loud";
    let want = format!("LOGWARDEN_LOG: `{bad}` is not a log filter");
    for (bin, args, code, prefix) in [
        (
            env!("CARGO_BIN_EXE_logwarden-detector"),
            &[][..],
            1,
            "logwarden-detector: configuration: ",
        ),
        (
            env!("CARGO_BIN_EXE_logwarden-notifier"),
            &[][..],
            1,
            "logwarden-notifier: configuration: ",
        ),
        (
            env!("CARGO_BIN_EXE_logwarden"),
            &["rules", "list"][..],
            2,
            "logwarden: configuration: ",
        ),
    ] {
        let out = run_bare(bin, args, &[("LOGWARDEN_LOG", bad)], b"");
        let (got, line) = one_line(&out);
        assert_eq!(got, Some(code), "{bin}: {line}");
        assert!(
            line.starts_with(prefix) && line.contains(&want),
            "{bin}: {line}"
        );
        assert!(out.stdout.is_empty(), "{bin} did work before failing");
    }
}

#[test]
fn cli_log_lines_on_redirected_stderr_carry_no_colour_codes() {
    // `notify slack` logs a WARN for a line that is not an alert; stderr is
    // a pipe here, as when it is redirected to a file.
    let out = run_bare(
        env!("CARGO_BIN_EXE_logwarden"),
        &[
            "notify",
            "slack",
            "--webhook-url",
            "http://127.0.0.1:9/services/T/B/X",
            "-",
        ],
        &[],
        b"not an alert\n",
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Skipped malformed alert line."), "{err}");
    assert!(
        !err.contains('\x1b'),
        "ANSI codes in redirected stderr: {err:?}"
    );
}

#[tokio::test]
async fn an_unknown_event_is_reported_as_logwarden_unknown_event_without_a_panic() {
    let mut api = RuntimeApi::start(
        vec![json!({"hello": "world"}), json!({"Records": [{"s3": {}}]})],
        Duration::from_secs(30),
    )
    .await;
    let env = lambda_env(api.addr);
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_logwarden-detector"))
        .env_clear()
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .kill_on_drop(true)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut errors = Vec::new();
    for _ in 0..2 {
        match api.next_outcome(Duration::from_secs(60)).await {
            Some(Outcome::Error(e)) => errors.push(serde_json::from_str::<Value>(&e).unwrap()),
            other => panic!("expected an error: {other:?}"),
        }
    }
    child.kill().await.unwrap();
    let mut log = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .await
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .await
        .unwrap();
    for e in &errors {
        assert_eq!(e["errorType"], "Logwarden.UnknownEvent", "{e}");
    }
    let first = errors[0]["errorMessage"].as_str().unwrap();
    assert!(
        first.contains("expected a CloudWatch Logs (awslogs)")
            && first.contains("a JSON object with keys hello"),
        "{first}"
    );
    let second = errors[1]["errorMessage"].as_str().unwrap();
    assert!(second.contains("without kinesis data"), "{second}");
    assert!(!log.to_lowercase().contains("panic"), "{log}");
    assert_eq!(log.matches("Logwarden.UnknownEvent").count(), 2, "{log}");
}
