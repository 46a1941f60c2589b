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
