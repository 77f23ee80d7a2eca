//! Provenance: chains with what verifies them, the blast radius of a token,
//! history, and the events of a self-contained bundle.

use std::sync::Arc;

use baton_core::{Envelope, TokenRecord, TokenRef};
use baton_log::EventLog;
use baton_projector::{ChainAnswer, EventFilter, ListedEvent};

use crate::check::{CheckAnswer, CheckQuery};
use crate::{Error, Node, Result};

/// A token's chain and its status now.
#[derive(Debug, Clone)]
pub struct ChainWithStatus {
    pub chain: ChainAnswer,
    pub status: CheckAnswer,
}

/// A server stream's items and its place among the node's open streams
/// (held until the stream ends).
#[derive(Debug)]
pub struct Streamed<T> {
    pub items: Vec<T>,
    pub permit: tokio::sync::OwnedSemaphorePermit,
}

/// Default ListEvents page.
const PAGE_SIZE: u32 = 100;

/// How many items a request asked for (0: `default`, else `max`), refused
/// over `max`.
fn bounded(field: &'static str, asked: u32, max: u32, default: Option<u32>) -> Result<usize> {
    if asked > max {
        return Err(Error::Limit {
            field,
            reason: format!("{asked} is more than the limit of {max}"),
        });
    }
    Ok(match asked {
        0 => default.unwrap_or(max),
        asked => asked,
    } as usize)
}

impl<L: EventLog> Node<L> {
    /// The chain of `token`, walked off the async workers (up to 1024
    /// events read from the store); NotFound when the ledger does not hold it.
    pub async fn chain(self: &Arc<Self>, token: &TokenRef) -> Result<ChainAnswer> {
        let node = self.clone();
        let walked = {
            let token = token.clone();
            tokio::task::spawn_blocking(move || node.handle.chain(&token))
                .await
                .map_err(|e| Error::Internal(format!("chain task: {e}")))??
        };
        walked.ok_or_else(|| Error::NotFound(format!("token: {token} is not in the ledger")))
    }

    /// The chain of `token` and its status now. The chain is history (it
    /// never changes once written); the status is a check like any other: a
    /// node that cannot vouch for the log gives it only when it stays true.
    pub async fn chain_with_status(
        self: &Arc<Self>,
        token: &TokenRef,
        consistency_token: &str,
    ) -> Result<ChainWithStatus> {
        let vouched = match self.vouched(consistency_token).await {
            Err(e) if !matches!(e, Error::LogUnreachable(_)) => return Err(e),
            vouched => vouched,
        };
        let chain = self.chain(token).await?;
        let status = self.check_when(&CheckQuery::of(token.clone()), vouched)?;
        Ok(ChainWithStatus { chain, status })
    }

    /// The events a bundle of `token`'s chain holds, for offline verification.
    pub async fn export_chain(
        self: &Arc<Self>,
        token: &TokenRef,
        consistency_token: &str,
    ) -> Result<Vec<Envelope>> {
        self.consistent(consistency_token).await?;
        let chain = self.chain(token).await?;
        Ok(chain
            .events
            .into_iter()
            .map(|(envelope, _)| envelope)
            .collect())
    }

    /// The tokens derived from `token`, at most `limit` (0: the node's
    /// `descendants_max`, which bounds it).
    pub async fn descendants(
        self: &Arc<Self>,
        token: TokenRef,
        limit: u32,
        consistency_token: &str,
    ) -> Result<Streamed<TokenRecord>> {
        self.consistent(consistency_token).await?;
        let limit = bounded("limit", limit, self.limits.descendants_max, None)?;
        let permit = self.stream_permit()?;
        let node = self.clone();
        let items = tokio::task::spawn_blocking(move || node.handle.descendants(&token, limit))
            .await
            .map_err(|e| Error::Internal(e.to_string()))?
            .map_err(Error::from)?;
        Ok(Streamed { items, permit })
    }

    /// One page of the events `filter` selects, after `cursor` (a listed
    /// event's), at most `page_size` (0: 100; bounded by `page_size_max`).
    pub async fn list_events(
        self: &Arc<Self>,
        filter: EventFilter,
        cursor: Option<Vec<u8>>,
        page_size: u32,
        consistency_token: &str,
    ) -> Result<Streamed<ListedEvent>> {
        self.consistent(consistency_token).await?;
        let page_size = bounded(
            "page_size",
            page_size,
            self.limits.page_size_max,
            Some(PAGE_SIZE),
        )?;
        let permit = self.stream_permit()?;
        let node = self.clone();
        let items = tokio::task::spawn_blocking(move || {
            node.handle
                .list_events(&filter, cursor.as_deref(), page_size)
        })
        .await
        .map_err(|e| Error::Internal(e.to_string()))?
        .map_err(Error::from)?;
        Ok(Streamed { items, permit })
    }
}
