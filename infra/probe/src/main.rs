//! `anvil-probe`: one HTTP GET against the local `anvil serve`, for container health checks.
//!
//! The image is `FROM scratch` (no shell, no curl), so `HEALTHCHECK CMD` and compose/k8s `exec` probes need
//! a binary of their own. This one is standard library only and exits 0 when the answer is 2xx, 1 otherwise
//! (connection refused, timeout, 503, ...), printing the status line and the body (the health JSON names
//! the failing dependency).
//!
//! ```text
//! anvil-probe                      GET /health/live   on the address of ANVIL_BIND (default 127.0.0.1:8080)
//! anvil-probe /health/ready        GET that path on the same address
//! anvil-probe http://10.0.0.5:8080/health/ready
//! ```
//! An unspecified bind address (0.0.0.0 or [::]) is probed on loopback. The whole exchange is bounded by
//! ANVIL_PROBE_TIMEOUT_SECS (default 3).

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, ToSocketAddrs};
use std::process::ExitCode;
use std::time::{Duration, Instant};

const DEFAULT_BIND: &str = "127.0.0.1:8080";
const MAX_RESPONSE: u64 = 64 * 1024;

struct Target {
    host: String,
    addr: SocketAddr,
    path: String,
}

fn loopback_if_unspecified(mut addr: SocketAddr) -> SocketAddr {
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr.ip() {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
        });
    }
    addr
}

fn resolve(hostport: &str) -> Result<SocketAddr, String> {
    let addr = hostport
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {hostport}: {e}"))?
        .next()
        .ok_or_else(|| format!("{hostport} resolves to no address"))?;
    Ok(loopback_if_unspecified(addr))
}

fn target(arg: Option<String>) -> Result<Target, String> {
    let arg = arg.unwrap_or_else(|| "/health/live".into());
    if let Some(rest) = arg.strip_prefix("http://") {
        let (hostport, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let hostport = if hostport.contains(':') && !hostport.ends_with(']') {
            hostport.to_string()
        } else {
            format!("{hostport}:80")
        };
        return Ok(Target { addr: resolve(&hostport)?, host: hostport, path: path.into() });
    }
    if !arg.starts_with('/') {
        return Err(format!("expected a path (/health/ready) or an http:// URL, not `{arg}`"));
    }
    let bind = std::env::var("ANVIL_BIND").ok().filter(|b| !b.trim().is_empty());
    let bind = bind.as_deref().unwrap_or(DEFAULT_BIND).trim();
    let addr = resolve(bind)?;
    Ok(Target { host: addr.to_string(), addr, path: arg })
}

fn get(t: &Target, timeout: Duration) -> Result<(u16, String), String> {
    let deadline = Instant::now() + timeout;
    let left = || deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(1));
    let mut s =
        TcpStream::connect_timeout(&t.addr, left()).map_err(|e| format!("connect {}: {e}", t.addr))?;
    s.set_write_timeout(Some(left())).map_err(|e| e.to_string())?;
    let req = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: anvil-probe\r\nAccept: application/json\r\n\
         Connection: close\r\n\r\n",
        t.path, t.host
    );
    s.write_all(req.as_bytes()).map_err(|e| format!("send: {e}"))?;
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    let mut limited = s.take(MAX_RESPONSE);
    loop {
        limited.get_mut().set_read_timeout(Some(left())).map_err(|e| e.to_string())?;
        match limited.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(e) => return Err(format!("read: {e}")),
        }
    }
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status_line = head.lines().next().unwrap_or("");
    let code = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse::<u16>().ok())
        .ok_or_else(|| format!("not an HTTP answer: {status_line:?}"))?;
    // Health bodies are small JSON documents; chunked framing (if any) is left visible, it is only printed.
    Ok((code, format!("{status_line}\n{}", body.trim())))
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let arg = args.next();
    if matches!(arg.as_deref(), Some("-h" | "--help")) || args.next().is_some() {
        eprintln!("usage: anvil-probe [/path | http://host:port/path]   (exit 0 on 2xx)");
        return ExitCode::from(2);
    }
    let timeout = std::env::var("ANVIL_PROBE_TIMEOUT_SECS")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .map_or(Duration::from_secs(3), Duration::from_secs);
    let t = match target(arg) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("anvil-probe: {e}");
            return ExitCode::from(2);
        }
    };
    match get(&t, timeout) {
        Ok((code, text)) => {
            println!("{text}");
            if (200..300).contains(&code) { ExitCode::SUCCESS } else { ExitCode::FAILURE }
        }
        Err(e) => {
            println!("anvil-probe: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unspecified_bind_address_is_probed_on_loopback() {
        let a = loopback_if_unspecified("0.0.0.0:8080".parse().unwrap_or_else(|_| unreachable!()));
        assert_eq!(a.to_string(), "127.0.0.1:8080");
        let b = loopback_if_unspecified("[::]:9000".parse().unwrap_or_else(|_| unreachable!()));
        assert_eq!(b.to_string(), "[::1]:9000");
    }

    #[test]
    fn a_url_names_its_own_address_and_path() {
        let t = target(Some("http://127.0.0.1:9/health/ready".into())).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(t.addr.to_string(), "127.0.0.1:9");
        assert_eq!(t.path, "/health/ready");
    }

    #[test]
    fn anything_else_is_a_usage_error() {
        assert!(target(Some("health/ready".into())).is_err());
    }

    #[test]
    fn a_2xx_answer_is_healthy_and_a_503_is_not() {
        use std::net::TcpListener;
        for (status, want) in [("200 OK", 200u16), ("503 Service Unavailable", 503)] {
            let l = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
            let addr = l.local_addr().unwrap_or_else(|e| panic!("{e}"));
            let srv = std::thread::spawn(move || {
                let (mut c, _) = l.accept().unwrap_or_else(|e| panic!("{e}"));
                let mut buf = [0u8; 1024];
                let _ = c.read(&mut buf);
                let body = r#"{"status":"x"}"#;
                let _ = write!(c, "HTTP/1.1 {status}\r\ncontent-length: {}\r\n\r\n{body}", body.len());
            });
            let t = Target { host: addr.to_string(), addr, path: "/health/ready".into() };
            let (code, text) = get(&t, Duration::from_secs(3)).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(code, want);
            assert!(text.ends_with(r#"{"status":"x"}"#), "{text}");
            let _ = srv.join();
        }
    }
}
