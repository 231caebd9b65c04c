//! A fault-injecting HTTP/1.1 proxy for the fault tests, on 127.0.0.1.
//!
//! Clients (the AWS SDK, the Slack client, the detector binary through
//! `AWS_ENDPOINT_URL`) talk to the proxy as if it were the service; it
//! forwards each request to one upstream (the moto emulator or the Slack
//! stand-in) unless a [`Rule`] says otherwise. Requests are told apart by
//! their *action*: the SNS query-protocol `Action=` form field (`Publish`,
//! `PublishBatch`), the DynamoDB `X-Amz-Target` operation (`TransactWriteItems`,
//! `BatchGetItem`), else the URL path.
//!
//! Fault timing is explicit: [`Fault::Reply`] answers *before* forwarding (the
//! service did nothing, a retry is safe); [`Fault::ReplyAfterForward`] lets
//! the service act and then replaces its answer (the response is lost, a
//! retry duplicates); [`Fault::Hold`] and [`Fault::HoldAfterForward`] never
//! answer, so a test can kill the client mid-request. Every request is logged
//! with what happened to it. The proxy stops when dropped.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

/// Which requests a rule applies to.
#[derive(Debug, Clone)]
pub enum Match {
    /// The request's action (see the module docs) equals this.
    Action(String),
    /// The request's action is this and its body contains the text.
    ActionWithBody(String, String),
}

/// What to do with a matching request.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Answer this without forwarding: the service never sees the request.
    Reply(Canned),
    /// Forward, let the service act, then answer this instead of its response.
    ReplyAfterForward(Canned),
    /// Never forward, never answer (until the client goes away).
    Hold,
    /// Forward, then never answer.
    HoldAfterForward,
}

/// A canned HTTP response.
#[derive(Debug, Clone)]
pub struct Canned {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

/// Apply `fault` to matching requests after letting `skip` of them through,
/// `times` times.
#[derive(Debug, Clone)]
pub struct Rule {
    pub matches: Match,
    pub skip: usize,
    pub times: usize,
    pub fault: Fault,
    seen: usize,
}

impl Rule {
    /// `fault` for the next `times` requests whose action is `action`.
    pub fn next(action: &str, times: usize, fault: Fault) -> Rule {
        Rule {
            matches: Match::Action(action.to_string()),
            skip: 0,
            times,
            fault,
            seen: 0,
        }
    }

    /// Let the first `skip` matching requests through first.
    pub fn after(mut self, skip: usize) -> Rule {
        self.skip = skip;
        self
    }

    /// Only requests whose body contains `text`.
    pub fn with_body(mut self, text: &str) -> Rule {
        let action = match self.matches {
            Match::Action(a) | Match::ActionWithBody(a, _) => a,
        };
        self.matches = Match::ActionWithBody(action, text.to_string());
        self
    }
}

/// What happened to one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Forwarded; the service answered this status, passed on.
    Forwarded(u16),
    /// Answered by a fault with this status; not forwarded.
    Rejected(u16),
    /// Forwarded; the service's answer was replaced with this status.
    Replaced(u16),
    /// Held (forwarded or not); never answered.
    Held { forwarded: bool },
    /// Forwarding failed (upstream down).
    UpstreamError,
}

/// One request as logged.
#[derive(Debug, Clone)]
pub struct Seen {
    pub action: String,
    pub outcome: Outcome,
}

#[derive(Default)]
struct State {
    rules: Vec<Rule>,
    log: Vec<Seen>,
}

/// A running proxy.
pub struct FaultProxy {
    addr: std::net::SocketAddr,
    state: Arc<Mutex<State>>,
    held: Arc<Notify>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FaultProxy {
    /// Start a proxy on a free 127.0.0.1 port forwarding to `upstream`
    /// (`http://host:port`, no path).
    pub async fn start(upstream: &str) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State::default()));
        let held = Arc::new(Notify::new());
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let upstream = upstream.trim_end_matches('/').to_string();
        let (st, h) = (Arc::clone(&state), Arc::clone(&held));
        let task = tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                let conn = Conn {
                    state: Arc::clone(&st),
                    held: Arc::clone(&h),
                    http: http.clone(),
                    upstream: upstream.clone(),
                };
                tokio::spawn(conn.serve(sock));
            }
        });
        FaultProxy {
            addr,
            state,
            held,
            task,
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Add a rule; rules are tried in the order added, the first that
    /// applies wins.
    pub fn add(&self, rule: Rule) {
        self.state.lock().unwrap().rules.push(rule);
    }

    /// Drop every rule: from now on everything is forwarded.
    pub fn clear(&self) {
        self.state.lock().unwrap().rules.clear();
    }

    /// Every request so far with what happened to it.
    pub fn log(&self) -> Vec<Seen> {
        self.state.lock().unwrap().log.clone()
    }

    /// Requests so far whose action is `action`.
    pub fn count(&self, action: &str) -> usize {
        self.log().iter().filter(|s| s.action == action).count()
    }

    /// Requests with action `action` that reached the service.
    pub fn reached(&self, action: &str) -> usize {
        self.log()
            .iter()
            .filter(|s| {
                s.action == action
                    && matches!(
                        s.outcome,
                        Outcome::Forwarded(_)
                            | Outcome::Replaced(_)
                            | Outcome::Held { forwarded: true }
                    )
            })
            .count()
    }

    /// Wait until a request is held (or panic after `timeout`).
    pub async fn wait_held(&self, timeout: Duration) {
        let seen = || {
            self.log()
                .iter()
                .any(|s| matches!(s.outcome, Outcome::Held { .. }))
        };
        let deadline = tokio::time::Instant::now() + timeout;
        while !seen() {
            let notified = self.held.notified();
            if seen() {
                break;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!("no request was held within {timeout:?}: {:?}", self.log());
            }
        }
    }
}

