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
        // The "listening" line names the bound address.
        let stdout = BufReader::new(child.stdout.take().unwrap());
        for line in stdout.lines() {
            let line: serde_json::Value = serde_json::from_str(&line.unwrap()).unwrap();
            if line["message"] == "listening" {
                return Self {
                    child,
                    url: line["mcp"].as_str().unwrap().to_owned(),
                };
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
