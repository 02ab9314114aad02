//! `mcp-sim drill`, run as a user runs it: against `mcp-sim serve` on
//! loopback in every mode (no failed operation, a JSON report that
//! parses), against a canned MCP 2026-07-28 ("stateless") server in every
//! mode with `--era modern` and `--era auto`, against a closed port and
//! against endpoints that do not speak MCP, or not the era asked for (one
//! line naming the URL, exit status 1, no load), and with bad values (one
//! line naming the value, exit status 2, no network traffic).
//!
//! `mcp-sim serve --era legacy` speaks only the legacy era (2025-11-25):
//! `--era auto` falls back to `initialize` against it, `--era modern`
//! refuses it. `serve`'s default, `--era dual`, serves both: every mode
//! runs in either era against it.
//!
//! These are real-network end-to-end tests: each drill runs for one second
//! of real time. Nothing listens anywhere but 127.0.0.1.

use std::convert::Infallible;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use serde_json::{json, Value};
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

/// Drills `serve --era legacy` for 1 s in `mode` (with `extra` options)
/// and checks what every clean run shows; returns the JSON report. The
/// default era, auto, falls back to the legacy era.
async fn clean_drill(mode: &str, vus: u32, extra: &[&str]) -> Value {
    let server = Serve::start(&["--era", "legacy"]).await;
    let report = clean_drill_at(&server.url, mode, vus, extra, ("legacy", "2025-11-25")).await;
    let eras = &report["metrics"]["eras"];
    let fallbacks = eras["fallbacks_to_legacy"].as_u64().expect("fallbacks");
    if report["era"]["setting"] == "legacy" {
        assert_eq!(fallbacks, 0, "{eras}");
    } else {
        // Each VU's first session may probe before the first verdict is in.
        assert!((1..=u64::from(vus)).contains(&fallbacks), "{eras}");
    }
    assert_eq!(eras["discover_probes"], fallbacks, "{eras}");
    assert_eq!(eras["modern"]["created"], 0, "{eras}");
    report
}

/// The sum of a JSON object's counters.
fn sum(counters: &Value) -> u64 {
    counters
        .as_object()
        .unwrap_or_else(|| panic!("not counters: {counters}"))
        .values()
        .map(|v| v.as_u64().unwrap_or_else(|| panic!("not a count: {v}")))
        .sum()
}

/// Drills `url` for 1 s in `mode` (with `extra` options), checks what
/// every clean run shows and that the drill negotiated `(era, version)`;
/// returns the JSON report.
async fn clean_drill_at(
    url: &str,
    mode: &str,
    vus: u32,
    extra: &[&str],
    (era, version): (&str, &str),
) -> Value {
    // Distinct names: drills of several servers run at once.
    let port = url.rsplit(':').next().unwrap_or("").replace("/mcp", "");
    let json = scratch(&format!("{mode}-{port}-{}.json", extra.join("_")));
    let vus = vus.to_string();
    let mut args = vec![
        "--url",
        url,
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
    assert!(
        stderr.contains(&format!("speaks MCP {version} ({era} era")),
        "{stderr}"
    );
    assert!(stderr.contains("failed 0"), "{stderr}");
    // The text report.
    assert!(stdout.contains(&format!("{mode} mode")), "{stdout}");
    assert!(
        stdout.contains(&format!("negotiated {era} era, MCP {version}")),
        "{stdout}"
    );
    assert!(stdout.contains("discover probes"), "{stdout}");
    assert!(stdout.contains("fallbacks to legacy"), "{stdout}");
    for row in ["  legacy ", "  modern "] {
        assert!(stdout.contains(row), "{row} not in {stdout}");
    }
    assert!(stdout.contains(" ok, 0 failed, "), "{stdout}");
    assert!(!stdout.contains("failed by kind"), "{stdout}");
    assert!(stdout.contains("  on the server: "), "{stdout}");
    for row in ["acquire + op", "p50", "p95", "p99", "sessions after close"] {
        assert!(stdout.contains(row), "{row} not in {stdout}");
    }

    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("the JSON report"))
            .expect("the JSON report parses");
    assert_eq!(report["url"], url);
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
    // Every close is accounted for on the server's side too once the
    // manager has closed: the counts add up to the closes.
    assert_eq!(sum(&m["server_closes"]), sum(&m["closed"]), "{m}");
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
    assert_eq!(report["probe"]["protocol_version"], version);
    assert_eq!(report["probe"]["era"], era);
    assert_eq!(report["era"]["negotiated"], era, "{}", report["era"]);
    assert_eq!(report["era"]["version"], version, "{}", report["era"]);
    let setting = extra
        .iter()
        .position(|a| *a == "--era")
        .map_or("auto", |i| extra[i + 1]);
    assert_eq!(report["era"]["setting"], setting);
    assert_eq!(report["config"]["era"], setting);
    // Every session was made, and closed, in the era negotiated.
    let eras = &m["eras"];
    assert_eq!(eras[era]["created"], created, "{eras}");
    let closed: u64 = eras[era]["closed"]
        .as_object()
        .expect("closed by reason")
        .values()
        .filter_map(Value::as_u64)
        .sum();
    assert_eq!(closed, created, "{eras}");
    assert_eq!(eras[era]["live"], 0, "{eras}");
    for counter in ["version_retries", "era_reprobes", "era_changes"] {
        assert_eq!(eras[counter], 0, "{counter}: {eras}");
    }
    report
}

