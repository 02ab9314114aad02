//! `mcp-sim serve`: the simulated MCP server on real loopback TCP.
//!
//! The server that the simulation runs inside turmoil hosts is the same code
//! that runs here, on a `tokio::net::TcpListener` (see `mcp_sim::listener`):
//! only where connections come from differs. Serving it for real lets
//! anything that speaks MCP reach it — the official conformance suite
//! (`scripts/conformance-server.sh`), other clients, our own `drill` — so
//! the server the simulation trusts is checked by implementations we did
//! not write.
//!
//! # Loopback only
//!
//! The server is a test fixture with fault switches, not a service: it
//! binds loopback addresses only (127.0.0.0/8, `::1`, or `localhost`), and
//! any other `--host` is a usage error. Nothing it serves leaves the
//! machine. It also refuses (403) requests whose `Host` or `Origin` header
//! names another host (`ServerConfig::localhost_only`): a web page that
//! points its own DNS name at 127.0.0.1 cannot reach it through a browser.
//!
//! # Tools
//!
//! Besides its own four tools (`echo`, `slow`, `fail`, `jsonrpc_error`) it
//! offers the fixtures the official conformance suite's server scenarios
//! call by name — `test_*` tools (text, image, audio, embedded resources,
//! logging, progress, MRTR), `test://` resources and templates, `test_*`
//! prompts, completions, `subscriptions/listen`
//! (`ServerConfig::conformance_tools`) — and starts its legacy SSE answers
//! with a priming event carrying `retry:` (`ServerConfig::sse_priming`).
//!
//! # Eras
//!
//! `--era dual` (the default) serves both eras of MCP, routed by the
//! `MCP-Protocol-Version` header as the Python SDK 2.x server routes them:
//! a stateless-era (2026-07-28) request is served without a session,
//! `initialize` still opens one. `--era legacy` speaks 2025-11-25 and
//! older only; `--era modern` 2026-07-28 only (see
//! `mcp_sim::server::modern`).
//!
//! # Fault profiles
//!
//! `--faults` picks one of a few canned behaviours, each built from the
//! server's own switches (`mcp_sim::server::hooks`) or limits, so a real
//! client can meet the failures the simulation injects:
//!
//! | profile | behaviour |
//! |---|---|
//! | `none` | a well-behaved server (the default) |
//! | `flaky` | every 5th HTTP request, of any kind, is answered 503 |
//! | `expire` | a session expires after 2 s without a request (then 404) |
//!
//! `--input-rounds N` makes every stateless-era `tools/call` answer
//! `input_required` (MRTR) for N rounds before the tool runs
//! (`Server::ask_input_rounds_next`), so a client's input rounds can be
//! drilled.
//!
//! # Time and randomness
//!
//! Outside a simulation the server's clock is tokio's, which is real time
//! here, so expiry happens in wall-clock time. The choices the seed makes
//! (JSON or SSE, where bodies are cut) still come from `--seed`: the same
//! seed and the same requests in the same order give the same answers.

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use clap::Args;

use mcp_sim::server::{Server, ServerConfig, ServerEra};

use super::Failure;

