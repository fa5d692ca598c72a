//! Processes a test starts or stops: `syncline run` and `syncline <command>` children, and the
//! shared stack (`scripts/stack.sh`), restarted when a test that stopped it ends.

use std::path::PathBuf;
use std::time::Duration;

use crate::*;

/// The `syncline` binary cargo built for this test run: integration tests run from
/// `target/<profile>/deps/`, the binary sits one level up (`SYNCLINE_BIN` overrides it).
pub fn syncline_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("SYNCLINE_BIN") {
        return bin.into();
    }
    let exe = std::env::current_exe().expect("the test binary's path");
    let profile_dir = exe.ancestors().nth(2).expect("target/<profile>/deps/<test>");
    profile_dir.join(format!("syncline{}", std::env::consts::EXE_SUFFIX))
}

/// Starts `syncline run` as a child process; returns it and its metrics base URL (the endpoint
/// binds port 0 and the log line says where it ended up).
pub fn spawn_run(topology: &std::path::Path, instance: &str) -> (std::process::Child, String) {
    spawn_run_with(topology, instance, &[])
}

/// The same with extra `syncline run` arguments (e.g. `--worker NAME --no-tracker`).
pub fn spawn_run_with(topology: &std::path::Path, instance: &str, extra: &[&str]) -> (std::process::Child, String) {
    spawn_run_env(topology, instance, extra, &[])
}

/// The same with environment variables for the child (secrets a topology names as `${VAR}`).
pub fn spawn_run_env(
    topology: &std::path::Path,
    instance: &str,
    extra: &[&str],
    env: &[(&str, &str)],
) -> (std::process::Child, String) {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let mut child = Command::new(syncline_bin())
        .args(["run", "--instance", instance])
        .args(extra)
        .arg("--topology")
        .arg(topology)
        .arg("--schemas")
        .arg(repo_path("schemas"))
        .envs(env.iter().copied())
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn syncline run");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(i) = line.find("http://") {
                let url: String = line[i..]
                    .chars()
                    .take_while(|c| !c.is_whitespace() && *c != ',')
                    .collect();
                let _ = tx.send(url.trim_end_matches("/metrics").to_string());
            }
        }
    });
    let base = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("metrics address in the log");
    (child, base)
}

/// `scripts/stack.sh ARGS`, which must succeed.
pub fn stack(args: &[&str]) {
    let status = std::process::Command::new(repo_path("scripts/stack.sh"))
        .args(args)
        .status()
        .expect("stack.sh");
    assert!(status.success(), "scripts/stack.sh {args:?} failed");
}

/// `scripts/stack.sh ARGS`: whether it succeeded and what it printed.
pub fn stack_output(args: &[&str]) -> (bool, String) {
    let out = std::process::Command::new(repo_path("scripts/stack.sh"))
        .args(args)
        .output()
        .expect("stack.sh");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Starts the whole stack again when dropped, so a test that stopped part of the shared stack
/// leaves it running for the next test binary even when it fails half-way.
pub struct RestartStack;

impl Drop for RestartStack {
    fn drop(&mut self) {
        let _ = std::process::Command::new(repo_path("scripts/stack.sh"))
            .arg("start")
            .status();
    }
}

/// The pid of a stack process (`kafka`, `registry`) from the stack's pid file.
pub fn stack_pid(service: &str) -> u32 {
    let run = std::env::var("SYNCLINE_RUN_DIR").unwrap_or_else(|_| {
        let cache = std::env::var("SYNCLINE_CACHE")
            .unwrap_or_else(|_| format!("{}/.cache/syncline", std::env::var("HOME").unwrap_or_default()));
        format!("{cache}/run")
    });
    let text = std::fs::read_to_string(format!("{run}/{service}.pid")).expect("stack pid file");
    text.trim().parse().expect("a pid")
}

/// The local addresses (`ip:port`, IPv6 in the kernel's hex form decoded) that process `pid`
/// listens on over TCP, read from /proc.
pub fn listening_addresses(pid: u32) -> Vec<String> {
    let inodes: std::collections::HashSet<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("the process's fds")
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter_map(|l| {
            let l = l.to_string_lossy().into_owned();
            Some(l.strip_prefix("socket:[")?.strip_suffix(']')?.to_string())
        })
        .collect();
    let mut out = Vec::new();
    for table in ["tcp", "tcp6"] {
        let text = std::fs::read_to_string(format!("/proc/{pid}/net/{table}")).unwrap_or_default();
        for line in text.lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            // local_address, state 0A = LISTEN, inode
            if cols.len() > 9 && cols[3] == "0A" && inodes.contains(cols[9]) {
                out.push(decode_proc_address(cols[1]));
            }
        }
    }
    out
}

/// `0100007F:1F90` -> `127.0.0.1:8080`; IPv6 (four little-endian words) -> `[v6]:port`.
fn decode_proc_address(hex: &str) -> String {
    let (addr, port) = hex.split_once(':').expect("addr:port");
    let port = u16::from_str_radix(port, 16).expect("port");
    let bytes: Vec<u8> = (0..addr.len())
        .step_by(8)
        .flat_map(|i| u32::from_str_radix(&addr[i..i + 8], 16).expect("hex").to_le_bytes())
        .collect();
    match bytes.len() {
        4 => format!(
            "{}:{port}",
            std::net::Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3])
        ),
        _ => {
            let octets: [u8; 16] = bytes.try_into().expect("16 bytes");
            let v6 = std::net::Ipv6Addr::from(octets);
            match v6.to_ipv4_mapped() {
                Some(v4) => format!("{v4}:{port}"),
                None => format!("[{v6}]:{port}"),
            }
        }
    }
}

/// Runs the `syncline` binary from the repository root with `--topology`, `--schemas` and
/// `args`; returns whether it succeeded and everything it printed.
pub fn syncline(topology: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> (bool, String) {
    let mut cmd = std::process::Command::new(syncline_bin());
    cmd.current_dir(repo_path(""))
        .arg("--topology")
        .arg(topology)
        .arg("--schemas")
        .arg(repo_path("schemas"))
        .args(args)
        .env("RUST_LOG", "warn");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run syncline");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// A child process killed when the test ends, whether it passed or not.
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
