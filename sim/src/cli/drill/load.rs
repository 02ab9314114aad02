//! The drill's run: the runtime, the probe, the VU loops, progress, and the
//! end (grace period, cancellation, closing the manager).

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::sync::watch;
use tokio::task::JoinSet;

use mcp_session::transport::{HttpConnector, TcpDialer, TransportError};
use mcp_session::{
    Clock, ErrorKind, Instant, Lease, Manager, ManagerBuilder, Mode, Negotiated, SessionConfig,
    SessionEra, SessionError, SessionMetrics, TokioClock, VersionPolicy,
};
use mcp_sim::vu::{self, CallFailure, MAX_INPUT_ROUNDS};

use super::stats::Stats;
use super::{format_duration, DrillOp, Failure, Plan};

/// The connector every drill uses: Streamable HTTP over tokio TCP.
type Conn = HttpConnector<TcpDialer>;

/// `clientInfo.name` the drill sends (in `initialize`, and in every
/// stateless-era request's `_meta`).
pub(crate) const CLIENT_NAME: &str = "mcp-sim-drill";

/// Progress refresh on a terminal.
const BAR_EVERY: Duration = Duration::from_millis(200);
/// Progress lines when stderr is not a terminal.
const LINE_EVERY: Duration = Duration::from_secs(1);

/// What the probe session found.
#[derive(Debug, Clone)]
pub(crate) struct Probe {
    /// The era the probe session spoke (what `--era` found).
    pub era: SessionEra,
    /// The protocol revision the server agreed to (stateless era: the one
    /// the probe's requests carried).
    pub protocol_version: String,
    /// The probe session's id (`ctx-N` for a stateless-era context).
    pub session_id: String,
    /// How long the probe's operation took.
    pub latency: Duration,
}

/// Everything a finished drill measured.
#[derive(Debug)]
pub(crate) struct Outcome {
    /// The probe before the load.
    pub probe: Probe,
    /// Every VU's counts, merged.
    pub stats: Stats,
    /// From the start of the load until the last VU stopped.
    pub elapsed: Duration,
    /// Whether Ctrl-C or SIGTERM ended the load early.
    pub interrupted: bool,
    /// The manager's metrics when the VUs had stopped, before it closed.
    pub at_end: SessionMetrics,
    /// The manager's metrics after it closed.
    pub metrics: SessionMetrics,
    /// The era and revision of the last session the load's manager made
    /// (`None` if it made none).
    pub negotiated: Option<Negotiated>,
    /// A VU task that did not end normally (a bug), if any.
    pub vu_failure: Option<String>,
}

/// Builds the runtime `--threads` asks for and runs the drill on it.
pub(crate) fn execute(plan: &Plan) -> Result<Outcome, Failure> {
    let mut builder = if plan.threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(plan.threads);
        b
    };
    let runtime = builder
        .enable_all()
        .build()
        .map_err(|e| Failure::Runtime(format!("mcp-sim drill: cannot start tokio: {e}")))?;
    runtime.block_on(drill(plan))
}

/// Where the load is: running, no new operations, or cancel what is in
/// flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Phase {
    Run,
    Stop,
    Cancel,
}

/// What every VU shares.
struct Shared {
    manager: Manager<Conn>,
    clock: Arc<dyn Clock>,
    op: mcp_session::transport::Operation,
    think: Duration,
    /// The longest an iteration should take: the acquire timeout (a pool
    /// wait) plus the transport's request timeout. One cancelled at the
    /// end after waiting longer is counted as failed (stuck), not
    /// cancelled.
    request_timeout: Duration,
    ok: AtomicU64,
    failed: AtomicU64,
}

impl Shared {
    /// What the VUs of `plan` share: the manager, the clock, the operation
    /// and the pacing, and zeroed counts.
    fn new(plan: &Plan, manager: Manager<Conn>, clock: Arc<dyn Clock>) -> Shared {
        Shared {
            manager,
            clock,
            op: plan.op.op.clone(),
            think: plan.think,
            request_timeout: Duration::from_millis(
                plan.http
                    .request_timeout_ms
                    .saturating_add(plan.config.acquire_timeout_ms),
            ),
            ok: AtomicU64::new(0),
            failed: AtomicU64::new(0),
        }
    }
}

