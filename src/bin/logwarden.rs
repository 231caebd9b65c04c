//! `logwarden`: the CLI. Parses arguments and calls the library.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand, ValueEnum};
use logwarden::alert::redact::RedactOptions;
use logwarden::alert::visible::visible;
use logwarden::engine::Engine;
use logwarden::engine::{
    DEFAULT_MAX_ALERTS_PER_BATCH, EngineConfig, Safeguards, run_rule_tests_in,
};
use logwarden::ingest::{
    DEFAULT_MAX_DECODED_BYTES, DEFAULT_MAX_FILE_BYTES, DEFAULT_MAX_FILE_LINES, Limits,
};
use logwarden::replay::{ReplayOptions, replay_to, shown_path};
use logwarden::rules::RuleSet;
use logwarden::runner::Runner;
use logwarden::sinks::slack::{SlackClient, post_alert_lines_with};
use logwarden::sinks::sns::SnsSink;
use logwarden::sinks::{Both, OutputFormat, PerRule, StdoutSink};
use logwarden::state::Store;
use logwarden::state::dynamodb::DynamoStore;
use logwarden::time::Clock;

/// Detection and alerting for AWS serverless logs.
///
/// logwarden reads CloudWatch Logs subscription batches (as Lambda, Kinesis or
/// Firehose delivers them, or saved to files), recognises Lambda platform lines
/// in the text and JSON log formats, and runs detector rules over them:
/// failed-auth bursts, invocations that START but never END, timeouts,
/// out-of-memory, crashes, init failures, and duration or memory anomalies.
#[derive(Parser)]
#[command(name = "logwarden", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the rules over saved batches and log files, and print alerts.
    ///
    /// Each PATH is a file, a directory (read recursively, in name order; files
    /// ending in .json .ndjson .jsonl .gz .log .txt) or '-' for stdin. Every
    /// input form is recognised by its content: Lambda awslogs events, Kinesis
    /// and Firehose events, decoded subscription payloads, raw gzip payloads,
    /// NDJSON of any of those, and plain log files.
    ///
    /// A PATH named here is read whatever it is (a FIFO, a device). In a
    /// directory, what is not a regular file (a FIFO, a socket, a device, or a
    /// symlink to one) is skipped with a warning; symlinks are followed, but
    /// each directory and file is read once per run however many links reach
    /// it, so a symlink loop ends and no event counts twice. Every input is
    /// read up to --max-file-bytes, every plain log up to --max-file-lines;
    /// past a cap the rest is reported and not read. File names on stderr are
    /// escaped (\n, \x1b, \xe9 for a byte that is not UTF-8).
    ///
    /// Exit status: 0 processed (alerts or not); 1 some input could not be
    /// decoded (the rest was processed, each failure is on stderr); 2 usage or
    /// rule errors.
    ///
    /// Example: logwarden replay fixtures/
    Replay(ReplayArgs),
    /// Run the rules over a log group's history (CloudWatch Logs
    /// FilterLogEvents) and print the alerts that would have fired.
    ///
    /// The same engine as replay and the Lambda; events are merged in event
    /// time and handed over per log stream; deadline rules are swept at --end.
    /// Times are RFC 3339 (2026-11-22T10:00:00Z), `now`, or a span before now
    /// (-24h, -90m, -7d). Needs logs:FilterLogEvents (and
    /// logs:DescribeLogGroups, for the account id) on the group.
    ///
    /// Exit status: 0 processed (alerts or not); 1 the history could not be
    /// read (no such log group, access denied, throttled past the retries) or
    /// the report not written; 2 usage or rule errors.
    ///
    /// Example: logwarden backtest --log-group /aws/lambda/checkout --start -24h --report checkout.html
    Backtest(BacktestArgs),
    /// Check or list rule files.
    Rules {
        #[command(subcommand)]
        command: RulesCommand,
    },
    /// Evaluate the deadline rules (missing-end) against shared state with
    /// the clock as watermark, as the detector's scheduled event does.
    ///
    /// The watermark is --now, or the clock minus --lag (how late CloudWatch
    /// Logs may still deliver). Alerts are printed and, with --sink sns, published.
    Sweep(SweepArgs),
    /// Manage the DynamoDB state table.
    State {
        #[command(subcommand)]
        command: StateCommand,
    },
    /// Send alerts somewhere by hand.
    Notify {
        #[command(subcommand)]
        command: NotifyCommand,
    },
}

