//! Network evidence: does Azure's instance metadata service (IMDS) or its
//! WireServer answer from this VM?
//!
//! Both live at link-local/well-known addresses that the Azure host
//! intercepts; on an on-premises Hyper-V guest nothing answers there. The
//! probes speak raw HTTP/1.0 over a plain `TcpStream` (no proxy: IMDS must
//! be reached directly), run concurrently, and share one deadline, so the
//! whole network check never takes longer than [`DEFAULT_BUDGET`].
//!
//! References: IMDS request form (`Metadata: true` header, `api-version`)
//! from Microsoft's IMDS documentation; Azure Stack Hub reports
//! `"azEnvironment": "AzureStack"` where public Azure reports
//! `AzurePublicCloud`
//! (<https://learn.microsoft.com/azure-stack/user/instance-metadata-service>).

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

/// Azure IMDS endpoint.
pub const IMDS_ADDR: SocketAddr =
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(169, 254, 169, 254)), 80);
/// Azure WireServer endpoint (also announced as DHCP option 245).
pub const WIRESERVER_ADDR: SocketAddr =
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(168, 63, 129, 16)), 80);
/// Time allowed for all network probes together.
pub const DEFAULT_BUDGET: Duration = Duration::from_millis(900);

const IMDS_PATH: &str = "/metadata/instance?api-version=2021-02-01";
const WIRESERVER_PATH: &str = "/?comp=versions";
/// Responses larger than this are cut off; we only need the head and the
/// `azEnvironment` field.
const MAX_RESPONSE: u64 = 256 * 1024;

/// Where the probes go. Tests keep the real addresses and provide them
/// inside a private network namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Targets {
    pub imds: SocketAddr,
    pub wireserver: SocketAddr,
}

impl Default for Targets {
    fn default() -> Self {
        Targets {
            imds: IMDS_ADDR,
            wireserver: WIRESERVER_ADDR,
        }
    }
}

/// What one probe saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeResult {
    /// An HTTP response came back.
    Answered {
        status: u16,
        /// For IMDS: the `compute.azEnvironment` value, if present.
        az_environment: Option<String>,
    },
    /// Nothing usable came back; the text says why (refused, timed out,
    /// unreachable, not HTTP...).
    NoAnswer(String),
}

impl ProbeResult {
    /// An HTTP answer with a 2xx status.
    pub fn ok(&self) -> bool {
        matches!(self, ProbeResult::Answered { status, .. } if (200..300).contains(status))
    }
}

/// Both probes' results.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetEvidence {
    pub imds: ProbeResult,
    pub wireserver: ProbeResult,
}

/// Probes IMDS and WireServer concurrently; returns within `budget`
/// (plus thread start-up), whatever the network does.
pub fn probe(targets: Targets, budget: Duration) -> NetEvidence {
    let deadline = Instant::now() + budget;
    let imds_req = format!(
        "GET {IMDS_PATH} HTTP/1.0\r\nHost: {}\r\nMetadata: true\r\nUser-Agent: lkh-platform\r\n\r\n",
        targets.imds.ip()
    );
    let wire_req = format!(
        "GET {WIRESERVER_PATH} HTTP/1.0\r\nHost: {}\r\nUser-Agent: lkh-platform\r\n\r\n",
        targets.wireserver.ip()
    );
    let wire = thread::Builder::new()
        .name("probe-wireserver".into())
        .spawn(move || http_get(targets.wireserver, &wire_req, deadline));
    let imds = http_get(targets.imds, &imds_req, deadline);
    let wireserver = match wire {
        Ok(handle) => handle
            .join()
            .unwrap_or_else(|_| ProbeResult::NoAnswer("probe thread failed".into())),
        Err(e) => ProbeResult::NoAnswer(format!("cannot start probe thread: {e}")),
    };
    NetEvidence { imds, wireserver }
}

fn remaining(deadline: Instant) -> Option<Duration> {
    let left = deadline.saturating_duration_since(Instant::now());
    (left > Duration::from_millis(1)).then_some(left)
}

/// One bounded HTTP/1.0 GET. The request is sent as given; the response is
/// read until EOF, the size cap or the deadline.
fn http_get(addr: SocketAddr, request: &str, deadline: Instant) -> ProbeResult {
    let Some(left) = remaining(deadline) else {
        return ProbeResult::NoAnswer("no time left".into());
    };
    // connect_timeout is a non-blocking connect followed by poll().
    let mut stream = match TcpStream::connect_timeout(&addr, left) {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
            return ProbeResult::NoAnswer(format!("connect to {addr} timed out"));
        }
        Err(e) => return ProbeResult::NoAnswer(format!("connect to {addr}: {e}")),
    };
    let mut response = Vec::new();
    let result = (|| -> std::io::Result<()> {
        let left = remaining(deadline).ok_or(std::io::ErrorKind::TimedOut)?;
        stream.set_write_timeout(Some(left))?;
        stream.write_all(request.as_bytes())?;
        let mut buf = [0u8; 8192];
        loop {
            let left = remaining(deadline).ok_or(std::io::ErrorKind::TimedOut)?;
            stream.set_read_timeout(Some(left))?;
            let n = stream.read(&mut buf)?;
            if n == 0 {
                return Ok(());
            }
            response.extend_from_slice(&buf[..n]);
            if response.len() as u64 >= MAX_RESPONSE {
                return Ok(());
            }
        }
    })();
    // A server that sent a full head but kept the connection open still
    // answered; judge by what arrived.
    match parse_response(&response) {
        Some(r) => r,
        None => match result {
            Err(e) => ProbeResult::NoAnswer(format!("{addr}: no HTTP response: {e}")),
            Ok(()) => ProbeResult::NoAnswer(format!("{addr}: reply is not HTTP")),
        },
    }
}

/// Parses an HTTP status line and, from the body, `azEnvironment`.
pub fn parse_response(raw: &[u8]) -> Option<ProbeResult> {
    let text = String::from_utf8_lossy(raw);
    let status_line = text.lines().next()?;
    let mut parts = status_line.split_whitespace();
    let version = parts.next()?;
    if !version.starts_with("HTTP/") {
        return None;
    }
    let status: u16 = parts.next()?.parse().ok()?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    Some(ProbeResult::Answered {
        status,
        az_environment: json_string_field(body, "azEnvironment"),
    })
}

/// Finds `"key": "value"` anywhere in a JSON text and returns the value.
/// Enough for one flat string field; escapes in the value are not decoded.
pub fn json_string_field(json: &str, key: &str) -> Option<String> {
    let needle = format!("\"{key}\"");
    let at = json.find(&needle)? + needle.len();
    let rest = json[at..].trim_start().strip_prefix(':')?.trim_start();
    let rest = rest.strip_prefix('"')?;
    let end = rest.find('"')?;
    Some(rest[..end].to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_status_and_az_environment() {
        let raw = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{\"compute\":{\"azEnvironment\" : \"AzureStack\",\"name\":\"x\"}}";
        assert_eq!(
            parse_response(raw),
            Some(ProbeResult::Answered {
                status: 200,
                az_environment: Some("AzureStack".into())
            })
        );
    }

    #[test]
    fn non_http_is_no_answer() {
        assert_eq!(parse_response(b"SSH-2.0-OpenSSH\r\n"), None);
        assert_eq!(parse_response(b""), None);
    }

    #[test]
    fn error_status_is_an_answer_but_not_ok() {
        let r = parse_response(b"HTTP/1.0 400 Bad Request\r\n\r\n").unwrap();
        assert!(!r.ok());
        assert!(matches!(r, ProbeResult::Answered { status: 400, .. }));
    }
}