/// (On a two-thread runtime: `--threads 2`.)
#[tokio::test]
async fn reuse_mode_keeps_one_session_per_vu() {
    let r = clean_drill("reuse", 3, &["--threads", "2"]).await;
    assert_eq!(r["metrics"]["total_created"], 3);
    assert_eq!(r["metrics"]["closed"]["shutdown"], 3);
    assert_eq!(r["sessions_at_end"]["live_sessions"], 3);
    // `serve` issues session ids and honours DELETE: each one deleted.
    assert_eq!(r["metrics"]["server_closes"]["deleted"], 3);
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

#[tokio::test]
async fn the_default_op_is_tools_list() {
    let r = clean_drill("reuse", 1, &[]).await;
    assert_eq!(r["op"], "tools/list");
    // One VU: one probe, answered as a legacy server answers it.
    assert_eq!(r["metrics"]["eras"]["fallbacks_to_legacy"], 1);
    assert_eq!(r["metrics"]["eras"]["discover_probes"], 1);
}

/// `serve`'s default era, dual, serves every mode in both eras: `auto` and
/// `modern` negotiate 2026-07-28 (no fallback), `legacy` 2025-11-25.
#[tokio::test]
async fn a_dual_era_serve_is_drilled_in_every_mode_and_era() {
    let server = Serve::start(&[]).await;
    for mode in ["reuse", "per_request", "pool", "churn"] {
        for (era, negotiated) in [
            ("auto", ("modern", "2026-07-28")),
            ("modern", ("modern", "2026-07-28")),
            ("legacy", ("legacy", "2025-11-25")),
        ] {
            let r = clean_drill_at(&server.url, mode, 2, &["--era", era], negotiated).await;
            let eras = &r["metrics"]["eras"];
            assert_eq!(eras["fallbacks_to_legacy"], 0, "{mode} {era}: {eras}");
            let modern = eras["modern"]["created"].as_u64().expect("created");
            let legacy = eras["legacy"]["created"].as_u64().expect("created");
            if era == "legacy" {
                assert_eq!(
                    (modern, eras["discover_probes"].as_u64()),
                    (0, Some(0)),
                    "{eras}"
                );
            } else {
                assert!(modern > 0 && legacy == 0, "{mode} {era}: {eras}");
            }
        }
    }
}

/// A server that answers every stateless-era `tools/call`
/// `input_required` (MRTR) for two rounds before the tool runs: the drill
/// answers each round as the simulated VUs do (a new id, the exact
/// `requestState`), counts an operation ok only once its result is
/// complete, and reports the rounds it answered — two per operation.
#[tokio::test]
async fn input_required_rounds_are_answered_and_counted() {
    let server = Serve::start(&["--input-rounds", "2"]).await;
    for era in ["modern", "auto"] {
        let r = clean_drill_at(
            &server.url,
            "reuse",
            2,
            &["--era", era, "--op", "echo"],
            ("modern", "2026-07-28"),
        )
        .await;
        let ops = &r["operations"];
        let ok = ops["ok"].as_u64().expect("ok");
        assert_eq!(ops["input_rounds"], 2 * ok, "{era}: {ops}");
    }
    // A legacy session is never asked for input.
    let r = clean_drill_at(
        &server.url,
        "reuse",
        2,
        &["--era", "legacy", "--op", "echo"],
        ("legacy", "2025-11-25"),
    )
    .await;
    assert_eq!(r["operations"]["input_rounds"], 0, "{}", r["operations"]);
}

/// A server still asking for input after the most rounds the drill
/// answers (four, as a simulated VU): the operation has not completed, so
/// the probe fails, in one line, and no load starts.
#[tokio::test]
async fn input_required_past_the_last_round_is_not_a_success() {
    let server = Serve::start(&["--input-rounds", "5"]).await;
    probe_fails_with(
        &server.url,
        &["--era", "modern", "--op", "echo"],
        &["input_required after 4 rounds", "tools/call echo"],
    )
    .await;
}

#[tokio::test]
async fn era_legacy_sends_no_discover() {
    let r = clean_drill("per_request", 2, &["--era", "legacy", "--op", "ping"]).await;
    assert_eq!(r["op"], "ping");
    assert_eq!(r["metrics"]["eras"]["discover_probes"], 0);
    assert_eq!(r["metrics"]["eras"]["fallbacks_to_legacy"], 0);
}

#[tokio::test]
async fn era_modern_against_a_legacy_server_is_one_line() {
    let server = Serve::start(&["--era", "legacy"]).await;
    let stderr = probe_fails_with(
        &server.url,
        &["--era", "modern"],
        &["does not speak MCP 2026-07-28", "--era auto"],
    )
    .await;
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[tokio::test]
async fn op_discover_against_a_legacy_server_says_why() {
    let server = Serve::start(&["--era", "legacy"]).await;
    probe_fails_with(
        &server.url,
        &["--op", "discover"],
        &["server/discover", "legacy", "--op list"],
    )
    .await;
}

/// Runs drill against `url` and expects the probe to fail: exit status 1,
/// nothing on stdout, one line on stderr naming the URL and each of
/// `named`.
async fn probe_fails(url: &str, named: &[&str]) -> String {
    probe_fails_with(url, &[], named).await
}

/// [`probe_fails`] with `extra` options.
async fn probe_fails_with(url: &str, extra: &[&str], named: &[&str]) -> String {
    let mut args = vec!["--url", url, "--duration", "1s", "--connect-timeout", "2s"];
    args.extend_from_slice(extra);
    let out = drill(&args).await;
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

/// SIGTERM (what `timeout`, `kill` and CI runners send) ends the drill as
/// Ctrl-C does: the report on stdout, the JSON file written, the sessions
/// DELETEd, exit status 1 saying it was interrupted.
#[cfg(unix)]
#[tokio::test]
async fn sigterm_ends_the_drill_with_its_report() {
    let server = Serve::start(&["--era", "legacy"]).await;
    let json = scratch("sigterm.json");
    let child = tokio::process::Command::new(BIN)
        .args([
            "drill",
            "--url",
            &server.url,
            "--era",
            "legacy",
            "--vus",
            "2",
            "--duration",
            "30s",
            "--quiet",
            "--json",
            json.to_str().expect("utf-8 path"),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn drill");
    let pid = child.id().expect("a pid").to_string();
    // Let the load start (the probe, then operations).
    tokio::time::sleep(Duration::from_millis(800)).await;
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("run kill");
    assert!(killed.success());
    let out = tokio::time::timeout(Duration::from_secs(20), child.wait_with_output())
        .await
        .expect("the drill ends within 20 s of SIGTERM")
        .expect("drill output");
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    assert!(stdout.contains("interrupted"), "{stdout}");
    let report: Value =
        serde_json::from_slice(&std::fs::read(&json).expect("the report")).expect("JSON");
    let closed = &report["metrics"]["closed"]["shutdown"];
    assert!(closed.as_u64().is_some_and(|n| n >= 1), "{report}");
}

#[tokio::test]
async fn server_text_is_escaped_and_cut_when_printed() {
    // A JSON-RPC error whose message holds a terminal escape sequence and
    // three megabytes.
    let message = format!("\\u001b[2Jwiped{}", "x".repeat(3_000_000));
    let body =
        format!(r#"{{"jsonrpc":"2.0","id":0,"error":{{"code":-32603,"message":"{message}"}}}}"#);
    let response = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
         connection: close\r\n\r\n{body}",
        body.len()
    );
    let url = canned_server(Box::leak(response.into_boxed_str())).await;
    let out = drill(&["--url", &url, "--era", "legacy", "--duration", "1s"]).await;
    let stderr = text(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        &stderr[..stderr.len().min(500)]
    );
    assert!(
        !stderr.contains('\u{1b}'),
        "an escape byte reached the terminal"
    );
    assert!(
        stderr.contains("\\u{1b}[2Jwiped"),
        "{}",
        &stderr[..stderr.len().min(500)]
    );
    assert!(stderr.len() < 5_000, "{} bytes printed", stderr.len());
    assert!(
        stderr.contains("bytes cut]"),
        "{}",
        &stderr[..stderr.len().min(500)]
    );
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
fn out_of_range_ports_are_usage_errors_not_port_80() {
    for (url, port) in [
        ("http://127.0.0.1:99999/mcp", "99999"),
        ("http://127.0.0.1:65536/mcp", "65536"),
        ("http://127.0.0.1:0/mcp", "\"0\""),
    ] {
        usage_error(&["--url", url], &["--url", port, "1-65535"]);
    }
}

#[test]
fn credentials_in_the_url_are_refused_and_never_printed() {
    let url = "http://user:secret@127.0.0.1:9/mcp";
    usage_error(&["--url", url], &["--url", "credentials"]);
    let out = Command::new(BIN)
        .args(["drill", "--url", url, "--duration", "1s"])
        .stdin(Stdio::null())
        .output()
        .expect("run mcp-sim");
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(!all.contains("secret"), "the password is printed: {all}");
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
fn bad_eras_are_usage_errors_naming_them() {
    usage_error(
        &["--era", "stateless"],
        &["--era", "'stateless'", "auto, modern, legacy"],
    );
    usage_error(&["--era", ""], &["--era", "''"]);
    usage_error(
        &["--era", "modern", "--op", "ping"],
        &[
            "--op ping",
            "ping does not exist in MCP 2026-07-28",
            "--op list",
            "--op discover",
        ],
    );
    usage_error(
        &["--modern-versions", "2025-11-25"],
        &["--modern-versions", "2025-11-25"],
    );
    usage_error(
        &["--modern-versions", "2026-07-28,tomorrow"],
        &["--modern-versions", "tomorrow"],
    );
    usage_error(&["--modern-versions", ""], &["--modern-versions", "empty"]);
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

/// The revision the canned stateless server speaks.
const MODERN: &str = "2026-07-28";

/// A JSON-RPC answer of the canned stateless server.
fn rpc(status: StatusCode, body: &Value) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    r
}

/// A JSON-RPC error of the canned stateless server, with its status.
fn rpc_error(status: StatusCode, id: &Value, code: i64, message: &str) -> Response<Full<Bytes>> {
    rpc(
        status,
        &json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}}),
    )
}

/// How the canned stateless server answers one HTTP request: as a
/// 2026-07-28-only server does (Python SDK 2.3.0's rules, trimmed): POST
/// only, no sessions, the routing headers and `params._meta` checked on
/// every request, `server/discover`, `tools/list` and `tools/call echo`
/// served, everything else (`initialize`, `ping`) method-not-found.
async fn modern_answer(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    if req.method() != hyper::Method::POST {
        let mut r = Response::new(Full::new(Bytes::new()));
        *r.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
        r.headers_mut().insert(
            hyper::header::ALLOW,
            hyper::header::HeaderValue::from_static("POST"),
        );
        return Ok(r);
    }
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let (version, method_header, name_header) = (
        header("mcp-protocol-version"),
        header("mcp-method"),
        header("mcp-name"),
    );
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            return Ok(rpc_error(
                StatusCode::BAD_REQUEST,
                &Value::Null,
                -32700,
                "body",
            ))
        }
    };
    let Ok(msg) = serde_json::from_slice::<Value>(&body) else {
        return Ok(rpc_error(
            StatusCode::BAD_REQUEST,
            &Value::Null,
            -32700,
            "Parse error",
        ));
    };
    let method = msg["method"].as_str().unwrap_or_default().to_owned();
    let Some(id) = msg.get("id").cloned() else {
        // A notification.
        return Ok(Response::builder()
            .status(StatusCode::ACCEPTED)
            .body(Full::new(Bytes::new()))
            .expect("a 202"));
    };
    let meta = &msg["params"]["_meta"];
    let meta_version = meta["io.modelcontextprotocol/protocolVersion"].as_str();
    if meta_version.is_none() || !meta["io.modelcontextprotocol/clientCapabilities"].is_object() {
        return Ok(rpc_error(
            StatusCode::BAD_REQUEST,
            &id,
            -32602,
            "params._meta",
        ));
    }
    let name = msg["params"]["name"].as_str().map(str::to_owned);
    let named = matches!(method.as_str(), "tools/call" | "prompts/get");
    if version.as_deref() != meta_version
        || method_header.as_deref() != Some(method.as_str())
        || (named && name_header != name)
    {
        return Ok(rpc_error(
            StatusCode::BAD_REQUEST,
            &id,
            -32020,
            "header mismatch",
        ));
    }
    if meta_version != Some(MODERN) {
        return Ok(rpc(
            StatusCode::BAD_REQUEST,
            &json!({"jsonrpc": "2.0", "id": id, "error": {
                "code": -32022, "message": "Unsupported protocol version",
                "data": {"supported": [MODERN], "requested": meta_version}}}),
        ));
    }
    let result = match method.as_str() {
        "server/discover" => json!({
            "supportedVersions": [MODERN],
            "capabilities": {"tools": {}},
            "resultType": "complete",
            "ttlMs": 0,
            "cacheScope": "private",
        }),
        "tools/list" => json!({
            "tools": [{"name": "echo", "inputSchema": {"type": "object",
                "properties": {"message": {"type": "string"}}}}],
            "resultType": "complete",
            "ttlMs": 0,
            "cacheScope": "private",
        }),
        "tools/call" if name.as_deref() == Some("echo") => json!({
            "content": [{"type": "text",
                "text": msg["params"]["arguments"]["message"].as_str().unwrap_or_default()}],
            "isError": false,
            "resultType": "complete",
        }),
        _ => {
            return Ok(rpc(
                StatusCode::NOT_FOUND,
                &json!({"jsonrpc": "2.0", "id": id,
                    "error": {"code": -32601, "message": "Method not found", "data": method}}),
            ))
        }
    };
    Ok(rpc(
        StatusCode::OK,
        &json!({"jsonrpc": "2.0", "id": id, "result": result}),
    ))
}

/// A canned MCP 2026-07-28 (stateless-only) server on a free loopback
/// port, for as long as the test runs; its URL.
async fn modern_server() -> String {
    serve_fn(modern_answer).await
}

/// Serves every connection of a free loopback port with `answer`, for as
/// long as the test runs; the URL of its `/mcp`.
async fn serve_fn<F, Fut>(answer: F) -> String
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = Result<Response<Full<Bytes>>, Infallible>> + Send + 'static,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let answer = answer.clone();
            tokio::spawn(async move {
                let io = hyper_util::rt::TokioIo::new(stream);
                let service = hyper::service::service_fn(answer);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(io, service)
                    .await;
            });
        }
    });
    format!("http://{addr}/mcp")
}

