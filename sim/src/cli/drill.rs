//! `mcp-sim drill`: load-test a real MCP server over TCP with the session
//! manager.
//!
//! ```text
//! mcp-sim drill --url http://127.0.0.1:8080/mcp --mode pool --vus 8 --duration 30s
//! ```
//!
//! The client is the library as it ships: an `mcp_session::Manager` over
//! `HttpConnector` and `TcpDialer` (MCP's Streamable HTTP over tokio TCP),
//! in any of the four modes. Each of `--vus` virtual users runs a loop
//! until `--duration` has passed: acquire a session, run `--op` on it, give
//! the session back (release it; invalidate it after a 404 or when the
//! server changed era; drop it after a timeout or a broken connection, so
//! it is not reused), wait `--think`.
//!
//! # Eras
//!
//! MCP has two eras, and the drill speaks both (`--era`, the library's
//! `SessionConfig::era`):
//!
//! - **legacy** (2025-11-25 and before): a session is opened with
//!   `initialize` (the revision asked for is `--protocol-version`), named by
//!   the server's `Mcp-Session-Id`, and closed with an HTTP DELETE.
//! - **modern** (2026-07-28, "stateless"): no handshake and no session id;
//!   every request carries its protocol revision in `params._meta` and in
//!   the `MCP-Protocol-Version`, `Mcp-Method` and `Mcp-Name` headers. A
//!   "session" of the drill is then a client context: a connection and the
//!   revision its requests carry. The revisions offered are
//!   `--modern-versions` (default 2026-07-28). `ping` does not exist in
//!   this era: `--op ping` is refused with `--era modern`, and fails the
//!   probe with `--era auto` when the server turns out to be modern.
//! - **auto** (the default): the manager's first request is a
//!   `server/discover`. A modern answer makes modern contexts; anything a
//!   legacy server answers falls back to `initialize` (counted as a
//!   fallback). `--era modern` never falls back: a legacy-only server is
//!   one line saying it does not speak MCP 2026-07-28, exit status 1.
//!
//! A stateless-era server may answer an operation `input_required`
//! (MRTR): the drill answers it as the simulated VUs do (`mcp_sim::vu::call`:
//! canned responses, a new request id, the exact `requestState`) for at
//! most four rounds. An operation is ok only when its final result is
//! complete (one still asking for input after the fourth round fails,
//! kind `input_rounds_exceeded`; in the probe, the drill stops there), its
//! latency covers every round, and the report counts the rounds answered
//! (`operations.input_rounds`).
//!
//! The report names the era setting and the era and revision negotiated,
//! and counts the era work: discover probes, fallbacks to legacy, version
//! retries (after -32022), era re-probes and era changes, and the sessions
//! created, closed, evicted and reconnected in each era.
//!
//! # Before the load
//!
//! Every value is checked first, with no network traffic: a bad value is
//! one line naming it, exit status 2 (so is a config the manager refuses,
//! named by its option). Then one probe session is made in the same era
//! setting (connect; `server/discover` unless `--era legacy`; `initialize`,
//! version check and `notifications/initialized` in the legacy era),
//! `--op` is run on it once and it is closed: an unreachable URL, an
//! endpoint that does not speak MCP (or not the era asked for), or an
//! operation the server refuses is one line naming the URL and what went
//! wrong, exit status 1, and no load is started.
//!
//! # While it runs
//!
//! Progress goes to stderr: a progress bar when stderr is a terminal,
//! otherwise a plain line every second (`--quiet`: nothing). Ctrl-C or
//! SIGTERM stops the load early; the report still follows.
//!
//! # At the end
//!
//! No new operation starts after `--duration`; the ones in flight get
//! `--grace` to finish, then are cancelled (counted as cancelled, not
//! failed). The manager is closed (every legacy session DELETEd) and the
//! report goes to stdout: the era negotiated, operations ok and failed,
//! the failures by error kind (with one example message each), latency
//! percentiles (p50, p95, p99, max, mean; acquire + operation, acquire
//! alone, operation alone; of the successful operations), the session
//! metrics and the era counters. `--json FILE` also writes it as JSON.
//!
//! An operation still in flight at the end that had waited longer than
//! the acquire timeout plus `--request-timeout` counts as failed (kind
//! `stuck`), not cancelled.
//!
//! Exit status: 0 when the drill ran and at least one operation
//! succeeded; 1 when the probe failed, when no operation succeeded, when
//! more operations failed than `--max-failures`, when Ctrl-C or SIGTERM cut the run
//! short, or when the session accounting came out broken; 2 on a usage
//! error.
//!
//! # Time
//!
//! Real network code: the deadline, the progress ticks and the latencies
//! are read from a `TokioClock` (real time here), never from the wall clock
//! directly.

mod load;
mod report;
mod shown;
mod stats;

use std::fmt::Write as _;
use std::fs::File;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use serde_json::{json, Value};

use mcp_session::transport::{HttpConfig, Operation};
use mcp_session::{ConfigError, Era, Mode, SessionConfig, VersionPolicy, MAX_DURATION_MS};

use super::Failure;

