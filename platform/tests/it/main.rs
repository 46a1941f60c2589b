//! Integration tests of the platform: its whole stack on loopback port 0 around test-only
//! handlers, driven by rmcp's client and by raw HTTP; its telemetry observed in-process.

mod auth;
mod fuzz;
mod helpers;
mod layers;
mod limits;
mod protocol;
mod tasks;
mod telemetry;
mod validation;
mod wire;
