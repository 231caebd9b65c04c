//! The accounts map: account id → name and owning team, so that an alert
//! from a member account says whose it is (`account_name`, `team`) and SNS
//! subscribers can route by team.
//!
//! ```yaml
//! accounts:
//!   "123456789012": {name: payments-prod, team: payments}
//!   "210987654321": {name: search-dev}
//! ```
//!
//! Read once at start and validated whole: every error is reported with the
//! source and the line it is about.

use std::collections::BTreeMap;

use serde::Deserialize;

/// What the map says about one account.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountInfo {
    /// A name people know the account by (`payments-prod`).
    pub name: String,
    /// The team that owns it (`payments`); the SNS `team` attribute.
    #[serde(default)]
    pub team: Option<String>,
}

/// Account id → what is known about it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Accounts {
    map: BTreeMap<String, AccountInfo>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    accounts: BTreeMap<String, AccountInfo>,
}

/// Longest name or team accepted.
const MAX_NAME: usize = 64;

impl Accounts {
    /// What the map says about `account`.
    pub fn get(&self, account: &str) -> Option<&AccountInfo> {
        self.map.get(account)
    }

    /// Whether the map names no account.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Reads a map from YAML text; `source` names it in errors.
    ///
    /// # Errors
    /// One line per problem, each `source:line: message`: YAML syntax, an
    /// unknown field, an account id that is not 12 digits, an empty or
    /// over-long name or team, or one with characters other than letters,
    /// digits, `.`, `_`, `-` and spaces.
    pub fn parse(text: &str, source: &str) -> Result<Accounts, String> {
        let raw: Raw = serde_yaml_ng::from_str(text).map_err(|e| {
            let line = e.location().map_or(1, |l| l.line());
            format!("{source}:{line}: {e}")
        })?;
        // The line of an account's key: the id, quoted or not, as a whole word.
        let line_of = |id: &str| {
            text.lines()
                .position(|l| {
                    l.match_indices(id).any(|(i, _)| {
                        let before = l[..i].chars().next_back();
                        let after = l[i + id.len()..].chars().next();
                        !before.is_some_and(|c| c.is_ascii_alphanumeric())
                            && matches!(after, Some('"' | '\'' | ':'))
                    })
                })
                .map_or(1, |i| i + 1)
        };
        let mut errors = Vec::new();
        for (id, info) in &raw.accounts {
            let at = line_of(id);
            if id.len() != 12 || !id.bytes().all(|b| b.is_ascii_digit()) {
                errors.push(format!(
                    "{source}:{at}: account id `{id}` is not 12 digits (quote it: \"012345678901\")"
                ));
            }
            let fields = [("name", Some(&info.name)), ("team", info.team.as_ref())];
            for (what, value) in fields {
                let Some(v) = value else { continue };
                if let Err(why) = check_name(v) {
                    errors.push(format!("{source}:{at}: account {id}: {what} `{v}` {why}"));
                }
            }
        }
        if errors.is_empty() {
            Ok(Accounts { map: raw.accounts })
        } else {
            Err(errors.join("\n"))
        }
    }

    /// Reads the map `spec` names: inline YAML when it starts with
    /// `accounts:` (how a Lambda environment variable holds it), else the
    /// path of a YAML file.
    ///
    /// # Errors
    /// The file cannot be read, or [`Accounts::parse`]'s.
    pub fn load(spec: &str, source: &str) -> Result<Accounts, String> {
        if spec.trim_start().starts_with("accounts:") {
            return Accounts::parse(spec, source);
        }
        let text = std::fs::read_to_string(spec).map_err(|e| format!("{source}: {spec}: {e}"))?;
        Accounts::parse(&text, spec)
    }
}

/// Names and teams reach subjects, chat messages and SNS attributes: plain
/// words only.
fn check_name(v: &str) -> Result<(), &'static str> {
    if v.trim().is_empty() {
        return Err("is empty");
    }
    if v.chars().count() > MAX_NAME {
        return Err("is longer than 64 characters");
    }
    if !v
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ' '))
    {
        return Err("may hold only letters, digits, `.`, `_`, `-` and spaces");
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_map_names_accounts_and_teams() {
        let m = Accounts::parse(
            "accounts:\n  \"123456789012\": {name: payments-prod, team: payments}\n  \"210987654321\": {name: search-dev}\n",
            "a.yaml",
        )
        .unwrap();
        let p = m.get("123456789012").unwrap();
        assert_eq!(
            (p.name.as_str(), p.team.as_deref()),
            ("payments-prod", Some("payments"))
        );
        assert_eq!(m.get("210987654321").unwrap().team, None);
        assert_eq!(m.get("000000000000"), None);
    }

    #[test]
    fn errors_name_the_file_and_line() {
        let e = Accounts::parse(
            "accounts:\n  \"123456789012\": {name: ok}\n  \"12345\": {name: short}\n  \"210987654321\": {name: \"<b>x</b>\", team: \"\"}\n",
            "accounts.yaml",
        )
        .unwrap_err();
        let lines: Vec<&str> = e.lines().collect();
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("accounts.yaml:3: account id `12345`")),
            "{e}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("accounts.yaml:4:") && l.contains("name `<b>x</b>`")),
            "{e}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("accounts.yaml:4:") && l.contains("team `` is empty")),
            "{e}"
        );
        let e = Accounts::parse("accounts:\n  \"123456789012\": {nme: x}\n", "f.yaml").unwrap_err();
        assert!(e.starts_with("f.yaml:2:") && e.contains("nme"), "{e}");
        let e = Accounts::parse("acounts: {}\n", "f.yaml").unwrap_err();
        assert!(e.starts_with("f.yaml:1:"), "{e}");
    }

    #[test]
    fn inline_yaml_or_a_file() {
        let m = Accounts::load(
            "accounts: {\"123456789012\": {name: a}}",
            "LOGWARDEN_ACCOUNTS",
        )
        .unwrap();
        assert_eq!(m.get("123456789012").unwrap().name, "a");
        let e = Accounts::load("/nonexistent/accounts.yaml", "--accounts").unwrap_err();
        assert!(
            e.starts_with("--accounts: /nonexistent/accounts.yaml:"),
            "{e}"
        );
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("a.yaml");
        std::fs::write(&f, "accounts:\n  \"1\": {name: x}\n").unwrap();
        let e = Accounts::load(f.to_str().unwrap(), "--accounts").unwrap_err();
        assert!(e.starts_with(&format!("{}:2:", f.display())), "{e}");
    }
}
