//! A minimal Lambda Runtime API on 127.0.0.1, so tests run the real
//! `logwarden-detector` binary as Lambda runs it: each `next` call gets the
//! next event (then is held open, as Lambda does between invocations), and
//! each response or error the runtime posts is reported on `outcomes`.
//! Every connection is served on its own task: the runtime client may open
//! more than one.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// What the runtime posted back for an invocation.
#[derive(Debug)]
pub enum Outcome {
    Response(Value),
    Error(String),
}

/// A running stand-in; stops serving when dropped.
pub struct RuntimeApi {
    /// For `AWS_LAMBDA_RUNTIME_API`.
    pub addr: SocketAddr,
    /// One entry per finished invocation, in order.
    pub outcomes: mpsc::UnboundedReceiver<Outcome>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl RuntimeApi {
    /// Serve `events` in order (request ids `req-0`, `req-1`, …), each with a
    /// deadline `time_limit` after it is handed out.
    pub async fn start(events: Vec<Value>, time_limit: Duration) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, outcomes) = mpsc::unbounded_channel();
        let pending = Arc::new(Mutex::new(events.into_iter().enumerate()));
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            while let Ok((sock, _)) = listener.accept().await {
                conns.spawn(connection(sock, pending.clone(), tx.clone(), time_limit));
            }
        });
        Self {
            addr,
            outcomes,
            task,
        }
    }

    /// The next outcome, or `None` after `wait`.
    pub async fn next_outcome(&mut self, wait: Duration) -> Option<Outcome> {
        tokio::time::timeout(wait, self.outcomes.recv())
            .await
            .ok()
            .flatten()
    }
}

/// The environment Lambda gives a function, pointing at `api`.
pub fn lambda_env(api: SocketAddr) -> [(&'static str, String); 4] {
    [
        ("AWS_LAMBDA_RUNTIME_API", api.to_string()),
        ("AWS_LAMBDA_FUNCTION_NAME", "logwarden-detector".into()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256".into()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".into()),
    ]
}

type Pending = Arc<Mutex<std::iter::Enumerate<std::vec::IntoIter<Value>>>>;

async fn connection(
    sock: TcpStream,
    pending: Pending,
    report: mpsc::UnboundedSender<Outcome>,
    time_limit: Duration,
) {
    let mut conn = BufReader::new(sock);
    while let Some((method, path, body)) = read_request(&mut conn).await {
        let reply = if method == "GET" && path.ends_with("/runtime/invocation/next") {
            let next = pending.lock().unwrap().next();
            let Some((i, ev)) = next else {
                // No more work: hold the call open until the test ends.
                std::future::pending::<()>().await;
                return;
            };
            next_reply(&format!("req-{i}"), &ev, time_limit)
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
            return;
        }
    }
}

/// One HTTP/1.1 request: (method, path, body).
async fn read_request(conn: &mut BufReader<TcpStream>) -> Option<(String, String, Vec<u8>)> {
    let mut line = String::new();
    if conn.read_line(&mut line).await.ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next()?.to_string(), parts.next()?.to_string());
    let mut len = 0usize;
    loop {
        let mut h = String::new();
        conn.read_line(&mut h).await.ok()?;
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
    conn.read_exact(&mut body).await.ok()?;
    Some((method, path, body))
}

/// A stand-in fed one event at a time, for runs whose events are not known
/// up front (the soak test redelivers an event whose invocation failed, as
/// Lambda does). `next` calls wait for [`RuntimeFeed::send`]; request ids are
/// `feed-0`, `feed-1`, … in the order events are handed out.
pub struct RuntimeFeed {
    /// For `AWS_LAMBDA_RUNTIME_API`.
    pub addr: SocketAddr,
    /// One entry per finished invocation, in order.
    pub outcomes: mpsc::UnboundedReceiver<Outcome>,
    events: mpsc::UnboundedSender<Value>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for RuntimeFeed {
    fn drop(&mut self) {
        self.task.abort();
    }
}

type Feed = Arc<tokio::sync::Mutex<(usize, mpsc::UnboundedReceiver<Value>)>>;

impl RuntimeFeed {
    /// Serve events as they are sent, each with a deadline `time_limit` after
    /// it is handed out.
    pub async fn start(time_limit: Duration) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, outcomes) = mpsc::unbounded_channel();
        let (events, rx) = mpsc::unbounded_channel();
        let feed: Feed = Arc::new(tokio::sync::Mutex::new((0, rx)));
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            while let Ok((sock, _)) = listener.accept().await {
                conns.spawn(feed_connection(sock, feed.clone(), tx.clone(), time_limit));
            }
        });
        Self {
            addr,
            outcomes,
            events,
            task,
        }
    }

    /// Queue `event` for the next `next` call.
    pub fn send(&self, event: Value) {
        self.events.send(event).unwrap();
    }

    /// The next outcome, or `None` after `wait`.
    pub async fn next_outcome(&mut self, wait: Duration) -> Option<Outcome> {
        tokio::time::timeout(wait, self.outcomes.recv())
            .await
            .ok()
            .flatten()
    }
}

async fn feed_connection(
    sock: TcpStream,
    feed: Feed,
    report: mpsc::UnboundedSender<Outcome>,
    time_limit: Duration,
) {
    let mut conn = BufReader::new(sock);
    while let Some((method, path, body)) = read_request(&mut conn).await {
        let reply = if method == "GET" && path.ends_with("/runtime/invocation/next") {
            let (i, ev) = {
                let mut f = feed.lock().await;
                let Some(ev) = f.1.recv().await else {
                    // The feed is gone: hold the call open until the test ends.
                    drop(f);
                    std::future::pending::<()>().await;
                    return;
                };
                f.0 += 1;
                (f.0 - 1, ev)
            };
            next_reply(&format!("feed-{i}"), &ev, time_limit)
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
            return;
        }
    }
}

/// The Runtime API's answer to `GET …/invocation/next`: `ev` as request `id`,
/// due `time_limit` from now.
fn next_reply(id: &str, ev: &Value, time_limit: Duration) -> String {
    let body = ev.to_string();
    let deadline = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
        + time_limit.as_millis();
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nLambda-Runtime-Aws-Request-Id: {id}\r\nLambda-Runtime-Deadline-Ms: {deadline}\r\nLambda-Runtime-Invoked-Function-Arn: arn:aws:lambda:us-east-1:123456789012:function:logwarden-detector\r\nLambda-Runtime-Trace-Id: Root=1-00000000-000000000000000000000000\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}
