//! The drill's report: text for stdout, and the same as JSON for `--json`.

use std::fmt::Write as _;
use std::time::Duration;

use serde_json::{json, Value};

use mcp_session::{
    CloseReason, EraCounts, EraMetrics, Mode, ServerCloses, SessionConfig, SessionEra,
};
use mcp_sim::vu::MAX_INPUT_ROUNDS;

use super::load::{format_latency, Outcome};
use super::stats::{Latency, Summary};
use super::{format_duration, Plan};

/// Operations per second over the run.
fn per_second(outcome: &Outcome) -> f64 {
    let secs = outcome.elapsed.as_secs_f64();
    if secs > 0.0 {
        (outcome.stats.ok + outcome.stats.failed) as f64 / secs
    } else {
        0.0
    }
}

/// `0` or a duration in milliseconds, for people: `off` or `1m30s`.
fn ms_or_off(ms: u64) -> String {
    if ms == 0 {
        "off".into()
    } else {
        format_duration(Duration::from_millis(ms))
    }
}

/// The mode and the settings that matter for it, in one phrase.
fn mode_phrase(cfg: &SessionConfig) -> String {
    let mut s = format!("{} mode", cfg.mode);
    match cfg.mode {
        Mode::Pool => {
            let _ = write!(
                s,
                " (pool size {}, acquire timeout {})",
                cfg.pool_size,
                format_duration(cfg.acquire_timeout())
            );
        }
        Mode::Churn if cfg.churn_ops() == 1 => {
            s.push_str(" (new session every operation)");
        }
        Mode::Churn if cfg.churn_ops() > 0 => {
            let _ = write!(s, " (new session every {} ops)", cfg.churn_ops());
        }
        Mode::Churn => {
            let _ = write!(
                s,
                " (new session every {})",
                ms_or_off(cfg.churn_interval_ms)
            );
        }
        Mode::Reuse | Mode::PerRequest => {}
    }
    let _ = write!(
        s,
        ", ttl {}, idle {}",
        ms_or_off(cfg.ttl_ms),
        ms_or_off(cfg.max_idle_ms)
    );
    s
}

fn latency_row(out: &mut String, name: &str, l: &Latency) {
    match l.summary() {
        None => {
            let _ = writeln!(out, "  {name:<14} (no successful operation)");
        }
        Some(s) => {
            let cell = |ms: f64| {
                let nanos = (ms.max(0.0) * 1_000_000.0).round().min(u64::MAX as f64);
                format_latency(Duration::from_nanos(nanos as u64))
            };
            let _ = writeln!(
                out,
                "  {name:<14}{:>10}{:>10}{:>10}{:>10}{:>10}",
                cell(s.p50),
                cell(s.p95),
                cell(s.p99),
                cell(s.max),
                cell(s.mean),
            );
        }
    }
}

/// The era and revision the drill negotiated: the load manager's last
/// session, or the probe's when the load made none.
fn negotiated(outcome: &Outcome) -> (SessionEra, &str) {
    match &outcome.negotiated {
        Some(n) => (n.era, n.version.as_str()),
        None => (outcome.probe.era, outcome.probe.protocol_version.as_str()),
    }
}

/// The era line of the header: the setting, what was negotiated, and the
/// probe's finding when the load ended up elsewhere (the server changed
/// era during the run).
fn era_phrase(plan: &Plan, outcome: &Outcome) -> String {
    let (era, version) = negotiated(outcome);
    let mut s = format!(
        "era {}: negotiated {era} era, MCP {}",
        plan.config.era,
        flat(version)
    );
    let probe = &outcome.probe;
    if (probe.era, probe.protocol_version.as_str()) != (era, version) {
        let _ = write!(
            s,
            " (the probe found {} era, MCP {})",
            probe.era,
            flat(&probe.protocol_version)
        );
    }
    s
}

/// One era's session counters, for people.
fn era_counts_row(out: &mut String, name: &str, c: &EraCounts) {
    let _ = writeln!(
        out,
        "  {name:<7} {} created, {} closed, {} evicted (ttl {}, idle {}), {} reconnects",
        c.created,
        c.closed.total(),
        c.evicted,
        c.ttl_evictions,
        c.idle_evictions,
        c.reconnects
    );
}