#[derive(clap::Args)]
struct SweepArgs {
    /// DynamoDB state table.
    #[arg(long, value_name = "NAME", env = "LOGWARDEN_STATE_TABLE")]
    state_table: Option<String>,
    /// Watermark, RFC 3339 (default: the clock minus --lag).
    #[arg(long, value_name = "RFC3339", value_parser = parse_now)]
    now: Option<i64>,
    /// Delivery lag subtracted from the clock.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_lag)]
    lag: i64,
    /// Rule directory (default: the built-in pack).
    #[arg(long, value_name = "DIR")]
    rules: Option<PathBuf>,
    #[command(flatten)]
    delivery: DeliveryArgs,
    #[command(flatten)]
    safeguards: SafeguardArgs,
}

/// Defences against attacker-controlled log content: shared by replay and sweep.
#[derive(clap::Args)]
struct SafeguardArgs {
    /// Also redact email addresses in alerts (secrets are always redacted).
    #[arg(long, env = "LOGWARDEN_REDACT_EMAILS")]
    redact_emails: bool,
    /// Alerts one batch may raise; the rest are folded into one
    /// `alert-digest` alert. 0 = no limit.
    #[arg(long, value_name = "N", env = "LOGWARDEN_MAX_ALERTS_PER_BATCH", default_value_t = DEFAULT_MAX_ALERTS_PER_BATCH)]
    max_alerts_per_batch: usize,
    /// Ignore batches from this log group (repeat, or comma-separate in the
    /// environment variable), e.g. logwarden's own.
    #[arg(
        long,
        value_name = "NAME",
        env = "LOGWARDEN_IGNORE_LOG_GROUPS",
        value_delimiter = ','
    )]
    ignore_log_group: Vec<String>,
}

impl SafeguardArgs {
    fn safeguards(&self) -> Safeguards {
        Safeguards {
            redact: RedactOptions {
                emails: self.redact_emails,
            },
            max_alerts_per_batch: self.max_alerts_per_batch,
            ignore_log_groups: self
                .ignore_log_group
                .iter()
                .map(|g| g.trim().to_string())
                .filter(|g| !g.is_empty())
                .collect(),
        }
    }
}

/// Where alerts go and how they look: shared by replay and sweep.
#[derive(clap::Args)]
struct DeliveryArgs {
    /// text for people; json prints one alert object per line and nothing else.
    #[arg(long, value_enum, default_value_t = Output::Text)]
    output: Output,
    /// Where alerts go. With sns each alert is also printed as --output says.
    #[arg(long, value_enum, default_value_t = Sink::Stdout)]
    sink: Sink,
    /// Topic for --sink sns (AWS credentials, region and endpoint come from the
    /// usual AWS environment, e.g. AWS_PROFILE, AWS_REGION, AWS_ENDPOINT_URL).
    #[arg(long, value_name = "ARN", env = "LOGWARDEN_TOPIC_ARN")]
    sns_topic_arn: Option<String>,
    /// AWS region used in console links.
    #[arg(long, env = "AWS_REGION", default_value = "us-east-1")]
    region: String,
}

impl DeliveryArgs {
    /// Stdout in the chosen format, colour only on a terminal.
    fn stdout(&self) -> StdoutSink<std::io::StdoutLock<'static>> {
        let format = match self.output {
            Output::Text => OutputFormat::Text,
            Output::Json => OutputFormat::Json,
        };
        let stdout = std::io::stdout();
        let color = stdout.is_terminal();
        StdoutSink::new(stdout.lock(), format, color)
    }

    /// The SNS sink `--sink sns` asks for, built once; `--sink stdout` needs none.
    fn sns(&self, rt: &tokio::runtime::Runtime) -> Result<Option<SnsSink>, ExitCode> {
        match (self.sink, self.sns_topic_arn.as_deref()) {
            (Sink::Stdout, _) => Ok(None),
            (Sink::Sns, None) => {
                eprintln!(
                    "logwarden: --sink sns needs --sns-topic-arn ARN (or LOGWARDEN_TOPIC_ARN)"
                );
                Err(ExitCode::from(2))
            }
            (Sink::Sns, Some(arn)) => {
                let conf = rt.block_on(logwarden::handler::load_aws_config());
                Ok(Some(SnsSink::new(
                    aws_sdk_sns::Client::new(&conf),
                    arn.to_string(),
                    self.region.clone(),
                )))
            }
        }
    }
}

