//! A stateless MCP (Model Context Protocol) service: Streamable HTTP on axum + rmcp, made to run
//! behind an ALB on ECS Fargate and observable from the first request.
//!
//! Layers, data flowing one way: [`config`] -> [`telemetry`] -> [`http`] -> [`mcp`] -> [`tools`].
//! `main.rs` only wires them together.

pub mod app;
pub mod config;
pub mod http;
pub mod jsonrpc;
pub mod mcp;
pub mod smoke;
pub mod telemetry;
pub mod tools;

/// Installs TLS for outbound HTTPS (rustls on the ring provider): once, before the first client
/// is built by us or by a dependency (the OTLP exporter builds its own).
pub fn install_tls_provider() {
    static PROVIDER: std::sync::Once = std::sync::Once::new();
    PROVIDER.call_once(|| {
        // Fails only when another provider is already installed, which is as good.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// The builder for every outbound HTTP client of ours (ECS metadata, JWKS, the smoke client).
pub fn http_client_builder() -> reqwest::ClientBuilder {
    install_tls_provider();
    reqwest::Client::builder()
}
