//! What a VU does: runs its program of [`Step`]s against its worker's
//! session manager, one acquire, operation and release per call step,
//! and records every step that ended in an error as a `vu_error` trace
//! event (the error's kind and the step's index).

use std::time::Duration;

use serde_json::json;

use mcp_session::transport::Operation;
use mcp_session::ErrorKind;

use crate::detail::Detail;
use crate::schedule::{Op, Step};
use crate::topology::Vu;
use crate::trace::TraceRecorder;

/// The operation of a step.
fn operation(op: &Op, worker: &str, vu: u64, step: usize) -> Operation {
    match op {
        Op::Ping => Operation::Ping,
        Op::Echo => Operation::ToolsCall {
            name: "echo".into(),
            arguments: json!({ "text": format!("{worker}/{vu}/{step}") }),
        },
        Op::Slow { ms } => Operation::ToolsCall {
            name: "slow".into(),
            arguments: json!({ "ms": ms }),
        },
    }
}

/// The detail of a `vu_error` event: the step that failed and the error's
/// kind.
fn vu_error(step: usize, error: &'static str) -> Detail {
    let mut d = Detail::with_capacity(2);
    d.insert("error", error);
    d.insert("step", step as u64);
    d
}

/// Runs one VU's program; returns how many steps ended in an error. Stops
/// early once the manager is closed.
pub async fn run_vu(vu: Vu, steps: Vec<Step>, recorder: TraceRecorder) -> u32 {
    let mut errors = 0;
    let think = |ms: u64| tokio::time::sleep(Duration::from_millis(ms));
    for (i, step) in steps.iter().enumerate() {
        match step {
            Step::Call { op, think_ms } => {
                match vu.manager.acquire(vu.id).await {
                    Ok(mut lease) => {
                        let r = lease.call(&operation(op, &vu.worker, vu.id, i)).await;
                        match &r {
                            Err(e) if e.should_invalidate() => lease.invalidate(),
                            _ => lease.release(),
                        }
                        if let Err(e) = r {
                            errors += 1;
                            let detail = vu_error(i, e.kind_name());
                            recorder.record_vu(vu.id, "vu_error", e.session.as_deref(), detail);
                        }
                    }
                    Err(e) => {
                        errors += 1;
                        let detail = vu_error(i, e.kind_name());
                        recorder.record_vu(vu.id, "vu_error", None, detail);
                        if matches!(e.kind, ErrorKind::ManagerClosed) {
                            break;
                        }
                    }
                }
                think(*think_ms).await;
            }
            Step::CancelAcquire { after_ms, think_ms } => {
                let closed = tokio::select! {
                    biased;
                    r = vu.manager.acquire(vu.id) => match r {
                        Ok(lease) => {
                            lease.release();
                            false
                        }
                        Err(e) => matches!(e.kind, ErrorKind::ManagerClosed),
                    },
                    () = think(*after_ms) => false,
                };
                if closed {
                    break;
                }
                think(*think_ms).await;
            }
            Step::CloseManager => vu.manager.close().await,
        }
    }
    errors
}
