//! `mcp-smoke [URL]`: connect to an MCP server, list its tools, call `ping` twice. Exits non-zero
//! on any failure, so it works as a post-deploy check against the ALB URL.

use std::process::ExitCode;

use clap::Parser;
use mcp_smoke::{self as smoke, Era};

#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// MCP endpoint URL.
    #[arg(
        env = "MCP_SERVER_ENDPOINT",
        default_value = "http://localhost:8080/mcp"
    )]
    url: String,
    /// Protocol era to speak.
    #[arg(long, value_enum, default_value_t = Era::Legacy)]
    era: Era,
    /// Shorthand for `--era modern`.
    #[arg(long, conflicts_with = "era")]
    modern: bool,
    /// Bearer token for a server with auth on.
    #[arg(long, env = "MCP_BEARER_TOKEN", hide_env_values = true)]
    token: Option<String>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let era = if cli.modern { Era::Modern } else { cli.era };
    let mut out = std::io::stdout();
    match smoke::run(&cli.url, era, cli.token.as_deref(), &mut out).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("smoke test failed: {err:#}");
            ExitCode::FAILURE
        }
    }
}
