//! What the tests that run the `mcp-sim` binary share: starting it, and
//! starting `mcp-sim serve` on a free loopback port.
//!
//! Each test file compiles this module on its own and uses part of it.
#![allow(dead_code)]

use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_mcp-sim");

/// `mcp-sim ARGS...` started with stdout and stderr piped.
pub fn spawn(args: &[&str]) -> Child {
    Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn mcp-sim")
}

/// Runs `mcp-sim ARGS...` to the end.
pub fn output(args: &[&str]) -> Output {
    spawn(args).wait_with_output().expect("run mcp-sim")
}

/// Runs `mcp-sim ARGS...` and expects a usage error: exit status 2, nothing
/// on stdout, no panic, and stderr naming every string in `named`. Returns
/// stderr.
pub fn usage_error(args: &[&str], named: &[&str]) -> String {
    let out = output(args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
    assert!(out.stdout.is_empty(), "{args:?}: stdout {:?}", out.stdout);
    for name in named {
        assert!(stderr.contains(name), "{args:?}: {name} not in {stderr}");
    }
    assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    stderr
}

/// `mcp-sim serve --port 0 EXTRA...`, killed when dropped.
pub struct Serve {
    /// The URL its listening line printed (`http://127.0.0.1:PORT/mcp`).
    pub url: String,
    /// The process (its stderr, if any, is piped).
    pub child: tokio::process::Child,
}

impl Serve {
    /// Starts the server and waits (at most 30 s) for its listening line.
    pub async fn start(extra: &[&str]) -> Serve {
        let mut child = tokio::process::Command::new(BIN)
            .args(["serve", "--port", "0"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn mcp-sim serve");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("the listening line within 30 s")
            .expect("read stdout")
            .expect("a line before stdout closed");
        let url = line
            .strip_prefix("mcp-sim serve: listening on ")
            .unwrap_or_else(|| panic!("not the listening line: {line:?}"))
            .to_owned();
        Serve { url, child }
    }
}