/// The options of `mcp-sim drill`.
#[derive(Debug, Clone, Args)]
pub struct DrillArgs {
    /// The server's MCP endpoint (plain http), e.g.
    /// http://127.0.0.1:8080/mcp.
    #[arg(long, value_name = "URL")]
    pub url: String,

    /// Session mode: reuse, per_request, pool or churn.
    #[arg(long, value_name = "MODE", default_value = "reuse")]
    pub mode: String,

    /// Virtual users: concurrent loops of acquire, operation, release
    /// (1 to 10000).
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub vus: u32,

    /// How long to run the load: 10s, 500ms, 2m, 1h, 1m30s, 1.5s.
    #[arg(long, value_name = "D", default_value = "10s")]
    pub duration: String,

    /// The operation each VU runs: list (tools/list), discover
    /// (server/discover), echo (tools/call echo {"message": ...}, as the
    /// official SDK servers' echo tools take it), call (tools/call --tool
    /// with --args), or ping (legacy era only: MCP 2026-07-28 has no
    /// ping).
    #[arg(long, value_name = "OP", default_value = "list")]
    pub op: String,

    /// The tool `--op call` calls.
    #[arg(long, value_name = "NAME")]
    pub tool: Option<String>,

    /// The arguments of `--op call`, a JSON object.
    #[arg(long, value_name = "JSON")]
    pub args: Option<String>,

    /// Runtime threads: 1 runs everything on this thread, more starts a
    /// multi-threaded runtime with that many workers (1 to 1024).
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub threads: usize,

    /// Exit with status 1 when more operations than this failed.
    #[arg(long, value_name = "N")]
    pub max_failures: Option<u64>,

    /// Also write the report as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,

    /// No progress output while the load runs.
    #[arg(long)]
    pub quiet: bool,

    /// The session manager's settings.
    #[command(flatten)]
    pub session: Box<SessionOptions>,

    /// Timeouts and pacing.
    #[command(flatten)]
    pub timing: Box<TimingOptions>,
}

/// The session manager's settings (the library's `SessionConfig`).
/// Boxed in [`DrillArgs`] to keep the subcommand enum small.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Session options")]
pub struct SessionOptions {
    /// Pool mode: most sessions in the pool (default 10).
    #[arg(long, value_name = "N")]
    pub pool_size: Option<usize>,

    /// Pool mode: the longest an acquire waits for a session (default 30s).
    #[arg(long, value_name = "D")]
    pub acquire_timeout: Option<String>,

    /// Session lifetime from its creation; 0 = none (default 15m).
    #[arg(long, value_name = "D")]
    pub ttl: Option<String>,

    /// Longest a session may sit unused; 0 = none (default 60s).
    #[arg(long, value_name = "D")]
    pub idle: Option<String>,

    /// Churn mode: replace a VU's session after this many operations
    /// (default 1 unless --churn-ms is given).
    #[arg(long, value_name = "N")]
    pub churn_ops: Option<u64>,

    /// Churn mode: replace a VU's session once it is this old (a plain
    /// number is milliseconds; 2s, 500ms, ... also work).
    #[arg(long, value_name = "MS")]
    pub churn_ms: Option<String>,

    /// Which era of MCP to speak: auto (server/discover first, fall back
    /// to initialize when the server is not modern), modern (2026-07-28
    /// stateless requests only) or legacy (initialize and Mcp-Session-Id
    /// only).
    #[arg(long, value_name = "ERA", default_value = "auto")]
    pub era: String,

    /// Modern era: the 2026-07-28-or-later revisions offered, a comma list
    /// (default 2026-07-28); the newest is sent first.
    #[arg(long, value_name = "YYYY-MM-DD[,...]")]
    pub modern_versions: Option<String>,

    /// Legacy era: the protocol revision asked for in initialize (default
    /// 2025-11-25).
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub protocol_version: Option<String>,

    /// How the server's answered revision is checked: strict (must equal
    /// the one asked for), supported (any revision this client speaks),
    /// none.
    #[arg(long, value_name = "POLICY", default_value = "supported")]
    pub version_policy: String,
}

/// Timeouts of the HTTP transport, and the pacing of the load.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Timing options")]
pub struct TimingOptions {
    /// Bound on opening a connection.
    #[arg(long, value_name = "D", default_value = "5s")]
    pub connect_timeout: String,

    /// Bound on one request, from sending it to its answer.
    #[arg(long, value_name = "D", default_value = "30s")]
    pub request_timeout: String,

    /// Pause of each VU between two operations.
    #[arg(long, value_name = "D", default_value = "0")]
    pub think: String,

    /// How long operations in flight at the end may take to finish before
    /// they are cancelled.
    #[arg(long, value_name = "D", default_value = "5s")]
    pub grace: String,
}

/// Most VUs: each is a task with (in most modes) its own connection; more
/// than this from one process is a typo.
pub const MAX_VUS: u32 = 10_000;

/// Most runtime threads.
pub const MAX_THREADS: usize = 1024;

/// The text `--op echo` sends.
pub const ECHO_TEXT: &str = "mcp-sim drill";

/// What a VU runs each time.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct DrillOp {
    /// How reports name it: `tools/list`, `server/discover`,
    /// `tools/call echo`, `ping`, ...
    pub label: String,
    /// The operation.
    pub op: Operation,
}

