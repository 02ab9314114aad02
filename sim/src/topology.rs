//! Building a simulated world: server hosts, worker hosts, and the VUs that
//! run inside the workers.
//!
//! # Shape
//!
//! A [`Topology`] lists one or more server hosts (each runs a
//! [`Server`] on port [`PORT`]) and one or more worker hosts. A worker is
//! one turmoil client host running ONE [`Manager`] over
//! `HttpConnector<TurmoilDialer>`, and its VUs as tokio tasks inside that
//! host, all sharing the manager, the way a load generator runs them. One
//! turmoil host per VU would be the obvious alternative and the wrong one:
//! turmoil links every pair of hosts, and the measured cost per simulated
//! request is up to 60 times higher.
//!
//! [`Topology::build`] takes the VU program (a closure from [`Vu`] to a
//! future) and returns a [`World`]: the turmoil [`Sim`], the server handles
//! (their event logs and fault hooks) and, once run, each VU's result and
//! each worker's final [`SessionMetrics`]. [`World::run`] runs it as is;
//! [`World::run_with`] runs it under a [`FaultPlan`].
//!
//! ```no_run
//! use std::time::Duration;
//! use mcp_session::SessionConfig;
//! use mcp_session::transport::Operation;
//! use mcp_sim::server::ServerConfig;
//! use mcp_sim::topology::{Topology, WorkerSpec};
//!
//! let mut world = Topology::new(7, Duration::from_secs(30))
//!     .server("server", ServerConfig { seed: 7, ..ServerConfig::default() })
//!     .worker(WorkerSpec::new("worker", "server", SessionConfig::pool(4), 16))
//!     .build(|vu| async move {
//!         let mut lease = vu.manager.acquire(vu.id).await?;
//!         let r = lease.call(&Operation::Ping).await;
//!         lease.release();
//!         r.map(|_| ())
//!     });
//! world.run().expect("simulation");
//! for (vu, outcome) in world.take_results() {
//!     println!("{}/{}: {outcome:?}", vu.worker, vu.vu);
//! }
//! println!("{}", world.server_events_json());
//! ```
//!
//! # Determinism
//!
//! turmoil's random generator has a fixed seed ([`Topology::new`]), and with
//! `--cfg tokio_unstable` turmoil seeds each host's runtime from it; the
//! simulation has an explicit duration, so a hang is an error at a known
//! simulated time, never a stuck test. Hosts are registered in a fixed
//! order (servers, then workers, each in the order given), results are kept
//! in `BTreeMap`s, and nothing reads the wall clock.
//!
//! # Restarts
//!
//! A crash or a bounce runs a server host's closure again. By default the
//! closure starts with [`Server::forget_sessions`] (a server that keeps
//! sessions in memory: a restart loses them, and clients get 404);
//! [`ServerSpec::keep_sessions`] models a server with a shared store.
//!
//! # Load balancing
//!
//! [`Topology::balanced`] puts several instances of one server (hosts
//! `<name>-0`, `<name>-1`, ..., each its own [`Server`] with its own seed,
//! see [`instance_seed`]) behind a [`Balancer`] host that takes the name
//! `<name>` the workers dial. The instances are server hosts like any other
//! (faults name them, [`World::server`] reads them); the balancer is
//! registered after every server and before the workers, and reached with
//! [`World::balancer`]. A topology without one is built exactly as before.

use std::collections::BTreeMap;
use std::error::Error;
use std::future::Future;
use std::rc::Rc;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use turmoil::Sim;

use mcp_session::transport::{HttpConfig, HttpConnector};
use mcp_session::{
    Clock, EventSink, Manager, ManagerBuilder, SessionConfig, SessionMetrics, TokioClock,
};

use crate::balancer::{Balancer, Policy};
use crate::dialer::TurmoilDialer;
use crate::faults::{Applied, Applier, FaultPlan};
use crate::liveness::{Meter, MeteredClock};
use crate::server::{Server, ServerConfig};

/// The port every server host listens on.
pub const PORT: u16 = 8080;

/// The manager a worker runs: the library's, over turmoil TCP.
pub type SimManager = Manager<HttpConnector<TurmoilDialer>>;

