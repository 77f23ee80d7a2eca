//! A token's status from ledger state: the revocation cascade.
//!
//! A revocation is one write however large the subtree it kills: the check
//! walks from the token up to its root (at most the depth bound) and looks for a
//! revoked target on every link. The first hit in a fixed order is the cause, so
//! two nodes holding the same revocations give the same answer whatever order
//! they applied them in.

use std::fmt;

use crate::event::RevocationTarget;
use crate::ids::{EventId, TokenRef};
use crate::keys::KeyId;
use crate::limits::DEPTH_MAX_CEILING;
use crate::state::{KeyTrust, LedgerView, Policy, TokenRecord};

/// What a check answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenStatus {
    Active {
        expires_at_s: i64,
    },
    Revoked(Cause),
    Expired {
        expired_at_s: i64,
    },
    /// The token is live but was presented to a resource other than its audience
    /// (the token passthrough the MCP specification forbids).
    AudienceMismatch {
        audience: String,
    },
    /// Not in the ledger, or its chain is incomplete: never treated as valid.
    Unknown,
}

/// How a link of the chain relates to the revoked target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Via {
    /// The link's token itself (an ancestor when the distance is above zero).
    Token,
    /// The client holding the link's token.
    Holder,
    /// The client that issued or performed the link.
    Performer,
    /// The key that signed the link.
    SigningKey,
    /// The subject the chain acts for.
    Subject,
}

/// A revoked target found on a chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevocationHit {
    /// The link the hit was found on.
    pub link: TokenRef,
    /// How many hops above the checked token that link is (0: the token itself).
    pub distance: u32,
    pub via: Via,
}

/// Why a token is revoked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cause {
    /// The revocation event.
    pub revocation: EventId,
    pub target: RevocationTarget,
    pub hit: RevocationHit,
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} revoked by {}", self.target, self.revocation)?;
        if self.hit.distance > 0 {
            write!(f, " ({} hops up, at {})", self.hit.distance, self.hit.link)?;
        }
        Ok(())
    }
}

/// A check's answer with the record it was computed from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub status: TokenStatus,
    pub record: Option<std::sync::Arc<TokenRecord>>,
}

/// The targets to look up on one link, in the order that decides the cause
/// (the signing key comes last, through [`key_trust`]).
fn link_targets(link: &TokenRecord) -> [(Via, RevocationTarget); 3] {
    [
        (Via::Token, RevocationTarget::Token(link.token.clone())),
        (Via::Holder, RevocationTarget::Client(link.holder.clone())),
        (
            Via::Performer,
            RevocationTarget::Client(link.performed_by.clone()),
        ),
    ]
}

/// Most key bindings between any key and its trust root. Creating a longer
/// binding chain is refused ([`binding_depth`], rule `too-deep`), so every
/// chain in a ledger is walked to its end; a walk that would go further anyway
/// answers [`KeyTrust::Unanchored`] (fail closed), never "trusted".
pub const BINDING_CHAIN_MAX: usize = 64;

/// Whether `key` is trusted: revoked itself, or bound by an event signed by a
/// key that is untrusted, up the binding chain (revoking a key distrusts
/// everything it signed, key bindings included), or not anchored in a
/// configured trust root.
pub fn key_trust<V: LedgerView>(
    view: &V,
    policy: &Policy,
    key: KeyId,
) -> Result<KeyTrust, V::Error> {
    let (chain, anchored) = binding_chain(view, policy, key)?;
    for at in &chain {
        if let Some(by) = view.revocation(&RevocationTarget::Key(*at))? {
            return Ok(KeyTrust::Revoked { key: *at, by });
        }
    }
    Ok(if anchored {
        KeyTrust::Trusted
    } else {
        KeyTrust::Unanchored {
            key: chain.last().copied().unwrap_or(key),
        }
    })
}

/// The keys whose revocation distrusts `key`, in the order trust is decided:
/// the key itself, then each key that bound the one before, up to a
/// configured trust root (at most [`BINDING_CHAIN_MAX`] bindings); and
/// whether the chain reached one.
pub fn binding_chain<V: LedgerView>(
    view: &V,
    policy: &Policy,
    key: KeyId,
) -> Result<(Vec<KeyId>, bool), V::Error> {
    let mut chain = Vec::new();
    let mut at = key;
    for _ in 0..=BINDING_CHAIN_MAX {
        chain.push(at);
        if policy.trust_roots.contains_key(&at) {
            return Ok((chain, true));
        }
        match view.key(&at)? {
            Some(record) if record.bound_by_key != at => at = record.bound_by_key,
            _ => return Ok((chain, false)),
        }
    }
    Ok((chain, false))
}

/// Every revocation target the status of the token recorded by `event`
/// depends on: per link, leaf to root, its token, holder and performer (the
/// targets [`token_status`] looks up) and its signer's binding chain
/// ([`binding_chain`], what [`key_trust`] looks up), then the root's
/// subject. A revocation of any of them revokes the token; of anything else,
/// it does not. None when the token's status cannot be vouched for (unknown,
/// an ancestor missing, a signer not anchored). What a cache of answers
/// invalidates on.
pub fn dependencies<V: LedgerView>(
    view: &V,
    policy: &Policy,
    event: &EventId,
) -> Result<Option<Vec<RevocationTarget>>, V::Error> {
    let Some(mut link) = view.token(event)? else {
        return Ok(None);
    };
    let mut targets = Vec::new();
    for _ in 0..=DEPTH_MAX_CEILING {
        targets.extend(link_targets(&link).into_iter().map(|(_, target)| target));
        let (keys, anchored) = binding_chain(view, policy, link.signer)?;
        if !anchored {
            return Ok(None);
        }
        targets.extend(keys.into_iter().map(RevocationTarget::Key));
        let Some(parent) = link.parent else {
            targets.push(RevocationTarget::Subject(link.subject.clone()));
            // Each once, in the order first met.
            let mut seen = std::collections::BTreeSet::new();
            targets.retain(|target| seen.insert(target.clone()));
            return Ok(Some(targets));
        };
        match view.token(&parent)? {
            None => return Ok(None),
            Some(next) => link = next,
        }
    }
    Ok(None)
}

