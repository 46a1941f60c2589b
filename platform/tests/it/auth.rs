//! The OAuth resource server: tokens minted here with a test key pair, checked by the real
//! middleware over real HTTP.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{SystemTime, UNIX_EPOCH},
};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use crate::helpers::{LEGACY, TestServer, assert_jsonrpc_error, post, request};

const RESOURCE: &str = "https://mcp.test.example/mcp";
const ISSUER: &str = "https://issuer.test.example";
const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

fn key(name: &str) -> EncodingKey {
    let pem = std::fs::read(format!("{FIXTURES}/test-{name}-key.pem")).unwrap();
    EncodingKey::from_rsa_pem(&pem).unwrap()
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

pub(crate) fn claims() -> Value {
    json!({ "sub": "user-42", "iss": ISSUER, "aud": RESOURCE, "exp": now() + 300, "iat": now(), "scope": "mcp:call other" })
}

fn token_with(claims: &Value, kid: &str, signer: &str) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid.into());
    jsonwebtoken::encode(&header, claims, &key(signer)).unwrap()
}

pub(crate) fn token(claims: &Value) -> String {
    token_with(claims, "test-key-1", "signing")
}

pub(crate) async fn start() -> TestServer {
    TestServer::start(&[
        ("APP__AUTH__MODE", "jwt"),
        ("APP__AUTH__RESOURCE", RESOURCE),
        ("APP__AUTH__ISSUER", ISSUER),
        (
            "APP__AUTH__JWKS_FILE",
            &format!("{FIXTURES}/test-jwks.json"),
        ),
        ("APP__AUTH__REQUIRED_SCOPES", "mcp:call"),
    ])
    .await
}

async fn whoami(
    server: &TestServer,
    bearer: Option<&str>,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let auth = bearer.map(|t| format!("Bearer {t}"));
    let mut headers = vec![("mcp-protocol-version", LEGACY)];
    if let Some(auth) = &auth {
        headers.push(("authorization", auth.as_str()));
    }
    post(
        server,
        request(1, "tools/call", json!({"name": "whoami", "arguments": {}})),
        &headers,
    )
    .await
}