/// Each simulated host's TCP buffer, which in turmoil is also a listening
/// socket's accept backlog (turmoil's default is 64). A worker of 64 VUs in
/// per-request mode opens 64 connections in one tick, besides its DELETEs:
/// a full backlog is a panic in turmoil, where a real kernel would drop the
/// SYN, so it is sized well past any scenario's burst.
pub const TCP_CAPACITY: usize = 4096;

/// How long a worker waits, after closing and dropping its manager, before
/// counting its host's open TCP streams: time for the connection tasks to
/// see their handles gone and drop their sockets.
pub const STREAMS_SETTLE: Duration = Duration::from_millis(50);

/// A range of message latency on a link, in milliseconds (turmoil draws
/// each message's from an exponential curve over it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Latency {
    /// Least latency.
    pub min_ms: u64,
    /// Most latency.
    pub max_ms: u64,
}

impl Latency {
    /// `min_ms..=max_ms` (a `max_ms` below `min_ms` is raised to it).
    pub fn new(min_ms: u64, max_ms: u64) -> Latency {
        Latency {
            min_ms,
            max_ms: max_ms.max(min_ms),
        }
    }

    /// Exactly `ms` for every message.
    pub fn fixed(ms: u64) -> Latency {
        Latency::new(ms, ms)
    }
}

impl Default for Latency {
    /// turmoil's default: 0 to 100 ms.
    fn default() -> Self {
        Latency::new(0, 100)
    }
}

/// A server host.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ServerSpec {
    /// The host name (what URLs and fault events name).
    pub name: String,
    /// How the server behaves.
    pub config: ServerConfig,
    /// Whether sessions survive a restart (a shared session store).
    /// Default false: a restart loses them.
    pub keep_sessions: bool,
}

impl ServerSpec {
    /// A server `name` with `config`, losing its sessions on a restart.
    pub fn new(name: impl Into<String>, config: ServerConfig) -> Self {
        ServerSpec {
            name: name.into(),
            config,
            keep_sessions: false,
        }
    }
}

/// A load-balancer host in front of server instances.
#[derive(Clone, Debug, PartialEq)]
pub struct BalancerSpec {
    /// The host name (what workers dial).
    pub name: String,
    /// The instances' host names, by backend index.
    pub instances: Vec<String>,
    /// The routing policy it starts with.
    pub policy: Policy,
    /// The MCP endpoint's path (the instances').
    pub path: String,
}

/// The seed of instance `index` of a balanced server whose config has
/// `seed`: instance 0 keeps it, the others are spread apart by the golden
/// ratio's 64-bit constant, so no two instances draw the same stream.
pub fn instance_seed(seed: u64, index: usize) -> u64 {
    seed.wrapping_add((index as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15))
}

/// A worker host: one manager, `vus` VUs as tasks.
#[derive(Clone, Debug, PartialEq)]
pub struct WorkerSpec {
    /// The host name.
    pub name: String,
    /// The server host its manager talks to.
    pub server: String,
    /// The manager's config.
    pub session: SessionConfig,
    /// The transport's settings; `url` is set by [`Topology::build`] to the
    /// server's (`http://<server>:8080<path>`).
    pub http: HttpConfig,
    /// How many VUs (ids `1..=vus`).
    pub vus: u64,
}

impl WorkerSpec {
    /// A worker `name` of `vus` VUs, whose manager (`session`) talks to
    /// `server`, with the transport's default timeouts.
    pub fn new(
        name: impl Into<String>,
        server: impl Into<String>,
        session: SessionConfig,
        vus: u64,
    ) -> Self {
        WorkerSpec {
            name: name.into(),
            server: server.into(),
            session,
            http: HttpConfig::default(),
            vus,
        }
    }

    /// The same worker with these transport settings (timeouts, ...).
    pub fn http(mut self, http: HttpConfig) -> Self {
        self.http = http;
        self
    }
}

/// What a VU program gets: who it is, and its worker's manager.
#[derive(Clone)]
pub struct Vu {
    /// The worker host it runs in.
    pub worker: String,
    /// Its id, from 1 (unique within the worker; pass it to `acquire`).
    pub id: u64,
    /// The worker's manager, shared by all its VUs.
    pub manager: SimManager,
    /// The worker's clock: the one its manager was given (metered, when
    /// the topology is: [`Topology::metered`]).
    pub clock: Arc<dyn Clock>,
}

