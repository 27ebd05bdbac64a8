//! The network probes against a real HTTP listener playing Azure's IMDS
//! (and WireServer), inside a network namespace each test creates.
//!
//! The namespace has only `lo`, carrying 169.254.169.254/32 (and
//! 168.63.129.16/32 when a WireServer is wanted), so nothing the binary
//! sends can leave it. The server thread enters the namespace with
//! setns(2); the binary runs there through `ip netns exec`. Needs root (and
//! iproute2, installed when missing); otherwise they skip loudly, or fail
//! under `LKH_VM_REQUIRED`/`CI`.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use common::{code, fixture, stdout};

const IMDS: &str = "169.254.169.254";
const WIRESERVER: &str = "168.63.129.16";

/// Root and `ip` (iproute2, installed when missing by `tests::host`); otherwise a loud skip,
/// a failure under `LKH_VM_REQUIRED`/`CI`.
fn can_run() -> bool {
    match tests::netns::unavailable() {
        None => true,
        Some(why) => {
            tests::host::skip("lkh-platform network-namespace tests", &why);
            false
        }
    }
}

fn ip(args: &[&str]) {
    let o = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        o.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// A private network namespace, deleted on drop.
struct Netns {
    name: String,
}

impl Netns {
    fn new(addrs: &[&str]) -> Netns {
        static N: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "lkh-plat-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        ip(&["netns", "add", &name]);
        let ns = Netns { name };
        ip(&["-n", &ns.name, "link", "set", "lo", "up"]);
        for a in addrs {
            ip(&[
                "-n",
                &ns.name,
                "addr",
                "add",
                &format!("{a}/32"),
                "dev",
                "lo",
            ]);
        }
        ns
    }

    /// Runs `lkh-platform ARGS` inside the namespace.
    fn run(&self, args: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &self.name, common::BIN])
            .args(args)
            .env("LKHELPERS_NO_SYSLOG", "1")
            .output()
            .expect("ip netns exec")
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

/// How the fake service behaves.
#[derive(Clone)]
enum Reply {
    /// Like IMDS: 400 without `Metadata: true`, else 200 with this JSON.
    Imds(String),
    /// Like WireServer's version list.
    Versions,
    /// Accepts the connection and never answers.
    Silent,
}

/// An HTTP server thread inside the namespace, stopped on drop.
struct Server {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<Vec<String>>>,
}

impl Server {
    fn start(ns: &Netns, addr: &str, reply: Reply) -> Server {
        let path = format!("/run/netns/{}", ns.name);
        let addr: SocketAddr = format!("{addr}:80").parse().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let stop2 = stop.clone();
        let handle = thread::spawn(move || {
            let f = std::fs::File::open(&path).expect("open netns");
            nix::sched::setns(f.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
            let listener = TcpListener::bind(addr).expect("bind in netns");
            listener.set_nonblocking(true).unwrap();
            ready_tx.send(()).unwrap();
            let mut requests = Vec::new();
            let mut held = Vec::new();
            while !stop2.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((s, _)) => {
                        if let Some(r) = serve(s, &reply, &mut held) {
                            requests.push(r);
                        }
                    }
                    Err(_) => thread::sleep(Duration::from_millis(5)),
                }
            }
            requests
        });
        ready_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("server ready");
        Server {
            stop,
            handle: Some(handle),
        }
    }

    /// Stops the server and returns the requests it saw.
    fn finish(mut self) -> Vec<String> {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.take().unwrap().join().expect("server thread")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

fn serve(mut s: TcpStream, reply: &Reply, held: &mut Vec<TcpStream>) -> Option<String> {
    s.set_nonblocking(false).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    let mut req = Vec::new();
    let mut buf = [0u8; 1024];
    while !req.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = s.read(&mut buf).ok()?;
        if n == 0 {
            break;
        }
        req.extend_from_slice(&buf[..n]);
    }
    let req = String::from_utf8_lossy(&req).into_owned();
    let response = match reply {
        Reply::Silent => {
            held.push(s);
            return Some(req);
        }
        Reply::Imds(_) if !req.contains("\r\nMetadata: true\r\n") => {
            "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\n\r\n{\"error\":\"Bad request. Required metadata header not specified\"}".to_string()
        }
        Reply::Imds(body) => format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
        Reply::Versions => {
            let body = "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<Versions><Preferred><Version>2015-04-05</Version></Preferred><Supported><Version>2015-04-05</Version><Version>2012-11-30</Version></Supported></Versions>";
            format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/xml; charset=utf-8\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
        }
    };
    let _ = s.write_all(response.as_bytes());
    Some(req)
}

fn imds_body(env: &str) -> String {
    format!(
        "{{\"compute\":{{\"azEnvironment\":\"{env}\",\"location\":\"japaneast\",\"name\":\"lk-node1\",\"osType\":\"Linux\",\"vmId\":\"0f2a7c3e-5b1d-4c8e-9a6f-2d4b8e1c7a90\",\"vmSize\":\"Standard_D2s_v5\"}},\"network\":{{\"interface\":[]}}}}"
    )
}

fn detect_in(ns: &Netns, case: &str, json: bool) -> String {
    let root = fixture(case);
    let mut args = vec!["detect", "--sysroot", root.to_str().unwrap()];
    if json {
        args.push("--json");
    }
    let o = ns.run(&args);
    assert_eq!(code(&o), 0, "{}", common::stderr(&o));
    stdout(&o)
}

#[test]
fn azure_with_imds_answering_is_certain() {
    if !can_run() {
        return;
    }
    let ns = Netns::new(&[IMDS]);
    let server = Server::start(&ns, IMDS, Reply::Imds(imds_body("AzurePublicCloud")));
    let out = detect_in(&ns, "azure", false);
    let requests = server.finish();
    common::has(&out, "platform: azure (Microsoft Azure VM)");
    common::has(&out, "confidence: certain");
    common::has(
        &out,
        "imds 169.254.169.254: answered HTTP 200, azEnvironment \"AzurePublicCloud\"",
    );
    common::has(&out, "metadata: an Azure metadata service answered");
    let req = requests.first().expect("the probe reached the server");
    assert!(
        req.starts_with("GET /metadata/instance?api-version=2021-02-01 HTTP/1.0\r\n"),
        "{req}"
    );
    assert!(req.contains("\r\nMetadata: true\r\n"), "{req}");
}

#[test]
fn azure_stack_hub_is_told_apart_by_az_environment() {
    if !can_run() {
        return;
    }
    let ns = Netns::new(&[IMDS]);
    let _server = Server::start(&ns, IMDS, Reply::Imds(imds_body("AzureStack")));
    let j = detect_in(&ns, "azure-stack-hub", true);
    for part in [
        r#""platform":"azure-stack""#,
        r#""confidence":"certain""#,
        r#""is_azure":false"#,
        r#""network":{"checked":true,"metadata_service":true,"imds":{"answered":true,"status":200,"az_environment":"AzureStack","detail":null},"wireserver":{"answered":false,"status":null,"az_environment":null,"detail":"#,
    ] {
        assert!(j.contains(part), "missing {part} in {j}");
    }
}

#[test]
fn onprem_hyperv_with_no_listener_reports_no_metadata_service() {
    if !can_run() {
        return;
    }
    // The address exists but nothing listens: connections are refused.
    let ns = Netns::new(&[IMDS, WIRESERVER]);
    let out = detect_in(&ns, "hyperv-gen2", false);
    common::has(&out, "platform: hyperv (on-premises Hyper-V guest)");
    common::has(&out, "confidence: certain");
    common::has(&out, "metadata: no Azure metadata service answered");
    assert!(out.contains("imds 169.254.169.254: no answer ("), "{out}");
    assert!(
        out.contains("wireserver 168.63.129.16: no answer ("),
        "{out}"
    );
}

#[test]
fn no_route_at_all_is_also_no_metadata_service() {
    if !can_run() {
        return;
    }
    let ns = Netns::new(&[]);
    let out = detect_in(&ns, "hyperv-gen1", false);
    common::has(&out, "platform: hyperv (on-premises Hyper-V guest)");
    common::has(&out, "confidence: certain");
    common::has(&out, "metadata: no Azure metadata service answered");
}

#[test]
fn a_silent_listener_is_cut_off_by_the_deadline() {
    if !can_run() {
        return;
    }
    let ns = Netns::new(&[IMDS]);
    let server = Server::start(&ns, IMDS, Reply::Silent);
    let out = detect_in(&ns, "hyperv-gen2", false);
    let requests = server.finish();
    common::has(&out, "platform: hyperv (on-premises Hyper-V guest)");
    common::has(&out, "metadata: no Azure metadata service answered");
    assert!(out.contains("imds 169.254.169.254: no answer ("), "{out}");
    assert_eq!(
        requests.len(),
        1,
        "the probe connected and sent its request"
    );
}

#[test]
fn spoofed_asset_tag_without_azure_services_is_hyperv() {
    if !can_run() {
        return;
    }
    let ns = Netns::new(&[IMDS]);
    let out = detect_in(&ns, "hyperv-azure-tag", false);
    common::has(&out, "platform: hyperv (on-premises Hyper-V guest)");
    common::has(&out, "confidence: likely");
    assert!(out.contains("set by hand"), "{out}");
}

#[test]
fn wireserver_alone_means_azure_likely() {
    if !can_run() {
        return;
    }
    let ns = Netns::new(&[WIRESERVER]);
    let server = Server::start(&ns, WIRESERVER, Reply::Versions);
    let out = detect_in(&ns, "azure", false);
    let requests = server.finish();
    common::has(&out, "platform: azure (Microsoft Azure VM)");
    common::has(&out, "confidence: likely");
    common::has(&out, "wireserver 168.63.129.16: answered HTTP 200");
    assert!(
        requests
            .iter()
            .any(|r| r.starts_with("GET /?comp=versions HTTP/1.0\r\n")),
        "{requests:?}"
    );
}

#[test]
fn imds_without_the_metadata_header_would_be_rejected() {
    // Guards the fake server itself: it must behave like IMDS, or the tests
    // above prove nothing about the header.
    if !can_run() {
        return;
    }
    let ns = Netns::new(&[IMDS]);
    let _server = Server::start(&ns, IMDS, Reply::Imds(imds_body("AzurePublicCloud")));
    let o = Command::new("ip")
        .args(["netns", "exec", &ns.name, "bash", "-c"])
        .arg("exec 3<>/dev/tcp/169.254.169.254/80; printf 'GET /metadata/instance?api-version=2021-02-01 HTTP/1.0\\r\\n\\r\\n' >&3; head -c 12 <&3")
        .output()
        .expect("bash");
    assert_eq!(String::from_utf8_lossy(&o.stdout), "HTTP/1.1 400");
}