/// The SNS query-protocol error document (`awsQuery`), as SNS sends it.
pub fn sns_error(status: u16, code: &str, message: &str) -> Canned {
    let kind = if status >= 500 { "Receiver" } else { "Sender" };
    Canned {
        status,
        headers: vec![("Content-Type".into(), "text/xml".into())],
        body: format!(
            r#"<ErrorResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/"><Error><Type>{kind}</Type><Code>{code}</Code><Message>{message}</Message></Error><RequestId>fault-proxy-0000</RequestId></ErrorResponse>"#
        ),
    }
}

/// SNS `InternalError` (HTTP 500).
pub fn sns_internal_error() -> Canned {
    sns_error(500, "InternalError", "Request could not be completed.")
}

/// SNS throttling: the common query error `Throttling` (HTTP 400).
pub fn sns_throttling() -> Canned {
    sns_error(400, "Throttling", "Rate exceeded")
}

/// A DynamoDB JSON error (`awsJson1_0`): HTTP 400 with `__type`.
pub fn dynamodb_error(kind: &str, message: &str) -> Canned {
    Canned {
        status: 400,
        headers: vec![("Content-Type".into(), "application/x-amz-json-1.0".into())],
        body: serde_json::json!({
            "__type": format!("com.amazonaws.dynamodb.v20120810#{kind}"),
            "message": message,
        })
        .to_string(),
    }
}

/// DynamoDB `ProvisionedThroughputExceededException`.
pub fn dynamodb_throttled() -> Canned {
    dynamodb_error(
        "ProvisionedThroughputExceededException",
        "The level of configured provisioned throughput for the table was exceeded. Consider increasing your provisioning level with the UpdateTable API.",
    )
}

/// A `TransactWriteItems` cancelled because DynamoDB throttled it: a
/// `TransactionCanceledException` whose reasons say `ThrottlingError`.
pub fn dynamodb_transaction_throttled() -> Canned {
    Canned {
        status: 400,
        headers: vec![(
            "Content-Type".into(),
            "application/x-amz-json-1.0".into(),
        )],
        body: serde_json::json!({
            "__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
            "Message": "Transaction cancelled, please refer cancellation reasons for specific reasons [ThrottlingError]",
            "CancellationReasons": [{
                "Code": "ThrottlingError",
                "Message": "Throughput exceeds the current capacity of your table or index. DynamoDB is automatically scaling your table or index so please try again shortly.",
            }],
        })
        .to_string(),
    }
}

/// Slack's rate limit: 429 with `Retry-After` seconds.
pub fn slack_rate_limited(retry_after_s: u64) -> Canned {
    Canned {
        status: 429,
        headers: vec![("Retry-After".into(), retry_after_s.to_string())],
        body: "rate_limited".into(),
    }
}

/// A plain 5xx with a short text body, as Slack's front end sends them.
pub fn http_status(status: u16, body: &str) -> Canned {
    Canned {
        status,
        headers: vec![("Content-Type".into(), "text/plain".into())],
        body: body.into(),
    }
}

struct Request {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn action(&self) -> String {
        if let Some(t) = self.header("x-amz-target") {
            return t.rsplit('.').next().unwrap_or(t).to_string();
        }
        let body = String::from_utf8_lossy(&self.body);
        if let Some(a) = body.split('&').find_map(|kv| kv.strip_prefix("Action=")) {
            return a.to_string();
        }
        self.target.split('?').next().unwrap_or("").to_string()
    }
}

struct Conn {
    state: Arc<Mutex<State>>,
    held: Arc<Notify>,
    http: reqwest::Client,
    upstream: String,
}