/// How many bindings separate `key` from a configured trust root (0 for a
/// trust root), or `None` when it is not anchored within
/// [`BINDING_CHAIN_MAX`]. Revocations play no part: this depends only on
/// bindings, which never change once they exist, so every projector agrees.
pub fn binding_depth<V: LedgerView>(
    view: &V,
    policy: &Policy,
    key: KeyId,
) -> Result<Option<usize>, V::Error> {
    let mut at = key;
    for depth in 0..=BINDING_CHAIN_MAX {
        if policy.trust_roots.contains_key(&at) {
            return Ok(Some(depth));
        }
        match view.key(&at)? {
            Some(record) if record.bound_by_key != at => at = record.bound_by_key,
            _ => return Ok(None),
        }
    }
    Ok(None)
}

/// The status of the token recorded by event `event` at `now_s`: revoked
/// (anything on its chain), expired, active, or unknown.
pub fn token_status<V: LedgerView>(
    view: &V,
    policy: &Policy,
    event: &EventId,
    now_s: i64,
) -> Result<TokenStatus, V::Error> {
    let Some(leaf) = view.token(event)? else {
        return Ok(TokenStatus::Unknown);
    };
    let mut link = leaf.clone();
    for _ in 0..=DEPTH_MAX_CEILING {
        let mut hits = link_targets(&link).into_iter();
        let found = loop {
            match hits.next() {
                Some((via, target)) => {
                    if let Some(revocation) = view.revocation(&target)? {
                        break Some((via, target, revocation));
                    }
                }
                None => match view.key_trust(policy, &link.signer)? {
                    KeyTrust::Trusted => break None,
                    KeyTrust::Revoked { key, by } => {
                        break Some((Via::SigningKey, RevocationTarget::Key(key), by));
                    }
                    // Fail closed: a signer that no configured trust root
                    // vouches for cannot vouch for the token.
                    KeyTrust::Unanchored { .. } => return Ok(TokenStatus::Unknown),
                },
            }
        };
        if let Some((via, target, revocation)) = found {
            {
                let hit = RevocationHit {
                    link: link.token.clone(),
                    distance: leaf.depth - link.depth,
                    via,
                };
                return Ok(TokenStatus::Revoked(Cause {
                    revocation,
                    target,
                    hit,
                }));
            }
        }
        let Some(parent) = link.parent else {
            let target = RevocationTarget::Subject(link.subject.clone());
            if let Some(revocation) = view.revocation(&target)? {
                let hit = RevocationHit {
                    link: link.token.clone(),
                    distance: leaf.depth,
                    via: Via::Subject,
                };
                return Ok(TokenStatus::Revoked(Cause {
                    revocation,
                    target,
                    hit,
                }));
            }
            if expired(leaf.expires_at_s, now_s) {
                return Ok(TokenStatus::Expired {
                    expired_at_s: leaf.expires_at_s,
                });
            }
            return Ok(TokenStatus::Active {
                expires_at_s: leaf.expires_at_s,
            });
        };
        match view.token(&parent)? {
            // Fail closed: an ancestor missing from the store means the chain
            // cannot be vouched for.
            None => return Ok(TokenStatus::Unknown),
            Some(next) => link = next,
        }
    }
    Ok(TokenStatus::Unknown)
}

/// Whether a token expiring at `expires_at_s` has expired at `now_s`: the
/// one rule for the node's check and a client's cache of its answers.
pub fn expired(expires_at_s: i64, now_s: i64) -> bool {
    expires_at_s <= now_s
}

/// Whether a live token addressed to `audience` was presented to another
/// resource (token passthrough): exact equality, the one rule for the node's
/// check and a client's cache of its answers.
pub fn presented_elsewhere(audience: &str, presented_to: Option<&str>) -> bool {
    presented_to.is_some_and(|resource| resource != audience)
}

/// A resource server's check: the status of the token named `token`, and an
/// audience mismatch if it is live but was presented to another resource.
pub fn check_token<V: LedgerView>(
    view: &V,
    policy: &Policy,
    token: &TokenRef,
    presented_to: Option<&str>,
    now_s: i64,
) -> Result<Check, V::Error> {
    let Some(event) = view.token_by_ref(token)? else {
        return Ok(Check {
            status: TokenStatus::Unknown,
            record: None,
        });
    };
    let record = view.token(&event)?;
    let mut status = token_status(view, policy, &event, now_s)?;
    if let (TokenStatus::Active { .. }, Some(record)) = (&status, &record)
        && presented_elsewhere(&record.audience, presented_to)
    {
        status = TokenStatus::AudienceMismatch {
            audience: record.audience.clone(),
        };
    }
    Ok(Check { status, record })
}