/// The checked arguments: everything the run needs.
#[derive(Debug)]
pub(crate) struct Plan {
    pub url: String,
    pub http: HttpConfig,
    pub config: SessionConfig,
    pub vus: u32,
    pub duration: Duration,
    pub op: DrillOp,
    pub think: Duration,
    pub grace: Duration,
    pub threads: usize,
    pub max_failures: Option<u64>,
    pub json: Option<(PathBuf, File)>,
    pub quiet: bool,
}

/// Checks the arguments, probes the server, runs the load and reports.
pub fn run(args: DrillArgs) -> Result<(), Failure> {
    let plan = plan(args).map_err(one_line)?;
    let json_path = plan.json.as_ref().map(|(p, _)| p.clone());
    let result = load::execute(&plan);
    let outcome = match result {
        Ok(outcome) => outcome,
        Err(failure) => {
            // Nothing was measured: do not leave an empty report behind.
            if let Some(path) = json_path {
                let _ = std::fs::remove_file(path);
            }
            return Err(one_line(failure));
        }
    };
    let text = report::text(&plan, &outcome);
    {
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        out.write_all(text.as_bytes())
            .and_then(|()| out.flush())
            .map_err(|e| Failure::Runtime(format!("mcp-sim drill: cannot write to stdout: {e}")))?;
    }
    if let Some((path, file)) = &plan.json {
        let value = report::json(&plan, &outcome);
        let mut w = std::io::BufWriter::new(file);
        serde_json::to_writer_pretty(&mut w, &value)
            .map_err(std::io::Error::from)
            .and_then(|()| {
                use std::io::Write as _;
                w.write_all(b"\n")?;
                w.flush()
            })
            .map_err(|e| {
                Failure::Runtime(format!(
                    "mcp-sim drill: cannot write {}: {e}",
                    path.display()
                ))
            })?;
    }
    verdict(&plan, &outcome).map_err(one_line)
}

/// The exit status of a drill that ran (the report is already out).
fn verdict(plan: &Plan, outcome: &load::Outcome) -> Result<(), Failure> {
    if let Err(broken) = outcome.metrics.check_accounting() {
        return Err(Failure::Runtime(format!(
            "mcp-sim drill: session accounting broken: {broken}"
        )));
    }
    if let Some(why) = &outcome.vu_failure {
        return Err(Failure::Runtime(format!("mcp-sim drill: {why}")));
    }
    if let Some(max) = plan.max_failures {
        if outcome.stats.failed > max {
            return Err(Failure::Runtime(format!(
                "mcp-sim drill: {} operations failed, more than --max-failures {max}",
                outcome.stats.failed
            )));
        }
    }
    if outcome.stats.ok == 0 && !outcome.interrupted {
        return Err(Failure::Runtime(format!(
            "mcp-sim drill: no operation succeeded ({} failed, {} cancelled): the server never answered one",
            outcome.stats.failed, outcome.stats.cancelled
        )));
    }
    if outcome.interrupted {
        return Err(Failure::Runtime(format!(
            "mcp-sim drill: interrupted (Ctrl-C or SIGTERM) after {}; the report covers the run so far",
            format_duration(outcome.elapsed)
        )));
    }
    Ok(())
}

/// A usage error of drill.
fn usage(message: impl AsRef<str>) -> Failure {
    Failure::Usage(format!("mcp-sim drill: {}", message.as_ref()))
}

/// The same failure on one line (messages from servers may hold breaks).
fn one_line(f: Failure) -> Failure {
    match f {
        Failure::Usage(m) => Failure::Usage(shown::shown_long(&m)),
        Failure::Runtime(m) => Failure::Runtime(shown::shown_long(&m)),
    }
}

/// Checks every argument (no network traffic) and builds the plan.
///
/// The checks run in a fixed order and the first one that fails is the
/// one reported: the workload (mode, VUs, threads, duration, era,
/// operation), then the session config, then the HTTP timings and the
/// URL, the pacing, and the output file last (so that a refused command
/// leaves no empty file behind).
pub(crate) fn plan(args: DrillArgs) -> Result<Plan, Failure> {
    let mode: Mode = args.mode.parse().map_err(|_| {
        usage(format!(
            "unknown --mode '{}' (accepted: reuse, per_request, pool, churn)",
            args.mode
        ))
    })?;
    in_range("--vus", u64::from(args.vus), u64::from(MAX_VUS))?;
    let threads = u64::try_from(args.threads).unwrap_or(u64::MAX);
    in_range("--threads", threads, MAX_THREADS as u64)?;
    let duration = duration_arg("--duration", &args.duration)?;
    if duration.is_zero() {
        return Err(usage(format!(
            "--duration must be longer than 0, not '{}'",
            args.duration
        )));
    }
    let era: Era = args.session.era.parse().map_err(|_| {
        usage(format!(
            "unknown --era '{}' (accepted: auto, modern, legacy)",
            args.session.era
        ))
    })?;
    let op = drill_op(&args.op, args.tool.as_deref(), args.args.as_deref())?;
    if era == Era::Modern && op.op == Operation::Ping {
        return Err(usage(
            "--op ping cannot run with --era modern: ping does not exist in MCP 2026-07-28 \
             (use --op list or --op discover)",
        ));
    }
    let config = session_config(&args.session, mode, era)?;
    let http = http_config(&args.url, &args.timing)?;
    check_url(&args.url)?;
    let think = duration_arg("--think", &args.timing.think)?;
    let grace = duration_arg("--grace", &args.timing.grace)?;
    let json = match args.json {
        None => None,
        Some(path) => Some(json_file(path)?),
    };
    Ok(Plan {
        url: args.url,
        http,
        config,
        vus: args.vus,
        duration,
        op,
        think,
        grace,
        threads: args.threads,
        max_failures: args.max_failures,
        json,
        quiet: args.quiet,
    })
}

