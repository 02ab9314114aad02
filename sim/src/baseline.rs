//! A bare hyper-over-turmoil request loop: the baseline the sweep benchmark
//! (`cargo bench -p mcp-sim --bench sweep`) measures our full stack against.
//!
//! # What it is
//!
//! A turmoil [`Sim`](turmoil::Sim) of the same shape as a scenario run (see
//! [`crate::topology`]): one server host ([`SERVER_HOST`], port [`PORT`])
//! and worker hosts named as a schedule names them ([`worker_host`]), each
//! running its VUs as tokio tasks, with the same turmoil seed, tick and link
//! latency. Each VU opens ONE HTTP/1.1 connection to the server and sends
//! its share of [`BareLoop::requests`] POSTs of a JSON-RPC
//! `tools/call` body on it, one after the other, reading each answer
//! whole. The server is hyper's HTTP/1.1 server answering every request
//! with the same small JSON-RPC result. No session
//! manager, no MCP session (no `initialize`, no DELETE), no trace, no
//! audit, no faults.
//!
//! # What makes the comparison fair
//!
//! The benchmark compares wall time per *exchange*: one HTTP request
//! answered by the server. For a scenario run, that is
//! [`Report::server_requests`] (every `initialize`, `initialized`
//! notification, operation, SSE resumption and DELETE the simulated server
//! handled), and [`BareLoop::matching`] builds a bare loop that makes
//! exactly as many, spread evenly over the same VUs (rounding up would
//! flatter the bare loop: with both sides' wall time mostly spent on the
//! same simulated time, a few extra exchanges lower its cost per
//! exchange without costing it more). Per exchange, both sides then pay
//! the same simulated network (turmoil TCP, the same latency range, the
//! same hosts) and the same HTTP/1.1 code (hyper on both ends, bodies read
//! whole, connections driven from one server task as
//! [`crate::server::Server::serve`] drives them); what is
//! left in the difference is our stack: the session manager and its mode,
//! the Streamable HTTP transport (JSON-RPC encoding, SSE parsing, timeouts
//! on the clock), the event sink and trace, the simulated MCP server's
//! logic and log (and its seeded answer formats: SSE framing, bodies cut
//! into pieces that each leave in a write of their own), the fault plan,
//! schedule generation and the audit.
//!
//! Comparing per *VU operation* instead ([`Report::operations`]) would
//! charge our stack for MCP's own protocol cost: a `per_request` operation
//! is four exchanges (initialize, initialized, the call, DELETE) on a new
//! connection. The benchmark prints that number too, but the ratio is per
//! exchange.
//!
//! What the baseline does *not* match by default, and which is therefore
//! counted as our cost (the network's *shape*: how many TCP segments an
//! exchange takes, each one turmoil work on both ends):
//!
//! - connections: the bare loop keeps one per VU for its whole life (like
//!   `reuse` mode); our transport opens one per MCP session, so modes that
//!   make many sessions (`per_request`, `churn`) also pay for connection
//!   setup and teardown. [`BareLoop::requests_per_connection`] gives the
//!   bare loop the same churn;
//! - answer pieces: the bare server answers in one write; the simulated
//!   server cuts a schedule-chosen share of its answers into up to three
//!   pieces, each its own segment (so the client's reader meets split
//!   lines and values). [`BareLoop::response_pieces`] cuts the bare
//!   answers too.
//!
//! The benchmark can run the bare loop with both matched as well
//! (`MCP_SIM_BENCH_SHAPE=1`): what is left then is our CPU alone. And it
//! matches, always:
//!
//! - simulated time: the bare loop sends the next request as soon as the
//!   answer is in, unless [`BareLoop::think`] says otherwise. Each turmoil
//!   tick of simulated time costs wall time even when nothing happens, so
//!   [`BareLoop::matching`] sets a think time that stretches the bare
//!   loop's simulated time to the run's (its VUs' think times and slow
//!   tools): both sides then pay for about as many ticks.
//!
//! # Determinism
//!
//! The same [`BareLoop`] gives the same simulated time and counts: turmoil
//! is seeded, time is simulated time only, tasks and hosts are registered in
//! a fixed order, the counters are plain per-simulation counts, and nothing
//! reads the wall clock (the benchmark does, outside the simulation).

