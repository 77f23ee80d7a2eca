//! Who may call what: roles granted to principals, and the decision on one
//! call ([`authorize`]) that the server's authorization layer, its HTTP
//! bridges and Watch all ask.
//!
//! Each gRPC method needs one role ([`required`], from the route table);
//! anything not listed there (an operator call added later, a method nobody
//! thought of) needs `admin`, so a new method is closed until someone opens
//! it. Health is open to all, so that probes need no certificate; reflection
//! (the schema, no data) needs an authenticated principal with any role.
//!
//! A plaintext TCP connection carries no identity: a node serves plaintext
//! only on loopback or when explicitly told `insecure`, and its callers are
//! `admin` only when the operator said so (`loopback_admin`, `insecure`),
//! otherwise nobody. A connection on the node's Unix socket is the user id
//! the kernel reports for its peer, and gets the roles of the grants for
//! that uid.

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::identity::{Identity, SecretHash, check_pattern, matches};
use crate::routes::WATCH;
pub use crate::routes::{Need, Role};

impl Role {
    pub const ALL: [Role; 4] = [Role::Writer, Role::Checker, Role::Auditor, Role::Admin];

    pub fn name(self) -> &'static str {
        match self {
            Role::Writer => "writer",
            Role::Checker => "checker",
            Role::Auditor => "auditor",
            Role::Admin => "admin",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Role {
    type Err = String;

    fn from_str(text: &str) -> Result<Role, String> {
        Role::ALL
            .into_iter()
            .find(|role| role.name() == text)
            .ok_or_else(|| {
                format!(
                    "{:?} is not a role (writer, checker, auditor, admin)",
                    baton_core::echo(text)
                )
            })
    }
}

/// Roles for the principals a pattern matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// A principal exactly (`spiffe://corp.example/gateway-eu`), or a prefix
    /// followed by one `*` at the very end (`spiffe://corp.example/gateway-*`),
    /// which matches every principal that starts with the prefix.
    pub principal: String,
    pub roles: BTreeSet<Role>,
    /// The resources (audiences) the principal serves. Empty: unbound. A
    /// bound checker learns a token's details only for tokens addressed to
    /// one of them, and a bare status for any other.
    pub audiences: BTreeSet<String>,
    /// Set: the grant is for an HTTP client that authenticates with HTTP
    /// Basic credentials (`principal` is its client id, matched exactly),
    /// never for a certificate. Unset: for certificates only.
    pub secret: Option<SecretHash>,
    /// The ledger client the principal is: whose authority an RFC 7009
    /// revocation it asks for is checked against (and recorded as its
    /// `requested_by`).
    pub client: Option<baton_core::ClientId>,
    /// Set: the grant is for processes running as this user id that call on
    /// the node's Unix socket (`principal` is [`local_principal`] of it),
    /// never for a certificate or a client secret.
    pub uid: Option<u32>,
}

/// The principal a Unix-socket caller running as `uid` is known by (in
/// logs and refusals; only a `uid` grant matches it).
pub fn local_principal(uid: u32) -> String {
    format!("unix:uid:{uid}")
}

/// Every grant a node knows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Access {
    grants: Vec<Grant>,
}

impl Access {
    /// Checks every pattern: a `*` may only end one, after a URI's scheme,
    /// whole authority and a `/` (so that a pattern never spans trust
    /// domains: `spiffe://corp.example*` would match
    /// `spiffe://corp.example.evil/…`).
    pub fn new(grants: Vec<Grant>) -> Result<Access, String> {
        for (i, grant) in grants.iter().enumerate() {
            check_pattern(&grant.principal)
                .map_err(|why| format!("access[{i}].principal: {why}"))?;
            let stars = grant.principal.matches('*').count();
            if grant.roles.is_empty() {
                return Err(format!("access[{i}].roles: grants no role"));
            }
            if (grant.secret.is_some() || grant.client.is_some()) && stars > 0 {
                return Err(format!(
                    "access[{i}].principal: a grant with a secret or a client_id names one principal, not a pattern"
                ));
            }
            if let Some(uid) = grant.uid
                && (grant.secret.is_some() || grant.principal != local_principal(uid))
            {
                return Err(format!(
                    "access[{i}].uid: a grant for a local user names that uid alone (principal {:?}), with no secret",
                    local_principal(uid)
                ));
            }
        }
        Ok(Access { grants })
    }