/// The options of `mcp-sim serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// TCP port to listen on (0: any free port; the line printed at start
    /// names the one chosen).
    #[arg(long)]
    pub port: u16,

    /// Loopback address to listen on: 127.0.0.1 (or any 127.x.y.z), ::1,
    /// or localhost. Anything else is refused.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,

    /// Fault profile: none (well-behaved), flaky (every 5th request is
    /// answered 503), expire (sessions expire after 2 s idle).
    #[arg(long, value_name = "PROFILE", default_value = "none")]
    pub faults: String,

    /// Seed of the server's random choices (JSON or SSE, body cuts).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,

    /// Share of answers sent as SSE rather than JSON, from 0 to 1.
    #[arg(long, value_name = "R", default_value_t = 0.5, value_parser = ratio)]
    pub sse_ratio: f64,

    /// `notifications/message` events sent before the response in each SSE
    /// answer (0 to 100).
    #[arg(long, value_name = "N", default_value_t = 0,
          value_parser = clap::value_parser!(u32).range(0..=i64::from(MAX_NOTIFICATIONS)))]
    pub notifications: u32,

    /// Cut each answer body into at most this many pieces, each written on
    /// its own (0 or 1: whole; at most 64).
    #[arg(long, value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(0..=i64::from(MAX_SPLIT_CHUNKS)))]
    pub split_chunks: u32,

    /// Most live sessions, 1 to 1 000 000; an `initialize` beyond it is
    /// answered 503. Sessions are bounded by default: a client that never
    /// closes its sessions cannot grow the server without end.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_SESSIONS,
          value_parser = clap::value_parser!(u64).range(1..=MAX_SESSIONS))]
    pub max_sessions: u64,

    /// Session time to live from creation, in milliseconds (1 to 30 days).
    #[arg(long, value_name = "MS",
          value_parser = clap::value_parser!(u64).range(1..=MAX_MS))]
    pub session_ttl_ms: Option<u64>,

    /// Session idle limit, in milliseconds, 1 to 30 days (overrides the
    /// `expire` profile's 2000).
    #[arg(long, value_name = "MS",
          value_parser = clap::value_parser!(u64).range(1..=MAX_MS))]
    pub session_idle_ms: Option<u64>,

    /// Answer an unknown session with the TypeScript SDK's 400 "No valid
    /// session ID" instead of 404.
    #[arg(long)]
    pub unknown_session_400: bool,

    /// Which eras of MCP to speak: legacy (2025-11-25 and older: a
    /// stateless-era request gets the TypeScript SDK 1.x's 400 "Server not
    /// initialized"), dual (both, routed by the MCP-Protocol-Version header
    /// as the Python SDK 2.x does), modern (2026-07-28 only: initialize is
    /// refused).
    #[arg(long, value_name = "ERA", default_value = "dual")]
    pub era: String,

    /// How long a client may take to send a request's headers, in
    /// milliseconds (1 ms to 30 days); a connection that stalls is closed.
    #[arg(long, value_name = "MS", default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(1..=MAX_MS))]
    pub header_timeout_ms: u64,

    /// How long a client may take to send a request's body once its
    /// headers are in, in milliseconds (1 ms to 30 days); beyond it the
    /// request is answered 408.
    #[arg(long, value_name = "MS", default_value_t = 30_000,
          value_parser = clap::value_parser!(u64).range(1..=MAX_MS))]
    pub body_timeout_ms: u64,

    /// Most connections served at once, 1 to 100 000; more wait in the
    /// listen backlog until one ends.
    #[arg(long, value_name = "N", default_value_t = 1_024,
          value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub max_connections: u64,

    /// `ttlMs` of the stateless era's server/discover and tools/list
    /// results, in milliseconds (0: stale at once).
    #[arg(long, value_name = "MS", default_value_t = 0)]
    pub discover_ttl_ms: u64,

    /// Answer every stateless-era tools/call `input_required` (MRTR) for
    /// this many rounds before the tool runs (0: never; at most 16). A
    /// round asks for a boolean elicitation when the request declares
    /// that capability, else for nothing but its requestState back.
    #[arg(long, value_name = "N", default_value_t = 0,
          value_parser = clap::value_parser!(u32).range(0..=i64::from(MAX_INPUT_ROUNDS)))]
    pub input_rounds: u32,
}

/// The most rounds `--input-rounds` takes.
pub const MAX_INPUT_ROUNDS: u32 = 16;

/// The most `notifications/message` events `--notifications` takes.
pub const MAX_NOTIFICATIONS: u32 = 100;
/// The most pieces `--split-chunks` takes: more only multiplies writes.
pub const MAX_SPLIT_CHUNKS: u32 = 64;
/// `--max-sessions` when not given.
pub const DEFAULT_MAX_SESSIONS: u64 = 10_000;
/// The largest `--max-sessions`.
pub const MAX_SESSIONS: u64 = 1_000_000;
/// The longest `--session-ttl-ms` and `--session-idle-ms`: 30 days, the
/// library's own bound on a duration.
const MAX_MS: u64 = mcp_session::MAX_DURATION_MS;

/// Parses a share in 0..=1.
fn ratio(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(r) if (0.0..=1.0).contains(&r) => Ok(r),
        _ => Err(format!("expected a number from 0 to 1, got '{s}'")),
    }
}

/// A canned fault behaviour for `--faults` (the table in the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultProfile {
    /// A well-behaved server.
    None,
    /// Every [`FLAKY_EVERY`]-th HTTP request is answered
    /// [`FLAKY_STATUS`].
    Flaky,
    /// Sessions expire after [`EXPIRE_IDLE`] without a request.
    Expire,
}

