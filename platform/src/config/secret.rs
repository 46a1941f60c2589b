//! A setting that must never be printed (a tool's API key): placeholder, replaced at merge.

use serde::{Deserialize, Deserializer};

/// A secret setting; `Debug` shows `[redacted]`.
#[derive(Clone, Deserialize)]
pub struct Secret(#[serde(deserialize_with = "string")] String);

fn string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    String::deserialize(d)
}

impl Secret {
    /// The value, for the one place that sends it (a header of a downstream call).
    pub fn expose_secret(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}