fn challenge(headers: &reqwest::header::HeaderMap) -> String {
    headers
        .get("www-authenticate")
        .expect("WWW-Authenticate")
        .to_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn a_valid_token_reaches_the_tool_as_a_principal() {
    let server = start().await;
    let (status, _, body) = whoami(&server, Some(&token(&claims()))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["result"]["content"][0]["text"],
        "subject=user-42 scopes=mcp:call other"
    );
    server.stop().await;
}

#[tokio::test]
async fn bad_tokens_are_refused_with_a_challenge() {
    let server = start().await;
    let mut expired = claims();
    expired["exp"] = json!(now() - 120);
    let mut not_yet = claims();
    not_yet["nbf"] = json!(now() + 600);
    let mut wrong_aud = claims();
    wrong_aud["aud"] = json!("https://other.example/mcp");
    let mut wrong_iss = claims();
    wrong_iss["iss"] = json!("https://evil.example");
    let mut no_sub = claims();
    no_sub.as_object_mut().unwrap().remove("sub");
    // alg "none": header {"alg":"none","kid":"test-key-1"}, no signature.
    let unsigned = {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!(
            "{}.{}.",
            b64.encode(br#"{"alg":"none","typ":"JWT","kid":"test-key-1"}"#),
            b64.encode(claims().to_string())
        )
    };
    let cases = [
        ("expired", token(&expired), "expired"),
        ("not valid yet", token(&not_yet), "nbf"),
        ("wrong audience", token(&wrong_aud), "aud"),
        ("wrong issuer", token(&wrong_iss), "issuer"),
        ("no subject", token(&no_sub), "sub"),
        (
            "bad signature",
            token_with(&claims(), "test-key-1", "other"),
            "signature",
        ),
        (
            "unknown kid",
            token_with(&claims(), "no-such-key", "signing"),
            "unknown signing key",
        ),
        ("alg none", unsigned, "malformed token"),
        ("garbage", "not-a-jwt".into(), "malformed token"),
    ];
    for (name, token, hint) in cases {
        let (status, headers, body) = whoami(&server, Some(&token)).await;
        assert_eq!(status, 401, "{name}: {body}");
        assert_jsonrpc_error(&body, -32600, hint);
        let challenge = challenge(&headers);
        assert!(challenge.starts_with("Bearer "), "{name}: {challenge}");
        assert!(
            challenge.contains("error=\"invalid_token\""),
            "{name}: {challenge}"
        );
        assert!(
            challenge.contains("resource_metadata=\"https://mcp.test.example/.well-known/oauth-protected-resource/mcp\""),
            "{name}: {challenge}"
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn no_token_and_missing_scope() {
    let server = start().await;
    let (status, headers, body) = whoami(&server, None).await;
    assert_eq!(status, 401, "{body}");
    let c = challenge(&headers);
    assert!(
        !c.contains("error="),
        "no error code when no token was sent: {c}"
    );
    assert!(c.contains("scope=\"mcp:call\""), "{c}");

    let mut narrow = claims();
    narrow["scope"] = json!("other");
    let (status, headers, body) = whoami(&server, Some(&token(&narrow))).await;
    assert_eq!(status, 403, "{body}");
    let c = challenge(&headers);
    assert!(
        c.contains("error=\"insufficient_scope\"") && c.contains("scope=\"mcp:call\""),
        "{c}"
    );
    assert_jsonrpc_error(&body, -32600, "mcp:call");
    server.stop().await;
}

#[tokio::test]
async fn metadata_health_and_405_stay_open() {
    let server = start().await;
    let client = crate::helpers::client();
    for path in [
        "/.well-known/oauth-protected-resource/mcp",
        "/.well-known/oauth-protected-resource",
    ] {
        let doc: Value = client
            .get(format!("{}{path}", server.base()))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(doc["resource"], RESOURCE, "{path}");
        assert_eq!(doc["authorization_servers"], json!([ISSUER]));
        assert_eq!(doc["scopes_supported"], json!(["mcp:call"]));
        assert_eq!(doc["bearer_methods_supported"], json!(["header"]));
    }
    for path in ["/livez", "/readyz"] {
        assert_eq!(
            client
                .get(format!("{}{path}", server.base()))
                .send()
                .await
                .unwrap()
                .status(),
            200
        );
    }
    // GET and DELETE are not served whoever asks: 405, not a challenge for a token.
    for method in [reqwest::Method::GET, reqwest::Method::DELETE] {
        let response = client
            .request(method.clone(), server.url())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 405, "{method}");
        assert_eq!(response.headers()["allow"], "POST", "{method}");
    }
    server.stop().await;
}

#[tokio::test]
async fn without_auth_there_is_no_metadata_and_calls_are_anonymous() {
    let server = TestServer::start(&[]).await;
    let resp = crate::helpers::client()
        .get(format!(
            "{}/.well-known/oauth-protected-resource",
            server.base()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    let (_, _, body) = whoami(&server, None).await;
    assert_eq!(
        body["result"]["content"][0]["text"],
        "anonymous (auth is off)"
    );
    server.stop().await;
}

/// A JWKS endpoint whose key set the test can change, counting fetches.
async fn jwks_server(jwks: Arc<Mutex<Value>>, fetches: Arc<AtomicUsize>) -> String {
    let app = axum::Router::new().route(
        "/jwks.json",
        axum::routing::get(move || {
            let jwks = jwks.clone();
            let fetches = fetches.clone();
            async move {
                fetches.fetch_add(1, Ordering::SeqCst);
                axum::Json(jwks.lock().unwrap().clone())
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/jwks.json", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

#[tokio::test]
async fn jwks_url_is_cached_and_refreshed_on_an_unknown_kid() {
    let file: Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{FIXTURES}/test-jwks.json")).unwrap(),
    )
    .unwrap();
    let jwks = Arc::new(Mutex::new(file.clone()));
    let fetches = Arc::new(AtomicUsize::new(0));
    let url = jwks_server(jwks.clone(), fetches.clone()).await;
    let server = TestServer::start(&[
        ("APP__AUTH__MODE", "jwt"),
        ("APP__AUTH__RESOURCE", RESOURCE),
        ("APP__AUTH__ISSUER", ISSUER),
        ("APP__AUTH__JWKS_URL", &url),
    ])
    .await;
    assert_eq!(fetches.load(Ordering::SeqCst), 1, "fetched at start-up");
    for _ in 0..5 {
        assert_eq!(whoami(&server, Some(&token(&claims()))).await.0, 200);
    }
    assert_eq!(fetches.load(Ordering::SeqCst), 1, "served from the cache");

    // The issuer rotates: the same public key now also appears under a new kid.
    let mut rotated = file.clone();
    let mut new_key = rotated["keys"][0].clone();
    new_key["kid"] = json!("test-key-2");
    rotated["keys"].as_array_mut().unwrap().push(new_key);
    *jwks.lock().unwrap() = rotated;
    let (status, _, body) = whoami(
        &server,
        Some(&token_with(&claims(), "test-key-2", "signing")),
    )
    .await;
    assert_eq!(status, 200, "unknown kid triggers a refresh: {body}");
    assert_eq!(fetches.load(Ordering::SeqCst), 2);

    // Unknown kids cannot make the server hammer the issuer.
    for _ in 0..5 {
        assert_eq!(
            whoami(&server, Some(&token_with(&claims(), "bogus", "signing")))
                .await
                .0,
            401
        );
    }
    assert_eq!(
        fetches.load(Ordering::SeqCst),
        2,
        "refreshes are rate-limited"
    );
    server.stop().await;
}