/// `flaky`: the period, in requests, of the injected failures.
pub const FLAKY_EVERY: u32 = 5;
/// `flaky`: the status of the injected failures.
pub const FLAKY_STATUS: u16 = 503;
/// `expire`: the idle limit of a session.
pub const EXPIRE_IDLE: Duration = Duration::from_secs(2);

impl FaultProfile {
    /// Every profile, in the order `--help` and errors list them.
    pub const ALL: [FaultProfile; 3] = [
        FaultProfile::None,
        FaultProfile::Flaky,
        FaultProfile::Expire,
    ];

    /// The name `--faults` takes.
    pub fn name(self) -> &'static str {
        match self {
            FaultProfile::None => "none",
            FaultProfile::Flaky => "flaky",
            FaultProfile::Expire => "expire",
        }
    }

    /// The profile called `name`, or the usage error naming it and the
    /// accepted ones.
    pub fn parse(name: &str) -> Result<FaultProfile, Failure> {
        FaultProfile::ALL
            .into_iter()
            .find(|p| p.name() == name)
            .ok_or_else(|| {
                let accepted: Vec<&str> = FaultProfile::ALL.iter().map(|p| p.name()).collect();
                Failure::Usage(format!(
                    "mcp-sim serve: unknown fault profile '{name}' (accepted: {})",
                    accepted.join(", ")
                ))
            })
    }

    /// Sets the limits this profile needs in `cfg` (before the server is
    /// built); `idle_set` says the user chose the idle limit explicitly.
    fn configure(self, cfg: &mut ServerConfig, idle_set: bool) {
        if self == FaultProfile::Expire && !idle_set {
            cfg.session_idle = Some(EXPIRE_IDLE);
        }
    }

    /// Flips the switches this profile needs on a built server.
    fn arm(self, server: &Server) {
        if self == FaultProfile::Flaky {
            server.fail_every(FLAKY_EVERY, FLAKY_STATUS);
        }
    }
}