/// A canned stateless server that answers the drill's probe and then
/// never answers another `tools/list`: every operation of the load hangs.
async fn hanging_server() -> String {
    let lists = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    serve_fn(move |req: Request<Incoming>| {
        let is_list = req
            .headers()
            .get("mcp-method")
            .is_some_and(|m| m == "tools/list");
        let n = if is_list {
            lists.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
        } else {
            0
        };
        async move {
            if n >= 1 {
                std::future::pending::<()>().await;
            }
            modern_answer(req).await
        }
    })
    .await
}

#[tokio::test]
async fn a_drill_where_no_operation_succeeds_exits_1() {
    let url = hanging_server().await;
    let json = scratch("no_success.json");
    let out = drill(&[
        "--url",
        &url,
        "--era",
        "modern",
        "--vus",
        "3",
        "--duration",
        "500ms",
        "--grace",
        "200ms",
        "--max-failures",
        "0",
        "--quiet",
        "--json",
        json.to_str().expect("utf-8 path"),
    ])
    .await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("no operation succeeded"), "{stderr}");
    let report: Value =
        serde_json::from_slice(&std::fs::read(&json).expect("the report")).expect("JSON");
    assert_eq!(report["operations"]["ok"], 0, "{report}");
}

/// Drills the canned stateless server in `mode` with `--era modern` and
/// `--era auto` (at once, one server each), checks both ran clean in the
/// modern era, and returns their reports.
async fn modern_drills(mode: &str, extra: &[&str]) -> [Value; 2] {
    let (a, b) = (modern_server().await, modern_server().await);
    let with = |era: &'static str| {
        let mut v = vec!["--era", era];
        v.extend_from_slice(extra);
        v
    };
    let (modern, auto) = (with("modern"), with("auto"));
    let (m, au) = tokio::join!(
        clean_drill_at(&a, mode, 3, &modern, ("modern", MODERN)),
        clean_drill_at(&b, mode, 3, &auto, ("modern", MODERN)),
    );
    for r in [&m, &au] {
        let eras = &r["metrics"]["eras"];
        assert_eq!(eras["fallbacks_to_legacy"], 0, "{eras}");
        assert_eq!(eras["legacy"]["created"], 0, "{eras}");
        assert!(
            eras["discover_probes"].as_u64().expect("probes") >= 1,
            "{eras}"
        );
        // No session ids in this era: contexts are named by the client.
        assert!(
            r["probe"]["session_id"]
                .as_str()
                .is_some_and(|id| id.starts_with("ctx-")),
            "{}",
            r["probe"]
        );
    }
    [m, au]
}