use std::convert::Infallible;
use std::error::Error;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream::{FuturesUnordered, StreamExt};
use http_body_util::{BodyExt, Either, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::header::{HeaderValue, ACCEPT, CONTENT_TYPE, HOST};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;

use crate::run::Report;
use crate::schedule::{worker_host, SERVER_HOST};
use crate::server::encode::Chunked;
use crate::topology::{Latency, PORT};

/// The bare server's answer to every request: a `tools/call` result of the
/// size the simulated server's `echo` answers.
const RESULT: &[u8] =
    br#"{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"worker-1/1/1"}]}}"#;

/// The endpoint's path (the simulated server's default).
const PATH: &str = "/mcp";

/// A bare request loop to run: how many VUs on how many workers, how many
/// requests in all (spread evenly over the VUs), on what network.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BareLoop {
    /// VUs on each worker host (worker `i + 1` runs `vus_per_worker[i]`).
    pub vus_per_worker: Vec<usize>,
    /// Requests the VUs send in all: each VU sends this divided by the
    /// number of VUs, and the first VUs (in worker order) one more each
    /// for the remainder ([`BareLoop::requests_of`]).
    pub requests: usize,
    /// Simulated time each VU waits after each answer (default zero).
    pub think: Duration,
    /// A VU opens a new connection after this many requests on one
    /// (`None`, the default: one connection for the VU's whole life).
    pub requests_per_connection: Option<usize>,
    /// The server sends each answer in this many pieces (at least 1), each
    /// a write of its own, with chunked transfer encoding when more than
    /// one, as the simulated server sends a body it cuts
    /// ([`crate::server::encode::Chunked`]). Default 1: one write with a
    /// `Content-Length`.
    pub response_pieces: usize,
    /// The links' latency.
    pub latency: Latency,
    /// turmoil's seed.
    pub seed: u64,
    /// The simulation's bound on simulated time (a run still going then
    /// fails). Default 10 minutes.
    pub duration: Duration,
}

/// What a bare loop did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BareReport {
    /// Requests answered with 200 and read whole, counted by the VUs.
    pub ops: u64,
    /// Requests the server handled, counted by the server.
    pub served: u64,
    /// Simulated time when the run ended (ms).
    pub simulated_ms: u64,
}

/// Runs a bare loop of `ops_per_vu` requests per VU, `vus_per_worker[i]`
/// VUs on worker `i + 1`, over links of `latency`, turmoil seeded with
/// `seed`, no think time (see [`BareLoop`]).
///
/// # Panics
///
/// If the simulation fails (it does not, short of a bug: there are no
/// faults).
pub fn run_bare(
    vus_per_worker: &[usize],
    ops_per_vu: usize,
    latency: Latency,
    seed: u64,
) -> BareReport {
    BareLoop::new(vus_per_worker, ops_per_vu, latency, seed)
        .run()
        .unwrap_or_else(|e| panic!("bare loop failed: {e}"))
}

impl BareLoop {
    /// A loop of `ops_per_vu` requests per VU, `vus_per_worker[i]` VUs on
    /// worker `i + 1`, no think time.
    pub fn new(vus_per_worker: &[usize], ops_per_vu: usize, latency: Latency, seed: u64) -> Self {
        let vus: usize = vus_per_worker.iter().sum();
        BareLoop {
            vus_per_worker: vus_per_worker.to_vec(),
            requests: vus * ops_per_vu,
            think: Duration::ZERO,
            requests_per_connection: None,
            response_pieces: 1,
            latency,
            seed,
            duration: Duration::from_secs(600),
        }
    }

    /// The same loop with each VU waiting `think` of simulated time after
    /// each answer.
    pub fn think(mut self, think: Duration) -> Self {
        self.think = think;
        self
    }

    /// The same loop with each VU opening a new connection after every
    /// `n` requests (at least 1), the old one dropped: the connection
    /// churn of modes that make a connection per MCP session.
    pub fn requests_per_connection(mut self, n: usize) -> Self {
        self.requests_per_connection = Some(n.max(1));
        self
    }

    /// The same loop with the server sending each answer in `n` pieces
    /// (see [`BareLoop::response_pieces`]).
    pub fn response_pieces(mut self, n: usize) -> Self {
        self.response_pieces = n.max(1);
        self
    }

