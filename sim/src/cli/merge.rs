//! `mcp-sim merge`: one report from the `--json` reports of several
//! `mcp-sim sweep --shard K/N` runs.
//!
//! ```text
//! mcp-sim merge A.json B.json ... [--json MERGED.json]
//! ```
//!
//! The reports must be of the same format ([`mcp_sim::sweep::FORMAT`]) and
//! made from the same scenario definitions, and their seed ranges must not
//! overlap ([`mcp_sim::sweep::merge`]). It prints what `sweep` prints (the
//! table per scenario, the failing seeds with their replay lines, the goals
//! reached), plus a warning line for each shard `K/N` missing from a split,
//! and `--json FILE` writes the merged report (same format, so merged
//! reports merge again).
//!
//! Exit status: 0 when the merged report has no failing seed; 1 when it has
//! one, or when an input was an interrupted sweep; 2 when an input cannot
//! be read, is not a sweep report of this format, comes from other scenario
//! definitions or overlaps another input, or the output cannot be created.

use std::path::PathBuf;

use clap::Args;

use mcp_sim::sweep::{merge, SweepReport};

use super::sweep::{create, outcome_text, print, verdict, write};
use super::Failure;

/// The largest report read (a 500-seed sweep of every scenario writes a
/// few megabytes).
pub const MAX_REPORT_BYTES: u64 = 256 * 1024 * 1024;

/// The options of `mcp-sim merge`.
#[derive(Debug, Clone, Args)]
pub struct MergeArgs {
    /// The reports to merge (written by `mcp-sim sweep --json`).
    #[arg(required = true, value_name = "REPORT")]
    pub reports: Vec<PathBuf>,

    /// Write the merged report as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
}

/// Runs `mcp-sim merge`.
pub fn run(args: MergeArgs) -> Result<(), Failure> {
    const CMD: &str = "mcp-sim merge";
    let mut inputs = Vec::with_capacity(args.reports.len());
    for path in &args.reports {
        let name = path.display().to_string();
        let text = super::read_capped(path, MAX_REPORT_BYTES)
            .map_err(|e| Failure::Usage(format!("{CMD}: cannot read '{name}': {e}")))?;
        let report = SweepReport::from_json(&name, &text)
            .map_err(|e| Failure::Usage(format!("{CMD}: {e}")))?;
        inputs.push((name, report));
    }
    let merged = merge(&inputs).map_err(|e| Failure::Usage(format!("{CMD}: {e}")))?;
    let json = match &args.json {
        Some(path) => Some((create(CMD, "report file", path)?, path)),
        None => None,
    };

    let shards: Vec<String> = merged.shards.iter().map(ToString::to_string).collect();
    let mut text = format!(
        "{CMD}: {} report(s), shards {}, {} seeds\n",
        inputs.len(),
        shards.join(" "),
        merged.seeds.len()
    );
    text.push_str(&merged.table());
    text.push_str(&outcome_text(&merged));
    let missing = merged.missing_shards();
    if !missing.is_empty() {
        let missing: Vec<String> = missing.iter().map(ToString::to_string).collect();
        text.push_str(&format!(
            "warning: shards missing from the merge: {}\n",
            missing.join(" ")
        ));
    }
    text.push_str(&format!(
        "wall time: {:.2} s (the longest input's)\n",
        merged.wall_ms / 1_000.0
    ));
    print(&text);
    if let Some((file, path)) = json {
        write(CMD, "report file", file, path, &merged.to_json())?;
    }
    verdict(CMD, &merged)
}