fn parse_lag(s: &str) -> Result<i64, String> {
    logwarden::time::parse_duration(s)
}

#[derive(Subcommand)]
enum StateCommand {
    /// Create the state table (key pk + sk, on demand, TTL on expires_at) for
    /// local and test use; in AWS the SAM template creates it.
    Init {
        /// Table name.
        #[arg(long, value_name = "NAME")]
        table: String,
    },
}

#[derive(Subcommand)]
enum NotifyCommand {
    /// Post alert JSON lines (as `replay --output json` prints them) to a Slack
    /// incoming webhook, with the notifier's Block Kit layout and retries.
    ///
    /// Exit status: 0 every alert posted; 1 some line was not an alert or was
    /// not posted (each reported on stderr with its line number); 2 usage.
    ///
    /// Example: logwarden replay --output json fixtures/ | logwarden notify slack --webhook-url "$URL"
    Slack {
        /// The incoming webhook URL (keep it out of shell history: use the env var).
        #[arg(
            long,
            value_name = "URL",
            env = "LOGWARDEN_SLACK_WEBHOOK_URL",
            hide_env_values = true
        )]
        webhook_url: String,
        /// File of alert JSON lines; '-' or nothing reads stdin.
        file: Option<PathBuf>,
        /// Also redact email addresses (secrets are always redacted).
        #[arg(long, env = "LOGWARDEN_REDACT_EMAILS")]
        redact_emails: bool,
    },
}

#[derive(clap::Args)]
struct ReplayArgs {
    /// Files or directories to read; '-' reads stdin.
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// Rule directory (default: the built-in pack).
    #[arg(long, value_name = "DIR")]
    rules: Option<PathBuf>,
    #[command(flatten)]
    delivery: DeliveryArgs,
    /// Where detector state lives (memory: this process only; dynamodb: shared).
    #[arg(long, value_enum, default_value_t = State::Memory)]
    state: State,
    /// DynamoDB table for --state dynamodb.
    #[arg(long, value_name = "NAME", env = "LOGWARDEN_STATE_TABLE")]
    state_table: Option<String>,
    /// Watermark for deadline detectors at the end of input, RFC 3339
    /// (default: the last event time). E.g. 2026-11-22T12:00:00Z.
    #[arg(long, value_name = "RFC3339", value_parser = parse_now)]
    now: Option<i64>,
    /// Log group for plain log files.
    #[arg(long, value_name = "NAME")]
    log_group: Option<String>,
    /// Log stream for plain log files (default: the file name).
    #[arg(long, value_name = "NAME")]
    log_stream: Option<String>,
    /// Largest decoded payload accepted, in bytes (a gzip bomb stops here).
    #[arg(long, value_name = "BYTES", env = "LOGWARDEN_MAX_DECODED_BYTES", default_value_t = DEFAULT_MAX_DECODED_BYTES)]
    max_decoded_bytes: usize,
    /// Most bytes read from one input (a file, stdin, a FIFO or device named
    /// as a PATH): a bigger one is read up to its last line break before the
    /// cap, and the rest is reported as an input error (exit 1), not read.
    #[arg(long, value_name = "BYTES", env = "LOGWARDEN_MAX_FILE_BYTES",
          default_value_t = DEFAULT_MAX_FILE_BYTES, value_parser = parse_positive)]
    max_file_bytes: usize,
    /// Most lines read from one plain log: the lines past it are reported as
    /// an input error (exit 1), not read.
    #[arg(long, value_name = "N", env = "LOGWARDEN_MAX_FILE_LINES",
          default_value_t = DEFAULT_MAX_FILE_LINES, value_parser = parse_positive)]
    max_file_lines: usize,
    /// Threads decoding inputs (base64, gunzip, JSON) ahead of detection;
    /// 0 = one per available core, at most 8. Detection runs in input order on one
    /// thread, so the alerts are the same for any value.
    #[arg(long, value_name = "N", default_value_t = 0)]
    threads: usize,
    /// After the summary, print to stderr what each rule cost: lines tested,
    /// prefilter hits, matches, alerts and its share of detection time.
    #[arg(long)]
    profile: bool,
    #[command(flatten)]
    safeguards: SafeguardArgs,
}