/// Checks that a count option is from 1 to `max`.
fn in_range(flag: &str, n: u64, max: u64) -> Result<(), Failure> {
    if n == 0 || n > max {
        return Err(usage(format!("{flag} must be from 1 to {max}, not {n}")));
    }
    Ok(())
}

/// The session config the options describe: the mode's defaults, each
/// option given laid over them, then validated as a whole (and against
/// the options that do not apply to `mode` or `era`).
fn session_config(o: &SessionOptions, mode: Mode, era: Era) -> Result<SessionConfig, Failure> {
    let policy: VersionPolicy = o.version_policy.parse().map_err(|_| {
        usage(format!(
            "unknown --version-policy '{}' (accepted: strict, supported, none)",
            o.version_policy
        ))
    })?;
    let mut config = SessionConfig::with_mode(mode);
    config.era = era;
    config.protocol_version_policy = policy;
    if let Some(n) = o.pool_size {
        config.pool_size = n;
    }
    if let Some(d) = &o.acquire_timeout {
        config.acquire_timeout_ms = millis_arg("--acquire-timeout", d)?;
    }
    if let Some(d) = &o.ttl {
        config.ttl_ms = millis_arg("--ttl", d)?;
    }
    if let Some(d) = &o.idle {
        config.max_idle_ms = millis_arg("--idle", d)?;
    }
    // A flag not given is the config's default (0, not set), as an absent
    // key of a config file is: `--churn-ms` alone churns by time.
    if let Some(ms) = &o.churn_ms {
        config.churn_interval_ms = churn_ms_arg(ms)?;
    }
    if let Some(n) = o.churn_ops {
        config.churn_interval_ops = n;
    }
    if let Some(v) = &o.protocol_version {
        config.protocol_version = v.clone();
    }
    if let Some(list) = &o.modern_versions {
        config.modern_protocol_versions = modern_versions_arg(list);
    }
    config.validate().map_err(|e| config_usage(&e))?;
    inapplicable(o, mode, era)?;
    Ok(config)
}

/// The HTTP config for `url` with the timing options: both timeouts at
/// least 1 ms (0 would fail every request at once), and a close that
/// waits no longer than a request does.
fn http_config(url: &str, t: &TimingOptions) -> Result<HttpConfig, Failure> {
    let connect_timeout = millis_arg("--connect-timeout", &t.connect_timeout)?;
    let request_timeout = millis_arg("--request-timeout", &t.request_timeout)?;
    for (flag, ms, text) in [
        ("--connect-timeout", connect_timeout, &t.connect_timeout),
        ("--request-timeout", request_timeout, &t.request_timeout),
    ] {
        if ms == 0 {
            return Err(usage(format!("{flag} must be at least 1ms, not '{text}'")));
        }
    }
    Ok(HttpConfig {
        connect_timeout_ms: connect_timeout,
        request_timeout_ms: request_timeout,
        close_timeout_ms: request_timeout.min(HttpConfig::default().close_timeout_ms),
        ..HttpConfig::new(url.to_owned())
    })
}

/// Creates the `--json` file, to fail now rather than after the drill.
fn json_file(path: PathBuf) -> Result<(PathBuf, File), Failure> {
    let file = File::create(&path).map_err(|e| {
        usage(format!(
            "cannot create --json file '{}': {e}",
            path.display()
        ))
    })?;
    Ok((path, file))
}

/// Checks that the URL is one the HTTP connector takes, without opening
/// anything: a usage error naming it otherwise.
fn check_url(url: &str) -> Result<(), Failure> {
    // The connector parses the URL at construction (and only then); a
    // TokioClock is not needed for that, any clock does.
    let clock: std::sync::Arc<dyn mcp_session::Clock> =
        std::sync::Arc::new(mcp_session::ManualClock::new());
    mcp_session::transport::HttpConnector::new(
        mcp_session::transport::TcpDialer,
        HttpConfig::new(url),
        clock,
    )
    .map(|_| ())
    .map_err(|e| usage(format!("bad --url: {e}")))
}

/// The option that sets a config key.
fn flag_of(field: &str) -> &'static str {
    match field {
        "mode" => "--mode",
        "pool_size" => "--pool-size",
        "ttl_ms" => "--ttl",
        "max_idle_ms" => "--idle",
        "churn_interval_ms" => "--churn-ms",
        "churn_interval_ops" => "--churn-ops",
        "protocol_version" => "--protocol-version",
        "protocol_version_policy" => "--version-policy",
        "acquire_timeout_ms" => "--acquire-timeout",
        "era" => "--era",
        "modern_protocol_versions" => "--modern-versions",
        _ => "a setting",
    }
}

