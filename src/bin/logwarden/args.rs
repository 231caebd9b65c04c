//! The command line of `logwarden`: its subcommands and options, with the
//! help text they print.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use logwarden::alert::redact::RedactOptions;
use logwarden::engine::{DEFAULT_MAX_ALERTS_PER_BATCH, Safeguards};
use logwarden::ingest::{
    DEFAULT_MAX_DECODED_BYTES, DEFAULT_MAX_FILE_BYTES, DEFAULT_MAX_FILE_LINES,
};
use logwarden::sinks::sns::SnsSink;
use logwarden::sinks::{OutputFormat, StdoutSink};
use logwarden::state::Store;

/// Detection and alerting for AWS serverless logs.
///
/// logwarden reads CloudWatch Logs subscription batches (as Lambda, Kinesis or
/// Firehose delivers them, or saved to files), recognises Lambda platform lines
/// in the text and JSON log formats, and runs detector rules over them:
/// failed-auth bursts, invocations that START but never END, timeouts,
/// out-of-memory, crashes, init failures, and duration or memory anomalies.
#[derive(Parser)]
#[command(name = "logwarden", version, about, long_about)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Subcommand)]
pub(crate) enum Command {
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
    /// symlink to one) is skipped with a warning, and so are, silently,
    /// hidden entries and the entries a `.logwarden-ignore` file in the
    /// directory lists (one name a line; naming one as a PATH reads it); symlinks are followed, but
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
    /// Score the rules against labelled incidents: replay the inputs (as
    /// replay does) and match each alert against a truth file.
    ///
    /// An alert matches an incident when its rule is the incident's, the
    /// incident's key is a subset of the alert's key, the log group is the
    /// incident's (when it names one) and the alert's first_seen is within
    /// [from, to]. Per rule named in the truth file (by an incident or in
    /// `rules:`): tp = incidents matched, fp = alerts matching no incident,
    /// fn = incidents no alert matched, precision = tp/(tp+fp) (1 when the
    /// rule raised nothing), recall = tp/(tp+fn) (1 when nothing is
    /// labelled). Several alerts on one incident count once; the others are
    /// listed as duplicates. The text report lists each miss (with its line
    /// in the truth file) and each false alert with the evidence line that
    /// raised it; --output json prints one object per rule: rule, tp, fp, fn,
    /// precision, recall, duplicates.
    ///
    /// Exit status: 0 scored; 3 a --min-precision or --min-recall bound is not
    /// met (each rule, miss and false alert that fails it is named on
    /// stderr); 1 some input could not be decoded; 2 usage, rule or truth-file
    /// errors (path:line: message).
    ///
    /// Example: logwarden eval --truth fixtures/real/truth.yaml --min-recall 1 fixtures/real
    #[command(after_long_help = EVAL_TRUTH_EXAMPLE)]
    Eval(EvalArgs),
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
    /// Silence alerts for a while (a maintenance window, a pen test):
    /// add, list, remove; in a YAML file or the state table.
    Silence {
        #[command(subcommand)]
        command: crate::silence::SilenceCommand,
    },
    /// Send alerts somewhere by hand.
    Notify {
        #[command(subcommand)]
        command: NotifyCommand,
    },
}

#[derive(clap::Args)]
pub(crate) struct SweepArgs {
    /// DynamoDB state table.
    #[arg(long, value_name = "NAME", env = "LOGWARDEN_STATE_TABLE")]
    pub(crate) state_table: Option<String>,
    /// Watermark, RFC 3339 (default: the clock minus --lag).
    #[arg(long, value_name = "RFC3339", value_parser = parse_now)]
    pub(crate) now: Option<i64>,
    /// Delivery lag subtracted from the clock.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_lag)]
    pub(crate) lag: i64,
    /// YAML file of silences (default: the silences in the state table, as
    /// the detector reads them).
    #[arg(long, value_name = "FILE")]
    pub(crate) silences: Option<PathBuf>,
    /// Rule directory (default: the built-in pack).
    #[arg(long, value_name = "DIR")]
    pub(crate) rules: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) delivery: DeliveryArgs,
    #[command(flatten)]
    pub(crate) safeguards: SafeguardArgs,
    #[command(flatten)]
    pub(crate) places: crate::places::PlaceArgs,
}

