//! `mcp-sim explore`'s engine: the default scopes explore clean and reach
//! enough states; planted bugs are found on a shortest path; scripts
//! replay.

use mcp_sim::explore::{
    explore, explore_from, parse_script, replay, replay_from, replay_to, Counterexample, Input,
    Scope, World,
};
use mcp_sim::mcp_session::cores::{PlantedBug, PoolCore};

/// Explores default scope `i` and asserts it is clean, deep and big
/// enough. One test per scope, so the harness spreads them over the cores.
fn default_scope_breaks_no_law(i: usize) {
    let scope = &Scope::defaults()[i];
    let out = explore(scope);
    if let Some(c) = &out.violation {
        panic!(
            "{scope}: {} — {}\nscript: {}\n{}",
            c.law,
            c.message,
            c.script(),
            c.trace.timeline()
        );
    }
    eprintln!(
        "{scope}: {} states, {} transitions, depth {}",
        out.states, out.transitions, out.depth
    );
    assert_eq!(
        out.depth, scope.depth,
        "{scope}: the depth bound was reached"
    );
    assert!(out.states >= 1_000, "{scope}: only {} states", out.states);
}

#[test]
fn every_default_scope_has_its_test() {
    assert_eq!(Scope::defaults().len(), 8, "add a default_scope_N test");
}

#[test]
fn default_scope_0() {
    default_scope_breaks_no_law(0);
}
#[test]
fn default_scope_1() {
    default_scope_breaks_no_law(1);
}
#[test]
fn default_scope_2() {
    default_scope_breaks_no_law(2);
}
#[test]
fn default_scope_3() {
    default_scope_breaks_no_law(3);
}
#[test]
fn default_scope_4() {
    default_scope_breaks_no_law(4);
}
#[test]
fn default_scope_5() {
    default_scope_breaks_no_law(5);
}
#[test]
fn default_scope_6() {
    default_scope_breaks_no_law(6);
}
#[test]
fn default_scope_7() {
    default_scope_breaks_no_law(7);
}

#[test]
fn scripts_print_and_parse_back() {
    let script = "acquire 1; create_ok 1; acquire 2; release 1\nwake 2 # served\ntick; jump; evict; cancel 3; create_fail 2; invalidate 1; close";
    let inputs = parse_script(script).unwrap();
    assert_eq!(inputs[0], Input::Acquire(1));
    assert_eq!(inputs.len(), 12);
    let text = inputs
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ");
    assert_eq!(parse_script(&text).unwrap(), inputs);
    assert!(parse_script("fly 1").is_err());
    assert!(parse_script("acquire").is_err());
}

#[test]
fn a_replayed_path_reports_the_managers_events() {
    let scope = Scope::pool(1, 2, 10);
    let script = parse_script("acquire 1; create_ok 1; acquire 2; release 1; wake 2").unwrap();
    let trace = replay(&scope, &script).unwrap();
    let names: Vec<String> = trace.events.iter().map(|e| e.name().into_owned()).collect();
    assert_eq!(
        names,
        [
            "acquire_start",
            "slot_reserved",
            "created",
            "acquire_ok",
            "acquire_start",
            "acquire_wait",
            "released",
            "waiter_granted",
            "acquire_ok"
        ]
    );
    // An input that cannot happen is refused, naming the step.
    let bad = parse_script("release 1").unwrap();
    let err = replay(&scope, &bad).unwrap_err();
    assert_eq!(err.law, "script");
}

/// Explores `scope` around a core with `bug` planted; the counterexample.
fn find(bug: PlantedBug, scope: &Scope) -> (Counterexample, u64, f64) {
    let mut core = PoolCore::new(scope.pool_size, scope.deadlines());
    core.plant(bug);
    // Wall time, for the < 10 s target only.
    #[allow(clippy::disallowed_methods, clippy::disallowed_types)]
    let started = std::time::Instant::now();
    let out = explore_from(scope, World::with_core(scope, core));
    let secs = started.elapsed().as_secs_f64();
    let c = out
        .violation
        .unwrap_or_else(|| panic!("{bug:?} not found in {scope} ({} states)", out.states));
    eprintln!(
        "{bug:?}: {} after {} states, {secs:.2}s, {} inputs: {}",
        c.law,
        out.states,
        c.path.len(),
        c.script()
    );
    // The counterexample replays, and breaks the same law.
    let again = replay_from(scope, planted(bug, scope), &c.path).unwrap_err();
    assert_eq!(again.law, c.law);
    (c, out.states, secs)
}