    /// What `identity` may do: the union of the roles of every grant that
    /// matches its principal; bound to audiences only if every matching
    /// grant that makes it a checker is (then to all of theirs) — a grant of
    /// other roles neither binds nor unbinds it.
    pub fn caller(&self, identity: &Identity) -> Caller {
        let local;
        let principal = match identity {
            Identity::Plaintext { admin: true } => {
                return Caller {
                    principal: None,
                    roles: BTreeSet::from([Role::Admin]),
                    audiences: None,
                    client: None,
                };
            }
            Identity::Principal(principal) | Identity::Client { id: principal, .. } => principal,
            Identity::Local { uid } => {
                local = local_principal(*uid);
                &local
            }
            Identity::Plaintext { admin: false } | Identity::Anonymous | Identity::Refused(_) => {
                return Caller {
                    principal: None,
                    roles: BTreeSet::new(),
                    audiences: None,
                    client: None,
                };
            }
        };
        // A certificate's principal gets only certificate grants, a client
        // id only the grants whose hash its secret matched, a local user
        // only the grants for its uid.
        let secret = match identity {
            Identity::Client { secret, .. } => Some(secret),
            _ => None,
        };
        let uid = match identity {
            Identity::Local { uid } => Some(*uid),
            _ => None,
        };
        let mut roles = BTreeSet::new();
        let mut audiences = Some(BTreeSet::new());
        let mut clients = BTreeSet::new();
        for grant in self.grants.iter().filter(|g| {
            g.secret.as_ref() == secret && g.uid == uid && matches(&g.principal, principal)
        }) {
            roles.extend(grant.roles.iter().copied());
            clients.extend(grant.client.iter().cloned());
            if !grant.roles.contains(&Role::Checker) {
                continue;
            }
            match (&mut audiences, grant.audiences.is_empty()) {
                (_, true) => audiences = None,
                (Some(all), false) => all.extend(grant.audiences.iter().cloned()),
                (None, false) => {}
            }
        }
        // Two grants naming two clients name none: never a guess.
        let client = match clients.len() {
            1 => clients.pop_first(),
            _ => None,
        };
        Caller {
            principal: Some(principal.clone()),
            audiences: if roles.is_empty() { None } else { audiences },
            roles,
            client,
        }
    }
}

impl Access {
    /// Who HTTP Basic credentials name: the client, when `secret` verifies
    /// against a grant for `id`; it gets the roles of the grants with that
    /// hash only. Rotating a secret is adding a grant with the new hash,
    /// then removing the old.
    pub fn client(&self, id: &str, secret: &[u8]) -> Identity {
        let hash = SecretHash::of(secret);
        let verified = self
            .grants
            .iter()
            .any(|g| g.principal == id && g.secret.as_ref() == Some(&hash));
        if verified {
            Identity::Client {
                id: id.to_owned(),
                secret: hash,
            }
        } else {
            Identity::Refused("the client id and secret did not verify".to_owned())
        }
    }
}

/// The caller of a request, as the services see it (a request extension).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// None on plaintext and for callers without a verified certificate.
    pub principal: Option<String>,
    pub roles: BTreeSet<Role>,
    /// None: unbound.
    pub audiences: Option<BTreeSet<String>>,
    /// The ledger client it is, when its grants name exactly one.
    pub client: Option<baton_core::ClientId>,
}

impl Caller {
    pub fn may(&self, role: Role) -> bool {
        self.roles.contains(&Role::Admin) || self.roles.contains(&role)
    }

    /// The audiences this caller is bound to, if it is (an auditor reads
    /// everything anyway, so is never bound).
    pub fn bound(&self) -> Option<&BTreeSet<String>> {
        if self.may(Role::Auditor) {
            return None;
        }
        self.audiences.as_ref()
    }

    /// Whether this caller may learn the details (scopes, chain, subject,
    /// cause) of a token addressed to `audience`. Auditors read whole chains
    /// anyway; an unbound checker serves every resource.
    pub fn sees(&self, audience: &str) -> bool {
        self.bound().is_none_or(|bound| bound.contains(audience))
    }
}

/// What the method or route at `path` needs ([`crate::routes`]); anything
/// a node does not serve needs admin.
pub fn required(path: &str) -> Need {
    crate::routes::route(path).map_or(Need::Role(Role::Admin), |route| route.need)
}