/// The drill: probe the server, start the manager, run the VUs until the
/// deadline (or an interrupt), wind them down, close the manager.
async fn drill(plan: &Plan) -> Result<Outcome, Failure> {
    let clock: Arc<dyn Clock> = Arc::new(TokioClock::new());
    let connector = HttpConnector::new(TcpDialer, plan.http.clone(), clock.clone())
        .map_err(|e| Failure::Usage(format!("mcp-sim drill: bad --url: {e}")))?;
    let probe = probe(plan, &connector, &clock).await?;
    let manager = ManagerBuilder::new(plan.config.clone())
        .clock(clock.clone())
        .client_info(CLIENT_NAME, env!("CARGO_PKG_VERSION"))
        .start(connector)
        .map_err(|e| Failure::Runtime(format!("mcp-sim drill: cannot start the manager: {e}")))?;
    if !plan.quiet {
        announce(plan, &probe);
    }

    let shared = Arc::new(Shared::new(plan, manager.clone(), clock.clone()));
    let (phase_tx, phase_rx) = watch::channel(Phase::Run);
    let mut vus = JoinSet::new();
    let start = clock.now();
    for vu in 1..=u64::from(plan.vus) {
        vus.spawn(vu_loop(shared.clone(), vu, new_stats()?, phase_rx.clone()));
    }
    drop(phase_rx);

    let mut progress = Progress::new(plan);
    let interrupted = run_load(&shared, start + plan.duration, &mut progress, start).await;
    let (stats, vu_failure) = wind_down(&clock, plan.grace, &phase_tx, vus).await?;
    let elapsed = clock.now() - start;
    progress.finish();
    let at_end = manager.metrics();
    let negotiated = manager.negotiated();
    manager.close().await;
    let metrics = manager.metrics();
    Ok(Outcome {
        probe,
        stats,
        elapsed,
        interrupted,
        at_end,
        metrics,
        negotiated,
        vu_failure,
    })
}

/// The line that says what the probe found and what load comes next.
fn announce(plan: &Plan, probe: &Probe) {
    eprintln!(
        "mcp-sim drill: {} speaks MCP {} ({} era, --era {}; probe {} in {}); {} VUs, {} mode, {}",
        plan.url,
        super::shown::shown(&probe.protocol_version),
        probe.era,
        plan.config.era,
        plan.op.label,
        format_latency(probe.latency),
        plan.vus,
        plan.config.mode,
        format_duration(plan.duration),
    );
}

/// Empty counts (a VU's, or the total).
fn new_stats() -> Result<Stats, Failure> {
    Stats::new().map_err(|e| Failure::Runtime(format!("mcp-sim drill: {e}")))
}

/// The load: the VUs run until `deadline`, Ctrl-C or SIGTERM, with
/// progress shown meanwhile. Returns whether an interrupt ended it.
async fn run_load(
    shared: &Shared,
    deadline: Instant,
    progress: &mut Progress,
    start: Instant,
) -> bool {
    let clock = &shared.clock;
    let ctrl_c = interrupt().fuse();
    tokio::pin!(ctrl_c);
    loop {
        let now = clock.now();
        if now >= deadline {
            return false;
        }
        let wake = progress
            .every()
            .map_or(deadline, |e| (now + e).min(deadline));
        tokio::select! {
            biased;
            () = &mut ctrl_c => return true,
            () = clock.sleep_until(wake) => {}
        }
        progress.update(clock.now() - start, shared);
    }
}

/// The end: no new operations; those in flight get the `grace` period
/// (cut short by Ctrl-C or SIGTERM), then are cancelled. Returns every
/// VU's counts merged, and the first VU task that did not end normally.
async fn wind_down(
    clock: &Arc<dyn Clock>,
    grace: Duration,
    phase_tx: &watch::Sender<Phase>,
    mut vus: JoinSet<Stats>,
) -> Result<(Stats, Option<String>), Failure> {
    // A send fails only when every VU is gone already: nothing to tell.
    let _ = phase_tx.send(Phase::Stop);
    let grace_end = clock.now() + grace;
    let mut total = new_stats()?;
    let mut vu_failure = None;
    let mut cancelling = false;
    let ctrl_c = interrupt().fuse();
    tokio::pin!(ctrl_c);
    loop {
        tokio::select! {
            biased;
            () = &mut ctrl_c, if !cancelling => {
                cancelling = true;
                let _ = phase_tx.send(Phase::Cancel);
            }
            () = clock.sleep_until(grace_end), if !cancelling => {
                cancelling = true;
                let _ = phase_tx.send(Phase::Cancel);
            }
            joined = vus.join_next() => match joined {
                None => break,
                Some(Ok(stats)) => total.merge(stats),
                Some(Err(e)) => {
                    vu_failure.get_or_insert_with(|| format!("a VU task failed: {e}"));
                }
            },
        }
    }
    Ok((total, vu_failure))
}