    /// The same loop sending `requests` in all, spread evenly over its VUs
    /// (see [`BareLoop::requests`]).
    pub fn total_requests(mut self, requests: usize) -> Self {
        self.requests = requests;
        self
    }

    /// The loop that matches a scenario run: the same seed, latency and VUs
    /// per worker; exactly [`Report::server_requests`] requests in all
    /// (at least one), spread evenly over the VUs; and a think time that
    /// brings its simulated time to about the run's (see the module docs
    /// on fairness).
    pub fn matching(report: &Report) -> Self {
        let vus = report.schedule.vus_per_worker();
        let requests = usize::try_from(report.server_requests())
            .unwrap_or(usize::MAX)
            .max(1);
        let probe =
            BareLoop::new(&vus, 0, report.schedule.latency, report.seed).total_requests(requests);
        let ops_per_vu = probe.ops_per_vu().max(1);
        // A round trip is two messages of turmoil's mean latency (its
        // exponential curve, rate 5 over the range: a fifth of the way up)
        // plus about a tick each way. Think time fills the rest of the
        // run's simulated time.
        let latency = report.schedule.latency;
        let round_trip_ms = 2 * (latency.min_ms + (latency.max_ms - latency.min_ms) / 5) + 2;
        let busy_ms = round_trip_ms * ops_per_vu as u64;
        let think_ms = report.simulated_ms.saturating_sub(busy_ms) / ops_per_vu as u64;
        probe.think(Duration::from_millis(think_ms))
    }

    /// How many requests the loop sends in all.
    pub fn total_ops(&self) -> u64 {
        self.requests as u64
    }

    /// How many requests the busiest VU sends (the others send as many or
    /// one fewer).
    pub fn ops_per_vu(&self) -> usize {
        let vus = self.vus_per_worker.iter().sum::<usize>();
        if vus == 0 {
            0
        } else {
            self.requests.div_ceil(vus)
        }
    }

    /// How many requests VU `index` sends, counting VUs from 0 across the
    /// workers in order (worker 1's first).
    pub fn requests_of(&self, index: usize) -> usize {
        let vus = self.vus_per_worker.iter().sum::<usize>();
        if vus == 0 {
            return 0;
        }
        self.requests / vus + usize::from(index < self.requests % vus)
    }

    /// Runs the loop. Fails as turmoil does: a VU's request failed (a bug,
    /// there are no faults) or the simulated duration ran out.
    pub fn run(&self) -> Result<BareReport, Box<dyn Error>> {
        let mut sim = turmoil::Builder::new()
            .rng_seed(self.seed)
            .simulation_duration(self.duration)
            .min_message_latency(Duration::from_millis(self.latency.min_ms))
            .max_message_latency(Duration::from_millis(self.latency.max_ms))
            .tcp_capacity(crate::topology::TCP_CAPACITY)
            .build();
        let served = Arc::new(AtomicU64::new(0));
        let ops = Arc::new(AtomicU64::new(0));

        let counter = served.clone();
        let pieces = self.response_pieces;
        sim.host(SERVER_HOST, move || serve(counter.clone(), pieces));

        let authority = HeaderValue::from_str(&format!("{SERVER_HOST}:{PORT}"))?;
        let mut first_vu = 0;
        for (i, &vus) in self.vus_per_worker.iter().enumerate() {
            let name = worker_host(i as u64 + 1);
            let counts: Vec<usize> = (first_vu..first_vu + vus)
                .map(|k| self.requests_of(k))
                .collect();
            first_vu += vus;
            let (think, per_conn) = (self.think, self.requests_per_connection);
            let (ops, authority) = (ops.clone(), authority.clone());
            let worker = name.clone();
            sim.client(name.as_str(), async move {
                let tasks: Vec<_> = (1..=vus)
                    .zip(counts)
                    .map(|(vu, n)| {
                        let client = Client {
                            worker: worker.clone(),
                            vu,
                            authority: authority.clone(),
                        };
                        tokio::spawn(client.run(n, think, per_conn))
                    })
                    .collect();
                for task in tasks {
                    let done = task.await?.map_err(|e| e.to_string())?;
                    ops.fetch_add(done, Ordering::Relaxed);
                }
                Ok(())
            });
        }
        sim.run()?;
        Ok(BareReport {
            ops: ops.load(Ordering::Relaxed),
            served: served.load(Ordering::Relaxed),
            simulated_ms: u64::try_from(sim.elapsed().as_millis()).unwrap_or(u64::MAX),
        })
    }
}