/// A VU, as results are keyed.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct VuKey {
    /// The worker host.
    pub worker: String,
    /// The VU's id.
    pub vu: u64,
}

/// A world to build: its seed, its duration, its hosts.
#[derive(Clone, Debug)]
pub struct Topology {
    seed: u64,
    duration: Duration,
    latency: Latency,
    servers: Vec<ServerSpec>,
    balancers: Vec<BalancerSpec>,
    workers: Vec<WorkerSpec>,
    sinks: Sinks,
    meter: Option<Meter>,
}

/// Event sinks installed on workers' managers, by worker name.
#[derive(Clone, Default)]
struct Sinks(BTreeMap<String, Arc<dyn EventSink>>);

impl std::fmt::Debug for Sinks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

impl Topology {
    /// An empty world whose turmoil generator is seeded with `seed` and
    /// whose simulation fails once `duration` of simulated time has passed
    /// with a worker still running.
    pub fn new(seed: u64, duration: Duration) -> Self {
        Topology {
            seed,
            duration,
            latency: Latency::default(),
            servers: Vec::new(),
            balancers: Vec::new(),
            workers: Vec::new(),
            sinks: Sinks::default(),
            meter: None,
        }
    }

    /// Meters every worker's clock on `meter` (a [`MeteredClock`]), so that
    /// the library's own tasks (the deadline timer, connection timeouts)
    /// count against a run's step budget: see [`crate::liveness`]. Without
    /// it, the workers' clocks are plain [`TokioClock`]s.
    pub fn metered(mut self, meter: Meter) -> Self {
        self.meter = Some(meter);
        self
    }

    /// Installs `sink` as the event sink of worker `worker`'s manager (for
    /// example a [`crate::trace::TraceRecorder`]). Without one, a manager
    /// reports to no sink. A second call for the same worker replaces the
    /// first.
    pub fn event_sink(mut self, worker: impl Into<String>, sink: Arc<dyn EventSink>) -> Self {
        self.sinks.0.insert(worker.into(), sink);
        self
    }

    /// The latency of every link (default: turmoil's, 0 to 100 ms). Latency
    /// faults restore it when they end.
    pub fn latency(mut self, latency: Latency) -> Self {
        self.latency = latency;
        self
    }

    /// Adds a server host `name` with `config` (losing its sessions on a
    /// restart).
    pub fn server(self, name: impl Into<String>, config: ServerConfig) -> Self {
        self.server_spec(ServerSpec::new(name, config))
    }

    /// Adds a server host.
    pub fn server_spec(mut self, spec: ServerSpec) -> Self {
        self.servers.push(spec);
        self
    }

    /// Adds `instances` server hosts `<name>-0`, `<name>-1`, ... (each
    /// with `config` but its own [`instance_seed`], losing its sessions on
    /// a restart) behind a balancer host `name` routing by `policy`, whose
    /// random stream comes from the topology's seed. Workers name `name`.
    ///
    /// # Panics
    ///
    /// If `instances` is 0.
    pub fn balanced(
        mut self,
        name: impl Into<String>,
        config: ServerConfig,
        instances: usize,
        policy: Policy,
    ) -> Self {
        assert!(instances > 0, "a balanced server needs an instance");
        let name = name.into();
        let names: Vec<String> = (0..instances).map(|i| format!("{name}-{i}")).collect();
        for (i, instance) in names.iter().enumerate() {
            let config = ServerConfig {
                seed: instance_seed(config.seed, i),
                ..config.clone()
            };
            self.servers.push(ServerSpec::new(instance.clone(), config));
        }
        self.balancers.push(BalancerSpec {
            name,
            instances: names,
            policy,
            path: config.path,
        });
        self
    }

    /// Adds a worker host.
    pub fn worker(mut self, spec: WorkerSpec) -> Self {
        self.workers.push(spec);
        self
    }