/// Completes on Ctrl-C or, on Unix, SIGTERM (what `timeout`, `kill`,
/// Kubernetes and CI runners send): both end the drill the same way, with
/// the report, the JSON file and the sessions closed. Never completes if
/// neither can be watched.
async fn interrupt() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                biased;
                () = ctrl_c => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    ctrl_c.await;
}

/// One VU: acquire, operate, give back, think; until told to stop.
async fn vu_loop(
    sh: Arc<Shared>,
    vu: u64,
    mut stats: Stats,
    mut phase: watch::Receiver<Phase>,
) -> Stats {
    // Failures in a row: a VU whose server is down backs off (10 ms,
    // doubling, at most 1 s) instead of spinning on refused connects.
    let mut failing: u32 = 0;
    while *phase.borrow() == Phase::Run {
        let started = sh.clock.now();
        tokio::select! {
            biased;
            _ = phase.wait_for(|p| *p >= Phase::Cancel) => {
                let waited = sh.clock.now() - started;
                if waited > sh.request_timeout {
                    stats.stuck(waited);
                    sh.failed.fetch_add(1, Ordering::Relaxed);
                } else {
                    stats.cancelled += 1;
                }
                return stats;
            }
            (done, rounds) = iteration(&sh, vu) => {
                stats.input_rounds += u64::from(rounds);
                match done {
                    Ok((acquire, call)) => {
                        stats.succeeded(acquire, call);
                        sh.ok.fetch_add(1, Ordering::Relaxed);
                        failing = 0;
                    }
                    Err(e) => {
                        stats.failed_call(&e);
                        sh.failed.fetch_add(1, Ordering::Relaxed);
                        failing = failing.saturating_add(1);
                    }
                }
            }
        }
        let pause = if failing > 0 {
            sh.think.max(backoff(failing))
        } else {
            sh.think
        };
        if !pause.is_zero() {
            let until = sh.clock.now() + pause;
            tokio::select! {
                biased;
                _ = phase.wait_for(|p| *p >= Phase::Stop) => {}
                () = sh.clock.sleep_until(until) => {}
            }
        }
    }
    stats
}

/// The pause after `failing` failures in a row: 10 ms, doubling, at most
/// 1 s.
fn backoff(failing: u32) -> Duration {
    let exp = failing.saturating_sub(1).min(7);
    Duration::from_millis(10u64 << exp).min(Duration::from_secs(1))
}

/// One operation: acquire, call (answering `input_required` results as a
/// simulated VU does: [`vu::call`]), give the session back. `Ok` holds the
/// acquire and call times, the call's covering all its input rounds; it
/// is `Ok` only when the final result is complete. Also returns the input
/// rounds answered, whatever the outcome.
async fn iteration(sh: &Shared, vu: u64) -> (Result<(Duration, Duration), CallFailure>, u32) {
    let t0 = sh.clock.now();
    let mut lease = match sh.manager.acquire(vu).await {
        Ok(lease) => lease,
        Err(e) => return (Err(CallFailure::Session(e)), 0),
    };
    let t1 = sh.clock.now();
    let (result, rounds) = vu::call(&mut lease, &sh.op).await;
    let t2 = sh.clock.now();
    let done = match result {
        Ok(_) => {
            lease.release();
            Ok((t1 - t0, t2 - t1))
        }
        Err(e) => {
            give_back_failed(lease, &e);
            Err(e)
        }
    };
    (done, rounds)
}