/// What the closes did on the server, for people: "closed" above is the
/// client's side; only a confirmed DELETE deleted anything there.
pub(crate) fn server_closes_row(c: &ServerCloses) -> String {
    let mut parts: Vec<String> = Vec::new();
    for (n, what) in [
        (c.deleted, "deleted"),
        (c.already_gone, "already gone"),
        (c.not_allowed, "DELETE refused (405)"),
        (c.failed, "DELETE failed"),
        (c.no_session_id, "no session id to delete"),
        (c.stateless, "stateless contexts, nothing to delete"),
    ] {
        if n > 0 {
            parts.push(format!("{n} {what}"));
        }
    }
    let mut row = format!(
        "  on the server: {}",
        if parts.is_empty() {
            "nothing closed".to_owned()
        } else {
            parts.join(", ")
        }
    );
    if c.no_session_id > 0 && c.no_session_id == c.total() {
        row.push_str(" (the server issued no session ids: it kept no sessions to delete)");
    }
    row
}

/// The report as text: a header, then one paragraph each for the
/// operations, their latencies, the sessions and the eras.
pub(crate) fn text(plan: &Plan, outcome: &Outcome) -> String {
    let mut out = String::new();
    header(&mut out, plan, outcome);
    let _ = writeln!(out);
    operations(&mut out, outcome);
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "latency (ok ops)     p50       p95       p99       max      mean"
    );
    latency_row(&mut out, "acquire + op", &outcome.stats.total);
    latency_row(&mut out, "acquire", &outcome.stats.acquire);
    latency_row(&mut out, "op", &outcome.stats.call);
    let _ = writeln!(out);
    sessions(&mut out, plan.config.mode, outcome);
    eras(&mut out, &outcome.metrics.eras);
    out
}

// The writers below ignore `writeln!`'s result: writing to a `String`
// cannot fail.

/// What was drilled and how: URL, mode, load, operation, era, run time.
fn header(out: &mut String, plan: &Plan, outcome: &Outcome) {
    let _ = writeln!(out, "drill {}", plan.url);
    let _ = writeln!(
        out,
        "  {}, {} VUs, {}{}, op {}",
        mode_phrase(&plan.config),
        plan.vus,
        format_duration(plan.duration),
        if plan.think.is_zero() {
            String::new()
        } else {
            format!(" (think {})", format_duration(plan.think))
        },
        plan.op.label,
    );
    let _ = writeln!(
        out,
        "  {}; ran {:.2}s{}",
        era_phrase(plan, outcome),
        outcome.elapsed.as_secs_f64(),
        if outcome.interrupted {
            " (interrupted by Ctrl-C or SIGTERM)"
        } else {
            ""
        }
    );
}

/// The operations' outcomes and rate, the `input_required` rounds
/// answered (when there were any), then the failures by kind with an
/// example message each.
fn operations(out: &mut String, outcome: &Outcome) {
    let stats = &outcome.stats;
    let _ = writeln!(
        out,
        "operations: {} ok, {} failed, {} cancelled at the end; {:.1} op/s",
        stats.ok,
        stats.failed,
        stats.cancelled,
        per_second(outcome)
    );
    if stats.input_rounds > 0 {
        let _ = writeln!(
            out,
            "input rounds: {} (input_required results answered and retried, MRTR; \
             at most {MAX_INPUT_ROUNDS} per operation)",
            stats.input_rounds
        );
    }
    if !stats.errors.is_empty() {
        let _ = writeln!(out, "failed by kind:");
        let width = stats.errors.keys().map(String::len).max().unwrap_or(0);
        for (kind, c) in &stats.errors {
            let _ = writeln!(
                out,
                "  {kind:<width$}  {:>8}  e.g. {}",
                c.count,
                flat(&c.example)
            );
        }
    }
}

