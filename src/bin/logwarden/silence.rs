//! `logwarden silence add|list|remove`: silences in a YAML file or in the
//! DynamoDB state table, and `--silences FILE` for replay, sweep, backtest.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use logwarden::alert::visible::visible;
use logwarden::detect::Key;
use logwarden::silence::table::SilenceTable;
use logwarden::silence::{NewSilence, Silence, SilenceError, SilenceSet, file, parse_pair};
use logwarden::time::{Clock, Millis, SystemClock, parse_duration, parse_rfc3339};

/// Where silences are kept: one of the two is required (the file wins when
/// both are given, e.g. with LOGWARDEN_STATE_TABLE set).
#[derive(clap::Args)]
#[group(required = true, multiple = true)]
pub(crate) struct Where {
    /// YAML file of silences (created by the first `add`); the file replay,
    /// sweep and backtest read with --silences.
    #[arg(long, value_name = "FILE")]
    silences: Option<PathBuf>,
    /// DynamoDB state table (the detector Lambda reads its silences there,
    /// at most once a minute).
    #[arg(long, value_name = "NAME", env = "LOGWARDEN_STATE_TABLE")]
    state_table: Option<String>,
}

#[derive(clap::Subcommand)]
pub(crate) enum SilenceCommand {
    /// Silence a rule's alerts (or every rule's) for a while.
    ///
    /// A firing alert is silenced when its rule is --rule (or --rule '*'),
    /// its key holds every --key pair (other pairs may be there too), its
    /// log group matches --log-group (a glob: * any run of characters, ?
    /// one) and its last_seen (event time) is before the expiry. A silenced
    /// alert is not delivered and is counted (replay's summary `N
    /// silenced`, the detector's `Silenced` metric and its log line with the
    /// silence id); its incident is still tracked. An incident still open
    /// when the silence ends alerts then, once; one that resolved meanwhile
    /// sends nothing, not even its resolution.
    ///
    /// The expiry is required (--until or --for) and at most 90 days on. A
    /// rule id logwarden does not know is accepted (a rule directory of
    /// another deployment, a rule not yet shipped) with a warning.
    ///
    /// Prints the new silence's id on stdout.
    ///
    /// Exit status: 0 added; 2 a wrong or missing option (said on stderr); 1
    /// the file or table could not be read or written.
    ///
    /// Example: logwarden silence add --rule failed-auth-burst --key source_ip=203.0.113.7 --for 4h --reason "pen test, ticket SEC-42" --by alice --silences silences.yaml
    Add {
        /// Rule id, or '*' for every rule.
        #[arg(long, value_name = "ID|*")]
        rule: String,
        /// k=v the alert's key must hold (repeat for several).
        #[arg(long, value_name = "K=V", value_parser = parse_pair)]
        key: Vec<(String, String)>,
        /// Log group glob (* and ?), e.g. '/aws/lambda/checkout-*'.
        #[arg(long, value_name = "GLOB")]
        log_group: Option<String>,
        /// Expiry, RFC 3339 (e.g. 2026-11-22T18:00:00Z).
        #[arg(long, value_name = "T", value_parser = parse_rfc3339, conflicts_with = "for_")]
        until: Option<Millis>,
        /// Expiry as a span from now (e.g. 90m, 4h, 7d).
        #[arg(long = "for", id = "for_", value_name = "DUR", value_parser = parse_duration)]
        for_: Option<Millis>,
        /// Why (required): shown by `silence list` and kept with it.
        #[arg(long, value_name = "TEXT")]
        reason: Option<String>,
        /// Who (default: $USER).
        #[arg(long, value_name = "NAME", env = "USER", hide_env_values = true)]
        by: Option<String>,
        #[command(flatten)]
        at: Where,
    },
    /// List the silences not yet expired (by the clock): id, rule, key, log
    /// group, until, by, reason; one a line.
    List {
        #[command(flatten)]
        at: Where,
    },
    /// Remove a silence by id: a firing it held back goes out at the next
    /// run if its incident is still open.
    Remove {
        /// The silence's id (from `silence add` or `silence list`).
        id: String,
        #[command(flatten)]
        at: Where,
    },
}

