# Release image of the MCP server: a fully static binary (glibc, crt-static) on distroless/static.
# Build for Fargate (x86_64) with `just image`, i.e. docker buildx build --platform linux/amd64 .
# The build command is the one scripts/ use, so the binary the tests run is the one shipped.

# --- dependency layer: rebuilt only when Cargo.toml/Cargo.lock change --------------------------
FROM rust:1.95.0-bookworm AS chef
RUN cargo install cargo-chef --locked --version 0.1.78
WORKDIR /src

FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS builder
ENV CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS="-C target-feature=+crt-static"
COPY --from=planner /src/recipe.json recipe.json
RUN cargo chef cook --release --locked --target x86_64-unknown-linux-gnu --recipe-path recipe.json
COPY . .
# The binary is named after the service's crate; `cargo generate` renames it here. {%- capture identity %}
# The build context has no .git: the commit comes in as an argument (mcp_server_build_info).
ARG GIT_SHA=unknown
RUN GIT_SHA="$GIT_SHA" cargo build --release --locked --target x86_64-unknown-linux-gnu --bin mcp-server

# --- runtime: no shell, no package manager; CA certificates and a nonroot user (65532) ---------
FROM gcr.io/distroless/static-debian12:nonroot
# One path in every image, whatever the service's name, so the ECS health check (infra/ecs.tf) is fixed.
COPY --from=builder /src/target/x86_64-unknown-linux-gnu/release/mcp-server /usr/local/bin/service
# distroless "nonroot"; numeric so any runtime (and the ECS task definition) agrees.
USER 65532:65532
EXPOSE 8080
# No curl in the image: the binary probes its own /livez (exit 0/1).
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 \
    CMD ["/usr/local/bin/service", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/service"]
#{% endcapture %}{{ identity | replace: "mcp-server", project-name }}