/// Defences against attacker-controlled log content: shared by replay and sweep.
#[derive(clap::Args)]
pub(crate) struct SafeguardArgs {
    /// Also redact email addresses in alerts (secrets are always redacted).
    #[arg(long, env = "LOGWARDEN_REDACT_EMAILS")]
    pub(crate) redact_emails: bool,
    /// Alerts one batch may raise; the rest are folded into one
    /// `alert-digest` alert. 0 = no limit.
    #[arg(long, value_name = "N", env = "LOGWARDEN_MAX_ALERTS_PER_BATCH", default_value_t = DEFAULT_MAX_ALERTS_PER_BATCH)]
    pub(crate) max_alerts_per_batch: usize,
    /// Ignore batches from this log group (repeat, or comma-separate in the
    /// environment variable), e.g. logwarden's own.
    #[arg(
        long,
        value_name = "NAME",
        env = "LOGWARDEN_IGNORE_LOG_GROUPS",
        value_delimiter = ','
    )]
    pub(crate) ignore_log_group: Vec<String>,
}

impl SafeguardArgs {
    pub(crate) fn safeguards(&self) -> Safeguards {
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
pub(crate) struct DeliveryArgs {
    /// text for people; json prints one alert object per line and nothing else.
    #[arg(long, value_enum, default_value_t = Output::Text)]
    pub(crate) output: Output,
    /// Where alerts go. With sns each alert is also printed as --output says.
    #[arg(long, value_enum, default_value_t = Sink::Stdout)]
    pub(crate) sink: Sink,
    /// Topic for --sink sns (AWS credentials, region and endpoint come from the
    /// usual AWS environment, e.g. AWS_PROFILE, AWS_REGION, AWS_ENDPOINT_URL).
    #[arg(long, value_name = "ARN", env = "LOGWARDEN_TOPIC_ARN")]
    pub(crate) sns_topic_arn: Option<String>,
    /// AWS region used in console links.
    #[arg(long, env = "AWS_REGION", default_value = "us-east-1")]
    pub(crate) region: String,
}

impl DeliveryArgs {
    /// Stdout in the chosen format, colour only on a terminal.
    pub(crate) fn stdout(&self) -> StdoutSink<std::io::StdoutLock<'static>> {
        let format = match self.output {
            Output::Text => OutputFormat::Text,
            Output::Json => OutputFormat::Json,
        };
        let stdout = std::io::stdout();
        let color = stdout.is_terminal();
        StdoutSink::new(stdout.lock(), format, color)
    }

    /// The SNS sink `--sink sns` asks for, built once; `--sink stdout` needs none.
    pub(crate) fn sns(&self, rt: &tokio::runtime::Runtime) -> Result<Option<SnsSink>, ExitCode> {
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

pub(crate) fn parse_lag(s: &str) -> Result<i64, String> {
    logwarden::time::parse_duration(s)
}

#[derive(Subcommand)]
pub(crate) enum StateCommand {
    /// Create the state table (key pk + sk, on demand, TTL on expires_at) for
    /// local and test use; in AWS the SAM template creates it.
    Init {
        /// Table name.
        #[arg(long, value_name = "NAME")]
        table: String,
    },
}

#[derive(Subcommand)]
pub(crate) enum NotifyCommand {
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
    /// Send alert JSON lines to PagerDuty (Events API v2) as the notifier does:
    /// `trigger` for a firing alert, `resolve` for a resolution, `dedup_key` =
    /// alert id; shadow alerts are skipped.
    ///
    /// Exit status: 0 every alert sent; 1 some line was not an alert or was
    /// not accepted (each reported on stderr with its line number); 2 usage.
    ///
    /// Example: logwarden replay --output json fixtures/ | logwarden notify pagerduty --routing-key "$KEY"
    Pagerduty {
        /// The integration's routing key (keep it out of shell history: use the env var).
        #[arg(
            long,
            value_name = "K",
            env = "LOGWARDEN_PAGERDUTY_ROUTING_KEY",
            hide_env_values = true
        )]
        routing_key: String,
        /// Events API endpoint.
        #[arg(long, value_name = "U", default_value = logwarden::sinks::pagerduty::EVENTS_URL)]
        url: String,
        /// File of alert JSON lines; '-' or nothing reads stdin.
        file: Option<PathBuf>,
        /// Also redact email addresses (secrets are always redacted).
        #[arg(long, env = "LOGWARDEN_REDACT_EMAILS")]
        redact_emails: bool,
    },
}

#[derive(clap::Args)]
pub(crate) struct ReplayArgs {
    /// Files or directories to read; '-' reads stdin.
    #[arg(required = true, value_name = "PATH")]
    pub(crate) paths: Vec<PathBuf>,
    /// Rule directory (default: the built-in pack).
    #[arg(long, value_name = "DIR")]
    pub(crate) rules: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) delivery: DeliveryArgs,
    /// Where detector state lives (memory: this process only; dynamodb: shared).
    #[arg(long, value_enum, default_value_t = State::Memory)]
    pub(crate) state: State,
    /// DynamoDB table for --state dynamodb.
    #[arg(long, value_name = "NAME", env = "LOGWARDEN_STATE_TABLE")]
    pub(crate) state_table: Option<String>,
    /// YAML file of silences (`logwarden silence add --silences FILE`):
    /// alerts they cover are counted, not delivered.
    #[arg(long, value_name = "FILE")]
    pub(crate) silences: Option<PathBuf>,
    /// Watermark for deadline detectors at the end of input, RFC 3339
    /// (default: the last event time). E.g. 2026-11-22T12:00:00Z.
    #[arg(long, value_name = "RFC3339", value_parser = parse_now)]
    pub(crate) now: Option<i64>,
    /// Log group for plain log files.
    #[arg(long, value_name = "NAME")]
    pub(crate) log_group: Option<String>,
    /// Log stream for plain log files (default: the file name).
    #[arg(long, value_name = "NAME")]
    pub(crate) log_stream: Option<String>,
    /// Year of syslog dates in plain logs (`Nov 22 10:00:01` has none).
    /// Default: the year that puts each date at most a day after the file's
    /// modification time (the clock for stdin), so December lines in a file
    /// written in January are last year's. With --year N the first date is
    /// in N and a date that goes back by months (December, then January) is
    /// in the next year.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(i32).range(1..=9999))]
    pub(crate) year: Option<i32>,
    /// Largest decoded payload accepted, in bytes (a gzip bomb stops here).
    #[arg(long, value_name = "BYTES", env = "LOGWARDEN_MAX_DECODED_BYTES", default_value_t = DEFAULT_MAX_DECODED_BYTES)]
    pub(crate) max_decoded_bytes: usize,
    /// Most bytes read from one input (a file, stdin, a FIFO or device named
    /// as a PATH): a bigger one is read up to its last line break before the
    /// cap, and the rest is reported as an input error (exit 1), not read.
    #[arg(long, value_name = "BYTES", env = "LOGWARDEN_MAX_FILE_BYTES",
          default_value_t = DEFAULT_MAX_FILE_BYTES, value_parser = parse_positive)]
    pub(crate) max_file_bytes: usize,
    /// Most lines read from one plain log: the lines past it are reported as
    /// an input error (exit 1), not read.
    #[arg(long, value_name = "N", env = "LOGWARDEN_MAX_FILE_LINES",
          default_value_t = DEFAULT_MAX_FILE_LINES, value_parser = parse_positive)]
    pub(crate) max_file_lines: usize,
    /// Threads decoding inputs (base64, gunzip, JSON) ahead of detection;
    /// 0 = one per available core, at most 8; 1 = everything on one thread (rule
    /// files too). Detection runs in input order on one thread, so the alerts are
    /// the same for any value.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub(crate) threads: usize,
    /// After the summary, print to stderr what each rule cost: lines tested,
    /// prefilter hits, matches, alerts and its share of detection time.
    #[arg(long)]
    pub(crate) profile: bool,
    #[command(flatten)]
    pub(crate) safeguards: SafeguardArgs,
    #[command(flatten)]
    pub(crate) places: crate::places::PlaceArgs,
}

