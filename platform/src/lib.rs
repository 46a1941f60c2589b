//! The platform of a stateless MCP (Model Context Protocol) service: Streamable HTTP on axum +
//! rmcp, made to run behind an ALB on ECS Fargate and observable from the first request. A
//! service depends on it, hands it its tools, and never edits it.
//!
//! Modules, each using only those before it (a test checks it):
//! [`identity`], [`context`], [`jsonrpc`] (what every layer may read) -> [`config`] ->
//! [`telemetry`] -> [`http`] (the layers of the stack, listeners, lifecycle, auth) and [`client`]
//! (the HTTP client for tools' downstream calls) -> [`mcp`]
//! (rmcp engine, ingress, instrumentation) and [`tasks`] (long-running tool calls, their store)
//! -> [`stack`] (the layers in order) -> [`app`]
//! (start-up).

pub mod app;
pub mod client;
pub mod config;
pub mod context;
pub mod http;
pub mod identity;
pub mod jsonrpc;
pub mod mcp;
pub mod stack;
pub mod tasks;
pub mod telemetry;

pub use app::{App, Launch};
/// What a tool gets with `Extension<RequestParts>`: the HTTP request's head (its headers, and
/// extensions holding the [`RequestFacts`]).
pub use axum::http::request::Parts as RequestParts;
pub use client::{ClientOptions, HttpClient, HttpError, http_client};
pub use config::{Secret, Settings};
pub use context::{Principal, RequestFacts};
pub use identity::Service;
pub use mcp::{Caller, McpServer};
/// The allocator a service installs (`#[global_allocator]`): many small, short-lived
/// allocations per request (JSON trees, headers, futures) cost less in mimalloc than in the
/// system allocator.
pub use mimalloc::MiMalloc as Allocator;
/// For tools' downstream calls through [`HttpClient`], without a dependency of their own.
pub use reqwest;
/// [`Secret::expose_secret`](secrecy::ExposeSecret::expose_secret) gives a secret's value.
pub use secrecy::ExposeSecret;

/// Makes [`Allocator`] return freed pages to the OS after 100 ms instead of 1 s: with many slow
/// calls in flight the peak memory is then bare rmcp's, for few more page faults (measured in the
/// README's performance section). Harmless when a service installs another allocator.
pub fn return_freed_memory_sooner() {
    /// `mi_option_purge_delay` in `mimalloc.h` (the binding names no constant for it).
    const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
    const PURGE_DELAY_MS: std::ffi::c_long = 100;
    // SAFETY: sets one integer option; mimalloc reads it on each purge decision.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS) };
}

/// Installs TLS for outbound HTTPS (rustls on the ring provider): once, before the first client
/// is built by us or by a dependency (the OTLP exporter builds its own).
pub fn install_tls_provider() {
    static PROVIDER: std::sync::Once = std::sync::Once::new();
    PROVIDER.call_once(|| {
        // Fails only when another provider is already installed, which is as good.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// The builder for every outbound HTTP client of ours (ECS metadata, JWKS, [`client`]).
pub fn http_client_builder() -> reqwest::ClientBuilder {
    install_tls_provider();
    reqwest::Client::builder()
}
