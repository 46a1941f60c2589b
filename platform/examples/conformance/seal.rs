//! The sealed `requestState` of the multi round-trip fixtures (`input_required`): the state comes
//! back from the client, so it is sealed (HMAC, rmcp's `RequestStateCodec`), bound to the tool it
//! was issued for and short-lived.

use std::time::Duration;

use rmcp::{
    ErrorData,
    model::{RequestStateCodec, SealOptions},
};
use serde::{Deserialize, Serialize};

/// How long a client has to answer before the sealed state expires.
const STATE_TTL: Duration = Duration::from_secs(300);

/// What the server remembers between rounds: only which round comes next.
#[derive(Serialize, Deserialize)]
struct Progress {
    round: u8,
}

/// Seals and opens `requestState`.
pub struct StateSeal(RequestStateCodec);

impl StateSeal {
    /// A random key per process: enough for one conformance server. Replicas of a real service
    /// must share the key (from a secret store) so that any of them can open the state.
    pub fn random() -> Self {
        let key: Vec<u8> = (0..2)
            .flat_map(|_| uuid::Uuid::new_v4().into_bytes())
            .collect();
        Self(RequestStateCodec::try_new(key).expect("32 random bytes are a long enough key"))
    }

    pub fn seal(&self, issued_for: &str, round: u8) -> Result<String, ErrorData> {
        let options = SealOptions::new()
            .ttl(STATE_TTL)
            .associated_data(issued_for.as_bytes());
        self.0
            .seal_json_with(&Progress { round }, &options)
            .map_err(|e| ErrorData::internal_error(format!("cannot seal requestState: {e}"), None))
    }

    /// The round a retry is in: 0 without state. Forged, altered, expired or foreign state is one
    /// error for the client (the codec's detail is for our logs only).
    pub fn round(&self, issued_for: &str, state: Option<&str>) -> Result<u8, ErrorData> {
        let Some(state) = state else { return Ok(0) };
        match self
            .0
            .open_json_with::<Progress>(state, issued_for.as_bytes())
        {
            Ok(progress) => Ok(progress.round),
            Err(err) => {
                tracing::info!(error = %err, issued_for, "rejected requestState");
                Err(ErrorData::invalid_params(
                    "requestState is invalid or expired; start the call again without it",
                    None,
                ))
            }
        }
    }
}
