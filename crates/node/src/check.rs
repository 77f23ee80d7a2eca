//! Checks: one token, a batch, and introspection (what a caller may know of
//! a token, under Introspect and every gateway bridge). One decision,
//! [`Node::check_one`], under all of them.

use std::sync::Arc;
use std::time::Instant;

use baton_access::grants::{Caller, Denied};
use baton_core::{
    Body, Cause, EventId, RevocationTarget, Revoked, TokenRecord, TokenRef, TokenStatus,
};
use baton_log::EventLog;

use crate::freshness::ViewEnd;
use crate::{Error, Node, Result, now_s};

/// A check's answer, without the details of which record decided it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verdict {
    Active,
    Revoked,
    Expired,
    Unknown,
    AudienceMismatch,
}

impl Verdict {
    /// Whether no record a node may have missed could change it: revocation
    /// is monotone, expiry is the clock's, and a token's audience is its
    /// own. A node that cannot vouch for the log gives only these.
    pub fn settled(self) -> bool {
        matches!(
            self,
            Verdict::Revoked | Verdict::Expired | Verdict::AudienceMismatch
        )
    }

    fn of(status: &TokenStatus) -> Verdict {
        match status {
            TokenStatus::Active { .. } => Verdict::Active,
            TokenStatus::Revoked(_) => Verdict::Revoked,
            TokenStatus::Expired { .. } => Verdict::Expired,
            TokenStatus::Unknown => Verdict::Unknown,
            TokenStatus::AudienceMismatch { .. } => Verdict::AudienceMismatch,
        }
    }
}

/// What a check asks.
#[derive(Debug, Clone)]
pub struct CheckQuery {
    pub token: TokenRef,
    /// The audience the token was presented to; None: any.
    pub presented_to: Option<String>,
    /// Answer as of at least this token (empty: as the node has it).
    pub consistency_token: String,
    /// For an active token, the revocation targets its status depends on.
    pub with_dependencies: bool,
}

impl CheckQuery {
    /// A check of `token` with nothing else asked.
    pub fn of(token: TokenRef) -> Self {
        CheckQuery {
            token,
            presented_to: None,
            consistency_token: String::new(),
            with_dependencies: false,
        }
    }
}

/// The answer to a check.
#[derive(Debug, Clone)]
pub struct CheckAnswer {
    pub verdict: Verdict,
    /// Why revoked: the revocation, its body (when the projection has it).
    /// None for a caller that may see only the verdict.
    pub cause: Option<(Cause, Option<Revoked>)>,
    /// The position the answer reflects at least (read before the status).
    pub reflects: String,
    /// The view of the log the answer reflects, and its age when answered.
    pub view: Option<(ViewEnd, u64)>,
    /// The token's record, when the ledger knows it and the caller may see it.
    pub record: Option<std::sync::Arc<TokenRecord>>,
    /// When the token expires (0: not said): the record's expiry, bounded
    /// by a verified JWT's own `exp`.
    pub expires_at_s: i64,
    /// For an active token when asked: what its status depends on.
    pub depends_on: Vec<RevocationTarget>,
    /// The `iss` of the JWT the token was presented as, when the ledger
    /// knows it by that JWT's `jti` (the JWT verified against its issuer).
    pub jwt_issuer: Option<String>,
}

impl CheckAnswer {
    /// What `caller` may learn of it: everything for a token addressed to a
    /// resource it serves (or for an unbound caller), otherwise the bare
    /// verdict (and the position and view it reflects).
    pub fn for_caller(self, caller: Option<&Caller>) -> CheckAnswer {
        if caller.is_some_and(|caller| caller.sees(self.audience())) {
            return self;
        }
        CheckAnswer {
            verdict: self.verdict,
            cause: None,
            reflects: self.reflects,
            view: self.view,
            record: None,
            expires_at_s: 0,
            depends_on: Vec::new(),
            jwt_issuer: None,
        }
    }

    /// The token's audience ("" when the ledger does not know it).
    pub fn audience(&self) -> &str {
        self.record.as_ref().map_or("", |r| r.audience.as_str())
    }
}

/// What the ledger knows of a token for a caller it is addressed to: its
/// record and, when walked, its chain (root grant first, the token last).
#[derive(Debug, Clone)]
pub struct Details {
    pub record: TokenRecord,
    pub chain: Vec<TokenRecord>,
}

/// An introspection's answer: the check as the caller may see it, and the
/// token's details for a caller it is addressed to.
#[derive(Debug, Clone)]
pub struct Introspection {
    pub check: CheckAnswer,
    pub details: Option<Details>,
}