/// Read the silences of `--silences FILE` (replay, sweep, backtest), or the
/// exit code after saying what is wrong.
pub(crate) fn load_file(path: Option<&Path>) -> Result<Option<SilenceSet>, ExitCode> {
    let Some(path) = path else { return Ok(None) };
    file::load(path)
        .map(|s| Some(SilenceSet::new(s)))
        .map_err(|e| {
            eprintln!("logwarden: --silences: {}", visible(&e.to_string(), false));
            ExitCode::from(2)
        })
}

/// The table's silences, for `sweep` without --silences.
pub(crate) async fn load_table(
    client: aws_sdk_dynamodb::Client,
    table: &str,
    now: Millis,
) -> Result<SilenceSet, SilenceError> {
    SilenceTable::new(client, table)
        .list(now)
        .await
        .map(SilenceSet::new)
}

fn fail(e: &SilenceError) -> ExitCode {
    eprintln!("logwarden: silence: {}", visible(&e.to_string(), false));
    match e {
        SilenceError::Invalid(_) => ExitCode::from(2),
        SilenceError::Store(_) => ExitCode::FAILURE,
    }
}

pub(crate) fn run(cmd: SilenceCommand, rt: &tokio::runtime::Runtime) -> ExitCode {
    let now = SystemClock.now_ms();
    let result = match cmd {
        SilenceCommand::Add {
            rule,
            key,
            log_group,
            until,
            for_,
            reason,
            by,
            at,
        } => {
            let new = NewSilence {
                rule,
                key: Key::from_iter(key),
                log_group,
                until: until.or(for_.map(|d| now.saturating_add(d))),
                reason: reason.unwrap_or_default(),
                by: by.unwrap_or_default(),
            };
            if new.rule != "*"
                && let Ok(set) = logwarden::rules::RuleSet::builtin()
                && !set.rules.iter().any(|r| r.id == new.rule)
            {
                eprintln!(
                    "logwarden: warning: no built-in rule is `{}` (fine for a rule of your own directory)",
                    visible(&new.rule, false)
                );
            }
            rt.block_on(add(new, now, &at))
        }
        SilenceCommand::List { at } => rt.block_on(list(now, &at)),
        SilenceCommand::Remove { id, at } => rt.block_on(remove(&id, now, &at)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

async fn table(name: &str) -> SilenceTable {
    let conf = logwarden::handler::load_aws_config().await;
    SilenceTable::new(aws_sdk_dynamodb::Client::new(&conf), name)
}

async fn add(new: NewSilence, now: Millis, at: &Where) -> Result<(), SilenceError> {
    let s = match (&at.silences, &at.state_table) {
        (Some(path), _) => {
            let mut all = file::load(path)?;
            let s = new.make(now, &all)?;
            all.push(s.clone());
            file::save(path, &all)?;
            s
        }
        (None, Some(name)) => {
            let t = table(name).await;
            let s = new.make(now, &t.list(now).await?)?;
            t.add(&s).await?;
            s
        }
        (None, None) => {
            return Err(SilenceError::Invalid(
                "--silences FILE or --state-table NAME".into(),
            ));
        }
    };
    println!("{}", s.id);
    eprintln!(
        "logwarden: silenced until {}: {}",
        logwarden::time::rfc3339(s.until),
        visible(&s.line(), false)
    );
    Ok(())
}

async fn list(now: Millis, at: &Where) -> Result<(), SilenceError> {
    let all: Vec<Silence> = match (&at.silences, &at.state_table) {
        (Some(path), _) => file::load(path)?
            .into_iter()
            .filter(|s| s.until > now)
            .collect(),
        (None, Some(name)) => table(name).await.list(now).await?,
        (None, None) => Vec::new(),
    };
    for s in &all {
        println!("{}", visible(&s.line(), false));
    }
    eprintln!("logwarden: {} silence(s) in force", all.len());
    Ok(())
}

async fn remove(id: &str, now: Millis, at: &Where) -> Result<(), SilenceError> {
    match (&at.silences, &at.state_table) {
        (Some(path), _) => {
            let mut all = file::load(path)?;
            if !all.iter().any(|s| s.id == id) {
                return Err(SilenceError::Invalid(format!(
                    "no silence {id} in {}",
                    path.display()
                )));
            }
            // Expired silences go too: the file does not grow for ever.
            all.retain(|s| s.id != id && s.until > now);
            file::save(path, &all)?;
        }
        (None, Some(name)) => table(name).await.remove(id).await?,
        (None, None) => {}
    }
    eprintln!("logwarden: removed silence {}", visible(id, false));
    Ok(())
}
