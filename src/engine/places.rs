//! The engine's settings about accounts and regions, read and checked once
//! at start by the binaries (CLI flags, the detector's environment).

use std::sync::Arc;

use super::EngineConfig;
use crate::alert::accounts::Accounts;
use crate::alert::links::AccessPortal;

/// What the binaries read about accounts and regions, as given.
#[derive(Debug, Clone, Default)]
pub struct PlaceSettings<'a> {
    /// The default region (`AWS_REGION`, `--region`).
    pub region: &'a str,
    /// The home region (the detector's `AWS_REGION`); `None`: the first read.
    pub home_region: Option<&'a str>,
    /// `LOGWARDEN_HOME_ACCOUNT` / `--home-account`.
    pub home_account: Option<&'a str>,
    /// `LOGWARDEN_ACCOUNTS` / `--accounts`: a file, or inline YAML, with
    /// the name it is known by in errors.
    pub accounts: Option<(&'a str, &'a str)>,
    /// `LOGWARDEN_ACCESS_PORTAL_URL` / `--access-portal-url`.
    pub access_portal_url: Option<&'a str>,
    /// `LOGWARDEN_ACCESS_ROLE` / `--access-role`.
    pub access_role: Option<&'a str>,
}

impl PlaceSettings<'_> {
    /// The engine configuration, every setting checked.
    ///
    /// # Errors
    /// One message naming the setting that is wrong (an accounts map may
    /// give one line per problem).
    pub fn engine_config(&self) -> Result<EngineConfig, String> {
        let region = crate::ingest::region_code(self.region).ok_or_else(|| {
            format!(
                "region `{}` is not an AWS region code (eu-west-1)",
                self.region
            )
        })?;
        let home_account = match self.home_account.map(str::trim).filter(|a| !a.is_empty()) {
            Some(a) if a.len() == 12 && a.bytes().all(|b| b.is_ascii_digit()) => {
                Some(a.to_string())
            }
            Some(a) => {
                return Err(format!(
                    "home account `{a}` is not an account id (12 digits)"
                ));
            }
            None => None,
        };
        let accounts = match self.accounts.filter(|(spec, _)| !spec.trim().is_empty()) {
            Some((spec, source)) => Accounts::load(spec, source)?,
            None => Accounts::default(),
        };
        let access_portal = match (nonempty(self.access_portal_url), nonempty(self.access_role)) {
            (Some(url), Some(role)) => Some(AccessPortal::new(url, role)?),
            (None, None) => None,
            _ => {
                return Err(
                    "the access portal URL and the access role go together: give both or neither"
                        .to_string(),
                );
            }
        };
        let home_region = match self.home_region {
            Some(r) => Some(
                crate::ingest::region_code(r)
                    .ok_or_else(|| format!("home region `{r}` is not an AWS region code"))?
                    .to_string(),
            ),
            None => None,
        };
        Ok(EngineConfig {
            region: region.to_string(),
            home_region,
            home_account,
            accounts: Arc::new(accounts),
            access_portal,
        })
    }
}

/// `v` trimmed, `None` when empty.
fn nonempty(v: Option<&str>) -> Option<&str> {
    v.map(str::trim).filter(|v| !v.is_empty())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_checked_at_start() {
        let ok = PlaceSettings {
            region: "eu-west-1",
            home_region: Some("eu-west-1"),
            home_account: Some("111111111111"),
            accounts: Some((
                "accounts: {\"222222222222\": {name: b, team: t}}",
                "LOGWARDEN_ACCOUNTS",
            )),
            access_portal_url: Some("https://d-1.awsapps.com/start"),
            access_role: Some("Responder"),
        };
        let c = ok.engine_config().unwrap();
        assert_eq!(c.home_account.as_deref(), Some("111111111111"));
        assert_eq!(
            c.accounts.get("222222222222").unwrap().team.as_deref(),
            Some("t")
        );
        assert!(c.access_portal.is_some());
        let e = PlaceSettings {
            region: "eu-west-1/evil",
            ..ok.clone()
        }
        .engine_config()
        .unwrap_err();
        assert!(e.contains("region"), "{e}");
        let e = PlaceSettings {
            home_account: Some("12"),
            ..ok.clone()
        }
        .engine_config()
        .unwrap_err();
        assert!(e.contains("home account"), "{e}");
        let e = PlaceSettings {
            access_role: None,
            ..ok.clone()
        }
        .engine_config()
        .unwrap_err();
        assert!(e.contains("go together"), "{e}");
        let e = PlaceSettings {
            access_portal_url: Some("http://x"),
            ..ok
        }
        .engine_config()
        .unwrap_err();
        assert!(e.contains("https://"), "{e}");
    }
}