/// What an introspection is asked about: a token by reference, or as
/// presented (its bytes; then by digest, or by a verified JWT's `jti`).
#[derive(Debug, Clone)]
pub enum Presented {
    Ref(TokenRef),
    Bearer(Vec<u8>),
}

/// What an introspection asks.
#[derive(Debug, Clone)]
pub struct IntrospectQuery {
    pub token: Presented,
    /// The audience the token was presented to; None: any.
    pub presented_to: Option<String>,
    /// Answer as of at least this token (empty: as the node has it).
    pub consistency_token: String,
    /// For an active token, the revocation targets its status depends on.
    pub with_dependencies: bool,
}

impl IntrospectQuery {
    /// An introspection of `token` with nothing else asked.
    pub fn of(token: Presented) -> Self {
        IntrospectQuery {
            token,
            presented_to: None,
            consistency_token: String::new(),
            with_dependencies: false,
        }
    }
}

/// Whether an answer needs the token's chain (and so its root's issuer):
/// introspection does; a gateway's decision, which reads only the token's
/// own record, does not, and skips the walk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Walk {
    Chain,
    Skip,
}

/// Largest bearer token an introspection takes (the gateway bridges' bound).
pub use baton_bridge::BEARER_BYTES_MAX;

/// A caller bound to audiences checks tokens presented to one of them:
/// asking whether a token is addressed to some other resource would tell it
/// that token's audience. `field` names where the audience was given.
pub fn presented_within(caller: Option<&Caller>, field: &str, presented_to: &str) -> Result<()> {
    match caller.and_then(Caller::bound) {
        Some(bound) if !presented_to.is_empty() && !bound.contains(presented_to) => {
            Err(Error::Denied(Denied::PermissionDenied(format!(
                "{field}: {:?} is not one of the audiences this principal is bound to",
                baton_core::echo(presented_to)
            ))))
        }
        _ => Ok(()),
    }
}

impl crate::Limits {
    /// Refuses a batch of more than `check_batch_max` checks.
    pub fn checks(&self, count: usize) -> Result<()> {
        let max = self.check_batch_max;
        if count > max {
            return Err(Error::Limit {
                field: "checks",
                reason: format!("{count} checks, more than the limit of {max}"),
            });
        }
        Ok(())
    }
}

impl<L> Node<L> {
    /// The `Revoked` body of revocation event `id`, from the projection.
    pub fn revoked_body(&self, id: &EventId) -> Result<Option<Revoked>> {
        Ok(self
            .handle
            .event(id)?
            .and_then(|(_, event, _)| match event.body {
                Body::Revoked(revoked) => Some(revoked),
                _ => None,
            }))
    }

    /// Answers one check once the node is consistent with the query. A
    /// node that cannot vouch for the log (it has not reached it since it
    /// started, or its view is not fresh: [`Node::vouched`]) answers only
    /// what no event it may have missed could change ([`Verdict::settled`]);
    /// anything else is [`Error::LogUnreachable`]. Ungated: no caller's
    /// audience binding applies (a caller's check is [`Node::check_for`]).
    pub async fn check(&self, query: &CheckQuery) -> Result<CheckAnswer> {
        let consistent = self.vouched(&query.consistency_token).await;
        self.check_when(query, consistent)
    }

    /// [`Node::check`], given the outcome of the consistency wait.
    pub(crate) fn check_when(
        &self,
        query: &CheckQuery,
        consistent: Result<()>,
    ) -> Result<CheckAnswer> {
        match consistent {
            Ok(()) => self.check_one(query),
            Err(Error::LogUnreachable(at)) => {
                let answer = self.check_one(query)?;
                if answer.verdict.settled() {
                    Ok(answer)
                } else {
                    Err(Error::LogUnreachable(at))
                }
            }
            Err(e) => Err(e),
        }
    }

