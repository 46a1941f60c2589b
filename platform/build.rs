//! Records the git commit for the `mcp_server_build_info` metric. `GIT_SHA` (e.g. a Docker build
//! argument, where there is no .git) wins over asking git.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=GIT_SHA");
    let sha = std::env::var("GIT_SHA")
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| {
            let out = Command::new("git")
                .args(["rev-parse", "--short=12", "HEAD"])
                .output()
                .ok()?;
            out.status
                .success()
                .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
        });
    // logs/HEAD changes on every commit and checkout.
    if let Ok(head) = Command::new("git")
        .args(["rev-parse", "--git-path", "logs/HEAD"])
        .output()
    {
        let path = String::from_utf8_lossy(&head.stdout).trim().to_owned();
        if !path.is_empty() {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    println!(
        "cargo:rustc-env=MCP_PLATFORM_GIT_SHA={}",
        sha.unwrap_or_else(|| "unknown".into())
    );
}
