//! Integration tests: the real service (same wiring as `main`) on loopback port 0, driven by
//! rmcp's client and by raw HTTP.

mod auth;
mod fuzz;
mod helpers;
mod limits;
mod protocol;
mod wire;
