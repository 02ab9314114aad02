//! A simulated HTTP load balancer in front of several server instances.
//!
//! # Why
//!
//! MCP 2026-07-28 removed sessions so that servers can sit behind load
//! balancers that are not sticky. This module lets a simulation show why:
//! a [`Balancer`] host takes the name the workers dial, accepts their
//! connections, reads each HTTP/1.1 request (hyper's server) and forwards
//! it to one of its backend instances (hyper's client, over the
//! simulation's TCP), streaming the answer back as it comes (an SSE
//! answer is relayed frame by frame, never buffered whole). A stateless
//! (modern) client works against any instance; a legacy session that
//! lands on an instance that did not create it gets 404, and the client
//! must initialize again.
//!
//! # Policies
//!
//! Each request is routed by the [`Policy`] in force when it arrives:
//!
//! - [`Policy::RoundRobin`]: the instances in turn, one counter shared by
//!   every client connection;
//! - [`Policy::Random`]: an instance drawn from the balancer's own ChaCha
//!   stream ([`BALANCER_STREAM`] of the topology's seed), so adding a
//!   balancer shifts no other stream;
//! - [`Policy::Sticky`]: by the `Mcp-Session-Id` request header. The
//!   balancer learns which instance minted each session from the
//!   `Mcp-Session-Id` of its answers (under every policy, so a switch to
//!   sticky keeps the sessions it has seen where they are); an id it never
//!   learned goes to the instance its FNV-1a hash names; a request without
//!   an id goes round-robin.
//!
//! The policy is a run-time switch ([`Balancer::set_policy`]), like the
//! server's fault hooks: a test can flip stickiness mid-run.
//!
//! # Session ids
//!
//! The simulated server mints ids from a per-instance counter (`srv-1`,
//! `srv-2`, ...), so two instances mint the same ids, where real servers'
//! random ids never collide. The balancer therefore qualifies every id on
//! its way out with the instance that minted it (`srv-3` from `server-1`
//! reaches the client as `srv-3@server-1`) and takes the qualifier off on
//! the way in only when the request goes to that instance: any other
//! instance sees an id it never issued and answers 404, as a real one
//! would to a foreign random id.
//!
//! # Who the client was
//!
//! A backend's TCP peer is the balancer, so every forwarded request
//! carries `Forwarded: for=<client host>` (RFC 7239; written and read by
//! `forwarded.rs`), the host the balancer's listener names the
//! connection's peer: the server logs it as the request's `from`.
//!
//! # Determinism
//!
//! Every decision is made under one lock, in the order requests arrive;
//! the learned table is a `BTreeMap`, the hash is FNV-1a written out (not
//! `DefaultHasher`'s random keys), randomness comes only from the seeded
//! stream, every connection is driven inside the serving task (nothing is
//! spawned) and time is turmoil's simulated time. Everything decided is
//! recorded in an event log ([`Balancer::events`]) of plain values: the
//! same seed gives the same log, byte for byte.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream::{FuturesUnordered, StreamExt};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use mcp_session::transport::Dialer;

use crate::listener::Listener;
use crate::topology::PORT;

/// The ChaCha stream the [`Policy::Random`] draws come from ("balancer" in
/// ASCII): apart from the server's, the workload's and the faults'.
pub const BALANCER_STREAM: u64 = 0x6261_6c61_6e63_6572;

/// How long the balancer waits for a backend to accept a connection
/// before answering 502.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// The header that carries a legacy session's id.
const SESSION_HEADER: &str = "mcp-session-id";

/// Headers that belong to one hop, not forwarded either way.
const HOP_BY_HOP: [&str; 6] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "upgrade",
];

/// How the balancer picks a backend.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Policy {
    /// Each instance in turn.
    #[default]
    RoundRobin,
    /// An instance drawn from the seeded stream.
    Random,
    /// The instance that minted the request's session (round-robin for a
    /// request without one).
    Sticky,
}

