//! Signed fixtures for benchmarks: registrations and delegation chains of a
//! given depth, as log records (TEST-ONLY keys made at run time).

use baton_core::Envelope;
use baton_log::{Position, ReadRecord};
use baton_testkit::Fixture;

/// The `n`th hop's performer and holder: chains alternate between the two
/// delegating MCP servers after the agent and the gateway.
fn hop_clients(n: usize) -> (&'static str, &'static str) {
    match n {
        1 => ("agent", "gateway"),
        2 => ("gateway", "server-a"),
        n if n % 2 == 1 => ("server-a", "server-b"),
        _ => ("server-b", "server-a"),
    }
}

/// A root grant `{name}-0` and `depth` hops `{name}-1..={depth}` below it.
pub fn chain(fixture: &mut Fixture, name: &str, depth: usize) -> Vec<Envelope> {
    let mut events =
        vec![fixture.issue("as", &format!("{name}-0"), "user:bench", "agent", 24 * 3600)];
    for n in 1..=depth {
        let (performer, holder) = hop_clients(n);
        events.push(fixture.narrow(
            &format!("{name}-{}", n - 1),
            &format!("{name}-{n}"),
            performer,
            holder,
            &[],
            1,
        ));
    }
    events
}

/// Records continuing a single-partition log at `next`.
pub fn records(events: &[Envelope], next: &mut u64) -> Vec<ReadRecord> {
    events
        .iter()
        .map(|e| {
            let position = Position {
                partition: 0,
                offset: *next,
            };
            *next += 1;
            ReadRecord {
                position,
                key: Vec::new(),
                value: baton_proto::encode_signed(e),
            }
        })
        .collect()
}