/// Gives back a session whose operation failed: invalidated when the
/// server lost it or changed era under it (the next one counts as a
/// reconnect, and the manager probes the era again), dropped (closed, not
/// reused) when the connection broke or timed out mid-request, else
/// released (the server answered — if only to ask for input once too
/// often; the session is fine).
fn give_back_failed(lease: Lease<Conn>, failure: &CallFailure) {
    let CallFailure::Session(e) = failure else {
        return lease.release();
    };
    match &e.kind {
        _ if e.should_invalidate() => lease.invalidate(),
        ErrorKind::Operation(
            TransportError::Timeout { .. }
            | TransportError::Closed { .. }
            | TransportError::StreamLost,
        ) => drop(lease),
        _ => lease.release(),
    }
}

/// Makes one session in the plan's era setting, runs the operation once,
/// closes it: the server is reachable and speaks MCP (in the era asked
/// for), or the error says what it does instead.
async fn probe(plan: &Plan, connector: &Conn, clock: &Arc<dyn Clock>) -> Result<Probe, Failure> {
    let config = SessionConfig {
        era: plan.config.era,
        modern_protocol_versions: plan.config.modern_protocol_versions.clone(),
        protocol_version: plan.config.protocol_version.clone(),
        protocol_version_policy: plan.config.protocol_version_policy,
        ..SessionConfig::with_mode(Mode::PerRequest)
    };
    let manager = ManagerBuilder::new(config)
        .clock(clock.clone())
        .client_info(CLIENT_NAME, env!("CARGO_PKG_VERSION"))
        .start(connector.clone())
        .map_err(|e| Failure::Runtime(format!("mcp-sim drill: cannot start the manager: {e}")))?;
    // A 5xx is the server's answer of the moment, not a wrong URL: try
    // again (a flaky server is still worth a drill).
    let mut attempt = 1;
    let result = loop {
        let result = probe_once(&manager, &plan.op, clock).await;
        match result {
            Err(CallFailure::Session(e)) if attempt < PROBE_ATTEMPTS && is_server_error(&e) => {
                attempt += 1;
                clock.sleep_until(clock.now() + PROBE_PAUSE).await;
            }
            other => break other,
        }
    };
    manager.close().await;
    result.map_err(|failure| {
        Failure::Runtime(match failure {
            CallFailure::Session(e) => probe_failure(&plan.url, &plan.op.label, &e),
            CallFailure::InputRoundsExceeded => input_rounds_failure(&plan.url, &plan.op.label),
        })
    })
}

/// How many times the probe is tried when the server answers 5xx.
const PROBE_ATTEMPTS: u32 = 3;
/// The pause between two probe attempts.
const PROBE_PAUSE: Duration = Duration::from_millis(100);

fn is_server_error(e: &SessionError) -> bool {
    matches!(
        &e.kind,
        ErrorKind::Connect(TransportError::ServerError { .. })
            | ErrorKind::Initialize(TransportError::ServerError { .. })
            | ErrorKind::Discover(TransportError::ServerError { .. })
            | ErrorKind::InitializedNotification(TransportError::ServerError { .. })
            | ErrorKind::Operation(TransportError::ServerError { .. })
    )
}

/// The probe's one operation, its input rounds answered as the load's are.
async fn probe_once(
    manager: &Manager<Conn>,
    op: &DrillOp,
    clock: &Arc<dyn Clock>,
) -> Result<Probe, CallFailure> {
    let mut lease = manager.acquire(0).await.map_err(CallFailure::Session)?;
    let info = lease.info();
    let t0 = clock.now();
    let (result, _rounds) = vu::call(&mut lease, &op.op).await;
    let latency = clock.now() - t0;
    match result {
        Ok(_) => {
            lease.release();
            Ok(Probe {
                era: info.era,
                protocol_version: info.protocol_version,
                session_id: info.id,
                latency,
            })
        }
        Err(e) => {
            give_back_failed(lease, &e);
            Err(e)
        }
    }
}

/// The one line a probe prints whose operation still asked for input
/// after the last round the drill answers.
pub(crate) fn input_rounds_failure(url: &str, op: &str) -> String {
    format!(
        "mcp-sim drill: {url}: the probe's {op} still answered input_required after \
         {MAX_INPUT_ROUNDS} rounds of input (MRTR); the drill answers at most {MAX_INPUT_ROUNDS}"
    )
}

