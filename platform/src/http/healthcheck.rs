//! `<service> healthcheck`: the container health check (the runtime image has no curl).

use std::{
    io::{Read, Write},
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream},
    time::{Duration, Instant},
};

use super::LIVEZ_PATH;

/// Whether `GET /livez` on the public listener answers 200 within `budget`.
pub fn probe(listen: SocketAddr, budget: Duration) -> Result<(), String> {
    // A wildcard listen address is reached over loopback.
    let ip = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    let target = SocketAddr::new(ip, listen.port());
    let deadline = Instant::now() + budget;
    let left = || {
        deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1))
    };
    let mut stream = TcpStream::connect_timeout(&target, left())
        .map_err(|e| format!("connect {target}: {e}"))?;
    stream
        .set_write_timeout(Some(left()))
        .map_err(|e| e.to_string())?;
    write!(
        stream,
        "GET {LIVEZ_PATH} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| format!("send: {e}"))?;
    stream
        .set_read_timeout(Some(left()))
        .map_err(|e| e.to_string())?;
    let mut head = [0u8; 32];
    let mut read = 0;
    while read < 12 {
        match stream.read(&mut head[read..]) {
            Ok(0) => break,
            Ok(n) => read += n,
            Err(e) => return Err(format!("read: {e}")),
        }
    }
    let status_line = String::from_utf8_lossy(&head[..read]);
    if status_line.starts_with("HTTP/1.1 200") || status_line.starts_with("HTTP/1.0 200") {
        Ok(())
    } else {
        Err(format!(
            "unexpected answer from {target}{LIVEZ_PATH}: {status_line:?}"
        ))
    }
}