/// The address to bind for `--host host --port port`, if it is loopback.
pub fn loopback_addr(host: &str, port: u16) -> Result<SocketAddr, Failure> {
    let ip = if host.eq_ignore_ascii_case("localhost") {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else {
        // `[::1]` as in a URL is accepted too.
        let bare = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        bare.parse::<IpAddr>().map_err(|_| {
            Failure::Usage(format!(
                "mcp-sim serve: --host must be a loopback IP address (127.0.0.1, ::1) or localhost, not '{host}'"
            ))
        })?
    };
    if !ip.is_loopback() {
        return Err(Failure::Usage(format!(
            "mcp-sim serve: refusing to listen on '{host}': only loopback addresses are served (127.0.0.0/8, ::1, localhost)"
        )));
    }
    Ok(SocketAddr::new(ip, port))
}

/// Checks the arguments, then serves until Ctrl-C.
pub fn run(args: ServeArgs) -> Result<(), Failure> {
    let profile = FaultProfile::parse(&args.faults)?;
    let era: ServerEra = args
        .era
        .parse()
        .map_err(|e| Failure::Usage(format!("mcp-sim serve: --era: {e}")))?;
    if args.discover_ttl_ms > mcp_session::MAX_DURATION_MS {
        return Err(Failure::Usage(format!(
            "mcp-sim serve: --discover-ttl-ms {} is above the maximum of {}",
            args.discover_ttl_ms,
            mcp_session::MAX_DURATION_MS
        )));
    }
    let addr = loopback_addr(&args.host, args.port)?;
    let mut cfg = ServerConfig {
        era,
        discover_ttl_ms: args.discover_ttl_ms,
        seed: args.seed,
        sse_ratio: args.sse_ratio,
        notifications_before_response: args.notifications,
        split_chunks: args.split_chunks,
        session_ttl: args.session_ttl_ms.map(Duration::from_millis),
        session_idle: args.session_idle_ms.map(Duration::from_millis),
        max_sessions: Some(usize::try_from(args.max_sessions).unwrap_or(usize::MAX)),
        header_read_timeout: Some(Duration::from_millis(args.header_timeout_ms)),
        body_read_timeout: Some(Duration::from_millis(args.body_timeout_ms)),
        max_connections: Some(usize::try_from(args.max_connections).unwrap_or(usize::MAX)),
        answer_400_for_unknown_session: args.unknown_session_400,
        localhost_only: true,
        conformance_tools: true,
        sse_priming: true,
        ..ServerConfig::default()
    };
    profile.configure(&mut cfg, args.session_idle_ms.is_some());
    // One thread is plenty for a test fixture, and keeps the serving order
    // of concurrent requests as simple as in the simulation.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Runtime(format!("mcp-sim serve: cannot start tokio: {e}")))?;
    runtime.block_on(serve(addr, cfg, profile, args.input_rounds))
}

/// Binds `addr`, prints the listening line, and serves until Ctrl-C (or
/// until accepting fails).
async fn serve(
    addr: SocketAddr,
    cfg: ServerConfig,
    profile: FaultProfile,
    input_rounds: u32,
) -> Result<(), Failure> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| Failure::Runtime(format!("mcp-sim serve: cannot listen on {addr}: {e}")))?;
    let local = listener
        .local_addr()
        .map_err(|e| Failure::Runtime(format!("mcp-sim serve: no local address: {e}")))?;
    let path = cfg.path.clone();
    let server = Server::new(cfg);
    profile.arm(&server);
    if input_rounds > 0 {
        // Every call, for as long as the server runs.
        server.ask_input_rounds_next(u32::MAX, input_rounds);
    }
    // The one line scripts and tests wait for: it names the chosen port.
    let mut out = std::io::stdout().lock();
    let printed = writeln!(out, "mcp-sim serve: listening on http://{local}{path}")
        .and_then(|()| out.flush());
    drop(out);
    printed.map_err(|e| Failure::Runtime(format!("mcp-sim serve: cannot write to stdout: {e}")))?;
    tokio::select! {
        biased;
        signal = tokio::signal::ctrl_c() => match signal {
            Ok(()) => {
                eprintln!("mcp-sim serve: stopped (Ctrl-C)");
                Ok(())
            }
            Err(e) => Err(Failure::Runtime(format!(
                "mcp-sim serve: cannot wait for Ctrl-C: {e}"
            ))),
        },
        served = server.serve(listener) => Err(Failure::Runtime(match served {
            Ok(()) => "mcp-sim serve: the server stopped".to_owned(),
            Err(e) => format!("mcp-sim serve: accepting connections failed: {e}"),
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_parse_by_name_and_unknown_ones_list_the_accepted() {
        for p in FaultProfile::ALL {
            assert_eq!(FaultProfile::parse(p.name()), Ok(p));
        }
        assert_eq!(
            FaultProfile::parse("chaos"),
            Err(Failure::Usage(
                "mcp-sim serve: unknown fault profile 'chaos' (accepted: none, flaky, expire)"
                    .into()
            ))
        );
    }

    #[test]
    fn only_loopback_is_served() {
        assert_eq!(
            loopback_addr("127.0.0.1", 8080),
            Ok(([127, 0, 0, 1], 8080).into())
        );
        assert_eq!(
            loopback_addr("localhost", 1),
            Ok(([127, 0, 0, 1], 1).into())
        );
        assert!(loopback_addr("127.3.2.1", 1).is_ok());
        assert!(loopback_addr("::1", 1).is_ok());
        assert!(loopback_addr("[::1]", 1).is_ok());
        for bad in ["0.0.0.0", "10.1.2.3", "::", "example.com", ""] {
            match loopback_addr(bad, 1) {
                Err(Failure::Usage(m)) => assert!(m.contains(&format!("'{bad}'")), "{m}"),
                other => panic!("{bad}: {other:?}"),
            }
        }
    }

    #[test]
    fn profiles_set_their_limits_and_explicit_options_win() {
        let mut cfg = ServerConfig::default();
        FaultProfile::Expire.configure(&mut cfg, false);
        assert_eq!(cfg.session_idle, Some(EXPIRE_IDLE));
        let mut cfg = ServerConfig {
            session_idle: Some(Duration::from_millis(10)),
            ..ServerConfig::default()
        };
        FaultProfile::Expire.configure(&mut cfg, true);
        assert_eq!(cfg.session_idle, Some(Duration::from_millis(10)));
        let server = Server::new(ServerConfig::default());
        FaultProfile::Flaky.arm(&server);
        assert_eq!(server.hooks().fail_every, FLAKY_EVERY);
        assert_eq!(server.hooks().fail_status, FLAKY_STATUS);
    }
}
