//! `--home-account`, `--accounts`, `--access-portal-url`, `--access-role`:
//! shared by replay, sweep and backtest.

use std::process::ExitCode;

use logwarden::engine::{EngineConfig, PlaceSettings};

/// Accounts and regions (see the README's "Many accounts and regions").
#[derive(clap::Args)]
pub(crate) struct PlaceArgs {
    /// The account logwarden runs in (12 digits): its log groups in the home
    /// region keep the state keys and alert ids of a single account. Default:
    /// the first account read.
    #[arg(long, value_name = "ID", env = "LOGWARDEN_HOME_ACCOUNT")]
    pub(crate) home_account: Option<String>,
    /// Accounts map: a YAML file `accounts: {"ID": {name: N, team: T}}` (or
    /// the YAML itself when it starts with `accounts:`); adds account_name and team.
    #[arg(long, value_name = "FILE", env = "LOGWARDEN_ACCOUNTS")]
    pub(crate) accounts: Option<String>,
    /// Links go through this IAM Identity Center access portal
    /// (https://d-xxxxxxxxxx.awsapps.com/start), signing in with --access-role.
    #[arg(long, value_name = "URL", env = "LOGWARDEN_ACCESS_PORTAL_URL")]
    pub(crate) access_portal_url: Option<String>,
    /// The role (permission set) to sign in with through the access portal.
    #[arg(long, value_name = "ROLE", env = "LOGWARDEN_ACCESS_ROLE")]
    pub(crate) access_role: Option<String>,
}

impl PlaceArgs {
    /// The engine configuration for `region`; what is wrong goes to stderr
    /// and is a usage error (exit 2).
    pub(crate) fn engine_config(&self, region: &str) -> Result<EngineConfig, ExitCode> {
        self.settings(region).engine_config().map_err(|e| {
            eprintln!("logwarden: {e}");
            ExitCode::from(2)
        })
    }

    fn settings<'a>(&'a self, region: &'a str) -> PlaceSettings<'a> {
        PlaceSettings {
            region,
            home_region: None,
            home_account: self.home_account.as_deref(),
            accounts: self.accounts.as_deref().map(|a| (a, "--accounts")),
            access_portal_url: self.access_portal_url.as_deref(),
            access_role: self.access_role.as_deref(),
        }
    }
}
