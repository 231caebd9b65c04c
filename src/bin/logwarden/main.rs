//! `logwarden`: the CLI. Parses arguments and calls the library.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use logwarden::alert::redact::RedactOptions;
use logwarden::alert::visible::visible;
use logwarden::engine::Engine;
use logwarden::engine::{EngineConfig, Safeguards, run_rule_tests_in};
use logwarden::ingest::Limits;
use logwarden::replay::{ReplayOptions, replay_to, shown_path};
use logwarden::rules::RuleSet;
use logwarden::runner::Runner;
use logwarden::sinks::pagerduty::{PagerDutyClient, PagerDutySink};
use logwarden::sinks::slack::{SlackClient, SlackSink, deliver_alert_lines};
use logwarden::sinks::{Both, PerRule};
use logwarden::state::dynamodb::DynamoStore;
use logwarden::time::Clock;

mod args;
mod places;
mod silence;
use args::*;

fn load_rules(dir: Option<&PathBuf>) -> Result<RuleSet, ExitCode> {
    let loaded = match dir {
        Some(d) => RuleSet::load_dir(d),
        None => RuleSet::builtin_for_detection(),
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
        Command::Eval(args) => run_eval(args),
        Command::Sweep(args) => run_sweep(args),
        Command::Backtest(args) => run_backtest(args),
        Command::State {
            command: StateCommand::Init { table },
        } => run_state_init(&table),
        Command::Silence { command } => match runtime() {
            Ok(rt) => silence::run(command, &rt),
            Err(code) => code,
        },
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
        Command::Notify {
            command:
                NotifyCommand::Pagerduty {
                    routing_key,
                    url,
                    file,
                    redact_emails,
                },
        } => run_notify_pagerduty(
            &routing_key,
            &url,
            file.as_deref(),
            RedactOptions {
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
    let mut sink = SlackSink::new(client, *opts);
    notify_lines(file, &mut sink, "posted")
}

fn run_notify_pagerduty(
    key: &str,
    url: &str,
    file: Option<&std::path::Path>,
    opts: RedactOptions,
) -> ExitCode {
    let client = match PagerDutyClient::new(key, Some(url)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("logwarden: {e}");
            return ExitCode::from(2);
        }
    };
    let mut sink = PagerDutySink::new(client, opts);
    notify_lines(file, &mut sink, "sent")
}

/// `notify slack|pagerduty`: alert lines from `file` (or stdin) through `sink`.
fn notify_lines<K: logwarden::sinks::AlertSink>(
    file: Option<&std::path::Path>,
    sink: &mut K,
    done: &str,
) -> ExitCode {
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
    match rt.block_on(deliver_alert_lines(reader, sink)) {
        Err(e) => {
            eprintln!("logwarden: {e}");
            ExitCode::FAILURE
        }
        Ok(s) => {
            // A problem quotes its line, which came from the input.
            for p in &s.problems {
                eprintln!("logwarden: {}", visible(&p.to_string(), false));
            }
            let shadow = if s.shadow > 0 {
                format!(", {} shadow (never delivered)", s.shadow)
            } else {
                String::new()
            };
            eprintln!(
                "logwarden: {} {done}, {} not {done}, {} not alerts{shadow}",
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
    let config = match args.places.engine_config(&args.delivery.region) {
        Ok(c) => c,
        Err(code) => return code,
    };
    // The file's silences when given, else the table's (as the detector).
    let silences = match silence::load_file(args.silences.as_deref()) {
        Ok(Some(s)) => s,
        Ok(None) => {
            let conf = rt.block_on(logwarden::handler::load_aws_config());
            let read = silence::load_table(aws_sdk_dynamodb::Client::new(&conf), table, now);
            match rt.block_on(read) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("logwarden: silences: {}", visible(&e.to_string(), false));
                    return ExitCode::FAILURE;
                }
            }
        }
        Err(code) => return code,
    };
    let mut engine = Engine::new(set, table_store(&rt, table), config)
        .with_safeguards(args.safeguards.safeguards());
    // Published and confirmed first; printed after, as a record of what went out.
    let mut runner = Runner::new(&mut engine, sns).silences(silences);
    let result = rt.block_on(runner.sweep(now));
    let silenced = runner.silenced();
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
            let silenced = match silenced {
                0 => String::new(),
                n => format!(", {n} silenced"),
            };
            eprintln!(
                "logwarden: swept at {}, {} alert(s){silenced}",
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
    if args.threads == 1 {
        // One thread means one: the rule files too (they compile on two
        // threads otherwise).
        logwarden::rules::compile_serially();
    }
    let set = match load_rules(args.rules.as_ref()) {
        Ok(s) => Arc::new(s),
        Err(code) => return code,
    };
    let engine = match args.places.engine_config(&args.delivery.region) {
        Ok(c) => c,
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
        engine,
        threads: args.threads,
        year: args.year,
    };
    let store = match replay_store(&rt, args.state, args.state_table.as_deref()) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let silences = match silence::load_file(args.silences.as_deref()) {
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
    // Shadow rules' alerts are printed, never published.
    let delivery = &args.delivery;
    let mut runner = Runner::new(&mut engine, sink).show_shadow(Box::new(|alerts| {
        if let Err(e) = delivery.stdout().publish(alerts) {
            tracing::warn!(error = %e, "Could not print shadow alerts.");
        }
    }));
    if let Some(set) = silences {
        runner = runner.silences(set);
    }
    let result = replay_to(&mut runner, &rt, &args.paths, &opts);
    let shadow = runner.shadow_counts().clone();
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
                // A shadow rule's count is what it would have sent.
                for (i, n) in per_rule.iter().enumerate() {
                    p.rule(i).alerts = *n + shadow.get(&ids[i]).copied().unwrap_or(0);
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

fn run_eval(args: EvalArgs) -> ExitCode {
    use logwarden::eval::{Truth, collect_alerts, score};
    let truth = match Truth::load(&args.truth) {
        Ok(t) => t,
        Err(errs) => {
            for e in &errs {
                eprintln!("{}", visible(&e.to_string(), false));
            }
            eprintln!("logwarden: {} truth file error(s)", errs.len());
            return ExitCode::from(2);
        }
    };
    let set = match load_rules(args.rules.as_ref()) {
        Ok(s) => Arc::new(s),
        Err(code) => return code,
    };
    let ids: Vec<&str> = set.rules.iter().map(|r| r.id.as_str()).collect();
    let unknown = truth.unknown_rules(&ids, &shown_path(&args.truth));
    if !unknown.is_empty() {
        for e in &unknown {
            eprintln!("{}", visible(&e.to_string(), false));
        }
        eprintln!("logwarden: {} truth file error(s)", unknown.len());
        return ExitCode::from(2);
    }
    let opts = ReplayOptions {
        limits: Limits::default(),
        log_group: args.log_group,
        log_stream: args.log_stream,
        now: args.now,
        engine: EngineConfig {
            region: args.region,
            ..EngineConfig::default()
        },
        threads: 0,
        year: args.year,
    };
    let (alerts, summary) = match collect_alerts(set, &args.paths, &opts, Safeguards::default()) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("logwarden: {}", visible(&e.to_string(), false));
            return ExitCode::FAILURE;
        }
    };
    eprint!("{}", summary.closing_lines());
    let report = score(&truth, &alerts);
    let shown = shown_path(&args.truth);
    match args.output {
        Output::Text => print!("{}", report.render_text(&shown)),
        Output::Json => print!("{}", report.render_json()),
    }
    if !summary.errors.is_empty() {
        return ExitCode::FAILURE;
    }
    let unmet = report.unmet(args.min_precision, args.min_recall, &shown);
    for line in &unmet {
        eprintln!("logwarden: eval: {line}");
    }
    if unmet.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(3)
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
    let config = match args.places.engine_config(&args.region) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let set = match load_rules(args.rules.as_ref()) {
        Ok(s) => Arc::new(s),
        Err(code) => return code,
    };
    let silences = match silence::load_file(args.silences.as_deref()) {
        Ok(s) => s,
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
        (config, silences),
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
    if summary.silenced > 0 {
        eprintln!("logwarden: {} silenced", summary.silenced);
    }
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
