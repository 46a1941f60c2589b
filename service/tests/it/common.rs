//! The service's binary for its tests: started as ECS would, on loopback port 0.

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
};

/// The service's binary, serving until dropped.
pub struct Service {
    child: Child,
    pub url: String,
}

impl Service {
    pub fn start(env: &[(&str, &str)]) -> Self {
        let mut child = Command::new(env!(concat!("CARGO_BIN_EXE_", env!("CARGO_PKG_NAME"))))
            .env_clear()
            .env("APP__HTTP__ADDR", "127.0.0.1:0")
            .env("APP__ADMIN__ADDR", "127.0.0.1:0")
            .env("APP__LOG__FORMAT", "json")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the service");
        let stdout = child.stdout.take().unwrap();
        // Owned at once, so that a failure below still stops (kills and waits for) the child.
        let mut service = Self {
            child,
            url: String::new(),
        };
        // The "listening" line names the bound address.
        for line in BufReader::new(stdout).lines() {
            let line: serde_json::Value = serde_json::from_str(&line.unwrap()).unwrap();
            if line["message"] == "listening" {
                service.url = line["mcp"].as_str().unwrap().to_owned();
                return service;
            }
        }
        panic!("the service did not say where it listens")
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
