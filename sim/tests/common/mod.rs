//! What the tests that run the `mcp-sim` binary share: starting it, and
//! starting `mcp-sim serve` on a free loopback port.
//!
//! Each test file compiles this module on its own and uses part of it.
#![allow(dead_code)]

use std::process::{Child, Command, Stdio};
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
