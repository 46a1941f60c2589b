//! [`Secret`]: a setting that never prints (an API key, a token, a password).

use std::fmt;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer, de};

/// Ends the message of every error a [`Secret`] raises, so the error path shows no value for it.
pub(super) const SECRET_MARK: &str = "(a secret: its value is not shown)";

/// A secret setting of a tool: read like any other (`[tools]` in the config file, or
/// `APP__TOOLS__...`, which ECS fills from Secrets Manager or SSM, see `infra/README.md`), held
/// by `secrecy` (zeroed when dropped) and never printed: `Debug` shows `[redacted]`, there is no
/// `Display` or `Serialize`, and a configuration error on it names the key, never the value.
/// `expose_secret()` ([`ExposeSecret`], re-exported by the crate) gives the value where it is used.
#[derive(Clone)]
pub struct Secret(SecretString);

impl ExposeSecret<str> for Secret {
    fn expose_secret(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// For tests and settings built in code.
impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self(value.into())
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self(value.into())
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct SecretVisitor;
        impl de::Visitor<'_> for SecretVisitor {
            type Value = Secret;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "a string {SECRET_MARK}")
            }
            fn visit_str<E: de::Error>(self, value: &str) -> Result<Secret, E> {
                self.visit_string(value.to_owned())
            }
            fn visit_string<E: de::Error>(self, value: String) -> Result<Secret, E> {
                // The environment's empty values already read as unset; a file's "" is the same mistake.
                if value.is_empty() {
                    return Err(E::custom(format!("a non-empty string {SECRET_MARK}")));
                }
                Ok(Secret(value.into()))
            }
        }
        d.deserialize_string(SecretVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted_and_the_value_is_exposed_on_request() {
        let secret = Secret::from("sk-live-1234");
        assert_eq!(format!("{secret:?}"), "[redacted]");
        assert_eq!(format!("{:?}", Some(secret.clone())), "Some([redacted])");
        assert_eq!(secret.expose_secret(), "sk-live-1234");
    }
}