fn planted(bug: PlantedBug, scope: &Scope) -> World {
    let mut core = PoolCore::new(scope.pool_size, scope.deadlines());
    core.plant(bug);
    World::with_core(scope, core)
}

#[test]
fn planted_bugs_are_found_on_a_shortest_path() {
    // (bug, scope, the law that catches it, the shortest path's length)
    let cases = [
        // acquire 1; acquire 2; jump; evict; create_fail 1; wake 2
        (
            PlantedBug::GrantToDeparted,
            Scope::pool(1, 3, 10),
            "pool_bound",
            6,
        ),
        // acquire 1; acquire 2; jump; evict; tick; create_ok 1
        (
            PlantedBug::OffByOneDeadline,
            Scope::pool(1, 2, 10),
            "acquire_ends_by_deadline",
            6,
        ),
        // acquire 1; create_ok 1; acquire 2; acquire 3; acquire 4; release 1
        (
            PlantedBug::LostWakeupThirdWaiter,
            Scope::pool(1, 4, 10),
            "no_wait_with_capacity",
            6,
        ),
    ];
    for (bug, scope, law, len) in cases {
        let (c, _, secs) = find(bug, &scope);
        assert!(secs < 10.0, "{bug:?}: {secs:.1}s");
        assert_eq!(c.law, law, "{bug:?}: {}", c.message);
        assert_eq!(c.path.len(), len, "{bug:?}: {}", c.script());
    }
}

/// An idle session handed out at its idle deadline (the evictor has not
/// run yet in that millisecond) breaks `no_stale_handout`, one of the lease
/// laws `audit_prefix` runs after every step.
#[test]
fn stale_handout_is_found() {
    let (c, _, secs) = find(PlantedBug::StaleHandout, &Scope::pool(1, 2, 10));
    assert!(secs < 10.0);
    assert_eq!(c.law, "no_stale_handout");
}

/// A core that forgets the reconnect it owes after an invalidation is, once
/// the session is closed, back in the state it started from; only the
/// laws still expect the next session to be a reconnect. The explored
/// state holds what the laws keep, so that path is not merged with the
/// start and is expanded: the replacement made without the flag breaks
/// `reconnects_exact`. (Before the laws' state was part of the key, the
/// search found nothing here.)
#[test]
fn a_forgotten_reconnect_is_found() {
    let scope = Scope::pool(1, 2, 8);
    let (c, _, secs) = find(PlantedBug::ForgottenReconnect, &scope);
    assert!(secs < 10.0, "{secs:.1}s");
    assert_eq!(c.law, "reconnects_exact", "{}", c.message);
    assert_eq!(
        c.script(),
        "acquire 1; create_ok 1; invalidate 1; acquire 1; create_ok 1"
    );
}

/// The explored state after an invalidation differs from the start even
/// when the core forgot its debt: the laws' own expectation (a reconnect
/// owed) is part of it. And only what the laws still expect is: a session
/// released and evicted leaves nothing owed, and the state is the
/// start's again (times relative to the clock, the closed session named
/// nowhere).
#[test]
fn what_the_laws_still_expect_is_part_of_the_explored_state() {
    let scope = Scope::pool(1, 2, 8);
    let start = planted(PlantedBug::ForgottenReconnect, &scope);
    let mut after = start.clone();
    for input in parse_script("acquire 1; create_ok 1; invalidate 1").unwrap() {
        after.step(input).unwrap();
    }
    // The core and the tasks are as at the start: without the laws'
    // state, the key is the start's.
    assert_eq!(after.pool_core().unwrap().replacements_owed(), 0);
    assert_eq!(after.pool_core().unwrap().in_use(), 0);
    assert_eq!(after.key(), start.key());
    // `World::step` alone does not run the laws: a replay does, and the
    // state it leaves carries the debt.
    let replayed = replay_world(
        &scope,
        start.clone(),
        "acquire 1; create_ok 1; invalidate 1",
    );
    assert_ne!(
        replayed.key(),
        start.key(),
        "the reconnect owed is forgotten"
    );
    // Released instead of invalidated, and evicted: nothing is owed, and
    // the state is the start's (times are relative to the clock).
    let evicted = replay_world(
        &scope,
        start.clone(),
        "acquire 1; create_ok 1; release 1; jump; evict; tick",
    );
    assert_eq!(evicted.key(), start.key());
}

/// Replays `script` from `world` (the laws hold on it): the world after it.
fn replay_world(scope: &Scope, world: World, script: &str) -> World {
    let script = parse_script(script).unwrap();
    replay_to(scope, world, &script).unwrap().0
}
