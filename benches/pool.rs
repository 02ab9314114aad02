//! Pool-mode overhead: what one acquire + release of an existing session
//! costs in `mcp-session`, next to the same work in `deadpool`'s managed pool.
//!
//! The network is taken out of the picture: the connector below answers
//! every call at once, and both pools are pre-warmed with their 4 sessions
//! before measuring, so every iteration is "take an idle session, give it
//! back" — pure pool bookkeeping (locking, queueing, waking waiters, events,
//! clock reads). Nothing is created during the measurement (checked after
//! each benchmark).
//!
//! `deadpool` is the comparison because it is the de-facto standard async
//! object pool for tokio (behind `deadpool-postgres`, `deadpool-redis`, ...)
//! and does the same job with the same shape: a bounded pool, FIFO waiters
//! (a tokio semaphore), async create/recycle hooks (no-ops here). A load-test
//! client should not pay noticeably more per acquire than that.
//!
//! Scenarios, each a criterion group with the functions `mcp-session` and
//! `deadpool`, on the same runtime flavour for both:
//!
//! - `uncontended/*`: one task, acquire → release in a loop (pool of 4, so
//!   an idle session is always there);
//! - `contended/*`: 16 tasks share a pool of 4, each doing [`K`]
//!   acquire → yield → release: a task yields to the runtime while it holds
//!   its session (as a VU awaits its request), so up to 12 tasks are queued
//!   and most acquires go through the waiter path (park, be granted a
//!   session by a release, wake up);
//! - `parallel/*`: the same without the yield: a task never yields while
//!   holding a session, so the pool never runs dry and only the pool's lock
//!   is contended (between the 2 workers of `mt2`; not at all on `ct`).
//!
//! In both batch scenarios one criterion iteration is the whole batch of
//! `16 * K` acquire+release pairs: the throughput line gives pairs per
//! second, and time / `16 * K` is the cost of one pair.
//!
//! - `call/*`: one `Lease::call` on a held session, our side only (the
//!   cost of the library's bookkeeping around an operation).
//!
//! Runtimes: a multi-thread runtime with 2 workers (`mt2`) and a
//! current-thread runtime (`ct`).
//!
//! Run with `cargo bench --bench pool`.

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use mcp_session::transport::{
    Answer, CallResult, CloseOutcome, Connection, Connector, InitializeParams, Initialized,
    InputResponses, ModernParams, Operation, TransportError,
};
use mcp_session::{Era, Manager, SessionConfig};
use serde_json::Value;
use tokio::runtime::Runtime;

/// deadpool's two lines: with a bounded wait (the same work as ours), and
/// with its default unbounded wait.
const DEADPOOL_VARIANTS: [(&str, bool); 2] = [("deadpool+wait-timeout", true), ("deadpool", false)];

/// Pool size for both libraries.
const POOL: usize = 4;
/// Tasks in the contended scenario.
const TASKS: u64 = 16;
/// Acquire → release pairs per task in the contended scenario.
const K: u64 = 1000;

/// A connector whose every call completes at once.
#[derive(Clone, Default)]
struct InstantConnector {
    next_id: Arc<AtomicU64>,
}

/// A connection of [`InstantConnector`].
struct InstantConnection {
    next_id: Arc<AtomicU64>,
}

impl Connector for InstantConnector {
    type Connection = InstantConnection;

    async fn connect(&self) -> Result<InstantConnection, TransportError> {
        Ok(InstantConnection {
            next_id: self.next_id.clone(),
        })
    }
}

impl Connection for InstantConnection {
    async fn initialize(&self, params: &InitializeParams) -> Result<Initialized, TransportError> {
        let n = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        Ok(Initialized {
            protocol_version: params.protocol_version.clone(),
            session_id: Some(format!("s-{n}")),
        })
    }

    async fn notify_initialized(&self) -> Result<(), TransportError> {
        Ok(())
    }

    fn use_modern(&self, _: Option<&ModernParams>) {}

    fn modern_version(&self) -> Option<String> {
        None
    }