#[derive(clap::Args)]
struct BacktestArgs {
    /// Log group to read.
    #[arg(long, value_name = "NAME")]
    log_group: String,
    /// Start of the range (included): RFC 3339, `now`, or a span before now like -24h.
    #[arg(long, value_name = "T", allow_hyphen_values = true)]
    start: String,
    /// End of the range (included); the deadline rules are swept here.
    #[arg(
        long,
        value_name = "T",
        allow_hyphen_values = true,
        default_value = "now"
    )]
    end: String,
    /// Rule directory (default: the built-in pack).
    #[arg(long, value_name = "DIR")]
    rules: Option<PathBuf>,
    /// text for people; json prints one alert object per line and nothing else.
    #[arg(long, value_enum, default_value_t = Output::Text)]
    output: Output,
    /// Also write a self-contained HTML report (charts and the alert list) here.
    #[arg(long, value_name = "FILE.html")]
    report: Option<PathBuf>,
    /// Events per FilterLogEvents page (1-10000; default: the service's, up
    /// to 10,000 events or 1 MB).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(i32).range(1..=10_000))]
    page_size: Option<i32>,
    /// Attempts per request, the first included; throttling and transient
    /// errors are retried with exponential backoff (0.2 s doubling, at most 20 s).
    #[arg(long, value_name = "N", default_value_t = logwarden::backtest::DEFAULT_MAX_ATTEMPTS,
          value_parser = clap::value_parser!(u32).range(1..=100))]
    max_attempts: u32,
    /// AWS region used in console links.
    #[arg(long, env = "AWS_REGION", default_value = "us-east-1")]
    region: String,
}