    /// Builds the simulation: registers the server hosts, then the workers,
    /// each of which starts its manager, spawns `program(vu)` for each of
    /// its VUs, collects their results, closes the manager and records its
    /// metrics. Nothing runs until [`World::run`] or [`World::run_with`].
    ///
    /// # Panics
    ///
    /// If a worker names a server that is not in the topology, or two hosts
    /// share a name.
    pub fn build<T, F, Fut>(self, program: F) -> World<T>
    where
        T: Send + 'static,
        F: Fn(Vu) -> Fut + 'static,
        Fut: Future<Output = T> + Send + 'static,
    {
        self.check_unique_names();
        let mut sim = turmoil::Builder::new()
            .rng_seed(self.seed)
            .simulation_duration(self.duration)
            .min_message_latency(Duration::from_millis(self.latency.min_ms))
            .max_message_latency(Duration::from_millis(self.latency.max_ms))
            .tcp_capacity(TCP_CAPACITY)
            .build();
        // Hosts in a fixed order: servers, balancers, workers.
        let servers = self.host_servers(&mut sim);
        let balancers = self.host_balancers(&mut sim);
        let out = Collected::new();
        let program = Rc::new(program);
        for spec in &self.workers {
            let run = WorkerRun {
                name: spec.name.clone(),
                session: spec.session.clone(),
                http: HttpConfig {
                    url: self.url_of(spec),
                    ..spec.http.clone()
                },
                vus: spec.vus,
                sink: self.sinks.0.get(&spec.name).cloned(),
                meter: self.meter.clone(),
            };
            sim.client(spec.name.as_str(), run.run(program.clone(), out.clone()));
        }
        World {
            sim,
            servers,
            balancers,
            workers: self.workers.iter().map(|w| w.name.clone()).collect(),
            latency: self.latency,
            results: out.results,
            metrics: out.metrics,
            streams: out.streams,
        }
    }
}

/// What the worker hosts of a world leave behind, shared between them and
/// the [`World`] that reads it once they are done.
struct Collected<T> {
    /// Each VU's result.
    results: Arc<Mutex<BTreeMap<VuKey, T>>>,
    /// Each worker's metrics once its manager closed.
    metrics: Arc<Mutex<BTreeMap<String, SessionMetrics>>>,
    /// Each worker's TCP streams still open after its manager closed.
    streams: Arc<Mutex<BTreeMap<String, i64>>>,
}

impl<T> Collected<T> {
    fn new() -> Self {
        Collected {
            results: Arc::new(Mutex::new(BTreeMap::new())),
            metrics: Arc::new(Mutex::new(BTreeMap::new())),
            streams: Arc::new(Mutex::new(BTreeMap::new())),
        }
    }
}

// By hand: a derived `Clone` would ask `T: Clone`, and only the handles
// are cloned.
impl<T> Clone for Collected<T> {
    fn clone(&self) -> Self {
        Collected {
            results: self.results.clone(),
            metrics: self.metrics.clone(),
            streams: self.streams.clone(),
        }
    }
}

/// What one worker host runs with, taken out of the topology (the host's
/// future owns it).
struct WorkerRun {
    name: String,
    session: SessionConfig,
    http: HttpConfig,
    vus: u64,
    sink: Option<Arc<dyn EventSink>>,
    meter: Option<Meter>,
}

impl WorkerRun {
    /// The worker host: starts its manager, spawns `program(vu)` for each
    /// VU, collects their results in VU order, closes the manager and
    /// records its metrics and the streams it left open.
    async fn run<T, F, Fut>(self, program: Rc<F>, out: Collected<T>) -> turmoil::Result
    where
        T: Send + 'static,
        F: Fn(Vu) -> Fut + 'static,
        Fut: Future<Output = T> + Send + 'static,
    {
        let WorkerRun {
            name,
            session,
            http,
            vus,
            sink,
            meter,
        } = self;
        let clock: Arc<dyn Clock> = match meter {
            Some(meter) => Arc::new(MeteredClock::new(TokioClock::new(), meter)),
            None => Arc::new(TokioClock::new()),
        };
        let dialer = TurmoilDialer::new();
        let connector = HttpConnector::new(dialer.clone(), http, clock.clone())?;
        let mut builder = ManagerBuilder::new(session).clock(clock.clone());
        if let Some(sink) = sink {
            builder = builder.events(sink);
        }
        let manager = builder.start(connector)?;
        let tasks: Vec<_> = (1..=vus)
            .map(|id| {
                let vu = Vu {
                    worker: name.clone(),
                    id,
                    manager: manager.clone(),
                    clock: clock.clone(),
                };
                (id, tokio::spawn(program(vu)))
            })
            .collect();
        for (id, task) in tasks {
            let out_of_vu = task.await?;
            let key = VuKey {
                worker: name.clone(),
                vu: id,
            };
            lock(&out.results).insert(key, out_of_vu);
        }
        manager.close().await;
        lock(&out.metrics).insert(name.clone(), manager.metrics());
        // Every connection the manager made must be gone once it is
        // closed: drop it, give the connection tasks a moment of
        // simulated time to end, and count what this host still
        // holds (turmoil's count less its phantom entries, see
        // `crate::dialer`).
        drop(manager);
        tokio::time::sleep(STREAMS_SETTLE).await;
        let counted = turmoil::established_tcp_stream_count_on(name.as_str());
        let held = counted as i64 - dialer.phantom_streams() as i64;
        lock(&out.streams).insert(name, held);
        Ok(())
    }
}