/// A config the manager refuses, as a usage error naming the option (and
/// the config key in the library's words).
fn config_usage(e: &ConfigError) -> Failure {
    let flag = match e {
        ConfigError::ChurnBothSet { .. } => "--churn-ms / --churn-ops",
        other => other.field().map_or("a setting", flag_of),
    };
    usage(format!("bad {flag}: {e}"))
}

/// `--modern-versions`: a comma list, blanks around the commas ignored
/// (the library's validation says what is wrong with a value).
fn modern_versions_arg(list: &str) -> Vec<String> {
    list.split(',')
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Refuses session options that the mode or era would silently ignore
/// (`--pool-size` with `--mode reuse`, `--protocol-version` with `--era
/// modern`, ...): a usage error naming the option and what it needs.
fn inapplicable(o: &SessionOptions, mode: Mode, era: Era) -> Result<(), Failure> {
    let needs = |given: bool, flag: &str, wanted: &str, actual: String| {
        if given {
            Err(usage(format!(
                "{flag} applies to {wanted} only (this drill has {actual}); leave it out or change that"
            )))
        } else {
            Ok(())
        }
    };
    let m = || format!("--mode {}", mode.as_str());
    let e = || format!("--era {}", era.as_str());
    if mode != Mode::Pool {
        needs(o.pool_size.is_some(), "--pool-size", "--mode pool", m())?;
        needs(
            o.acquire_timeout.is_some(),
            "--acquire-timeout",
            "--mode pool",
            m(),
        )?;
    }
    if mode != Mode::Churn {
        needs(o.churn_ops.is_some(), "--churn-ops", "--mode churn", m())?;
        needs(o.churn_ms.is_some(), "--churn-ms", "--mode churn", m())?;
    }
    if era == Era::Modern {
        let legacy = "--era legacy or auto (initialize)";
        needs(
            o.protocol_version.is_some(),
            "--protocol-version",
            legacy,
            e(),
        )?;
    }
    if era == Era::Legacy {
        let modern = "--era modern or auto";
        // `--modern-versions ""` (offer none) says the same as legacy.
        let offered = o
            .modern_versions
            .as_deref()
            .is_some_and(|v| v.split(',').any(|x| !x.trim().is_empty()));
        needs(offered, "--modern-versions", modern, e())?;
    }
    Ok(())
}

/// `--op` (with `--tool` and `--args`).
fn drill_op(op: &str, tool: Option<&str>, args: Option<&str>) -> Result<DrillOp, Failure> {
    if op != "call" {
        if let Some(t) = tool {
            return Err(usage(format!("--tool '{t}' needs --op call")));
        }
        if args.is_some() {
            return Err(usage("--args needs --op call"));
        }
    }
    let (label, op) = match op {
        "ping" => ("ping".to_owned(), Operation::Ping),
        "discover" => ("server/discover".to_owned(), Operation::Discover),
        "list" => (
            "tools/list".to_owned(),
            Operation::ToolsList { cursor: None },
        ),
        "echo" => (
            "tools/call echo".to_owned(),
            Operation::ToolsCall {
                name: "echo".into(),
                arguments: json!({ "message": ECHO_TEXT }),
            },
        ),
        "call" => {
            let name = match tool {
                Some(t) if !t.is_empty() => t.to_owned(),
                _ => return Err(usage("--op call needs --tool NAME")),
            };
            let arguments = match args {
                None => json!({}),
                Some(text) => match serde_json::from_str::<Value>(text) {
                    Ok(v @ Value::Object(_)) => v,
                    _ => return Err(usage(format!("--args must be a JSON object, not '{text}'"))),
                },
            };
            (
                format!("tools/call {name}"),
                Operation::ToolsCall { name, arguments },
            )
        }
        other => {
            return Err(usage(format!(
                "unknown --op '{other}' (accepted: list, discover, echo, call, ping)"
            )))
        }
    };
    Ok(DrillOp { label, op })
}

/// A duration option: a usage error naming the option and the value.
fn duration_arg(flag: &str, text: &str) -> Result<Duration, Failure> {
    parse_duration(text).map_err(|why| usage(format!("bad {flag} '{text}': {why}")))
}

/// A duration option in whole milliseconds (anything finer is dropped).
fn millis_arg(flag: &str, text: &str) -> Result<u64, Failure> {
    duration_arg(flag, text).map(whole_millis)
}

/// `--churn-ms`: a plain number of milliseconds, or a duration.
fn churn_ms_arg(text: &str) -> Result<u64, Failure> {
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text
            .parse::<u64>()
            .ok()
            .filter(|ms| *ms <= MAX_DURATION_MS)
            .ok_or_else(|| {
                usage(format!(
                    "bad --churn-ms '{text}': longer than the maximum of {MAX_DURATION_MS}ms (30 days)"
                ))
            });
    }
    millis_arg("--churn-ms", text)
}

