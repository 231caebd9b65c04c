//! Credentials the notifier reads from Secrets Manager: once per container,
//! on the first invocation that needs them (a failed read fails that
//! invocation, which SNS retries, instead of the container's start).

use std::time::Duration;

use tokio::sync::OnceCell;

/// Longest wait for Secrets Manager.
const SECRET_TIMEOUT: Duration = Duration::from_secs(10);

/// A secret that could not be read or used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("secret {arn}: {reason}")]
pub struct SecretError {
    /// Secret ARN (or name).
    pub arn: String,
    /// What went wrong (never the secret's value).
    pub reason: String,
}

/// The `SecretString` of secret `arn`.
pub async fn secret_string(
    secrets: &aws_sdk_secretsmanager::Client,
    arn: &str,
) -> Result<String, SecretError> {
    let err = |reason: String| SecretError {
        arn: arn.to_string(),
        reason,
    };
    let out = tokio::time::timeout(
        SECRET_TIMEOUT,
        secrets.get_secret_value().secret_id(arn).send(),
    )
    .await
    .map_err(|_| {
        err(format!(
            "Secrets Manager did not answer within {} s",
            SECRET_TIMEOUT.as_secs()
        ))
    })?
    .map_err(|e| {
        err(format!(
            "GetSecretValue failed: {}",
            aws_sdk_secretsmanager::error::DisplayErrorContext(&e)
        ))
    })?;
    out.secret_string()
        .map(str::to_string)
        .ok_or_else(|| err("has no SecretString (binary secrets are not supported)".into()))
}

/// The credential inside a secret string: the string itself (trimmed), or,
/// when it is a JSON object, the first of `fields` that holds a string.
/// Errors never quote the secret (serde's message can; only the position
/// is given).
pub fn credential_in(secret: &str, fields: &[&str]) -> Result<String, String> {
    let t = secret.trim();
    if !t.starts_with('{') {
        return Ok(t.to_string());
    }
    let v: serde_json::Value = serde_json::from_str(t).map_err(|e| {
        format!(
            "looks like JSON but does not parse (line {}, column {})",
            e.line(),
            e.column()
        )
    })?;
    let found = fields
        .iter()
        .find_map(|k| v.get(k).and_then(serde_json::Value::as_str));
    match found {
        Some(value) => Ok(value.trim().to_string()),
        None => {
            let names: Vec<String> = fields.iter().map(|f| format!("`{f}`")).collect();
            Err(format!(
                "is JSON without a string {} field",
                names.join(" or ")
            ))
        }
    }
}

type Build<T> = Box<dyn Fn(&str) -> Result<T, String> + Send + Sync>;

/// A value built from a credential: given at start, or built from a secret
/// on first use and kept for the container's life.
pub struct SecretBacked<T> {
    cell: OnceCell<T>,
    source: Option<(aws_sdk_secretsmanager::Client, String, Build<T>)>,
}

impl<T: std::fmt::Debug> std::fmt::Debug for SecretBacked<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretBacked")
            .field("value", &self.cell.get())
            .field("secret", &self.source.as_ref().map(|s| &s.1))
            .finish()
    }
}

impl<T> SecretBacked<T> {
    /// A value that is ready (credential from the environment, tests).
    pub fn ready(value: T) -> SecretBacked<T> {
        SecretBacked {
            cell: OnceCell::new_with(Some(value)),
            source: None,
        }
    }

    /// A value `build` makes from secret `arn`'s string on first use.
    /// `build`'s errors must not quote the secret.
    pub fn from_secret(
        secrets: aws_sdk_secretsmanager::Client,
        arn: impl Into<String>,
        build: impl Fn(&str) -> Result<T, String> + Send + Sync + 'static,
    ) -> SecretBacked<T> {
        SecretBacked {
            cell: OnceCell::new(),
            source: Some((secrets, arn.into(), Box::new(build))),
        }
    }

    /// The value, reading the secret if this is the first use. A failure is
    /// not remembered: the next call tries again.
    pub async fn get(&self) -> Result<&T, SecretError> {
        self.cell
            .get_or_try_init(|| async {
                let Some((secrets, arn, build)) = &self.source else {
                    return Err(SecretError {
                        arn: String::new(),
                        reason: "no secret configured".into(),
                    });
                };
                let s = secret_string(secrets, arn).await?;
                let v = build(&s).map_err(|reason| SecretError {
                    arn: arn.clone(),
                    reason,
                })?;
                tracing::info!(secret = %arn, "Read a credential from Secrets Manager.");
                Ok(v)
            })
            .await
    }
}
