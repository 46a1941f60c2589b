//! The `mcp-smoke` check (connect, list tools, call `ping` twice), shared by the binary and the
//! tests. A client: no part of the server.

use std::{fmt, time::Duration};

use anyhow::{Context, bail};
use rmcp::{
    RoleClient,
    model::{CallToolRequestParams, ClientConfig, Implementation, ProtocolVersion},
    service::{ClientLifecycleMode, ClientServiceExt, RunningService},
    transport::{
        StreamableHttpClientTransport, streamable_http_client::StreamableHttpClientTransportConfig,
    },
};

/// Which protocol era the client speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Era {
    /// `initialize` handshake, protocol 2025-11-25 (what most clients speak today).
    Legacy,
    /// No handshake: `server/discover` then per-request metadata, protocol 2026-07-28.
    Modern,
}

impl fmt::Display for Era {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Era::Legacy => "legacy (initialize, 2025-11-25)",
            Era::Modern => "modern (server/discover, 2026-07-28)",
        })
    }
}

pub type Client = RunningService<RoleClient, ClientConfig>;

/// Connects to `url` in the given era; `bearer` is sent as `Authorization: Bearer ...`.
pub async fn connect(url: &str, era: Era, bearer: Option<&str>) -> anyhow::Result<Client> {
    // Fails only when another provider is already installed, which is as good.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .context("building the HTTP client")?;
    let mut config = StreamableHttpClientTransportConfig::with_uri(url.to_owned());
    if let Some(token) = bearer {
        config = config.auth_header(token.to_owned());
    }
    let transport = StreamableHttpClientTransport::with_client(http, config);
    let info = ClientConfig::new(
        Default::default(),
        Implementation::new("mcp-smoke", env!("CARGO_PKG_VERSION")),
    );
    let lifecycle = match era {
        Era::Legacy => ClientLifecycleMode::Initialize,
        Era::Modern => ClientLifecycleMode::Discover {
            preferred_versions: vec![ProtocolVersion::V_2026_07_28],
        },
    };
    info.serve_with_lifecycle(transport, lifecycle)
        .await
        .with_context(|| format!("connecting to {url} ({era})"))
}

/// Lists the tools and calls `ping` twice, writing what it got; an error on anything unexpected.
pub async fn run(
    url: &str,
    era: Era,
    bearer: Option<&str>,
    out: &mut impl std::io::Write,
) -> anyhow::Result<()> {
    let client = connect(url, era, bearer).await?;
    let server = client.peer_info().and_then(|i| i.server_info.clone());
    writeln!(out, "connected to {url} as {era}")?;
    if let Some(server) = server {
        writeln!(out, "server: {} {}", server.name, server.version)?;
    }
    let tools = client.list_all_tools().await.context("tools/list")?;
    writeln!(out, "tools ({}):", tools.len())?;
    for tool in &tools {
        writeln!(
            out,
            "  - {}: {}",
            tool.name,
            tool.description.as_deref().unwrap_or("")
        )?;
    }
    if !tools.iter().any(|t| t.name == "ping") {
        bail!("the server does not offer a `ping` tool");
    }
    for n in 1..=2 {
        let result = client
            .call_tool(CallToolRequestParams::new("ping"))
            .await
            .with_context(|| format!("tools/call ping #{n}"))?;
        let text = result
            .content
            .iter()
            .find_map(|c| c.as_text().map(|t| t.text.clone()))
            .unwrap_or_default();
        if result.is_error == Some(true) || !text.starts_with("pong!") {
            bail!("ping #{n} did not pong: {text:?}");
        }
        writeln!(out, "ping #{n}: {text}")?;
    }
    client.cancel().await.context("closing the client")?;
    Ok(())
}