/// Why a call is refused: no verified principal, or one without the role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denied {
    /// No principal could be established (gRPC `UNAUTHENTICATED`, HTTP 401).
    Unauthenticated(String),
    /// A principal without the role the call needs (gRPC
    /// `PERMISSION_DENIED`, HTTP 403).
    PermissionDenied(String),
}

impl Denied {
    /// What the refusal says: names the call, the role and why.
    pub fn message(&self) -> &str {
        match self {
            Denied::Unauthenticated(message) | Denied::PermissionDenied(message) => message,
        }
    }
}

impl std::fmt::Display for Denied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.message())
    }
}

/// Decides one call: the caller, or why it is refused.
pub fn authorize(
    access: &Access,
    identity: &Identity,
    remote: Option<std::net::SocketAddr>,
    path: &str,
) -> Result<Caller, Denied> {
    let caller = access.caller(identity);
    let need = required(path);
    let role = match need {
        Need::Nothing => return Ok(caller),
        Need::AnyRole => None,
        Need::Role(role) => Some(role),
    };
    let wanted = role.map_or("any role".to_owned(), |role| format!("role {role}"));
    let method = baton_core::echo(path);
    let unauthenticated = |why: &str| {
        tracing::warn!(?remote, method = %method, reason = why, "call refused: unauthenticated");
        Err(Denied::Unauthenticated(format!(
            "{method} needs a principal with {wanted}: {why}"
        )))
    };
    let local;
    let principal = match identity {
        Identity::Principal(principal) | Identity::Client { id: principal, .. } => principal,
        Identity::Local { uid } => {
            local = local_principal(*uid);
            &local
        }
        Identity::Plaintext { admin: true } => return Ok(caller),
        Identity::Plaintext { admin: false } => {
            return unauthenticated(
                "a plaintext connection names no one, and this node does not make plaintext callers admin (loopback_admin): call on its Unix socket (unix_listen) or over TLS with a client certificate",
            );
        }
        Identity::Anonymous => {
            return unauthenticated("no client certificate was presented");
        }
        Identity::Refused(why) => return unauthenticated(why),
    };
    let allowed = match role {
        None => !caller.roles.is_empty(),
        Some(role) => caller.may(role),
    };
    if allowed {
        return Ok(caller);
    }
    let principal = baton_core::echo(principal);
    let has: Vec<&str> = caller.roles.iter().map(|r| r.name()).collect();
    tracing::warn!(?remote, ?principal, method = %method, missing = %wanted, "call refused: permission denied");
    Err(Denied::PermissionDenied(format!(
        "{method} needs {wanted}; principal {principal:?} has {}",
        if has.is_empty() {
            "no role".to_owned()
        } else {
            format!("only {}", has.join(", "))
        }
    )))
}

/// Whether `identity` may have a Watch stream: a checker (or auditor,
/// admin) not bound to audiences, since the feed names every revocation of
/// every audience. The server asks when the stream opens and again while it
/// runs, so a withdrawn grant, a removed CA or an expired certificate ends
/// an open stream too.
pub fn may_watch(
    access: &Access,
    identity: &Identity,
    remote: Option<std::net::SocketAddr>,
) -> Result<(), Denied> {
    let caller = authorize(access, identity, remote, WATCH)?;
    if caller.bound().is_some() {
        return Err(Denied::PermissionDenied(
            "Watch streams every revocation, of every audience: it needs a checker not bound to audiences (or an auditor)".to_owned(),
        ));
    }
    Ok(())
}

/// The grants a node enforces now; replaced whole by [`AccessHandle::set`]
/// (the binary does on SIGHUP), read once per request.
#[derive(Debug, Clone, Default)]
pub struct AccessHandle(Arc<std::sync::RwLock<Arc<Access>>>);

impl AccessHandle {
    pub fn new(access: Access) -> Self {
        AccessHandle(Arc::new(std::sync::RwLock::new(Arc::new(access))))
    }

    pub fn get(&self) -> Arc<Access> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn set(&self, access: Access) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(access);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(principal: &str, roles: &[Role], audiences: &[&str]) -> Grant {
        Grant {
            principal: principal.into(),
            roles: roles.iter().copied().collect(),
            audiences: audiences.iter().map(|a| (*a).to_owned()).collect(),
            secret: None,
            client: None,
            uid: None,
        }
    }

