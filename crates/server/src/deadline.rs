//! A request's deadline, so that work bounded by it ends with an answer of
//! our own (an unknown outcome, say) rather than the transport's generic
//! `CANCELLED "Timeout expired"`.

use std::time::Duration;

use tokio::time::Instant;
use tonic::metadata::MetadataMap;

/// The least time kept back to answer in.
const MARGIN_MIN: Duration = Duration::from_millis(50);

/// When a handler must be done to answer in time: the sooner of the
/// server's request timeout and the client's `grpc-timeout`, less a margin
/// (a tenth of it, at least [`MARGIN_MIN`]).
pub fn answer_by(metadata: &MetadataMap, server_timeout: Duration, now: Instant) -> Instant {
    let budget = metadata
        .get("grpc-timeout")
        .and_then(|v| v.to_str().ok())
        .and_then(grpc_timeout)
        .map_or(server_timeout, |client| client.min(server_timeout));
    let margin = (budget / 10).max(MARGIN_MIN);
    now + budget.saturating_sub(margin)
}

/// Parses a `grpc-timeout` header: up to 8 digits and a unit (H, M, S, m, u, n).
fn grpc_timeout(text: &str) -> Option<Duration> {
    if text.len() < 2 || text.len() > 9 {
        return None;
    }
    let (digits, unit) = text.split_at(text.len() - 1);
    let value: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(value.checked_mul(3600)?),
        "M" => Duration::from_secs(value.checked_mul(60)?),
        "S" => Duration::from_secs(value),
        "m" => Duration::from_millis(value),
        "u" => Duration::from_micros(value),
        "n" => Duration::from_nanos(value),
        _ => return None,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeouts_parse_by_unit() {
        assert_eq!(grpc_timeout("2S"), Some(Duration::from_secs(2)));
        assert_eq!(grpc_timeout("1500m"), Some(Duration::from_millis(1500)));
        assert_eq!(grpc_timeout("3M"), Some(Duration::from_secs(180)));
        assert_eq!(grpc_timeout("12x"), None);
        assert_eq!(grpc_timeout("123456789S"), None);
        assert_eq!(grpc_timeout("S"), None);
    }

    #[test]
    fn the_sooner_deadline_wins_less_a_margin() {
        let now = Instant::now();
        let mut metadata = MetadataMap::new();
        metadata.insert("grpc-timeout", "1S".parse().unwrap());
        let by = answer_by(&metadata, Duration::from_secs(30), now);
        assert_eq!(by - now, Duration::from_millis(900));
        let by = answer_by(&MetadataMap::new(), Duration::from_secs(2), now);
        assert_eq!(by - now, Duration::from_millis(1800));
        metadata.insert("grpc-timeout", "100m".parse().unwrap());
        let by = answer_by(&metadata, Duration::from_secs(30), now);
        assert_eq!(by - now, Duration::from_millis(50));
    }
}
