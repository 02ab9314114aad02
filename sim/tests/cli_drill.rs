//! `mcp-sim drill`, run as a user runs it: against `mcp-sim serve` on
//! loopback in every mode (no failed operation, a JSON report that
//! parses), against a closed port and against endpoints that do not speak
//! MCP (one line naming the URL, exit status 1, no load), and with bad
//! values (one line naming the value, exit status 2, no network traffic).
//!
//! These are real-network end-to-end tests: each drill runs for one second
//! of real time. Nothing listens anywhere but 127.0.0.1.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

mod common;

use common::{Serve, BIN};

/// Runs `mcp-sim drill` with `args` and waits for it.
async fn drill(args: &[&str]) -> Output {
    let run = tokio::process::Command::new(BIN)
        .arg("drill")
        .args(args)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("drill ends within 60 s")
        .expect("run mcp-sim drill")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A file in the test's scratch folder, named after the test.
fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("cli_drill");
    std::fs::create_dir_all(&dir).expect("scratch folder");
    let path = dir.join(name);
    let _ = std::fs::remove_file(&path);
    path
}

/// Drills `serve` for 1 s in `mode` (with `extra` options) and checks what
/// every clean run shows; returns the JSON report.
async fn clean_drill(mode: &str, vus: u32, extra: &[&str]) -> Value {
    let server = Serve::start(&[]).await;
    let json = scratch(&format!("{mode}-{}.json", extra.join("_")));
    let vus = vus.to_string();
    let mut args = vec![
        "--url",
        &server.url,
        "--mode",
        mode,
        "--vus",
        &vus,
        "--duration",
        "1s",
        "--json",
        json.to_str().expect("utf-8 path"),
    ];
    args.extend_from_slice(extra);
    let out = drill(&args).await;
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    // Progress: plain lines (stderr is not a terminal here).
    assert!(stderr.contains("speaks MCP"), "{stderr}");
    assert!(stderr.contains("failed 0"), "{stderr}");
    // The text report.
    assert!(stdout.contains(&format!("{mode} mode")), "{stdout}");
    assert!(stdout.contains(" ok, 0 failed, "), "{stdout}");
    assert!(!stdout.contains("failed by kind"), "{stdout}");
    for row in ["acquire + op", "p50", "p95", "p99", "sessions after close"] {
        assert!(stdout.contains(row), "{row} not in {stdout}");
    }

    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("the JSON report"))
            .expect("the JSON report parses");
    assert_eq!(report["url"], server.url.as_str());
    assert_eq!(report["mode"], mode);
    assert_eq!(report["vus"], vus.parse::<u64>().expect("vus"));
    assert_eq!(report["duration_ms"], 1000);
    assert_eq!(report["interrupted"], false);
    let ops = &report["operations"];
    let ok = ops["ok"].as_u64().expect("operations.ok");
    assert!(ok > 0, "{ops}");
    assert_eq!(ops["failed"], 0, "{report}");
    assert!(ops["per_second"].as_f64().expect("per_second") > 0.0);
    assert_eq!(report["errors"], serde_json::json!({}));
    for part in ["total", "acquire", "call"] {
        let l = &report["latency_ms"][part];
        assert_eq!(l["count"], ok, "{part}: {l}");
        let p = |q: &str| l[q].as_f64().unwrap_or_else(|| panic!("{part}.{q}: {l}"));
        assert!(p("p50") <= p("p95") && p("p95") <= p("p99") && p("p99") <= p("max"));
        assert!(p("mean") >= 0.0);
    }
    let m = &report["metrics"];
    let created = m["total_created"].as_u64().expect("total_created");
    assert!(created >= 1, "{m}");
    assert_eq!(m["live_sessions"], 0, "closed at the end: {m}");
    let closed: u64 = m["closed"]
        .as_object()
        .expect("closed by reason")
        .values()
        .map(|v| v.as_u64().expect("a count"))
        .sum();
    assert_eq!(closed, created, "every session closed once: {m}");
    assert!(report["sessions_at_end"].is_object());
    assert_eq!(report["probe"]["protocol_version"], "2025-11-25");
    report
}