impl Conn {
    async fn serve(self, sock: TcpStream) {
        let mut conn = BufReader::new(sock);
        while let Some(req) = read_request(&mut conn).await {
            let action = req.action();
            let fault = self.pick(&action, &req);
            let (outcome, reply) = match fault {
                None => match self.forward(&req).await {
                    Some(r) => (Outcome::Forwarded(r.status), Some(r)),
                    None => (
                        Outcome::UpstreamError,
                        Some(http_status(502, "fault proxy: upstream unreachable")),
                    ),
                },
                Some(Fault::Reply(c)) => (Outcome::Rejected(c.status), Some(c)),
                Some(Fault::ReplyAfterForward(c)) => {
                    self.forward(&req).await;
                    (Outcome::Replaced(c.status), Some(c))
                }
                Some(Fault::Hold) => (Outcome::Held { forwarded: false }, None),
                Some(Fault::HoldAfterForward) => {
                    self.forward(&req).await;
                    (Outcome::Held { forwarded: true }, None)
                }
            };
            self.state
                .lock()
                .unwrap()
                .log
                .push(Seen { action, outcome });
            let Some(reply) = reply else {
                self.held.notify_waiters();
                // Keep the connection open and silent until the client leaves.
                let mut buf = [0u8; 1];
                let _ = conn.read(&mut buf).await;
                return;
            };
            if write_response(conn.get_mut(), &reply).await.is_err() {
                return;
            }
        }
    }

    fn pick(&self, action: &str, req: &Request) -> Option<Fault> {
        let mut st = self.state.lock().unwrap();
        for r in st.rules.iter_mut() {
            let applies = match &r.matches {
                Match::Action(a) => a == action,
                Match::ActionWithBody(a, text) => {
                    a == action && String::from_utf8_lossy(&req.body).contains(text.as_str())
                }
            };
            if !applies || r.seen >= r.skip + r.times {
                continue;
            }
            r.seen += 1;
            if r.seen > r.skip {
                return Some(r.fault.clone());
            }
            return None;
        }
        None
    }

    async fn forward(&self, req: &Request) -> Option<Canned> {
        let method = reqwest::Method::from_bytes(req.method.as_bytes()).ok()?;
        let mut rb = self
            .http
            .request(method, format!("{}{}", self.upstream, req.target));
        for (k, v) in &req.headers {
            let k_lower = k.to_ascii_lowercase();
            if matches!(
                k_lower.as_str(),
                "host" | "content-length" | "connection" | "transfer-encoding" | "keep-alive"
            ) {
                continue;
            }
            rb = rb.header(k.as_str(), v.as_str());
        }
        let resp = rb.body(req.body.clone()).send().await.ok()?;
        let status = resp.status().as_u16();
        let headers = resp
            .headers()
            .iter()
            .filter(|(k, _)| {
                !matches!(
                    k.as_str(),
                    "content-length" | "connection" | "transfer-encoding" | "keep-alive"
                )
            })
            .filter_map(|(k, v)| Some((k.to_string(), v.to_str().ok()?.to_string())))
            .collect();
        let body = resp.bytes().await.ok()?;
        Some(Canned {
            status,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        })
    }
}

async fn read_request(conn: &mut BufReader<TcpStream>) -> Option<Request> {
    let mut line = String::new();
    if conn.read_line(&mut line).await.ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next()?.to_string(), parts.next()?.to_string());
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if conn.read_line(&mut h).await.ok()? == 0 {
            return None;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    let find = |name: &str| {
        headers
            .iter()
            .find(|(k, _): &&(String, String)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    let mut body = Vec::new();
    if find("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked")) {
        loop {
            let mut size = String::new();
            conn.read_line(&mut size).await.ok()?;
            let n = usize::from_str_radix(size.trim().split(';').next()?, 16).ok()?;
            if n == 0 {
                let mut end = String::new();
                while conn.read_line(&mut end).await.ok()? > 2 {
                    end.clear();
                }
                break;
            }
            let mut chunk = vec![0; n];
            conn.read_exact(&mut chunk).await.ok()?;
            body.extend_from_slice(&chunk);
            let mut crlf = String::new();
            conn.read_line(&mut crlf).await.ok()?;
        }
    } else if let Some(len) = find("content-length") {
        body = vec![0; len.parse().ok()?];
        conn.read_exact(&mut body).await.ok()?;
    }
    Some(Request {
        method,
        target,
        headers,
        body,
    })
}

async fn write_response(sock: &mut TcpStream, r: &Canned) -> std::io::Result<()> {
    let reason = reqwest::StatusCode::from_u16(r.status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Status");
    let mut head = format!("HTTP/1.1 {} {reason}\r\n", r.status);
    for (k, v) in &r.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", r.body.len()));
    sock.write_all(head.as_bytes()).await?;
    sock.write_all(r.body.as_bytes()).await?;
    sock.flush().await
}

impl FaultProxy {
    /// How many requests have been logged so far.
    pub fn log_len(&self) -> usize {
        self.state.lock().unwrap().log.len()
    }

    /// The requests logged after the first `n`: cheaper than [`FaultProxy::log`]
    /// for a long run that looks at each invocation's requests in turn.
    pub fn log_since(&self, n: usize) -> Vec<Seen> {
        let st = self.state.lock().unwrap();
        st.log.get(n..).map(<[Seen]>::to_vec).unwrap_or_default()
    }
}