/// The truth file `eval --help` shows, verbatim (clap would rewrap a doc comment).
const EVAL_TRUTH_EXAMPLE: &str = "\
A truth file (YAML):

  incidents:
    - rule: failed-auth-burst
      key: {source_ip: 203.0.113.7}   # subset of the alert's key
      log_group: /ec2/bastion/sshd     # optional
      from: 2026-11-22T10:00:00Z       # the alert's first_seen is in [from, to]
      to: 2026-11-22T10:15:00Z
      note: 40 passwords in a minute   # optional, printed with a miss
  rules: [secret-in-logs]              # optional: also score these rules (any alert is false)

Text output (a miss names its line in the truth file; a false alert its evidence):

  rule               tp   fp   fn  precision  recall   dup
  failed-auth-burst   1    0    1       1.00    0.50     0
  miss: failed-auth-burst {source_ip=198.51.100.9} from ... to ... (truth.yaml:8)
  false alert: secret-in-logs {} in /aws/lambda/api stream ... first_seen ...
        evidence: ...";

#[derive(clap::Args)]
pub(crate) struct EvalArgs {
    /// Truth file (YAML) labelling the incidents the rules should raise.
    #[arg(long, value_name = "FILE")]
    pub(crate) truth: PathBuf,
    /// Files or directories to replay; '-' reads stdin.
    #[arg(required = true, value_name = "PATH")]
    pub(crate) paths: Vec<PathBuf>,
    /// Rule directory (default: the built-in pack).
    #[arg(long, value_name = "DIR")]
    pub(crate) rules: Option<PathBuf>,
    /// text: a table, then each miss, false alert and duplicate; json: one
    /// object per rule.
    #[arg(long, value_enum, default_value_t = Output::Text)]
    pub(crate) output: Output,
    /// Exit 3 when a scored rule's precision is under this (0 to 1).
    #[arg(long, value_name = "X", value_parser = parse_fraction)]
    pub(crate) min_precision: Option<f64>,
    /// Exit 3 when a scored rule's recall is under this (0 to 1).
    #[arg(long, value_name = "Y", value_parser = parse_fraction)]
    pub(crate) min_recall: Option<f64>,
    /// Watermark for deadline detectors at the end of input, RFC 3339
    /// (default: the last event time).
    #[arg(long, value_name = "RFC3339", value_parser = parse_now)]
    pub(crate) now: Option<i64>,
    /// Log group for plain log files.
    #[arg(long, value_name = "NAME")]
    pub(crate) log_group: Option<String>,
    /// Log stream for plain log files (default: the file name).
    #[arg(long, value_name = "NAME")]
    pub(crate) log_stream: Option<String>,
    /// Year of syslog dates in plain logs (`Nov 22 10:00:01` has none).
    /// Default: the year that puts each date at most a day after the file's
    /// modification time (the clock for stdin), so December lines in a file
    /// written in January are last year's. With --year N the first date is
    /// in N and a date that goes back by months (December, then January) is
    /// in the next year.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(i32).range(1..=9999))]
    pub(crate) year: Option<i32>,
    /// AWS region used in console links.
    #[arg(long, env = "AWS_REGION", default_value = "us-east-1")]
    pub(crate) region: String,
}