    #[test]
    fn a_local_user_gets_only_the_grants_for_its_uid_and_plaintext_only_what_the_operator_chose() {
        let access = Access::new(vec![
            Grant {
                uid: Some(1000),
                ..grant(&local_principal(1000), &[Role::Checker], &[])
            },
            // A certificate naming the same string is another principal.
            grant(&local_principal(0), &[Role::Admin], &[]),
        ])
        .expect("valid");
        let user = access.caller(&Identity::Local { uid: 1000 });
        assert_eq!(user.roles, BTreeSet::from([Role::Checker]));
        assert_eq!(user.principal.as_deref(), Some("unix:uid:1000"));
        // No certificate grant reaches a local user, whatever it names.
        assert!(access.caller(&Identity::Local { uid: 0 }).roles.is_empty());
        // No uid grant reaches a certificate naming its principal.
        let certificate = access.caller(&Identity::Principal(local_principal(1000)));
        assert!(!certificate.roles.contains(&Role::Checker));
        for (path, local) in [
            ("/baton.v1.RevocationService/Check", true),
            ("/baton.v1.LedgerService/Append", false),
        ] {
            let answer = authorize(&access, &Identity::Local { uid: 1000 }, None, path);
            assert_eq!(answer.is_ok(), local, "{path}");
            let other = authorize(&access, &Identity::Local { uid: 1001 }, None, path)
                .expect_err("uid 1001 has no grant");
            assert!(matches!(other, Denied::PermissionDenied(_)), "{other:?}");
            assert!(other.message().contains("unix:uid:1001"), "{other:?}");
        }
        // Plaintext: admin only when the operator said so.
        let check = "/baton.v1.RevocationService/Check";
        assert!(authorize(&access, &Identity::Plaintext { admin: true }, None, check).is_ok());
        let refused = authorize(&access, &Identity::Plaintext { admin: false }, None, check)
            .expect_err("plaintext without loopback_admin is nobody");
        assert!(matches!(refused, Denied::Unauthenticated(_)), "{refused:?}");
        assert!(refused.message().contains("loopback_admin"), "{refused:?}");
        let health = "/grpc.health.v1.Health/Check";
        assert!(authorize(&access, &Identity::Plaintext { admin: false }, None, health).is_ok());
        // A uid grant names its uid alone, and carries no secret.
        for bad in [
            Grant {
                uid: Some(7),
                ..grant("unix:uid:8", &[Role::Checker], &[])
            },
            Grant {
                uid: Some(7),
                secret: Some(SecretHash::of(b"x")),
                ..grant("unix:uid:7", &[Role::Checker], &[])
            },
        ] {
            assert!(Access::new(vec![bad]).is_err());
        }
    }

    #[test]
    fn patterns_are_exact_or_one_trailing_star() {
        for bad in [
            "",
            "*x",
            "a*b",
            "a**",
            "spiffe://*",
            "spiffe://corp.example*",
            "gw-*",
            "://x/*",
        ] {
            assert!(
                Access::new(vec![grant(bad, &[Role::Checker], &[])]).is_err(),
                "{bad:?}"
            );
        }
        assert!(Access::new(vec![grant("spiffe://x/a", &[], &[])]).is_err());
        let access = Access::new(vec![
            grant("spiffe://x/gw-*", &[Role::Writer], &[]),
            grant("spiffe://x/gw-eu", &[Role::Checker], &["https://a"]),
        ])
        .expect("valid");
        let eu = access.caller(&Identity::Principal("spiffe://x/gw-eu".into()));
        assert_eq!(eu.roles, BTreeSet::from([Role::Writer, Role::Checker]));
        // A writer grant without audiences does not unbind a bound checker.
        assert_eq!(eu.bound(), Some(&BTreeSet::from(["https://a".to_owned()])));
        // Another checker grant without audiences does.
        let access = Access::new(vec![
            grant("spiffe://x/gw-*", &[Role::Checker], &[]),
            grant("spiffe://x/gw-eu", &[Role::Checker], &["https://a"]),
        ])
        .expect("valid");
        let eu = access.caller(&Identity::Principal("spiffe://x/gw-eu".into()));
        assert_eq!(eu.bound(), None);
        let access = Access::new(vec![
            grant("spiffe://x/gw-*", &[Role::Writer], &[]),
            grant("spiffe://x/gw-eu", &[Role::Checker], &["https://a"]),
        ])
        .expect("valid");
        let us = access.caller(&Identity::Principal("spiffe://x/gw-us".into()));
        assert_eq!(us.roles, BTreeSet::from([Role::Writer]));
        let other = access.caller(&Identity::Principal("spiffe://x/gw".into()));
        assert!(other.roles.is_empty());
        // A prefix is a prefix of the string, nothing looser.
        let upper = access.caller(&Identity::Principal("SPIFFE://x/gw-eu".into()));
        assert!(upper.roles.is_empty());
    }

