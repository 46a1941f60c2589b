//! Integration tests: the real service (same wiring as `main`) on loopback port 0, driven by
//! rmcp's client and by raw HTTP.

mod helpers;
mod protocol;
mod wire;