#[tokio::test]
async fn a_modern_server_in_reuse_mode() {
    for r in modern_drills("reuse", &[]).await {
        assert_eq!(r["metrics"]["total_created"], 3);
        // Contexts: nothing was deleted on the server, nothing claimed.
        let c = &r["metrics"]["server_closes"];
        assert_eq!(
            (&c["stateless"], &c["deleted"]),
            (&json!(3), &json!(0)),
            "{c}"
        );
        assert_eq!(r["op"], "tools/list");
    }
}

#[tokio::test]
async fn a_modern_server_in_per_request_mode() {
    for r in modern_drills("per_request", &["--op", "echo"]).await {
        let ok = r["operations"]["ok"].as_u64().expect("ok");
        assert_eq!(r["metrics"]["eras"]["modern"]["created"], ok);
        assert_eq!(r["op"], "tools/call echo");
    }
}

#[tokio::test]
async fn a_modern_server_in_pool_mode() {
    for r in modern_drills("pool", &["--pool-size", "2", "--op", "discover"]).await {
        assert_eq!(r["op"], "server/discover");
        let created = r["metrics"]["total_created"].as_u64().expect("created");
        assert!((1..=2).contains(&created), "{}", r["metrics"]);
    }
}

#[tokio::test]
async fn a_modern_server_in_churn_mode() {
    for r in modern_drills("churn", &["--churn-ops", "3"]).await {
        assert!(r["metrics"]["closed"]["churned"].as_u64().expect("churned") > 0);
    }
}