#[derive(Subcommand)]
enum RulesCommand {
    /// Compile every rule and run its inline tests; errors as path:line: message.
    ///
    /// Exit status: 0 all rules compile and their tests pass; 2 otherwise.
    Check {
        /// Rule directory (default: the built-in pack).
        dir: Option<PathBuf>,
    },
    /// List rules: id, kind, severity, title.
    List {
        /// Rule directory (default: the built-in pack).
        dir: Option<PathBuf>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Output {
    Text,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
enum Sink {
    /// Print only.
    Stdout,
    /// Publish each alert to SNS (and print it).
    Sns,
}

#[derive(Clone, Copy, ValueEnum)]
enum State {
    /// This process only (a local replay).
    Memory,
    /// A DynamoDB table shared by every process (see `logwarden state init`).
    Dynamodb,
}

/// The state store of a DynamoDB table (credentials, region and endpoint
/// from the usual AWS environment), built once.
fn table_store(rt: &tokio::runtime::Runtime, table: &str) -> Store {
    let conf = rt.block_on(logwarden::handler::load_aws_config());
    Store::for_table(Some(table), Some(&conf))
}

/// The state store `--state` and `--state-table` ask for, or the exit code
/// after saying what is missing.
fn replay_store(
    rt: &tokio::runtime::Runtime,
    state: State,
    table: Option<&str>,
) -> Result<Store, ExitCode> {
    match (state, table) {
        (State::Memory, _) => Ok(Store::default()),
        (State::Dynamodb, Some(table)) => Ok(table_store(rt, table)),
        (State::Dynamodb, None) => {
            eprintln!(
                "logwarden: --state dynamodb needs --state-table NAME (or LOGWARDEN_STATE_TABLE)"
            );
            Err(ExitCode::from(2))
        }
    }
}

fn parse_now(s: &str) -> Result<i64, String> {
    logwarden::time::parse_rfc3339(s)
}

fn parse_positive(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(0) => Err("must be at least 1".to_string()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

fn load_rules(dir: Option<&PathBuf>) -> Result<RuleSet, ExitCode> {
    let loaded = match dir {
        Some(d) => RuleSet::load_dir(d),
        None => RuleSet::builtin(),
    };
    loaded.map_err(|errs| {
        for e in &errs.0 {
            eprintln!("{e}");
        }
        eprintln!("logwarden: {} rule error(s)", errs.0.len());
        ExitCode::from(2)
    })
}

/// Log lines to stderr, filtered by `LOGWARDEN_LOG` (default `warn`), in
/// colour only on a terminal and without `NO_COLOR`: stderr redirected to a
/// file gets no escape codes.
fn init_tracing() -> Result<(), String> {
    let filter = logwarden::handler::log_filter(
        std::env::var_os(logwarden::handler::LOG_FILTER_VAR).as_deref(),
        "warn",
    )?;
    let colour = logwarden::handler::log_colour(
        std::io::stderr().is_terminal(),
        std::env::var_os("NO_COLOR").as_deref(),
    );
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(colour)
        .with_env_filter(filter)
        .try_init()
        .map_err(|e| format!("tracing: {e}"))
}

fn main() -> ExitCode {
    // Batches come one after another: keep their freed buffers for the next.
    logwarden::alloc::keep_freed_memory(64 << 20);
    if let Err(e) = init_tracing() {
        eprintln!("logwarden: configuration: {e}");
        return ExitCode::from(2);
    }
    let cli = Cli::parse();
    match cli.command {
        Command::Replay(args) => run_replay(args),
        Command::Sweep(args) => run_sweep(args),
        Command::Backtest(args) => run_backtest(args),
        Command::State {
            command: StateCommand::Init { table },
        } => run_state_init(&table),
        Command::Notify {
            command:
                NotifyCommand::Slack {
                    webhook_url,
                    file,
                    redact_emails,
                },
        } => run_notify_slack(
            &webhook_url,
            file.as_deref(),
            &RedactOptions {
                emails: redact_emails,
            },
        ),
        Command::Rules {
            command: RulesCommand::List { dir },
        } => match load_rules(dir.as_ref()) {
            Err(code) => code,
            Ok(set) => {
                println!("{:<22} {:<10} {:<9} TITLE", "ID", "KIND", "SEVERITY");
                for r in &set.rules {
                    println!(
                        "{:<22} {:<10} {:<9} {}",
                        r.id,
                        r.kind.as_str(),
                        r.severity.as_str(),
                        r.title
                    );
                }
                ExitCode::SUCCESS
            }
        },
        Command::Rules {
            command: RulesCommand::Check { dir },
        } => run_check(dir.as_ref()),
    }
}

fn run_notify_slack(url: &str, file: Option<&std::path::Path>, opts: &RedactOptions) -> ExitCode {
    let client = match SlackClient::new(url) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("logwarden: {e}");
            return ExitCode::from(2);
        }
    };
    let reader: Box<dyn std::io::BufRead> = match file {
        None => Box::new(std::io::stdin().lock()),
        Some(p) if p.as_os_str() == "-" => Box::new(std::io::stdin().lock()),
        Some(p) => match std::fs::File::open(p) {
            Ok(f) => Box::new(std::io::BufReader::new(f)),
            Err(e) => {
                eprintln!("logwarden: {}: cannot read: {e}", shown_path(p));
                return ExitCode::FAILURE;
            }
        },
    };
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    match rt.block_on(post_alert_lines_with(reader, &client, opts)) {
        Err(e) => {
            eprintln!("logwarden: {e}");
            ExitCode::FAILURE
        }
        Ok(s) => {
            // A problem quotes its line, which came from the input.
            for p in &s.problems {
                eprintln!("logwarden: {}", visible(&p.to_string(), false));
            }
            eprintln!(
                "logwarden: {} posted, {} not posted, {} not alerts",
                s.posted, s.failed, s.malformed
            );
            if s.all_posted() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            eprintln!("logwarden: cannot start: {e}");
            ExitCode::FAILURE
        })
}

fn run_state_init(table: &str) -> ExitCode {
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let result = rt.block_on(async {
        let conf = logwarden::handler::load_aws_config().await;
        DynamoStore::create_table(&aws_sdk_dynamodb::Client::new(&conf), table).await
    });
    match result {
        Ok(()) => {
            eprintln!("logwarden: created table {table} (pk, sk; on demand; TTL on expires_at)");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("logwarden: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run_sweep(args: SweepArgs) -> ExitCode {
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let set = match load_rules(args.rules.as_ref()) {
        Ok(s) => Arc::new(s),
        Err(code) => return code,
    };
    let Some(table) = args.state_table.as_deref() else {
        eprintln!("logwarden: sweep needs --state-table NAME (or LOGWARDEN_STATE_TABLE)");
        return ExitCode::from(2);
    };
    let sns = match args.delivery.sns(&rt) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let now = args
        .now
        .unwrap_or_else(|| logwarden::time::SystemClock.now_ms() - args.lag);
    let mut engine = Engine::new(
        set,
        table_store(&rt, table),
        EngineConfig {
            region: args.delivery.region.clone(),
        },
    )
    .with_safeguards(args.safeguards.safeguards());
    // Published and confirmed first; printed after, as a record of what went out.
    let result = rt.block_on(Runner::new(&mut engine, sns).sweep(now));
    match result {
        Err(e) => {
            eprintln!("logwarden: {e}");
            ExitCode::FAILURE
        }
        Ok(o) => {
            let alerts = o.alerts;
            let mut sink = args.delivery.stdout();
            if let Err(e) = sink.publish(&alerts) {
                eprintln!("logwarden: cannot write alerts: {e}");
                return ExitCode::FAILURE;
            }
            eprintln!(
                "logwarden: swept at {}, {} alert(s)",
                logwarden::time::rfc3339(now),
                alerts.len()
            );
            ExitCode::SUCCESS
        }
    }
}

fn run_check(dir: Option<&PathBuf>) -> ExitCode {
    // A broken rule must not hide another rule's failing test: report every
    // rule error, then run the tests of the rules that compiled.
    let (set, errors) = RuleSet::load_partial(dir.map(PathBuf::as_path));
    for e in &errors {
        eprintln!("{e}");
    }
    if !errors.is_empty() {
        eprintln!("logwarden: {} rule error(s)", errors.len());
    }
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let (mut passed, mut failed) = (0, 0);
    for r in &set.rules {
        for o in rt.block_on(run_rule_tests_in(&set, r)) {
            match o.failure {
                None => passed += 1,
                Some(why) => {
                    failed += 1;
                    println!("{}: test `{}` failed: {why}", o.location, o.name);
                }
            }
        }
    }
    println!(
        "{} rules, {passed} tests passed, {failed} failed",
        set.rules.len()
    );
    if failed > 0 || !errors.is_empty() {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    }
}

fn run_replay(args: ReplayArgs) -> ExitCode {
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let sns = match args.delivery.sns(&rt) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let set = match load_rules(args.rules.as_ref()) {
        Ok(s) => Arc::new(s),
        Err(code) => return code,
    };
    let opts = ReplayOptions {
        limits: Limits {
            max_decoded_bytes: args.max_decoded_bytes,
            max_file_bytes: args.max_file_bytes,
            max_file_lines: args.max_file_lines,
            ..Limits::default()
        },
        log_group: args.log_group,
        log_stream: args.log_stream,
        now: args.now,
        engine: EngineConfig {
            region: args.delivery.region.clone(),
        },
        threads: args.threads,
    };
    let store = match replay_store(&rt, args.state, args.state_table.as_deref()) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let ids: Vec<String> = set.rules.iter().map(|r| r.id.clone()).collect();
    // SNS when asked, then stdout; each rule's alerts counted for --profile.
    let sink = PerRule::new(ids.clone(), Both(sns, args.delivery.stdout()));
    let mut engine =
        Engine::new(set, store, opts.engine.clone()).with_safeguards(args.safeguards.safeguards());
    if args.profile {
        engine = engine.with_profile();
    }
    let mut runner = Runner::new(&mut engine, sink);
    let result = replay_to(&mut runner, &rt, &args.paths, &opts);
    let per_rule = runner.into_sink().counts;
    let profile = engine.profile().cloned();
    match result {
        Err(e) => {
            eprintln!("logwarden: {}", visible(&e.to_string(), false));
            ExitCode::FAILURE
        }
        Ok(s) => {
            eprint!("{}", s.closing_lines());
            if let Some(mut p) = profile {
                for (i, n) in per_rule.iter().enumerate() {
                    p.rule(i).alerts = *n;
                }
                let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
                eprint!("logwarden: profile\n{}", p.render(&ids));
            }
            if s.errors.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

/// `--start` and `--end` of a backtest, or the exit code after saying what is wrong.
fn backtest_range(start: &str, end: &str) -> Result<(i64, i64), ExitCode> {
    let now = logwarden::time::SystemClock.now_ms();
    logwarden::backtest::parse_range(start, end, now).map_err(|e| {
        eprintln!("logwarden: {e}");
        ExitCode::from(2)
    })
}

/// The backtest's progress line on a terminal.
fn spinner() -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {msg} {elapsed}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
    );
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    bar
}

fn run_backtest(args: BacktestArgs) -> ExitCode {
    use logwarden::backtest::{self, FetchOptions, ThrottleCounter, report};

    let (start, end) = match backtest_range(&args.start, &args.end) {
        Ok(range) => range,
        Err(code) => return code,
    };
    let set = match load_rules(args.rules.as_ref()) {
        Ok(s) => Arc::new(s),
        Err(code) => return code,
    };
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let throttles = ThrottleCounter::default();
    let conf = rt.block_on(aws_config::defaults(aws_config::BehaviorVersion::latest()).load());
    let client = backtest::client(&conf, args.max_attempts, &throttles);
    let opts = FetchOptions {
        log_group: args.log_group.clone(),
        start,
        end,
        page_size: args.page_size,
    };
    let progress = std::io::stderr().is_terminal().then(spinner);
    let mut on_page = |events: usize, pages: usize| {
        if let Some(bar) = &progress {
            bar.set_message(format!(
                "{events} events, {pages} page(s), {} throttled",
                throttles.get()
            ));
        }
    };
    let fetched = rt.block_on(backtest::fetch(&client, &opts, &mut on_page));
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }
    let history = match fetched {
        Ok(h) => h,
        Err(e) => {
            eprintln!("logwarden: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut recorder = args
        .report
        .as_ref()
        .map(|_| report::Recorder::new(&set, &args.log_group));
    let mut sink = DeliveryArgs {
        output: args.output,
        sink: Sink::Stdout,
        sns_topic_arn: None,
        region: args.region.clone(),
    }
    .stdout();
    let rules = set.rules.len();
    let result = backtest::run(
        set,
        &history,
        end,
        EngineConfig {
            region: args.region.clone(),
        },
        &rt,
        recorder.as_mut(),
        &mut sink,
    );
    let summary = match result {
        Ok(s) => s,
        Err(e) => {
            eprintln!("logwarden: {e}");
            return ExitCode::FAILURE;
        }
    };
    eprintln!(
        "logwarden: {} {} to {}: {} event(s) in {} stream(s), {} page(s), {} throttled request(s), {} batch(es), {} alert(s), {} suppressed",
        args.log_group,
        logwarden::time::rfc3339(start),
        logwarden::time::rfc3339(end),
        summary.events,
        summary.streams,
        history.pages,
        throttles.get(),
        summary.batches,
        summary.alerts,
        summary.suppressed
    );
    if let (Some(path), Some(recorder)) = (&args.report, &recorder) {
        let meta = report::ReportMeta {
            start,
            end,
            events: summary.events,
            streams: summary.streams,
            pages: history.pages,
            throttles: throttles.get(),
            rules,
        };
        if let Err(e) = std::fs::write(path, recorder.render(&meta)) {
            eprintln!(
                "logwarden: {}: cannot write the report: {e}",
                path.display()
            );
            return ExitCode::FAILURE;
        }
        eprintln!("logwarden: report written to {}", path.display());
    }
    ExitCode::SUCCESS
}
