//! Token exchange (RFC 8693) recorded where it happens: the server or
//! gateway that swaps an upstream token for a downstream one appends the
//! hop, naming the right parent, root, depth and subject.

use baton_core::{EventId, TokenRef};

use crate::events::{Hop, Parent, Signer, now};
use crate::{Client, Error, Result};

/// An exchange to record: `hop.performed_by` (whose key signs) exchanged
/// `parent` for `hop.token`, now held by `hop.holder` for `hop.audience`.
#[derive(Debug, Clone)]
pub struct Exchange {
    pub parent: TokenRef,
    pub hop: Hop,
    /// Lifetime in seconds, capped at the parent's expiry.
    pub ttl_s: i64,
    /// Read the parent only once the node has applied this position (the
    /// consistency token of the append that recorded it).
    pub after: Option<String>,
}

/// A recorded exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exchanged {
    pub token: TokenRef,
    pub event_id: EventId,
    pub depth: u32,
    pub expires_at_s: i64,
    /// False: this very hop was recorded before (a retry); nothing appended.
    pub accepted: bool,
    /// `partition/offset` in the log.
    pub position: String,
    /// Covers the hop: pass it to checks on any node.
    pub consistency_token: String,
}

/// Reads the parent's chain, signs the hop and appends it. The rules the
/// node applies (narrowing, depth, expiry, who may perform) refuse a hop
/// that breaks them, naming the field.
pub async fn exchange(client: &Client, signer: &Signer, exchange: Exchange) -> Result<Exchanged> {
    let after = exchange.after.as_deref();
    let chain = client.chain(&exchange.parent, after).await?;
    let parent = Parent::of_chain(&chain)
        .ok_or_else(|| Error::Answer(format!("no chain for the parent {}", exchange.parent)))?;
    if parent.token != exchange.parent {
        return Err(Error::Answer(format!(
            "the chain for {} ends at {}",
            exchange.parent, parent.token
        )));
    }
    let (issued_at_s, expires_at_s) = parent.lifetime(now().0, exchange.ttl_s);
    let token = exchange.hop.token.clone();
    let body = parent.narrow(exchange.hop, issued_at_s, expires_at_s);
    let envelope = signer.sign(body)?;
    let appended = client
        .append(std::slice::from_ref(&envelope), after)
        .await?;
    let result = appended
        .events
        .into_iter()
        .next()
        .ok_or_else(|| Error::Answer("no result for the hop".into()))?;
    Ok(Exchanged {
        token,
        event_id: envelope.id(),
        depth: parent.depth + 1,
        expires_at_s,
        accepted: result.accepted,
        position: result.position,
        consistency_token: appended.consistency_token,
    })
}