fn whole_millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Parses a duration written as numbers with units: `10s`, `500ms`, `2m`,
/// `1h`, `1m30s`, `1.5s`, or `0`. Units: `ms`, `s`, `m`, `h`. At most 30
/// days. The error says what is wrong, without repeating the input.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    const UNITS: [(&str, u128); 4] = [
        ("ms", 1_000_000),
        ("s", 1_000_000_000),
        ("m", 60_000_000_000),
        ("h", 3_600_000_000_000),
    ];
    let s = text.trim();
    if s.is_empty() {
        return Err("empty; expected a duration like 10s, 500ms, 2m".into());
    }
    if s.bytes().all(|b| b == b'0') {
        return Ok(Duration::ZERO);
    }
    let max_nanos = u128::from(MAX_DURATION_MS) * 1_000_000;
    let mut rest = s;
    let mut nanos: u128 = 0;
    while !rest.is_empty() {
        let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let (int, after) = rest.split_at(int_len);
        let (frac, after) = match after.strip_prefix('.') {
            Some(f) => {
                let n = f.bytes().take_while(u8::is_ascii_digit).count();
                f.split_at(n)
            }
            None => ("", after),
        };
        if int.is_empty() && frac.is_empty() {
            return Err("expected a number followed by a unit (ms, s, m, h)".into());
        }
        let unit_len = after.bytes().take_while(u8::is_ascii_alphabetic).count();
        let (unit, after) = after.split_at(unit_len);
        if unit.is_empty() {
            return Err(format!(
                "missing unit after {int}{}{frac}: write it like 10s, 500ms, 2m or 1h",
                if frac.is_empty() { "" } else { "." }
            ));
        }
        let Some(&(_, scale)) = UNITS.iter().find(|(u, _)| *u == unit) else {
            return Err(format!("unknown unit '{unit}' (accepted: ms, s, m, h)"));
        };
        // Digits beyond what fits are surely too long: cap them.
        let too_long = || format!("longer than the maximum of {MAX_DURATION_MS}ms (30 days)");
        if int.len() > 20 {
            return Err(too_long());
        }
        let whole: u128 = if int.is_empty() {
            0
        } else {
            int.parse::<u128>().map_err(|_| too_long())?
        };
        let mut part = whole.checked_mul(scale).ok_or_else(too_long)?;
        // Fractions finer than a nanosecond are dropped.
        let mut place = scale;
        for d in frac.bytes() {
            place /= 10;
            if place == 0 {
                break;
            }
            part += u128::from(d - b'0') * place;
        }
        nanos = nanos.checked_add(part).ok_or_else(too_long)?;
        if nanos > max_nanos {
            return Err(too_long());
        }
        rest = after;
    }
    let secs = u64::try_from(nanos / 1_000_000_000).map_err(|_| "too long".to_owned())?;
    let sub = u32::try_from(nanos % 1_000_000_000).unwrap_or(0);
    Ok(Duration::new(secs, sub))
}