    /// Answers one check (after any consistency wait): the one decision
    /// every caller's answer (Check, CheckBatch, Introspect, GetChain's
    /// status, the bridges) is built on.
    pub(crate) fn check_one(&self, query: &CheckQuery) -> Result<CheckAnswer> {
        // The position is read before the status: the answer reflects at
        // least it. Read after, it could cover a revocation applied in
        // between that the status did not see, and a cache watching from it
        // would never hear of that revocation.
        let reflects = self.handle.applied_token().to_string();
        let view = self.freshness.view_end();
        let check = self
            .handle
            .check(&query.token, query.presented_to.as_deref(), now_s())?;
        let mut depends_on = Vec::new();
        if query.with_dependencies
            && matches!(check.status, TokenStatus::Active { .. })
            && let Some(record) = &check.record
        {
            // An active token's chain is complete and anchored; were it not,
            // an empty list would let a cache keep the answer for ever: an
            // error.
            let Some(targets) = self.handle.dependencies(&record.event)? else {
                return Err(Error::Internal(
                    "an active token's dependencies could not be walked".into(),
                ));
            };
            depends_on = targets;
        }
        let cause = match &check.status {
            TokenStatus::Revoked(cause) => {
                Some((cause.clone(), self.revoked_body(&cause.revocation)?))
            }
            _ => None,
        };
        Ok(CheckAnswer {
            verdict: Verdict::of(&check.status),
            cause,
            reflects,
            view: view.map(|view| {
                let age = view.age_ms(Instant::now());
                (view, age)
            }),
            expires_at_s: check.record.as_ref().map_or(0, |r| r.expires_at_s),
            record: check.record,
            depends_on,
            jwt_issuer: None,
        })
    }

    /// What the ledger knows of the token of `record`: its grant and, when
    /// asked, its chain.
    pub fn details(&self, record: &TokenRecord, walk: Walk) -> Result<Details> {
        let chain = match walk {
            Walk::Chain => self.handle.lineage(record)?,
            Walk::Skip => Vec::new(),
        };
        Ok(Details {
            record: record.clone(),
            chain,
        })
    }
}

impl<L: EventLog> Node<L> {
    /// Answers a batch of checks for `caller`: every consistency wait first
    /// (one not reached in time fails the batch), freshness once after them
    /// (an earlier check's verdict must not outlive the later ones' waits),
    /// then the checks, off the async workers.
    pub async fn check_batch(
        self: &Arc<Self>,
        caller: Option<Caller>,
        queries: Vec<CheckQuery>,
    ) -> Result<Vec<CheckAnswer>> {
        self.limits.checks(queries.len())?;
        for (i, query) in queries.iter().enumerate() {
            presented_within(
                caller.as_ref(),
                &format!("checks[{i}].presented_to"),
                query.presented_to.as_deref().unwrap_or(""),
            )?;
        }
        let mut waits = Vec::with_capacity(queries.len());
        for query in &queries {
            match self.consistent(&query.consistency_token).await {
                // Not reached in time: the batch fails, so stop waiting.
                Err(e) if !matches!(e, Error::LogUnreachable(_)) => return Err(e),
                waited => waits.push(waited),
            }
        }
        let fresh = self.fresh();
        let waits: Vec<Result<()>> = waits
            .into_iter()
            .map(|waited| match (waited, &fresh) {
                (Ok(()), Err(Error::LogUnreachable(why))) => {
                    Err(Error::LogUnreachable(why.clone()))
                }
                (waited, _) => waited,
            })
            .collect();
        let node = self.clone();
        let answers = tokio::task::spawn_blocking(move || {
            queries
                .iter()
                .zip(waits)
                .map(|(query, waited)| {
                    node.check_when(query, waited)
                        .map(|answer| answer.for_caller(caller.as_ref()))
                })
                .collect::<Result<Vec<_>>>()
        })
        .await
        .map_err(|e| Error::Internal(format!("check task: {e}")))??;
        if let Some(observe) = self.observe() {
            for answer in &answers {
                observe.checked(answer.verdict);
            }
        }
        Ok(answers)
    }

    /// One check for `caller` (a Check call): refused when the caller is
    /// bound to other audiences than the one presented to, counted, and
    /// answered as the caller may see it.
    pub async fn check_for(
        &self,
        caller: Option<&Caller>,
        query: &CheckQuery,
    ) -> Result<CheckAnswer> {
        presented_within(
            caller,
            "presented_to",
            query.presented_to.as_deref().unwrap_or(""),
        )?;
        let answer = self.check(query).await?;
        if let Some(observe) = self.observe() {
            observe.checked(answer.verdict);
        }
        Ok(answer.for_caller(caller))
    }