impl Policy {
    /// Every policy, in declaration order.
    pub const ALL: [Policy; 3] = [Policy::RoundRobin, Policy::Random, Policy::Sticky];

    /// `round_robin`, `random` or `sticky`.
    pub fn as_str(self) -> &'static str {
        match self {
            Policy::RoundRobin => "round_robin",
            Policy::Random => "random",
            Policy::Sticky => "sticky",
        }
    }
}

/// How one request's backend was chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Route {
    /// The round-robin counter.
    RoundRobin,
    /// A draw from the seeded stream.
    Random,
    /// The instance learned to have minted the session.
    Learned,
    /// The FNV-1a hash of a session id never learned.
    Hashed,
}

/// One event and when it happened.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stamped {
    /// Milliseconds of simulated time (turmoil's, since the simulation
    /// began; 0 outside a simulation).
    pub at_ms: u64,
    /// What happened.
    #[serde(flatten)]
    pub event: Event,
}

/// What the balancer did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// `serve` began: the `run`-th time (2 and more: after a restart).
    Started {
        /// 1 for the first run.
        run: u64,
    },
    /// The policy was switched.
    PolicySet {
        /// The policy now in force.
        policy: Policy,
    },
    /// A request was routed to a backend.
    Routed {
        /// The request's number (from 1, in arrival order).
        request: u64,
        /// The HTTP method.
        http: String,
        /// The `Mcp-Session-Id` it carried, as the client sent it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        session: Option<String>,
        /// The policy in force.
        policy: Policy,
        /// How the backend was chosen.
        route: Route,
        /// The backend's index.
        backend: usize,
    },
    /// The backend answered; the answer is being relayed.
    Answered {
        /// The request's number.
        request: u64,
        /// The backend's index.
        backend: usize,
        /// The HTTP status.
        status: u16,
        /// The (qualified) session id the answer carried, now learned.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        session: Option<String>,
    },
    /// Talking to the backend failed: the client got 502.
    Failed {
        /// The request's number.
        request: u64,
        /// The backend's index.
        backend: usize,
        /// What failed.
        why: String,
    },
}

/// A handle to one balancer. Clones share it.
#[derive(Clone)]
pub struct Balancer {
    inner: Arc<Inner>,
}

struct Inner {
    backends: Vec<String>,
    state: Mutex<State>,
}

/// Everything that changes, behind one lock never held across an `.await`.
struct State {
    policy: Policy,
    next_round_robin: usize,
    rng: ChaCha8Rng,
    learned: BTreeMap<String, usize>,
    requests: u64,
    served: Vec<u64>,
    runs: u64,
    last_ms: u64,
    events: Vec<Stamped>,
}

impl State {
    /// Simulated milliseconds (the last reading outside a simulation).
    fn now(&mut self) -> u64 {
        if let Some(d) = turmoil::sim_elapsed() {
            self.last_ms = self.last_ms.max(millis(d));
        }
        self.last_ms
    }

    fn record(&mut self, event: Event) {
        let at_ms = self.now();
        self.events.push(Stamped { at_ms, event });
    }

    fn round_robin(&mut self, n: usize) -> usize {
        let b = self.next_round_robin % n;
        self.next_round_robin = (b + 1) % n;
        b
    }
}

impl std::fmt::Debug for Balancer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let st = self.lock();
        f.debug_struct("Balancer")
            .field("backends", &self.inner.backends)
            .field("policy", &st.policy)
            .field("served", &st.served)
            .field("events", &st.events.len())
            .finish()
    }
}