#[tokio::test]
async fn ping_against_a_server_found_modern_is_one_line() {
    let url = modern_server().await;
    probe_fails_with(
        &url,
        &["--op", "ping"],
        &[
            "2026-07-28",
            "ping does not exist",
            "--op list",
            "--op discover",
        ],
    )
    .await;
}

#[tokio::test]
async fn a_modern_server_refuses_legacy_drills_in_one_line() {
    // A stateless-only server refuses initialize (no `_meta`): --era
    // legacy cannot open a session.
    let url = modern_server().await;
    probe_fails_with(&url, &["--era", "legacy"], &["initialize failed", "400"]).await;
}

/// A legacy server without sessions: `initialize` answered with no
/// `Mcp-Session-Id`, `tools/list` answered, and nothing else (a DELETE,
/// which needs a session id, would be 405).
async fn sessionless_server() -> String {
    serve_fn(|req: Request<Incoming>| async move {
        if req.method() != hyper::Method::POST {
            return Ok::<_, Infallible>(rpc(StatusCode::METHOD_NOT_ALLOWED, &json!({})));
        }
        let body = req.into_body().collect().await.map(|b| b.to_bytes());
        let msg: Value = body
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        let Some(id) = msg.get("id").cloned() else {
            return Ok(rpc(StatusCode::ACCEPTED, &json!({})));
        };
        let result = match msg["method"].as_str() {
            Some("initialize") => json!({
                "protocolVersion": "2025-11-25",
                "capabilities": {"tools": {}},
                "serverInfo": {"name": "sessionless", "version": "1"},
            }),
            Some("tools/list") => json!({"tools": []}),
            _ => return Ok(rpc_error(StatusCode::OK, &id, -32601, "Method not found")),
        };
        Ok(rpc(
            StatusCode::OK,
            &json!({"jsonrpc": "2.0", "id": id, "result": result}),
        ))
    })
    .await
}

/// Against a server that issued no session ids, the report does not say
/// that sessions were deleted: it says there were none to delete, and
/// no DELETE was sent.
#[tokio::test]
async fn a_server_without_session_ids_is_not_reported_as_deleting_sessions() {
    let url = sessionless_server().await;
    let json = scratch("sessionless.json");
    let out = drill(&[
        "--url",
        &url,
        "--era",
        "legacy",
        "--mode",
        "per_request",
        "--vus",
        "2",
        "--duration",
        "1s",
        "--json",
        json.to_str().expect("utf-8 path"),
    ])
    .await;
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("the server issued no session ids: it kept no sessions to delete"),
        "{stdout}"
    );
    assert!(!stdout.contains(" deleted"), "{stdout}");
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("the JSON report"))
            .expect("the JSON report parses");
    let m = &report["metrics"];
    let closed = sum(&m["closed"]);
    assert!(closed > 0, "{m}");
    let c = &m["server_closes"];
    assert_eq!(c["no_session_id"], closed, "{c}");
    assert_eq!(c["deleted"], 0, "{c}");
}