/// The one line a failed probe prints: the URL and what went wrong.
pub(crate) fn probe_failure(url: &str, op: &str, e: &SessionError) -> String {
    match &e.kind {
        ErrorKind::Connect(t) => format!("mcp-sim drill: cannot reach {url}: {t}"),
        ErrorKind::Initialize(t) => {
            format!("mcp-sim drill: {url} does not answer as an MCP server: initialize failed: {t}")
        }
        ErrorKind::Discover(TransportError::NotModern { version, answer }) => format!(
            "mcp-sim drill: {url} does not speak MCP {version} (stateless): its answer to \
             server/discover was {answer} (--era auto or --era legacy drills it in the legacy era)"
        ),
        ErrorKind::Discover(t) => format!(
            "mcp-sim drill: {url} does not answer as an MCP server: server/discover failed: {t}"
        ),
        ErrorKind::VersionNegotiation { policy, .. } => {
            let lenient = match policy {
                VersionPolicy::Strict => "--version-policy supported or none is more lenient",
                VersionPolicy::Supported => {
                    "--version-policy none accepts any revision, or ask for the one answered \
                     with --protocol-version"
                }
                VersionPolicy::None => "no policy is more lenient",
            };
            format!("mcp-sim drill: {url}: {} ({lenient})", e.kind)
        }
        ErrorKind::InitializedNotification(t) => {
            format!("mcp-sim drill: {url}: notifications/initialized failed: {t}")
        }
        ErrorKind::SessionExpired => format!(
            "mcp-sim drill: {url}: the server lost the new probe session at its first {op} (404)"
        ),
        ErrorKind::Operation(TransportError::NotInModernEra { method }) => format!(
            "mcp-sim drill: {url} speaks MCP 2026-07-28 (stateless), where {method} does not \
             exist: the probe's {op} was not sent (use --op list or --op discover)"
        ),
        ErrorKind::Operation(
            t @ (TransportError::MethodNotFound { .. }
            | TransportError::JsonRpc { code: -32601, .. }),
        ) if op == "server/discover" => format!(
            "mcp-sim drill: {url}: the probe's {op} failed: {t} (a legacy-era server has no \
             server/discover; use --op list)"
        ),
        ErrorKind::Operation(t) => format!("mcp-sim drill: {url}: the probe's {op} failed: {t}"),
        _ => format!("mcp-sim drill: {url}: the probe failed: {e}"),
    }
}

/// A latency for people: `850ns`, `41.2µs`, `0.41ms`, `12.30ms`, `1.52s`.
pub(crate) fn format_latency(d: Duration) -> String {
    let nanos = d.as_nanos();
    if nanos < 1_000 {
        format!("{nanos}ns")
    } else if nanos < 100_000 {
        format!("{:.1}µs", nanos as f64 / 1_000.0)
    } else if nanos < 1_000_000_000 {
        format!("{:.2}ms", nanos as f64 / 1_000_000.0)
    } else {
        format!("{:.2}s", d.as_secs_f64())
    }
}

/// Live progress on stderr: a bar on a terminal, lines otherwise, or none.
struct Progress {
    bar: Option<ProgressBar>,
    lines: bool,
    total: Duration,
    last_done: u64,
    last_at: Duration,
}

impl Progress {
    fn new(plan: &Plan) -> Self {
        let tty = !plan.quiet && std::io::stderr().is_terminal();
        let bar = tty.then(|| {
            let len = u64::try_from(plan.duration.as_millis()).unwrap_or(u64::MAX);
            let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
            if let Ok(style) = ProgressStyle::with_template("{bar:30} {msg}") {
                bar.set_style(style.progress_chars("=> "));
            }
            bar
        });
        Progress {
            bar,
            lines: !plan.quiet && !tty,
            total: plan.duration,
            last_done: 0,
            last_at: Duration::ZERO,
        }
    }

    /// How often to update, `None` for never.
    fn every(&self) -> Option<Duration> {
        if self.bar.is_some() {
            Some(BAR_EVERY)
        } else if self.lines {
            Some(LINE_EVERY)
        } else {
            None
        }
    }