#[derive(clap::Args)]
pub(crate) struct BacktestArgs {
    /// Log group to read.
    #[arg(long, value_name = "NAME")]
    pub(crate) log_group: String,
    /// Start of the range (included): RFC 3339, `now`, or a span before now like -24h.
    #[arg(long, value_name = "T", allow_hyphen_values = true)]
    pub(crate) start: String,
    /// End of the range (included); the deadline rules are swept here.
    #[arg(
        long,
        value_name = "T",
        allow_hyphen_values = true,
        default_value = "now"
    )]
    pub(crate) end: String,
    /// Rule directory (default: the built-in pack).
    #[arg(long, value_name = "DIR")]
    pub(crate) rules: Option<PathBuf>,
    /// text for people; json prints one alert object per line and nothing else.
    #[arg(long, value_enum, default_value_t = Output::Text)]
    pub(crate) output: Output,
    /// Also write a self-contained HTML report (charts and the alert list) here.
    #[arg(long, value_name = "FILE.html")]
    pub(crate) report: Option<PathBuf>,
    /// YAML file of silences (`logwarden silence add --silences FILE`):
    /// alerts they cover are counted, not delivered.
    #[arg(long, value_name = "FILE")]
    pub(crate) silences: Option<PathBuf>,
    /// Events per FilterLogEvents page (1-10000; default: the service's, up
    /// to 10,000 events or 1 MB).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(i32).range(1..=10_000))]
    pub(crate) page_size: Option<i32>,
    /// Attempts per request, the first included; throttling and transient
    /// errors are retried with exponential backoff (0.2 s doubling, at most 20 s).
    #[arg(long, value_name = "N", default_value_t = logwarden::backtest::DEFAULT_MAX_ATTEMPTS,
          value_parser = clap::value_parser!(u32).range(1..=100))]
    pub(crate) max_attempts: u32,
    /// AWS region used in console links.
    #[arg(long, env = "AWS_REGION", default_value = "us-east-1")]
    pub(crate) region: String,
    #[command(flatten)]
    pub(crate) places: crate::places::PlaceArgs,
}

#[derive(Subcommand)]
pub(crate) enum RulesCommand {
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
pub(crate) enum Output {
    Text,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum Sink {
    /// Print only.
    Stdout,
    /// Publish each alert to SNS (and print it).
    Sns,
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum State {
    /// This process only (a local replay).
    Memory,
    /// A DynamoDB table shared by every process (see `logwarden state init`).
    Dynamodb,
}

/// The state store of a DynamoDB table (credentials, region and endpoint
/// from the usual AWS environment), built once.
pub(crate) fn table_store(rt: &tokio::runtime::Runtime, table: &str) -> Store {
    let conf = rt.block_on(logwarden::handler::load_aws_config());
    Store::for_table(Some(table), Some(&conf))
}

/// The state store `--state` and `--state-table` ask for, or the exit code
/// after saying what is missing.
pub(crate) fn replay_store(
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

pub(crate) fn parse_now(s: &str) -> Result<i64, String> {
    logwarden::time::parse_rfc3339(s)
}

pub(crate) fn parse_fraction(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(x) if (0.0..=1.0).contains(&x) => Ok(x),
        Ok(_) => Err("must be between 0 and 1".to_string()),
        Err(e) => Err(e.to_string()),
    }
}

pub(crate) fn parse_positive(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(0) => Err("must be at least 1".to_string()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}