/// (On a two-thread runtime: `--threads 2`.)
#[tokio::test]
async fn reuse_mode_keeps_one_session_per_vu() {
    let r = clean_drill("reuse", 3, &["--threads", "2"]).await;
    assert_eq!(r["metrics"]["total_created"], 3);
    assert_eq!(r["metrics"]["closed"]["shutdown"], 3);
    assert_eq!(r["sessions_at_end"]["live_sessions"], 3);
}

#[tokio::test]
async fn per_request_mode_makes_a_session_per_operation() {
    let r = clean_drill("per_request", 3, &["--op", "list"]).await;
    assert_eq!(r["op"], "tools/list");
    let ok = r["operations"]["ok"].as_u64().expect("ok");
    assert_eq!(r["metrics"]["total_created"], ok);
    assert_eq!(r["metrics"]["closed"]["released"], ok);
}

#[tokio::test]
async fn pool_mode_shares_few_sessions_among_more_vus() {
    let r = clean_drill("pool", 4, &["--pool-size", "2", "--op", "echo"]).await;
    assert_eq!(r["op"], "tools/call echo");
    assert_eq!(r["config"]["pool_size"], 2);
    let created = r["metrics"]["total_created"].as_u64().expect("created");
    assert!((1..=2).contains(&created), "{}", r["metrics"]);
    assert!(r["metrics"]["pool_waits"].as_u64().expect("waits") > 0);
    assert_eq!(r["metrics"]["pool_timeouts"], 0);
}

#[tokio::test]
async fn churn_mode_replaces_sessions_by_operations() {
    let r = clean_drill("churn", 2, &["--churn-ops", "3"]).await;
    assert_eq!(r["config"]["churn_interval_ops"], 3);
    let ok = r["operations"]["ok"].as_u64().expect("ok");
    let churned = r["metrics"]["closed"]["churned"].as_u64().expect("churned");
    assert!(churned > 0 && churned <= ok / 3, "{churned} of {ok}");
}

#[tokio::test]
async fn churn_mode_replaces_sessions_by_time() {
    let r = clean_drill("churn", 2, &["--churn-ms", "200ms", "--think", "10ms"]).await;
    assert_eq!(r["config"]["churn_interval_ms"], 200);
    assert_eq!(r["config"]["churn_interval_ops"], 0);
    assert_eq!(r["think_ms"], 10);
    assert!(r["metrics"]["closed"]["churned"].as_u64().expect("churned") > 0);
}

/// Runs drill against `url` and expects the probe to fail: exit status 1,
/// nothing on stdout, one line on stderr naming the URL and each of
/// `named`.
async fn probe_fails(url: &str, named: &[&str]) -> String {
    let out = drill(&["--url", url, "--duration", "1s", "--connect-timeout", "2s"]).await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(out.stdout.is_empty(), "no report: {}", text(&out.stdout));
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    assert!(stderr.starts_with("mcp-sim drill: "), "{stderr}");
    assert!(stderr.contains(url), "{url} not in {stderr}");
    for n in named {
        assert!(stderr.contains(n), "{n} not in {stderr}");
    }
    stderr
}

#[tokio::test]
async fn an_unreachable_url_is_one_line_and_no_load() {
    // A port that was just free: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let url = format!("http://127.0.0.1:{port}/mcp");
    probe_fails(&url, &["cannot reach", "connect"]).await;
}

/// A loopback listener that answers every connection with `response`
/// (after reading the request head), then closes it.
async fn canned_server(response: &'static str) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let _ = stream.read(&mut buf).await;
                let _ = stream.write_all(response.as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    format!("http://{addr}/mcp")
}

#[tokio::test]
async fn an_http_404_endpoint_is_not_an_mcp_server() {
    let url = canned_server(
        "HTTP/1.1 404 Not Found\r\ncontent-type: text/plain\r\ncontent-length: 9\r\n\
         connection: close\r\n\r\nnot found",
    )
    .await;
    probe_fails(&url, &["not answer as an MCP server", "404"]).await;
}

#[tokio::test]
async fn a_plain_text_endpoint_is_not_an_mcp_server() {
    let url = canned_server(
        "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 5\r\n\
         connection: close\r\n\r\nhello",
    )
    .await;
    probe_fails(&url, &["not answer as an MCP server", "text/plain"]).await;
}

#[tokio::test]
async fn a_non_http_endpoint_is_not_an_mcp_server() {
    let url = canned_server("SSH-2.0-OpenSSH_9.6\r\n").await;
    // The default era, auto, probes with server/discover first.
    probe_fails(
        &url,
        &["not answer as an MCP server", "server/discover failed"],
    )
    .await;
}

#[tokio::test]
async fn an_operation_the_server_refuses_stops_the_drill_before_the_load() {
    let server = Serve::start(&[]).await;
    let out = drill(&[
        "--url",
        &server.url,
        "--op",
        "call",
        "--tool",
        "no_such_tool",
        "--duration",
        "1s",
    ])
    .await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("tools/call no_such_tool"), "{stderr}");
    assert!(stderr.contains(&server.url), "{stderr}");
}