    /// What `caller` may know of a token: its check's answer and, for a
    /// token the caller serves, what it is. The one function under
    /// Introspect and every bridge (HTTP, ext_authz).
    pub async fn introspect(
        self: &Arc<Self>,
        caller: Option<&Caller>,
        query: IntrospectQuery,
        walk: Walk,
    ) -> Result<Introspection> {
        presented_within(
            caller,
            "presented_to",
            query.presented_to.as_deref().unwrap_or(""),
        )?;
        let check = |token| CheckQuery {
            token,
            presented_to: query.presented_to.clone(),
            consistency_token: query.consistency_token.clone(),
            with_dependencies: query.with_dependencies,
        };
        let answer = match &query.token {
            Presented::Ref(token) => self.check(&check(token.clone())).await?,
            Presented::Bearer(bearer) => {
                if bearer.len() > BEARER_BYTES_MAX {
                    return Err(Error::Limit {
                        field: "bearer",
                        reason: format!(
                            "{} bytes, more than the limit of {BEARER_BYTES_MAX}",
                            bearer.len()
                        ),
                    });
                }
                let mut by_digest = check(baton_core::token_digest(bearer));
                self.presented(&mut by_digest, bearer).await?.0
            }
        };
        if let Some(observe) = self.observe() {
            observe.checked(answer.verdict);
        }
        let seen = caller.is_some_and(|caller| caller.sees(answer.audience()));
        let details = match &answer.record {
            Some(record) if seen && walk == Walk::Skip => Some(self.details(record, walk)?),
            Some(record) if seen => {
                // The walk reads sled: off the async workers.
                let (node, record) = (self.clone(), record.clone());
                Some(
                    tokio::task::spawn_blocking(move || node.details(&record, walk))
                        .await
                        .map_err(|e| Error::Internal(format!("introspect task: {e}")))??,
                )
            }
            _ => None,
        };
        Ok(Introspection {
            check: answer.for_caller(caller),
            details,
        })
    }

    /// The answer for a token as presented (`query.token` its digest): by
    /// the digest, or, for a token the ledger does not know by digest, by
    /// the `jti` of a JWT that verifies (see [`Node::by_verified_jwt`]).
    /// Returns the answer and the reference that answered. Ungated, like
    /// [`Node::check`]: a caller's is [`Node::introspect`].
    pub async fn presented(
        self: &Arc<Self>,
        query: &mut CheckQuery,
        bearer: &[u8],
    ) -> Result<(CheckAnswer, TokenRef)> {
        let by_digest = self.check(query).await?;
        if by_digest.verdict != Verdict::Unknown || self.jwt_issuers.is_empty() {
            return Ok((by_digest, query.token.clone()));
        }
        match self.by_verified_jwt(query, bearer).await? {
            Some(by_jti) => Ok(by_jti),
            None => Ok((by_digest, query.token.clone())),
        }
    }

    /// The answer for a presented token the ledger does not know by digest,
    /// when it is a JWT that verifies against its issuer's configured keys
    /// and the ledger's record of its `jti` was issued by that issuer's
    /// authorization server; None otherwise (the token stays unknown). A JWT
    /// past its own `exp` is expired whatever the ledger says.
    async fn by_verified_jwt(
        self: &Arc<Self>,
        query: &CheckQuery,
        bearer: &[u8],
    ) -> Result<Option<(CheckAnswer, TokenRef)>> {
        let Some(verified) = self.jwt_issuers.verify(bearer, now_s()) else {
            return Ok(None);
        };
        let Ok(jti) = TokenRef::jti("jti", &verified.jti) else {
            return Ok(None);
        };
        let query = CheckQuery {
            token: jti.clone(),
            ..query.clone()
        };
        // Consistent already: the digest's answer waited.
        let mut answer = self.check_one(&query)?;
        answer.jwt_issuer = Some(verified.iss.clone());
        let Some(found) = answer.record.clone() else {
            return Ok(None);
        };
        let lineage = {
            let handle = self.handle.clone();
            tokio::task::spawn_blocking(move || handle.lineage(&found))
                .await
                .map_err(|e| Error::Internal(format!("introspect task: {e}")))?
                .map_err(Error::from)?
        };
        let issued_by = lineage.first().map(|root| &root.performed_by);
        if issued_by != Some(&verified.client) {
            return Ok(None);
        }
        if let Some(exp) = verified.expires_at_s {
            // The JWT's own `exp` bounds it whatever the ledger says: now,
            // and in the expiry the answer reports (a cache judges expiry by
            // it).
            if answer.expires_at_s != 0 {
                answer.expires_at_s = answer.expires_at_s.min(exp);
            }
            if baton_core::expired(exp, now_s()) && answer.verdict == Verdict::Active {
                answer.verdict = Verdict::Expired;
            }
        }
        Ok(Some((answer, jti)))
    }
}