    #[test]
    fn bound_checkers_see_only_their_audiences() {
        let access = Access::new(vec![grant(
            "spiffe://x/a",
            &[Role::Checker],
            &["https://a"],
        )])
        .expect("ok");
        let a = access.caller(&Identity::Principal("spiffe://x/a".into()));
        assert!(a.sees("https://a"));
        assert!(!a.sees("https://b"));
        assert!(!a.sees("https://a/"));
    }

    #[test]
    fn client_secrets_authenticate_only_their_client_and_never_a_certificate() {
        let hash = SecretHash::of(b"s3cret-for-tests-only");
        let other = SecretHash::of(b"another-secret-for-tests");
        let access = Access::new(vec![
            Grant {
                secret: Some(hash.clone()),
                ..grant("fastmcp-a", &[Role::Checker], &["https://a"])
            },
            // The same id with another secret (a rotation, or a mistake):
            // each secret gets its own grants' roles, never the union.
            Grant {
                secret: Some(other.clone()),
                client: Some(baton_core::ClientId::new("t", "auth.example").unwrap()),
                ..grant("fastmcp-a", &[Role::Writer, Role::Checker], &[])
            },
            grant("fastmcp-a", &[Role::Admin], &[]),
        ])
        .expect("valid");
        let identity = access.client("fastmcp-a", b"s3cret-for-tests-only");
        assert_eq!(
            identity,
            Identity::Client {
                id: "fastmcp-a".into(),
                secret: hash.clone()
            }
        );
        for (id, secret) in [
            ("fastmcp-a", &b"s3cret-for-tests-onlyx"[..]),
            ("fastmcp-a", b""),
            ("fastmcp-b", b"s3cret-for-tests-only"),
        ] {
            assert!(
                matches!(access.client(id, secret), Identity::Refused(_)),
                "{id}"
            );
        }
        // The client gets its secret's grant's roles, not the other secret's
        // or the certificate grant's; a certificate naming the same
        // principal gets only the latter.
        let client = access.caller(&identity);
        assert_eq!(client.roles, BTreeSet::from([Role::Checker]));
        assert!(client.sees("https://a") && !client.sees("https://b"));
        assert_eq!(client.client, None);
        let rotated = access.caller(&access.client("fastmcp-a", b"another-secret-for-tests"));
        assert_eq!(rotated.roles, BTreeSet::from([Role::Writer, Role::Checker]));
        assert_eq!(
            rotated.client.map(|c| c.to_string()),
            Some("auth.example".into())
        );
        let certificate = access.caller(&Identity::Principal("fastmcp-a".into()));
        assert_eq!(certificate.roles, BTreeSet::from([Role::Admin]));
        // A secret or a ledger client names one principal, not a pattern.
        for pattern in [
            Grant {
                secret: Some(hash.clone()),
                ..grant("spiffe://x/gw-*", &[Role::Checker], &[])
            },
            Grant {
                client: Some(baton_core::ClientId::new("t", "auth.example").unwrap()),
                ..grant("spiffe://x/gw-*", &[Role::Writer], &[])
            },
        ] {
            assert!(Access::new(vec![pattern]).is_err());
        }
        // The stored form reads back, and says nothing in Debug.
        assert_eq!(hash.to_string().parse::<SecretHash>(), Ok(hash.clone()));
        assert_eq!(format!("{hash:?}"), "SecretHash(..)");
        assert!("b3:12".parse::<SecretHash>().is_err());
    }

    #[test]
    fn unlisted_methods_need_admin() {
        assert_eq!(
            required("/baton.v1.LedgerService/Rewrite"),
            Need::Role(Role::Admin)
        );
        assert_eq!(required("/baton.v1.Ops/Status"), Need::Role(Role::Admin));
        for method in ["Status", "ListQuarantined", "CreateSnapshot"] {
            assert_eq!(
                required(&format!("/baton.v1.AdminService/{method}")),
                Need::Role(Role::Admin),
                "{method}"
            );
        }
        assert_eq!(required("/grpc.health.v1.Health/Check"), Need::Nothing);
        assert_eq!(
            required("/grpc.health.v1.HealthX/Check"),
            Need::Role(Role::Admin)
        );
    }
}