impl Balancer {
    /// A balancer over `backends` (host names, each serving on [`PORT`])
    /// routing by `policy`; its random stream is `seed`'s
    /// [`BALANCER_STREAM`]. It serves nothing until [`Balancer::serve`].
    ///
    /// # Panics
    ///
    /// If `backends` is empty.
    pub fn new(backends: Vec<String>, policy: Policy, seed: u64) -> Balancer {
        assert!(!backends.is_empty(), "a balancer needs a backend");
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(BALANCER_STREAM);
        let state = State {
            policy,
            next_round_robin: 0,
            rng,
            learned: BTreeMap::new(),
            requests: 0,
            served: vec![0; backends.len()],
            runs: 0,
            last_ms: 0,
            events: Vec::new(),
        };
        Balancer {
            inner: Arc::new(Inner {
                backends,
                state: Mutex::new(state),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The backends' host names, by index.
    pub fn backends(&self) -> &[String] {
        &self.inner.backends
    }

    /// The policy in force.
    pub fn policy(&self) -> Policy {
        self.lock().policy
    }

    /// Switches the policy for every request routed from now on (logged
    /// as [`Event::PolicySet`]).
    pub fn set_policy(&self, policy: Policy) {
        let mut st = self.lock();
        st.policy = policy;
        st.record(Event::PolicySet { policy });
    }

    /// Tells the balancer how much simulated time has passed, for controls
    /// pulled from outside the simulation's hosts (between `sim.step()`s,
    /// where turmoil has no clock to read): `sim_elapsed` is
    /// `Sim::elapsed()`.
    pub fn advance_clock_to(&self, sim_elapsed: Duration) {
        let mut st = self.lock();
        st.last_ms = st.last_ms.max(millis(sim_elapsed));
    }

    /// How many requests were routed to each backend, by index.
    pub fn served(&self) -> Vec<u64> {
        self.lock().served.clone()
    }

    /// The event log so far.
    pub fn events(&self) -> Vec<Stamped> {
        self.lock().events.clone()
    }

    /// The event log as JSON lines: the canonical bytes two runs of a seed
    /// are compared by.
    pub fn events_json(&self) -> String {
        let st = self.lock();
        let mut out = String::new();
        for e in &st.events {
            out.push_str(&serde_json::to_string(e).unwrap_or_default());
            out.push('\n');
        }
        out
    }

    /// Serves on `listener` until accepting fails, reaching the backends
    /// through `dialer`. Every connection is driven inside this one task
    /// (as the server's are), so a crash drops them in a fixed order.
    pub async fn serve<L: Listener, D: Dialer + Clone>(
        &self,
        listener: L,
        dialer: D,
    ) -> io::Result<()> {
        {
            let mut st = self.lock();
            st.runs += 1;
            let run = st.runs;
            st.record(Event::Started { run });
        }
        let mut http = hyper::server::conn::http1::Builder::new();
        // A `Date` header would come from the real clock.
        http.auto_date_header(false);
        let mut conns = FuturesUnordered::new();
        loop {
            tokio::select! {
                biased;
                accepted = listener.accept() => {
                    let (stream, peer) = accepted?;
                    let (balancer, dialer) = (self.clone(), dialer.clone());
                    let client: Option<Arc<str>> = listener.peer_name(peer).map(Arc::from);
                    let service = service_fn(move |req| {
                        let (balancer, dialer) = (balancer.clone(), dialer.clone());
                        let client = client.clone();
                        async move {
                            let answer = balancer.handle(&dialer, req, client.as_deref()).await;
                            Ok::<_, Infallible>(answer)
                        }
                    });
                    let conn = http.serve_connection(TokioIo::new(stream), service);
                    conns.push(async move {
                        // Ends when the client closes (or breaks) it.
                        let _ = conn.await;
                    });
                }
                Some(()) = conns.next(), if !conns.is_empty() => {}
            }
        }
    }

    /// Routes one request from `client` (the host the listener named),
    /// forwards it, and relays the answer (502 if the backend could not be
    /// reached or broke before answering).
    async fn handle<D: Dialer>(
        &self,
        dialer: &D,
        req: Request<Incoming>,
        client: Option<&str>,
    ) -> Response<Relay> {
        let session = header_str(req.headers(), SESSION_HEADER);
        let delete = req.method() == Method::DELETE;
        let (request, backend) = self.route(req.method(), session.clone());
        let name = &self.inner.backends[backend];
        match forward(dialer, name, outbound(req, name, client)).await {
            Ok(answer) => self.inbound(request, backend, session.filter(|_| delete), answer),
            Err(why) => {
                self.lock().record(Event::Failed {
                    request,
                    backend,
                    why,
                });
                let mut r = Response::new(Relay::empty());
                *r.status_mut() = StatusCode::BAD_GATEWAY;
                r
            }
        }
    }

    /// Picks the backend of a request by the policy in force, and logs it.
    /// Returns the request's number and the backend's index.
    fn route(&self, http: &Method, session: Option<String>) -> (u64, usize) {
        let n = self.inner.backends.len();
        let mut st = self.lock();
        st.requests += 1;
        let (request, policy) = (st.requests, st.policy);
        let (route, backend) = match (policy, session.as_deref()) {
            (Policy::Random, _) => (Route::Random, st.rng.random_range(0..n)),
            (Policy::Sticky, Some(id)) => match st.learned.get(id) {
                Some(&b) => (Route::Learned, b),
                None => (Route::Hashed, (fnv1a(id.as_bytes()) % n as u64) as usize),
            },
            _ => (Route::RoundRobin, st.round_robin(n)),
        };
        st.served[backend] += 1;
        st.record(Event::Routed {
            request,
            http: http.as_str().to_owned(),
            session,
            policy,
            route,
            backend,
        });
        (request, backend)
    }

    /// Qualifies the answer's session id with its backend, learns it (or
    /// forgets `deleted`, the session a DELETE named), and logs the answer.
    fn inbound(
        &self,
        request: u64,
        backend: usize,
        deleted: Option<String>,
        mut answer: Response<Relay>,
    ) -> Response<Relay> {
        strip_hop_by_hop(answer.headers_mut());
        let minted = header_str(answer.headers(), SESSION_HEADER)
            .map(|id| qualify(&id, &self.inner.backends[backend]));
        if let Some(v) = minted
            .as_deref()
            .and_then(|q| HeaderValue::from_str(q).ok())
        {
            answer
                .headers_mut()
                .insert(HeaderName::from_static(SESSION_HEADER), v);
        }
        let mut st = self.lock();
        if let Some(id) = deleted {
            st.learned.remove(&id);
        }
        if let Some(id) = &minted {
            st.learned.insert(id.clone(), backend);
        }
        st.record(Event::Answered {
            request,
            backend,
            status: answer.status().as_u16(),
            session: minted,
        });
        answer
    }
}

/// Sends `req` to backend `name` on a connection of its own and returns
/// the answer, whose body drives that connection as it is read.
async fn forward<D: Dialer>(
    dialer: &D,
    name: &str,
    req: Request<Incoming>,
) -> Result<Response<Relay>, String> {
    let stream = match tokio::time::timeout(CONNECT_TIMEOUT, dialer.dial(name, PORT)).await {
        Err(_) => return Err("connect timed out".into()),
        Ok(Err(e)) => return Err(format!("connect: {e}")),
        Ok(Ok(stream)) => stream,
    };
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    let mut conn: Driver = Box::pin(conn);
    let answer = {
        let send = sender.send_request(req);
        tokio::pin!(send);
        tokio::select! {
            biased;
            r = &mut send => r.map_err(|e| format!("request: {e}")),
            r = &mut conn => Err(match r {
                Ok(()) => "backend closed the connection".to_owned(),
                Err(e) => format!("backend: {e}"),
            }),
        }
    }?;
    // Without a sender the connection ends once the answer is read.
    drop(sender);
    let (parts, body) = answer.into_parts();
    Ok(Response::from_parts(
        parts,
        Relay {
            body: Some(body),
            conn: Some(conn),
        },
    ))
}

/// The request as the backend `name` gets it: hop-by-hop headers dropped,
/// `Forwarded: for=<client>` appended, and a session id qualified with
/// `name` unqualified (an id minted by another instance goes as it is: that
/// instance never issued it).
fn outbound(mut req: Request<Incoming>, name: &str, client: Option<&str>) -> Request<Incoming> {
    strip_hop_by_hop(req.headers_mut());
    crate::forwarded::append_for(req.headers_mut(), client);
    let local = header_str(req.headers(), SESSION_HEADER)
        .and_then(|id| unqualify(&id, name).map(str::to_owned));
    if let Some(v) = local.and_then(|id| HeaderValue::from_str(&id).ok()) {
        req.headers_mut()
            .insert(HeaderName::from_static(SESSION_HEADER), v);
    }
    req
}

/// A header's value, if present and text.
fn header_str(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

fn strip_hop_by_hop(headers: &mut HeaderMap) {
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
}

/// Session `id` as minted by instance `name`: `id@name`.
fn qualify(id: &str, name: &str) -> String {
    format!("{id}@{name}")
}

/// The id instance `name` minted, if `qualified` is one of its.
fn unqualify<'a>(qualified: &'a str, name: &str) -> Option<&'a str> {
    qualified.strip_suffix(name)?.strip_suffix('@')
}

/// 64-bit FNV-1a: a stable hash (the same in every process and release).
fn fnv1a(bytes: &[u8]) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    bytes
        .iter()
        .fold(OFFSET, |h, &b| (h ^ u64::from(b)).wrapping_mul(PRIME))
}

/// Whole milliseconds of `d`, saturating.
fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// A backend connection's future, driven by the body that relays it.
type Driver = Pin<Box<dyn Future<Output = hyper::Result<()>> + Send>>;

/// An answer's body as relayed to the client: the backend's body, frame by
/// frame as it arrives (an SSE stream is not buffered), driving the backend
/// connection it comes from; or nothing (a 502).
pub struct Relay {
    body: Option<Incoming>,
    conn: Option<Driver>,
}

impl Relay {
    /// An empty body.
    fn empty() -> Relay {
        Relay {
            body: None,
            conn: None,
        }
    }
}

impl Body for Relay {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = &mut *self;
        // The connection first: it moves the bytes the body then yields.
        if let Some(conn) = this.conn.as_mut() {
            if conn.as_mut().poll(cx).is_ready() {
                this.conn = None;
            }
        }
        match this.body.as_mut() {
            Some(body) => Pin::new(body).poll_frame(cx),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.as_ref().is_none_or(Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.body
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), Body::size_hint)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_is_the_reference_hash() {
        // Test vectors of the FNV reference implementation.
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn ids_are_qualified_by_their_instance() {
        let q = qualify("srv-3", "server-1");
        assert_eq!(q, "srv-3@server-1");
        assert_eq!(unqualify(&q, "server-1"), Some("srv-3"));
        assert_eq!(unqualify(&q, "server-0"), None);
        assert_eq!(unqualify("srv-3", "server-1"), None);
        assert_eq!(unqualify(&qualify("x", "server-11"), "server-1"), None);
    }

    #[test]
    fn policies_route_as_documented() {
        let names: Vec<String> = (0..3).map(|i| format!("server-{i}")).collect();
        let b = Balancer::new(names, Policy::RoundRobin, 7);
        let rr: Vec<usize> = (0..4).map(|_| b.route(&Method::POST, None).1).collect();
        assert_eq!(rr, [0, 1, 2, 0]);
        b.lock().learned.insert("s@server-2".into(), 2);
        b.set_policy(Policy::Sticky);
        assert_eq!(b.route(&Method::POST, Some("s@server-2".into())).1, 2);
        let hashed = (fnv1a(b"zz") % 3) as usize;
        assert_eq!(b.route(&Method::POST, Some("zz".into())).1, hashed);
        assert_eq!(b.route(&Method::POST, None).1, 1, "no id: round-robin");
        let draws = |seed| {
            let b = Balancer::new(vec!["a".into(), "b".into()], Policy::Random, seed);
            (0..32)
                .map(|_| b.route(&Method::POST, None).1)
                .collect::<Vec<_>>()
        };
        assert_eq!(draws(5), draws(5));
        assert_ne!(draws(5), draws(6));
        assert_eq!(b.served().iter().sum::<u64>(), 7);
    }
}