    async fn request(
        &self,
        _op: &Operation,
        _input: Option<&InputResponses>,
    ) -> Result<Answer, TransportError> {
        Ok(Answer::new(CallResult::from_value(&Value::Null)))
    }

    async fn close(&self) -> Result<CloseOutcome, TransportError> {
        Ok(CloseOutcome::Deleted)
    }
}

/// deadpool's side: create and recycle do nothing.
struct NoopManager {
    next_id: AtomicU64,
}

impl deadpool::managed::Manager for NoopManager {
    type Type = u64;
    type Error = std::convert::Infallible;

    async fn create(&self) -> Result<u64, Self::Error> {
        Ok(self.next_id.fetch_add(1, Ordering::Relaxed) + 1)
    }

    async fn recycle(
        &self,
        _obj: &mut u64,
        _metrics: &deadpool::managed::Metrics,
    ) -> deadpool::managed::RecycleResult<Self::Error> {
        Ok(())
    }
}

type DeadPool = deadpool::managed::Pool<NoopManager>;

/// Our pool of [`POOL`] sessions that never expire, filled before use.
fn ours(rt: &Runtime) -> Manager<InstantConnector> {
    rt.block_on(async {
        let cfg = SessionConfig {
            ttl_ms: 0,
            max_idle_ms: 0,
            acquire_timeout_ms: 3_600_000,
            // Sessions made by `initialize` (no era probe): the bench
            // measures the pool.
            era: Era::Legacy,
            ..SessionConfig::pool(POOL)
        };
        let m = Manager::start(cfg, InstantConnector::default()).expect("valid config");
        let mut held = Vec::new();
        for vu in 0..POOL as u64 {
            held.push(m.acquire(vu).await.expect("warm-up acquire"));
        }
        for lease in held {
            lease.release();
        }
        assert_eq!(m.metrics().total_created, POOL as u64);
        assert_eq!(m.metrics().idle_sessions, POOL as u64);
        m
    })
}

/// deadpool's pool of [`POOL`] objects, filled before use. With
/// `bounded_wait`, a get waits at most an hour (as every acquire of ours is
/// bounded by `acquire_timeout_ms`), which is the same work; without, it is
/// deadpool's default unbounded wait, shown for reference.
fn theirs(rt: &Runtime, bounded_wait: bool) -> DeadPool {
    rt.block_on(async {
        let mut builder = DeadPool::builder(NoopManager {
            next_id: AtomicU64::new(0),
        })
        .max_size(POOL);
        if bounded_wait {
            builder = builder
                .wait_timeout(Some(Duration::from_secs(3600)))
                .runtime(deadpool::Runtime::Tokio1);
        }
        let pool = builder.build().expect("valid pool");
        let mut held = Vec::new();
        for _ in 0..POOL {
            held.push(pool.get().await.expect("warm-up get"));
        }
        drop(held);
        assert_eq!(pool.status().size, POOL);
        assert_eq!(pool.status().available, POOL);
        pool
    })
}

/// Nothing was created or closed while measuring.
fn check_ours(m: &Manager<InstantConnector>) {
    let s = m.metrics();
    assert_eq!(s.total_created, POOL as u64, "a session was created");
    assert_eq!(s.idle_sessions, POOL as u64, "a session went missing");
}

fn check_theirs(pool: &DeadPool) {
    assert_eq!(pool.manager().next_id.load(Ordering::Relaxed), POOL as u64);
    assert_eq!(pool.status().size, POOL);
}

fn runtimes() -> Vec<(&'static str, Runtime)> {
    let mt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("multi-thread runtime");
    let ct = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("current-thread runtime");
    vec![("mt2", mt), ("ct", ct)]
}

