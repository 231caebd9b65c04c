//! End to end: the built `logwarden-detector` binary runs as Lambda runs it,
//! against a minimal Lambda Runtime API stand-in on 127.0.0.1, is invoked with
//! a real awslogs event, and the alert arrives in an SQS queue subscribed to
//! the SNS topic in moto. Skipped when `MOTO_ENDPOINT` is not set.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::*;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// What the runtime posted back for an invocation.
#[derive(Debug)]
enum Outcome {
    Response(Value),
    Error(String),
}

async fn read_request(stream: &mut BufReader<TcpStream>) -> Option<(String, String, Vec<u8>)> {
    let mut line = String::new();
    if stream.read_line(&mut line).await.ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next()?.to_string(), parts.next()?.to_string());
    let mut len = 0usize;
    loop {
        let mut h = String::new();
        stream.read_line(&mut h).await.ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':')
            && k.eq_ignore_ascii_case("content-length")
        {
            len = v.trim().parse().ok()?;
        }
    }
    let mut body = vec![0; len];
    stream.read_exact(&mut body).await.ok()?;
    Some((method, path, body))
}

/// Serves `events` one per `next` call (then holds the next call open), and
/// reports each response or error.
async fn runtime_api(
    listener: TcpListener,
    events: Vec<Value>,
    report: mpsc::UnboundedSender<Outcome>,
) {
    let mut events = events.into_iter().enumerate();
    loop {
        let Ok((sock, _)) = listener.accept().await else {
            return;
        };
        let mut conn = BufReader::new(sock);
        while let Some((method, path, body)) = read_request(&mut conn).await {
            let reply = if method == "GET" && path.ends_with("/runtime/invocation/next") {
                match events.next() {
                    Some((i, ev)) => {
                        let body = ev.to_string();
                        let deadline = std::time::SystemTime::now()
                            .duration_since(std::time::UNIX_EPOCH)
                            .unwrap()
                            .as_millis()
                            + 30_000;
                        format!(
                            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nLambda-Runtime-Aws-Request-Id: req-{i}\r\nLambda-Runtime-Deadline-Ms: {deadline}\r\nLambda-Runtime-Invoked-Function-Arn: arn:aws:lambda:us-east-1:123456789012:function:logwarden-detector\r\nLambda-Runtime-Trace-Id: Root=1-00000000-000000000000000000000000\r\nContent-Length: {}\r\n\r\n{body}",
                            body.len()
                        )
                    }
                    None => {
                        // No more work: hold the call open, as Lambda does between invocations.
                        tokio::time::sleep(Duration::from_secs(3600)).await;
                        return;
                    }
                }
            } else if method == "POST" && path.contains("/response") {
                let _ = report.send(Outcome::Response(
                    serde_json::from_slice(&body).unwrap_or(Value::Null),
                ));
                "HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n".to_string()
            } else if method == "POST" && path.contains("/error") {
                let _ = report.send(Outcome::Error(String::from_utf8_lossy(&body).into_owned()));
                "HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n".to_string()
            } else {
                "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_string()
            };
            if conn.get_mut().write_all(reply.as_bytes()).await.is_err() {
                break;
            }
        }
    }
}

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
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let server = tokio::spawn(runtime_api(
        listener,
        vec![json!({"awslogs": {"data": b64gz(&p)}})],
        tx,
    ));
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_logwarden-detector"))
        .env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", "logwarden-detector")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
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
    let outcome = tokio::time::timeout(Duration::from_secs(60), rx.recv()).await;
    child.kill().await.unwrap();
    server.abort();
    match outcome {
        Ok(Some(Outcome::Response(v))) => assert_eq!(v, Value::Null),
        Ok(Some(Outcome::Error(e))) => panic!("the detector reported an error: {e}"),
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