/// The bare server: hyper HTTP/1.1 on turmoil TCP, every connection driven
/// from this one task (as the simulated server drives them), every request's
/// body read whole and answered with [`RESULT`], in `pieces` pieces.
async fn serve(served: Arc<AtomicU64>, pieces: usize) -> turmoil::Result {
    let listener = turmoil::net::TcpListener::bind(("0.0.0.0", PORT)).await?;
    let mut http = hyper::server::conn::http1::Builder::new();
    // The simulated server sends no `Date` (it would read the real clock).
    http.auto_date_header(false);
    let mut conns = FuturesUnordered::new();
    loop {
        tokio::select! {
            biased;
            accepted = listener.accept() => {
                let (stream, _peer) = accepted?;
                let served = served.clone();
                let service = service_fn(move |req: Request<Incoming>| {
                    let served = served.clone();
                    async move {
                        // Read the request whole, as a real server must.
                        let _ = req.into_body().collect().await;
                        served.fetch_add(1, Ordering::Relaxed);
                        let mut resp = Response::new(answer(pieces));
                        resp.headers_mut()
                            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                        Ok::<_, Infallible>(resp)
                    }
                });
                let conn = http.serve_connection(TokioIo::new(stream), service);
                conns.push(async move {
                    let _ = conn.await;
                });
            }
            Some(()) = conns.next(), if !conns.is_empty() => {}
        }
    }
}

/// [`RESULT`] as a body: whole, or cut into `pieces` nearly equal pieces
/// sent with chunked transfer encoding, each flushed on its own.
fn answer(pieces: usize) -> Either<Full<Bytes>, Chunked> {
    let whole = Bytes::from_static(RESULT);
    if pieces <= 1 {
        return Either::Left(Full::new(whole));
    }
    let size = whole.len().div_ceil(pieces);
    let cut = (0..whole.len())
        .step_by(size.max(1))
        .map(|at| whole.slice(at..(at + size).min(whole.len())))
        .collect();
    Either::Right(Chunked::new(cut, false))
}

/// One VU of the bare loop.
struct Client {
    worker: String,
    vu: usize,
    authority: HeaderValue,
}

impl Client {
    /// Opens a connection: dial, HTTP/1.1 handshake, the connection's task
    /// spawned (as the library's transport does).
    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>, String> {
        let stream = turmoil::net::TcpStream::connect((SERVER_HOST, PORT))
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| format!("handshake: {e}"))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(sender)
    }

    /// Sends `n` requests, waiting `think` after each answer, on one
    /// connection or a new one every `per_conn`; returns how many were
    /// answered with 200.
    async fn run(self, n: usize, think: Duration, per_conn: Option<usize>) -> Result<u64, String> {
        if n == 0 {
            return Ok(0);
        }
        let mut sender = self.connect().await?;
        let mut ok = 0;
        for step in 0..n {
            if per_conn.is_some_and(|k| step > 0 && step % k == 0) {
                sender = self.connect().await?;
            }
            let body = format!(
                r#"{{"jsonrpc":"2.0","id":{step},"method":"tools/call","params":{{"name":"echo","arguments":{{"text":"{}/{}/{step}"}}}}}}"#,
                self.worker, self.vu
            );
            let req = Request::builder()
                .method(Method::POST)
                .uri(PATH)
                .header(HOST, self.authority.clone())
                .header(CONTENT_TYPE, "application/json")
                .header(ACCEPT, "application/json, text/event-stream")
                .body(Full::new(Bytes::from(body)))
                .map_err(|e| e.to_string())?;
            sender.ready().await.map_err(|e| format!("ready: {e}"))?;
            let resp = sender
                .send_request(req)
                .await
                .map_err(|e| format!("request {step}: {e}"))?;
            let status = resp.status();
            resp.into_body()
                .collect()
                .await
                .map_err(|e| format!("body {step}: {e}"))?;
            if status == StatusCode::OK {
                ok += 1;
            }
            if !think.is_zero() {
                tokio::time::sleep(think).await;
            }
        }
        Ok(ok)
    }
}