impl Topology {
    /// Panics if two hosts (servers, balancers, workers) share a name.
    fn check_unique_names(&self) {
        let mut names: Vec<&str> = self
            .servers
            .iter()
            .map(|s| s.name.as_str())
            .chain(self.balancers.iter().map(|b| b.name.as_str()))
            .chain(self.workers.iter().map(|w| w.name.as_str()))
            .collect();
        names.sort_unstable();
        if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
            panic!("two hosts are named {:?}", w[0]);
        }
    }

    /// Registers each server host (first of all), and returns their
    /// handles. Each run of a host (a restart runs it again) serves the
    /// same [`Server`], having forgotten its sessions unless the spec
    /// keeps them.
    fn host_servers(&self, sim: &mut Sim<'static>) -> BTreeMap<String, Server> {
        let mut servers = BTreeMap::new();
        for spec in &self.servers {
            let server = Server::new(spec.config.clone());
            let handle = server.clone();
            let forget = !spec.keep_sessions;
            sim.host(spec.name.as_str(), move || {
                let server = handle.clone();
                async move {
                    if forget {
                        server.forget_sessions();
                    }
                    let listener = turmoil::net::TcpListener::bind(("0.0.0.0", PORT)).await?;
                    server.serve(listener).await?;
                    Ok(())
                }
            });
            servers.insert(spec.name.clone(), server);
        }
        servers
    }
}

impl Topology {
    /// Registers each balancer host (after the servers, before the
    /// workers), its random stream from the topology's seed (spread per
    /// balancer as instances' seeds are), and returns their handles.
    fn host_balancers(&self, sim: &mut Sim<'static>) -> BTreeMap<String, Balancer> {
        let mut balancers = BTreeMap::new();
        for (i, spec) in self.balancers.iter().enumerate() {
            let seed = instance_seed(self.seed, i);
            let balancer = Balancer::new(spec.instances.clone(), spec.policy, seed);
            let handle = balancer.clone();
            sim.host(spec.name.as_str(), move || {
                let balancer = handle.clone();
                async move {
                    let listener = turmoil::net::TcpListener::bind(("0.0.0.0", PORT)).await?;
                    balancer.serve(listener, TurmoilDialer::new()).await?;
                    Ok(())
                }
            });
            balancers.insert(spec.name.clone(), balancer);
        }
        balancers
    }