    fn update(&mut self, elapsed: Duration, sh: &Shared) {
        if self.bar.is_none() && !self.lines {
            return;
        }
        let ok = sh.ok.load(Ordering::Relaxed);
        let failed = sh.failed.load(Ordering::Relaxed);
        let done = ok + failed;
        let span = elapsed.saturating_sub(self.last_at).as_secs_f64();
        let rate = if span > 0.0 {
            (done - self.last_done.min(done)) as f64 / span
        } else {
            0.0
        };
        self.last_done = done;
        self.last_at = elapsed;
        let live = sh.manager.metrics().live_sessions;
        let text = format!(
            "{}/{}  ok {ok}  failed {failed}  {rate:.0} op/s  live sessions {live}",
            format_elapsed(elapsed),
            format_duration(self.total),
        );
        match &self.bar {
            Some(bar) => {
                bar.set_position(u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX));
                bar.set_message(text);
            }
            None => eprintln!("mcp-sim drill: {text}"),
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// Elapsed time to a tenth of a second: `3.0s`.
fn format_elapsed(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;
    use mcp_session::Op;

    #[test]
    fn backoff_doubles_from_10ms_to_at_most_1s() {
        let ms = |n| backoff(n).as_millis();
        assert_eq!((ms(1), ms(2), ms(3), ms(7)), (10, 20, 40, 640));
        assert_eq!((ms(8), ms(9), ms(u32::MAX)), (1000, 1000, 1000));
    }

    #[test]
    fn latencies_print_in_a_readable_unit() {
        assert_eq!(format_latency(Duration::from_nanos(850)), "850ns");
        assert_eq!(format_latency(Duration::from_nanos(41_240)), "41.2µs");
        assert_eq!(format_latency(Duration::from_micros(412)), "0.41ms");
        assert_eq!(format_latency(Duration::from_micros(12_300)), "12.30ms");
        assert_eq!(format_latency(Duration::from_millis(1_520)), "1.52s");
    }

    #[test]
    fn probe_failures_name_the_url_and_what_went_wrong() {
        let url = "http://127.0.0.1:1/mcp";
        let connect = SessionError::new(
            Op::Acquire,
            ErrorKind::Connect(TransportError::connect("refused")),
        );
        assert_eq!(
            probe_failure(url, "ping", &connect),
            "mcp-sim drill: cannot reach http://127.0.0.1:1/mcp: connect: refused"
        );
        let init = SessionError::new(
            Op::Acquire,
            ErrorKind::Initialize(TransportError::Http { status: 404 }),
        );
        assert_eq!(
            probe_failure(url, "ping", &init),
            "mcp-sim drill: http://127.0.0.1:1/mcp does not answer as an MCP server: \
             initialize failed: HTTP status 404"
        );
        let op = SessionError::new(
            Op::Use,
            ErrorKind::Operation(TransportError::JsonRpc {
                code: -32601,
                message: "Method not found".into(),
            }),
        );
        assert_eq!(
            probe_failure(url, "tools/list", &op),
            "mcp-sim drill: http://127.0.0.1:1/mcp: the probe's tools/list failed: \
             JSON-RPC error -32601: Method not found"
        );
        let not_modern = SessionError::new(
            Op::Acquire,
            ErrorKind::Discover(TransportError::NotModern {
                version: "2026-07-28".into(),
                answer: "HTTP 400 without a JSON-RPC error".into(),
            }),
        );
        assert_eq!(
            probe_failure(url, "tools/list", &not_modern),
            "mcp-sim drill: http://127.0.0.1:1/mcp does not speak MCP 2026-07-28 (stateless): \
             its answer to server/discover was HTTP 400 without a JSON-RPC error (--era auto or \
             --era legacy drills it in the legacy era)"
        );
        let ping = SessionError::new(
            Op::Use,
            ErrorKind::Operation(TransportError::NotInModernEra { method: "ping" }),
        );
        assert_eq!(
            probe_failure(url, "ping", &ping),
            "mcp-sim drill: http://127.0.0.1:1/mcp speaks MCP 2026-07-28 (stateless), where ping \
             does not exist: the probe's ping was not sent (use --op list or --op discover)"
        );
        let discover = SessionError::new(
            Op::Use,
            ErrorKind::Operation(TransportError::MethodNotFound {
                method: "server/discover".into(),
                status: 200,
            }),
        );
        assert!(probe_failure(url, "server/discover", &discover)
            .ends_with("(a legacy-era server has no server/discover; use --op list)"));
        assert!(is_server_error(&SessionError::new(
            Op::Use,
            ErrorKind::Operation(TransportError::ServerError { status: 503 })
        )));
        assert!(!is_server_error(&op));
    }
}