/// A duration the way a person writes it: `5s`, `1.5s`, `250ms`, `2m30s`,
/// `1h`.
pub fn format_duration(d: Duration) -> String {
    let ms = whole_millis(d);
    if ms == 0 {
        return if d.is_zero() {
            "0s".into()
        } else {
            format!("{}µs", d.as_micros())
        };
    }
    if ms < 1_000 {
        return format!("{ms}ms");
    }
    if ms < 60_000 {
        let mut s = format!("{}", ms / 1_000);
        if ms % 1_000 != 0 {
            let frac = format!("{:03}", ms % 1_000);
            let _ = write!(s, ".{}", frac.trim_end_matches('0'));
        }
        s.push('s');
        return s;
    }
    let (h, m, s) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1_000 % 60);
    let mut out = String::new();
    if h > 0 {
        let _ = write!(out, "{h}h");
    }
    if m > 0 {
        let _ = write!(out, "{m}m");
    }
    if s > 0 {
        let _ = write!(out, "{s}s");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Wrap {
        #[command(flatten)]
        args: DrillArgs,
    }

    fn args(extra: &[&str]) -> DrillArgs {
        let mut v = vec!["drill", "--url", "http://127.0.0.1:9/mcp"];
        v.extend_from_slice(extra);
        Wrap::try_parse_from(v).expect("clap accepts").args
    }

    fn usage_of(extra: &[&str]) -> String {
        match plan(args(extra)) {
            Err(Failure::Usage(m)) => m,
            other => panic!("{extra:?}: {other:?}"),
        }
    }

    #[test]
    fn durations_parse_in_the_usual_forms() {
        let ms = |n| Duration::from_millis(n);
        assert_eq!(parse_duration("10s"), Ok(ms(10_000)));
        assert_eq!(parse_duration("500ms"), Ok(ms(500)));
        assert_eq!(parse_duration("2m"), Ok(ms(120_000)));
        assert_eq!(parse_duration("1h"), Ok(ms(3_600_000)));
        assert_eq!(parse_duration("1m30s"), Ok(ms(90_000)));
        assert_eq!(parse_duration("1.5s"), Ok(ms(1_500)));
        assert_eq!(parse_duration(".25s"), Ok(ms(250)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        assert_eq!(parse_duration(" 3s "), Ok(ms(3_000)));
        assert_eq!(
            parse_duration("30d").unwrap_err(),
            "unknown unit 'd' (accepted: ms, s, m, h)"
        );
        for bad in ["", "10", "s", "1.5", "abc", "-1s", "1s-", "1.s.", "10 s"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
        assert!(parse_duration("721h").is_err());
        assert!(parse_duration("720h").is_ok());
        assert!(parse_duration("99999999999999999999999999h").is_err());
        assert!(parse_duration("18446744073709551616s").is_err());
    }

    #[test]
    fn durations_print_the_way_they_are_written() {
        let ms = |n| Duration::from_millis(n);
        assert_eq!(format_duration(ms(5_000)), "5s");
        assert_eq!(format_duration(ms(1_500)), "1.5s");
        assert_eq!(format_duration(ms(250)), "250ms");
        assert_eq!(format_duration(ms(150_000)), "2m30s");
        assert_eq!(format_duration(ms(3_600_000)), "1h");
        assert_eq!(format_duration(Duration::ZERO), "0s");
    }

    #[test]
    fn defaults_make_a_plan() {
        let p = plan(args(&[])).expect("valid");
        assert_eq!(p.config.mode, Mode::Reuse);
        assert_eq!(p.vus, 10);
        assert_eq!(p.duration, Duration::from_secs(10));
        assert_eq!(p.op.op, Operation::ToolsList { cursor: None });
        assert_eq!(p.op.label, "tools/list");
        assert_eq!(p.config.era, Era::Auto);
        assert_eq!(p.config.modern_protocol_versions, ["2026-07-28"]);
        assert_eq!(p.config.protocol_version_policy, VersionPolicy::Supported);
        assert_eq!(p.http.request_timeout_ms, 30_000);
    }

    #[test]
    fn options_reach_the_config() {
        let p = plan(args(&[
            "--mode",
            "pool",
            "--pool-size",
            "3",
            "--acquire-timeout",
            "2s",
            "--ttl",
            "0",
            "--idle",
            "1m",
        ]))
        .expect("valid");
        assert_eq!(p.config.mode, Mode::Pool);
        assert_eq!(p.config.pool_size, 3);
        assert_eq!(p.config.acquire_timeout_ms, 2_000);
        assert_eq!(p.config.ttl_ms, 0);
        assert_eq!(p.config.max_idle_ms, 60_000);
        let p = plan(args(&["--mode", "churn", "--churn-ms", "250"])).expect("valid");
        assert_eq!(
            (p.config.churn_interval_ms, p.config.churn_interval_ops),
            (250, 0)
        );
        let p = plan(args(&["--mode", "churn", "--churn-ms", "2s"])).expect("valid");
        assert_eq!(p.config.churn_interval_ms, 2_000);
        let p = plan(args(&["--mode", "churn", "--churn-ops", "5"])).expect("valid");
        assert_eq!(p.config.churn_interval_ops, 5);
        // As in a config file, 0 is "not set": churn mode with no interval
        // set churns after every operation, the same config as no flag.
        let zero = plan(args(&["--mode", "churn", "--churn-ops", "0"])).expect("valid");
        let none = plan(args(&["--mode", "churn"])).expect("valid");
        assert_eq!(zero.config, none.config);
        assert_eq!(
            (
                zero.config.churn_interval_ms,
                zero.config.churn_interval_ops
            ),
            (0, 0)
        );
        assert_eq!(zero.config.churn_ops(), 1);
        let p = plan(args(&[
            "--mode",
            "churn",
            "--churn-ms",
            "250",
            "--churn-ops",
            "0",
        ]));
        let c = p.expect("valid").config;
        assert_eq!((c.churn_interval_ms, c.churn_ops()), (250, 0));
    }

    #[test]
    fn bad_values_are_one_line_naming_them() {
        let cases: &[(&[&str], &[&str])] = &[
            (&["--mode", "cluster"], &["--mode", "'cluster'"]),
            (&["--vus", "0"], &["--vus", "0"]),
            (&["--vus", "10001"], &["--vus", "10001"]),
            (&["--duration", "10x"], &["--duration", "'10x'", "'x'"]),
            (&["--duration", "10"], &["--duration", "'10'", "unit"]),
            (&["--duration", "0s"], &["--duration", "'0s'"]),
            (&["--op", "fetch"], &["--op", "'fetch'"]),
            (&["--op", "call"], &["--tool"]),
            (&["--tool", "x"], &["--tool", "--op call"]),
            (
                &["--op", "call", "--tool", "t", "--args", "[1]"],
                &["--args", "'[1]'"],
            ),
            (
                &["--mode", "pool", "--pool-size", "0"],
                &["--pool-size", "pool_size"],
            ),
            (&["--pool-size", "10001"], &["--pool-size", "10001"]),
            (
                &["--mode", "pool", "--acquire-timeout", "0"],
                &["--acquire-timeout"],
            ),
            (&["--ttl", "721h"], &["--ttl", "'721h'"]),
            (
                &["--churn-ms", "5", "--churn-ops", "2"],
                &["--churn-ms", "--churn-ops"],
            ),
            (&["--protocol-version", "v1"], &["--protocol-version", "v1"]),
            (&["--version-policy", "lax"], &["--version-policy", "'lax'"]),
            (&["--request-timeout", "0"], &["--request-timeout"]),
            (&["--threads", "0"], &["--threads"]),
            (&["--think", "fast"], &["--think", "'fast'"]),
            (
                &["--pool-size", "4"],
                &["--pool-size", "--mode pool", "reuse"],
            ),
            (
                &["--mode", "churn", "--acquire-timeout", "2s"],
                &["--acquire-timeout", "--mode pool", "churn"],
            ),
            (&["--churn-ops", "3"], &["--churn-ops", "--mode churn"]),
            (
                &["--mode", "pool", "--churn-ms", "500"],
                &["--churn-ms", "--mode churn", "pool"],
            ),
            (
                &["--era", "modern", "--protocol-version", "2025-06-18"],
                &["--protocol-version", "--era modern"],
            ),
            (
                &["--era", "legacy", "--modern-versions", "2026-07-28"],
                &["--modern-versions", "--era legacy"],
            ),
        ];
        for (extra, named) in cases {
            let m = usage_of(extra);
            assert_eq!(m.lines().count(), 1, "{m}");
            assert!(m.starts_with("mcp-sim drill: "), "{m}");
            for n in *named {
                assert!(m.contains(n), "{extra:?}: {n} not in {m}");
            }
        }
    }

    #[test]
    fn eras_and_modern_versions_reach_the_config() {
        for (text, era) in [
            ("auto", Era::Auto),
            ("modern", Era::Modern),
            ("legacy", Era::Legacy),
        ] {
            assert_eq!(plan(args(&["--era", text])).expect(text).config.era, era);
        }
        let p = plan(args(&[
            "--era",
            "modern",
            "--modern-versions",
            " 2026-07-28 ,",
        ]))
        .expect("valid");
        assert_eq!(p.config.modern_protocol_versions, ["2026-07-28"]);
        // Legacy needs no modern revision.
        let p = plan(args(&["--era", "legacy", "--modern-versions", ""])).expect("valid");
        assert!(p.config.modern_protocol_versions.is_empty());
        // Ping is a legacy-era operation, fine unless the era is modern.
        for era in ["auto", "legacy"] {
            let p = plan(args(&["--era", era, "--op", "ping"])).expect(era);
            assert_eq!(p.op.op, Operation::Ping);
        }
        let p = plan(args(&["--era", "modern", "--op", "discover"])).expect("discover");
        assert_eq!(
            (p.op.op, p.op.label.as_str()),
            (Operation::Discover, "server/discover")
        );
    }

    #[test]
    fn era_errors_name_the_option_and_the_value() {
        let cases: &[(&[&str], &[&str])] = &[
            (
                &["--era", "stateless"],
                &["--era", "'stateless'", "auto, modern, legacy"],
            ),
            (&["--era", "Modern"], &["--era", "'Modern'"]),
            (
                &["--era", "modern", "--op", "ping"],
                &[
                    "--op ping",
                    "--era modern",
                    "2026-07-28",
                    "--op list",
                    "--op discover",
                ],
            ),
            (
                &["--modern-versions", "2025-11-25"],
                &["--modern-versions", "2025-11-25", "legacy"],
            ),
            (
                &["--modern-versions", "2099-01-01"],
                &["--modern-versions", "2099-01-01"],
            ),
            (
                &["--modern-versions", "soon"],
                &["--modern-versions", "soon"],
            ),
            (
                &["--modern-versions", "2026-07-28,2026-07-28"],
                &["--modern-versions", "twice"],
            ),
            (&["--modern-versions", ""], &["--modern-versions", "empty"]),
        ];
        for (extra, named) in cases {
            let m = usage_of(extra);
            assert_eq!(m.lines().count(), 1, "{m}");
            assert!(m.starts_with("mcp-sim drill: "), "{m}");
            for n in *named {
                assert!(m.contains(n), "{extra:?}: {n} not in {m}");
            }
        }
    }

    #[test]
    fn bad_urls_are_usage_errors() {
        for url in ["ftp://h/x", "https://h/mcp", "not a url", "http://"] {
            let a = DrillArgs {
                url: url.into(),
                ..args(&[])
            };
            match plan(a) {
                Err(Failure::Usage(m)) => assert!(m.contains(url), "{m}"),
                other => panic!("{url}: {other:?}"),
            }
        }
    }

    #[test]
    fn ops_are_named_the_way_reports_print_them() {
        let echo = drill_op("echo", None, None).expect("echo");
        assert_eq!(echo.label, "tools/call echo");
        let call = drill_op("call", Some("slow"), Some(r#"{"ms": 5}"#)).expect("call");
        assert_eq!(
            call.op,
            Operation::ToolsCall {
                name: "slow".into(),
                arguments: json!({"ms": 5})
            }
        );
        assert_eq!(
            drill_op("list", None, None).expect("list").label,
            "tools/list"
        );
    }

    #[test]
    fn failures_are_flattened_to_one_line() {
        assert_eq!(
            one_line(Failure::Runtime("a\r\n b\n\nc".into())),
            Failure::Runtime("a b c".into())
        );
    }
}