/// The sessions when the load stopped and after the manager closed:
/// closes by reason, on the server, evictions, and (pool mode) waits.
fn sessions(out: &mut String, mode: Mode, outcome: &Outcome) {
    let e = &outcome.at_end;
    let _ = writeln!(
        out,
        "sessions when the load stopped: {} live ({} active, {} idle)",
        e.live_sessions, e.active_sessions, e.idle_sessions
    );
    let m = &outcome.metrics;
    let closed: Vec<String> = CloseReason::ALL
        .iter()
        .filter(|r| m.closed.get(**r) > 0)
        .map(|r| format!("{} {}", r.as_str(), m.closed.get(*r)))
        .collect();
    let _ = writeln!(
        out,
        "sessions after close: {} created, {} closed ({}), {} live",
        m.total_created,
        m.closed.total(),
        if closed.is_empty() {
            "none".to_owned()
        } else {
            closed.join(", ")
        },
        m.live_sessions,
    );
    let _ = writeln!(out, "{}", server_closes_row(&m.server_closes));
    let _ = writeln!(
        out,
        "  evicted {} (ttl {}, idle {}), reconnects {}",
        m.total_evicted, m.ttl_evictions, m.idle_evictions, m.reconnects
    );
    if mode == Mode::Pool {
        let w = &m.acquire_wait;
        let _ = writeln!(
            out,
            "  pool waits {} (served {}, timed out {}, cancelled {}), wait mean {:.1}ms, max {}ms",
            m.pool_waits,
            w.served,
            m.pool_timeouts,
            w.cancelled,
            w.mean_ms(),
            w.max_ms
        );
    }
}

/// The era counters: probes, fallbacks, retries and changes, then each
/// era's sessions.
fn eras(out: &mut String, eras: &EraMetrics) {
    let _ = writeln!(
        out,
        "eras: {} discover probes, {} fallbacks to legacy, {} version retries, \
         {} era re-probes, {} era changes",
        eras.discover_probes,
        eras.fallbacks_to_legacy,
        eras.version_retries,
        eras.era_reprobes,
        eras.era_changes
    );
    era_counts_row(out, "legacy", &eras.legacy);
    era_counts_row(out, "modern", &eras.modern);
}

/// A message on one line.
fn flat(s: &str) -> String {
    super::shown::shown(s)
}

fn summary_json(l: &Latency) -> Value {
    match l.summary() {
        Some(Summary {
            count,
            mean,
            p50,
            p95,
            p99,
            max,
        }) => json!({
            "count": count, "mean": mean, "p50": p50, "p95": p95, "p99": p99, "max": max,
        }),
        None => json!({
            "count": 0, "mean": null, "p50": null, "p95": null, "p99": null, "max": null,
        }),
    }
}

/// The report as JSON (what `--json FILE` holds).
pub(crate) fn json(plan: &Plan, outcome: &Outcome) -> Value {
    let stats = &outcome.stats;
    let millis = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    let (era, version) = negotiated(outcome);
    json!({
        "url": plan.url,
        "mode": plan.config.mode,
        "era": {
            "setting": plan.config.era,
            "negotiated": era,
            "version": version,
        },
        "vus": plan.vus,
        "op": plan.op.label,
        "duration_ms": millis(plan.duration),
        "think_ms": millis(plan.think),
        "elapsed_ms": millis(outcome.elapsed),
        "interrupted": outcome.interrupted,
        "config": plan.config,
        "http": plan.http,
        "probe": {
            "era": outcome.probe.era,
            "protocol_version": outcome.probe.protocol_version,
            "session_id": outcome.probe.session_id,
            "latency_ms": outcome.probe.latency.as_secs_f64() * 1_000.0,
        },
        "operations": {
            "ok": stats.ok,
            "failed": stats.failed,
            "cancelled": stats.cancelled,
            "input_rounds": stats.input_rounds,
            "per_second": per_second(outcome),
        },
        "errors": stats.errors,
        "latency_ms": {
            "total": summary_json(&stats.total),
            "acquire": summary_json(&stats.acquire),
            "call": summary_json(&stats.call),
        },
        "sessions_at_end": outcome.at_end,
        "metrics": outcome.metrics,
    })
}