    /// The URL worker `spec`'s manager talks to: its server's, or its
    /// balancer's (`http://<host>:8080<path>`).
    ///
    /// # Panics
    ///
    /// If the worker names neither.
    fn url_of(&self, spec: &WorkerSpec) -> String {
        let server = self.servers.iter().find(|s| s.name == spec.server);
        let path = server.map(|s| s.config.path.as_str()).or_else(|| {
            let mut balancers = self.balancers.iter();
            balancers
                .find(|b| b.name == spec.server)
                .map(|b| b.path.as_str())
        });
        match path {
            Some(path) => format!("http://{}:{PORT}{path}", spec.server),
            None => panic!("worker {} names unknown server {}", spec.name, spec.server),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A built world: the simulation, and handles to what it produces.
pub struct World<T> {
    sim: Sim<'static>,
    servers: BTreeMap<String, Server>,
    balancers: BTreeMap<String, Balancer>,
    workers: Vec<String>,
    latency: Latency,
    results: Arc<Mutex<BTreeMap<VuKey, T>>>,
    metrics: Arc<Mutex<BTreeMap<String, SessionMetrics>>>,
    streams: Arc<Mutex<BTreeMap<String, i64>>>,
}

impl<T> World<T> {
    /// Runs until every worker is done (no faults). Fails as turmoil does:
    /// a worker returned an error (a VU task panicked, the manager could not
    /// start), or the simulation's duration ran out first.
    pub fn run(&mut self) -> turmoil::Result {
        self.sim.run()
    }

    /// Runs until every worker is done, applying `plan` on the way (see
    /// [`Applier`]), and returns what was applied. Fails if the plan names a
    /// host this world lacks, or as [`World::run`] does.
    pub fn run_with(&mut self, plan: &FaultPlan) -> Result<Vec<Applied>, Box<dyn Error>> {
        self.run_within(plan, |_| true).map(|(log, _)| log)
    }

    /// [`World::run_with`], asking `go_on` before each step whether to
    /// take it ([`Applier::run_while`]): returns what was applied and
    /// whether every worker finished (`false`: `go_on` stopped the run).
    pub fn run_within(
        &mut self,
        plan: &FaultPlan,
        go_on: impl FnMut(&Sim<'_>) -> bool,
    ) -> Result<(Vec<Applied>, bool), Box<dyn Error>> {
        let mut applier = Applier::with_balancers(
            plan,
            self.servers.clone(),
            self.balancers.clone(),
            &self.workers,
            self.latency,
        )?;
        let finished = applier.run_while(&mut self.sim, go_on)?;
        Ok((applier.into_log(), finished))
    }

    /// The turmoil simulation, to drive or inspect by hand.
    pub fn sim(&mut self) -> &mut Sim<'static> {
        &mut self.sim
    }

    /// Simulated time so far.
    pub fn elapsed(&self) -> Duration {
        self.sim.elapsed()
    }

    /// The server host `name`'s handle (its log, its hooks).
    ///
    /// # Panics
    ///
    /// If there is no such server.
    pub fn server(&self, name: &str) -> &Server {
        self.servers
            .get(name)
            .unwrap_or_else(|| panic!("no server host {name:?}"))
    }

    /// Every server handle, by host name.
    pub fn servers(&self) -> &BTreeMap<String, Server> {
        &self.servers
    }

    /// The balancer host `name`'s handle (its log, its policy switch).
    ///
    /// # Panics
    ///
    /// If there is no such balancer.
    pub fn balancer(&self, name: &str) -> &Balancer {
        self.balancers
            .get(name)
            .unwrap_or_else(|| panic!("no balancer host {name:?}"))
    }

    /// Every balancer handle, by host name.
    pub fn balancers(&self) -> &BTreeMap<String, Balancer> {
        &self.balancers
    }

    /// The worker host names, in the order given.
    pub fn workers(&self) -> &[String] {
        &self.workers
    }

    /// The links' baseline latency.
    pub fn baseline_latency(&self) -> Latency {
        self.latency
    }

    /// Every VU's result so far (taken: a second call returns only what
    /// finished since).
    pub fn take_results(&self) -> BTreeMap<VuKey, T> {
        std::mem::take(&mut *lock(&self.results))
    }

    /// Each worker's manager metrics, taken after its VUs finished and it
    /// closed.
    pub fn metrics(&self) -> BTreeMap<String, SessionMetrics> {
        lock(&self.metrics).clone()
    }

    /// Each finished worker's TCP streams still held after its manager was
    /// closed and dropped: `turmoil::established_tcp_stream_count_on` its
    /// host, less the phantom entries of refused or abandoned connects
    /// ([`TurmoilDialer::phantom_streams`]). Anything but 0 is a
    /// connection leaked (or, below 0, a phantom miscounted).
    pub fn streams_at_end(&self) -> BTreeMap<String, i64> {
        lock(&self.streams).clone()
    }

    /// Every server's event log as JSON lines, servers in name order, each
    /// line with a `server` field: the canonical bytes two runs of a seed
    /// are compared by.
    pub fn server_events_json(&self) -> String {
        let mut out = String::new();
        for (name, server) in &self.servers {
            for e in server.events() {
                let mut v = serde_json::to_value(&e).unwrap_or_default();
                if let Some(obj) = v.as_object_mut() {
                    obj.insert("server".into(), name.clone().into());
                }
                out.push_str(&v.to_string());
                out.push('\n');
            }
        }
        out
    }
}
