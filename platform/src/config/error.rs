//! [`ConfigError`]: one line naming the key, the value and what is allowed.

use std::fmt;

use super::{ENV_PREFIX, ENV_SEPARATOR, secret::SECRET_MARK};

/// A configuration mistake, phrased for the operator who has to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Dotted key (`http.addr`); shown with its environment form.
    pub key: String,
    /// The variable to name when it is not the key's `APP__` form (e.g. `RUST_LOG`).
    pub env: Option<String>,
    /// The key itself does not exist (a typo in a variable or file).
    pub unknown_key: bool,
    /// The key holds a [`Secret`](super::Secret): its value is never kept here, nor shown.
    pub secret: bool,
    pub value: Option<String>,
    pub allowed: String,
}

impl ConfigError {
    pub(crate) fn new(
        key: &str,
        value: impl Into<Option<String>>,
        allowed: impl Into<String>,
    ) -> Self {
        Self {
            key: key.to_owned(),
            env: None,
            unknown_key: false,
            secret: false,
            value: value.into(),
            allowed: allowed.into(),
        }
    }

    /// `http.max_body_bytes` -> `APP__HTTP__MAX_BODY_BYTES`
    pub fn env_name(&self) -> String {
        if let Some(env) = &self.env {
            return env.clone();
        }
        let path = self.key.replace('.', ENV_SEPARATOR).to_uppercase();
        format!("{ENV_PREFIX}{ENV_SEPARATOR}{path}")
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let env = self.env_name();
        write!(f, "invalid configuration: {env}")?;
        if !self.key.is_empty() && self.key != env {
            write!(f, " ({})", self.key)?;
        }
        match &self.value {
            _ if self.unknown_key => write!(f, " is not a known key")?,
            _ if self.secret => write!(f, " = <redacted>")?,
            Some(v) => write!(f, " = {v:?}")?,
            None => write!(f, " is missing")?,
        }
        write!(f, ": expected {}", self.allowed)
    }
}

impl std::error::Error for ConfigError {}

/// Turns the `config` crate's error into ours, with the expectation phrased for an operator.
pub(super) fn from_config_error(err: config::ConfigError) -> ConfigError {
    match err {
        config::ConfigError::Type {
            key,
            unexpected,
            expected,
            ..
        } => ConfigError::new(
            &key.unwrap_or_default(),
            // `Unexpected` is not exported; its Display reads `string "value"`.
            Some({
                let shown = unexpected.to_string();
                match shown
                    .strip_prefix("string \"")
                    .and_then(|v| v.strip_suffix('"'))
                {
                    Some(value) => value.to_owned(),
                    None => shown,
                }
            }),
            // Every integer setting is a size, count or duration.
            match expected {
                "an integer" => "a non-negative integer".to_owned(),
                other => other.to_owned(),
            },
        ),
        config::ConfigError::At { error, key, .. } => {
            let mut inner = from_config_error(*error);
            if let Some(key) = key {
                inner.key = match inner.key.as_str() {
                    "" => key,
                    k if k.starts_with(&key) => inner.key,
                    k => format!("{key}.{k}"),
                };
            }
            inner
        }
        config::ConfigError::Message(msg) => message_error(&msg),
        // serde's missing field, with the whole path.
        config::ConfigError::NotFound(key) => {
            ConfigError::new(&key, None, "a value (this key has no default)")
        }
        other => ConfigError::new("", None, other.to_string()),
    }
}

/// serde messages look like "one of json, pretty for key `log.format`" (our enums) or
/// "invalid socket address syntax for key `http.addr`".
fn message_error(msg: &str) -> ConfigError {
    let (body, key) = match msg.rsplit_once(" for key `") {
        Some((body, rest)) => (body, rest.trim_end_matches('`').to_owned()),
        None => (msg, String::new()),
    };
    if let Some(field) = body.strip_prefix("unknown field `") {
        let name = field.split('`').next().unwrap_or_default();
        let full = if key.is_empty() {
            name.to_owned()
        } else {
            format!("{key}.{name}")
        };
        let known = body.split_once(", expected ").map_or("", |(_, k)| k);
        let mut err = ConfigError::new(&full, None, format!("a known key: {known}"));
        err.unknown_key = true;
        return err;
    }
    if body.contains(SECRET_MARK) {
        // Whatever serde put before the expectation ("invalid type: ...") may hold the value.
        let expected = body.rsplit_once(", expected ").map_or(body, |(_, e)| e);
        let mut err = ConfigError::new(&key, None, expected);
        err.secret = true;
        return err;
    }
    let allowed = if body.contains("socket address") {
        "an address like 0.0.0.0:8080".to_owned()
    } else {
        body.to_owned()
    };
    ConfigError::new(&key, None, allowed)
}