/// Runs drill with `args` and expects a usage error: exit status 2,
/// nothing on stdout, one line on stderr naming every string in `named`.
fn usage_error(args: &[&str], named: &[&str]) {
    // Nothing listens on port 9 of loopback in a test machine; a usage
    // error must come before any connection anyway.
    let mut all = vec!["drill"];
    for (flag, value) in [("--url", "http://127.0.0.1:9/mcp"), ("--duration", "1s")] {
        if !args.contains(&flag) {
            all.extend([flag, value]);
        }
    }
    all.extend_from_slice(args);
    let out = Command::new(BIN)
        .args(&all)
        .stdin(Stdio::null())
        .output()
        .expect("run mcp-sim");
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
    assert!(out.stdout.is_empty(), "{args:?}: {}", text(&out.stdout));
    assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
    assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    for n in named {
        assert!(stderr.contains(n), "{args:?}: {n} not in {stderr}");
    }
}

#[test]
fn bad_values_are_usage_errors_naming_them() {
    usage_error(&["--mode", "cluster"], &["--mode", "'cluster'", "pool"]);
    usage_error(&["--duration", "10x"], &["--duration", "'10x'"]);
    usage_error(&["--duration", "ten"], &["--duration", "'ten'"]);
    usage_error(&["--duration", "10"], &["--duration", "'10'", "unit"]);
    usage_error(&["--duration", "0s"], &["--duration", "'0s'"]);
    usage_error(&["--vus", "0"], &["--vus", "0"]);
    usage_error(&["--op", "fetch"], &["--op", "'fetch'"]);
    usage_error(
        &["--acquire-timeout", "soon"],
        &["--acquire-timeout", "'soon'"],
    );
    usage_error(&["--url", "ftp://127.0.0.1/mcp"], &["--url", "ftp"]);
    usage_error(&["--url", "https://127.0.0.1/mcp"], &["--url", "https"]);
    usage_error(&["--version-policy", "lax"], &["'lax'"]);
}

#[test]
fn configs_the_manager_refuses_name_the_option() {
    usage_error(
        &["--mode", "pool", "--pool-size", "0"],
        &["--pool-size", "pool_size", "pool mode"],
    );
    usage_error(
        &["--mode", "pool", "--acquire-timeout", "0"],
        &["--acquire-timeout", "acquire_timeout_ms"],
    );
    usage_error(&["--ttl", "31d"], &["--ttl", "'31d'"]);
    usage_error(&["--idle", "721h"], &["--idle", "'721h'"]);
    usage_error(
        &["--mode", "churn", "--churn-ops", "2", "--churn-ms", "500"],
        &["--churn-ms", "--churn-ops", "both set"],
    );
    usage_error(
        &["--mode", "churn", "--churn-ops", "0"],
        &["--churn-ops", "churn mode"],
    );
    usage_error(
        &["--protocol-version", "latest"],
        &["--protocol-version", "latest"],
    );
}

#[test]
fn an_unwritable_json_file_is_a_usage_error() {
    let dir = scratch("not-a-folder");
    std::fs::write(&dir, b"a file").expect("write");
    let path = dir.join("report.json");
    usage_error(
        &["--json", path.to_str().expect("utf-8 path")],
        &["--json", "report.json"],
    );
}

#[test]
fn values_clap_checks_exit_2_too() {
    let out = Command::new(BIN)
        .args(["drill", "--url", "http://127.0.0.1:9/mcp", "--vus", "many"])
        .stdin(Stdio::null())
        .output()
        .expect("run mcp-sim");
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("'many'"));
    let out = Command::new(BIN)
        .args(["drill", "--mode", "pool"])
        .stdin(Stdio::null())
        .output()
        .expect("run mcp-sim");
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("--url"));
}