fn uncontended(c: &mut Criterion) {
    for (flavour, rt) in runtimes() {
        let mut g = c.benchmark_group(format!("uncontended/{flavour}"));
        g.throughput(Throughput::Elements(1));

        let m = ours(&rt);
        let mr = &m;
        g.bench_function("mcp-session", |b| {
            b.to_async(&rt).iter(|| async move {
                let lease = mr.acquire(1).await.expect("acquire");
                black_box(&lease);
                lease.release();
            })
        });
        check_ours(&m);
        rt.block_on(m.close());

        for (name, bounded) in DEADPOOL_VARIANTS {
            let pool = theirs(&rt, bounded);
            let pr = &pool;
            g.bench_function(name, |b| {
                b.to_async(&rt).iter(|| async move {
                    let obj = pr.get().await.expect("get");
                    black_box(&obj);
                    drop(obj);
                })
            });
            check_theirs(&pool);
        }
        g.finish();
    }
}

/// One `Lease::call` on a held session (the connector answers at once): the
/// library's own bookkeeping around an operation — the closed check, the
/// operation count, the answer's handling — without an event sink, as a
/// load test runs. `call/*` has no deadpool counterpart (deadpool hands out
/// objects; it runs no operations).
fn call(c: &mut Criterion) {
    for (flavour, rt) in runtimes() {
        let mut g = c.benchmark_group(format!("call/{flavour}"));
        g.throughput(Throughput::Elements(1));
        let m = ours(&rt);
        let mut lease = rt.block_on(m.acquire(1)).expect("acquire");
        g.bench_function("mcp-session", |b| {
            // The lease is borrowed mutably by every call, so the loop runs
            // inside one `block_on` and times itself (wall time, outside
            // any simulation).
            b.iter_custom(|iters| {
                rt.block_on(async {
                    #[allow(clippy::disallowed_methods, clippy::disallowed_types)]
                    let start = std::time::Instant::now();
                    for _ in 0..iters {
                        black_box(lease.call(&Operation::Ping).await.expect("ping"));
                    }
                    start.elapsed()
                })
            })
        });
        lease.release();
        check_ours(&m);
        rt.block_on(m.close());
        g.finish();
    }
}

/// The batch of the contended scenarios: [`TASKS`] tasks, [`K`] acquire →
/// release each. With `hold`, a task yields to the runtime while it holds
/// its session (as a VU awaits its request), so 16 tasks really queue for 4
/// sessions; without, a task never yields holding one, so the pool is never
/// empty and only the lock is contended (between the 2 workers).
fn contended(c: &mut Criterion) {
    for (name, hold) in [("contended", true), ("parallel", false)] {
        for (flavour, rt) in runtimes() {
            let mut g = c.benchmark_group(format!("{name}/{flavour}"));
            g.throughput(Throughput::Elements(TASKS * K));
            g.sample_size(30);

            let m = ours(&rt);
            let mr = &m;
            g.bench_function("mcp-session", |b| {
                b.to_async(&rt).iter(|| async move {
                    let mut tasks = tokio::task::JoinSet::new();
                    for vu in 0..TASKS {
                        let m = mr.clone();
                        tasks.spawn(async move {
                            for _ in 0..K {
                                let lease = m.acquire(vu).await.expect("acquire");
                                if hold {
                                    tokio::task::yield_now().await;
                                }
                                black_box(&lease);
                                lease.release();
                            }
                        });
                    }
                    while let Some(r) = tasks.join_next().await {
                        r.expect("task");
                    }
                })
            });
            check_ours(&m);
            rt.block_on(m.close());

            for (name, bounded) in DEADPOOL_VARIANTS {
                let pool = theirs(&rt, bounded);
                let pr = &pool;
                g.bench_function(name, |b| {
                    b.to_async(&rt).iter(|| async move {
                        let mut tasks = tokio::task::JoinSet::new();
                        for _ in 0..TASKS {
                            let pool = pr.clone();
                            tasks.spawn(async move {
                                for _ in 0..K {
                                    let obj = pool.get().await.expect("get");
                                    if hold {
                                        tokio::task::yield_now().await;
                                    }
                                    black_box(&obj);
                                    drop(obj);
                                }
                            });
                        }
                        while let Some(r) = tasks.join_next().await {
                            r.expect("task");
                        }
                    })
                });
                check_theirs(&pool);
            }
            g.finish();
        }
    }
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(6))
}

criterion_group! {
    name = benches;
    config = config();
    targets = uncontended, contended, call
}
criterion_main!(benches);
