//! The issuer's signing keys: a JWKS file read at start-up, or a JWKS URL fetched and cached
//! (refreshed in the background when stale, at once for an unknown key id, one refresh at a time).

use std::{
    collections::HashMap,
    path::Path,
    sync::Arc,
    time::{Duration, Instant},
};

use jsonwebtoken::{DecodingKey, jwk::JwkSet};
use tokio::sync::{Mutex, RwLock};

use super::Authenticator;

/// Cached JWKS is refreshed after this long...
pub(super) const JWKS_TTL: Duration = Duration::from_secs(600);
/// ...or on an unknown `kid`, but not more often than this.
const JWKS_MIN_REFRESH: Duration = Duration::from_secs(10);
pub(super) const JWKS_FETCH_TIMEOUT: Duration = Duration::from_secs(5);

pub(super) enum Keys {
    Static(HashMap<String, DecodingKey>),
    Remote {
        url: String,
        client: reqwest::Client,
        cache: RwLock<Cache>,
        refreshing: Mutex<()>,
    },
}

#[derive(Default)]
pub(super) struct Cache {
    pub(super) keys: HashMap<String, DecodingKey>,
    pub(super) fetched: Option<Instant>,
    pub(super) attempted: Option<Instant>,
}

impl Authenticator {
    pub(super) async fn key(self: &Arc<Self>, kid: &str) -> Option<DecodingKey> {
        let cache = match &self.keys {
            Keys::Static(keys) => return keys.get(kid).cloned(),
            Keys::Remote { cache, .. } => cache,
        };
        {
            let cache = cache.read().await;
            if let Some(key) = cache.keys.get(kid) {
                // A known key serves at once, even when stale: a slow or unreachable identity
                // provider must not hold requests. The refresh runs beside them (a key the
                // provider has withdrawn stops working once a refresh succeeds).
                let stale = cache.fetched.is_none_or(|t| t.elapsed() >= JWKS_TTL);
                let tried = cache
                    .attempted
                    .is_some_and(|t| t.elapsed() < JWKS_MIN_REFRESH);
                if stale && !tried {
                    let auth = self.clone();
                    tokio::spawn(async move { auth.refresh_unless_running(false).await });
                }
                return Some(key.clone());
            }
        }
        // An unknown key may be new: this request waits for the refresh.
        self.refresh_unless_running(true).await;
        cache.read().await.keys.get(kid).cloned()
    }

    /// One refresh at a time: when one is running, the caller waits for it and uses its result
    /// (`wait`), or leaves it to finish alone.
    async fn refresh_unless_running(&self, wait: bool) {
        let Keys::Remote { refreshing, .. } = &self.keys else {
            return;
        };
        let _one = match refreshing.try_lock() {
            Ok(guard) => guard,
            Err(_) if wait => refreshing.lock().await,
            Err(_) => return,
        };
        if let Err(err) = self.refresh(false).await {
            tracing::warn!(error = %err, "JWKS refresh failed");
        }
    }

    pub(super) async fn refresh(&self, force: bool) -> Result<(), String> {
        let Keys::Remote {
            url, client, cache, ..
        } = &self.keys
        else {
            return Ok(());
        };
        // Refreshes asked for by requests (unknown kid, stale keys) are rate-limited.
        if !force {
            if cache
                .read()
                .await
                .attempted
                .is_some_and(|t| t.elapsed() < JWKS_MIN_REFRESH)
            {
                return Ok(());
            }
            cache.write().await.attempted = Some(Instant::now());
        }
        let set: JwkSet = async {
            let response = client.get(url).send().await?.error_for_status()?;
            response.json().await
        }
        .await
        .map_err(|e| format!("GET {url}: {e}"))?;
        let keys = decoding_keys(&set)?;
        tracing::info!(keys = keys.len(), "JWKS refreshed");
        let mut cache = cache.write().await;
        cache.keys = keys;
        cache.fetched = Some(Instant::now());
        Ok(())
    }
}

pub(super) fn read_jwks_file(path: &Path) -> Result<HashMap<String, DecodingKey>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("auth.jwks_file {}: {e}", path.display()))?;
    let set: JwkSet = serde_json::from_str(&text)
        .map_err(|e| format!("auth.jwks_file {}: {e}", path.display()))?;
    decoding_keys(&set)
}

fn decoding_keys(set: &JwkSet) -> Result<HashMap<String, DecodingKey>, String> {
    let mut keys = HashMap::new();
    for jwk in &set.keys {
        let Some(kid) = &jwk.common.key_id else {
            continue;
        };
        match DecodingKey::from_jwk(jwk) {
            Ok(key) => {
                keys.insert(kid.clone(), key);
            }
            Err(err) => tracing::warn!(kid, error = %err, "unusable key in JWKS"),
        }
    }
    if keys.is_empty() {
        return Err("the JWKS holds no usable key with a kid".into());
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::{super::Authenticator, *};

    /// A known key keeps working while its refresh hangs: requests never wait on a stale cache.
    #[tokio::test]
    async fn a_stale_known_key_serves_while_the_provider_hangs() {
        // Accepts connections and never answers.
        let hung = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/jwks", hung.local_addr().unwrap());
        let held = tokio::spawn(async move {
            let mut open = Vec::new();
            while let Ok((conn, _)) = hung.accept().await {
                open.push(conn);
            }
        });
        let long_ago = Instant::now().checked_sub(JWKS_TTL * 2);
        let auth = Arc::new(Authenticator {
            resource: "https://mcp.example.com/mcp".into(),
            issuer: "https://idp.example.com".into(),
            required_scopes: Vec::new(),
            metadata_url: String::new(),
            keys: Keys::Remote {
                url,
                client: crate::http_client_builder()
                    .timeout(JWKS_FETCH_TIMEOUT)
                    .build()
                    .unwrap(),
                cache: RwLock::new(Cache {
                    keys: HashMap::from([("k1".to_owned(), DecodingKey::from_secret(b"k1"))]),
                    fetched: long_ago,
                    attempted: None,
                }),
                refreshing: Mutex::new(()),
            },
        });
        // Well under the fetch timeout (which a waiting request would sit out).
        let served = tokio::time::timeout(JWKS_FETCH_TIMEOUT / 5, auth.key("k1")).await;
        assert!(
            matches!(served, Ok(Some(_))),
            "a stale key waited for the refresh"
        );
        held.abort();
    }
}
