//! The server's notion of "now": milliseconds since it started.
//!
//! Inside turmoil the obvious choice, `tokio::time::Instant`, does not work
//! across a restart: a bounce builds the host a fresh tokio runtime, whose
//! paused clock takes its base from the real clock at that moment, so an
//! instant from before the bounce and one from after cannot be compared (the
//! difference would carry real time into the log). Turmoil's own simulated
//! time (`turmoil::sim_elapsed`) is continuous across crashes and bounces
//! and identical from every host, so that is the time base in simulation.
//!
//! Outside a simulation (`mcp-sim serve` on real TCP) the server reads
//! `tokio::time`, which is real time there, or paused time in a test.
//!
//! The origin is taken lazily, the first time the server reads the time in
//! a context that has a clock: in practice when it first starts serving.

use std::time::Duration;

/// Where time comes from, and from when it counts.
#[derive(Clone, Copy, Debug, Default)]
enum Base {
    /// Not read yet.
    #[default]
    Unset,
    /// Turmoil's simulated time, counted from `origin`.
    Sim { origin: Duration },
    /// tokio's time, counted from `origin`.
    Tokio { origin: tokio::time::Instant },
}

/// The server's clock: milliseconds since its start, never going back.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Timebase {
    base: Base,
    /// The last reading: what a read from outside the simulation (a test
    /// reading the server after `sim.run()`) gets.
    last_ms: u64,
}

impl Timebase {
    /// Milliseconds since the origin, fixing the origin at this call if it
    /// is not set. Without a clock to read (outside both a simulation's
    /// hosts and a tokio runtime) it returns the last reading, and an unset
    /// origin stays unset.
    pub fn now_ms(&mut self) -> u64 {
        let elapsed = match self.base {
            Base::Sim { origin } => turmoil::sim_elapsed().map(|t| t.saturating_sub(origin)),
            Base::Tokio { origin } => {
                Some(tokio::time::Instant::now().saturating_duration_since(origin))
            }
            Base::Unset => {
                if let Some(origin) = turmoil::sim_elapsed() {
                    self.base = Base::Sim { origin };
                } else if tokio::runtime::Handle::try_current().is_ok() {
                    self.base = Base::Tokio {
                        origin: tokio::time::Instant::now(),
                    };
                }
                None
            }
        };
        if let Some(d) = elapsed {
            let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
            self.last_ms = self.last_ms.max(ms);
        }
        self.last_ms
    }

    /// Takes a reading of turmoil's simulated time from outside a host
    /// (`Sim::elapsed()` between steps): moves the last reading forward, and
    /// fixes an unset origin there, as a first read inside a host would.
    /// A server on tokio time ignores it.
    pub fn observe_sim(&mut self, sim_elapsed: Duration) {
        let origin = match self.base {
            Base::Sim { origin } => origin,
            Base::Unset => {
                self.base = Base::Sim {
                    origin: sim_elapsed,
                };
                sim_elapsed
            }
            Base::Tokio { .. } => return,
        };
        let d = sim_elapsed.saturating_sub(origin);
        let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        self.last_ms = self.last_ms.max(ms);
    }
}
