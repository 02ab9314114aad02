//! The benchmark's baseline, the bare hyper-over-turmoil request loop: it
//! does the requests it is asked for (counted on both ends), and it is a
//! deterministic simulation like the rest.

use std::time::Duration;

use mcp_sim::baseline::{run_bare, BareLoop};
use mcp_sim::run::run;
use mcp_sim::scenarios::Scenario;
use mcp_sim::schedule::Schedule;
use mcp_sim::topology::Latency;

#[test]
fn every_requested_operation_reaches_the_server_and_is_answered() {
    let report = run_bare(&[3, 2], 7, Latency::new(1, 5), 42);
    assert_eq!(report.served, 35, "{report:?}");
    assert_eq!(report.ops, 35, "{report:?}");
    assert!(report.simulated_ms > 0, "{report:?}");
}

#[test]
fn the_same_seed_gives_the_same_simulated_time() {
    let a = run_bare(&[4], 10, Latency::new(0, 10), 9);
    let b = run_bare(&[4], 10, Latency::new(0, 10), 9);
    assert_eq!(a, b);
    let slow = BareLoop::new(&[4], 10, Latency::new(0, 10), 9)
        .think(Duration::from_millis(50))
        .run()
        .expect("bare loop");
    assert_eq!(slow.served, 40);
    // Ten requests with 50 ms of thinking after each.
    assert!(
        slow.simulated_ms >= a.simulated_ms + 500,
        "{slow:?} vs {a:?}"
    );
}

#[test]
fn a_matching_loop_makes_as_many_requests_on_the_same_vus() {
    let scenario = Scenario::partition();
    let report = run(&Schedule::generate(&scenario, 3), &scenario.name, 3);
    let requests = report.server_requests();
    assert!(requests >= report.operations(), "{requests}");
    assert!(report.operations() > 0);
    let bare = BareLoop::matching(&report);
    let vus = report.schedule.vus_per_worker();
    assert_eq!(bare.vus_per_worker, vus);
    assert_eq!(bare.latency, report.schedule.latency);
    assert_eq!(bare.total_ops(), requests);
    let done = bare.run().expect("bare loop");
    assert_eq!(done.served, bare.total_ops());
    assert_eq!(done.ops, bare.total_ops());
}

#[test]
fn requests_are_spread_over_the_vus_with_the_remainder_first() {
    let bare = BareLoop::new(&[2, 1], 0, Latency::fixed(1), 3).total_requests(8);
    let counts: Vec<usize> = (0..3).map(|k| bare.requests_of(k)).collect();
    assert_eq!(counts, [3, 3, 2]);
    assert_eq!(bare.ops_per_vu(), 3);
    let done = bare.run().expect("bare loop");
    assert_eq!((done.served, done.ops), (8, 8));
    // Fewer requests than VUs: the idle VUs do not even connect.
    let few = BareLoop::new(&[4], 0, Latency::fixed(1), 3).total_requests(1);
    assert_eq!(few.run().expect("bare loop").served, 1);
}

#[test]
fn a_loop_whose_answers_come_in_pieces_still_does_every_request() {
    let whole = run_bare(&[2], 6, Latency::fixed(2), 5);
    let cut = BareLoop::new(&[2], 6, Latency::fixed(2), 5)
        .response_pieces(3)
        .run()
        .expect("bare loop");
    assert_eq!((cut.served, cut.ops), (12, 12));
    assert!(
        cut.simulated_ms >= whole.simulated_ms,
        "{cut:?} vs {whole:?}"
    );
}

#[test]
fn a_loop_that_reconnects_still_does_every_request() {
    let once = run_bare(&[2], 9, Latency::fixed(2), 5);
    let churn = BareLoop::new(&[2], 9, Latency::fixed(2), 5)
        .requests_per_connection(4)
        .run()
        .expect("bare loop");
    assert_eq!((churn.served, churn.ops), (18, 18));
    // Two more connections per VU, each a handshake's round trip.
    assert!(
        churn.simulated_ms > once.simulated_ms,
        "{churn:?} vs {once:?}"
    );
}
