//! The tower layer in front of a service, deciding with a Checker on a real
//! node: the MCP spec's 401 / 403 with their challenges, 400 for an MCP
//! request that does not say what it does, 503 when the checker cannot
//! answer, and the token's details in the request's extensions.

#![allow(clippy::unwrap_used)]

mod common;

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use baton_client::events::{self, Signer};
use baton_client::{Authorized, BatonLayer, BatonService, Checker, Endpoint, Resource};
use baton_core::{Body, RevocationTarget, Subject, TokenIssued};
use baton_testkit::{Fixture, Proxy};
use common::{Node, append, caught_up, config, now_s, went_stale};
use tower::{Layer as _, Service};

/// The guarded service: answers 200 with what the layer said of the token.
#[derive(Clone)]
struct Echo;

impl Service<http::Request<()>> for Echo {
    type Response = http::Response<String>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<()>) -> Self::Future {
        let said = request.extensions().get::<Authorized>().map(|a| {
            let details = a.details().unwrap();
            let chain: Vec<String> = details.chain.iter().map(|l| l.holder.clone()).collect();
            format!(
                "{} {} {} {}",
                details.subject,
                details.holder,
                details.tools.join(","),
                chain.join(">")
            )
        });
        Box::pin(async move { Ok(http::Response::new(said.unwrap_or_default())) })
    }
}

async fn call(
    service: &mut BatonService<Echo>,
    request: http::Request<()>,
) -> http::Response<String> {
    std::future::poll_fn(|cx| service.poll_ready(cx))
        .await
        .unwrap();
    service.call(request).await.unwrap()
}

fn mcp(bearer: Option<&str>, method: &str, tool: Option<&str>) -> http::Request<()> {
    let mut request = http::Request::post("/mcp")
        .header("host", "127.0.0.1")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", method);
    if let Some(tool) = tool {
        request = request.header("mcp-name", tool);
    }
    if let Some(bearer) = bearer {
        request = request.header("authorization", format!("Bearer {bearer}"));
    }
    request.body(()).unwrap()
}

fn challenge(response: &http::Response<String>) -> String {
    response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

/// A root grant recorded by its bearer's digest (the token itself is made
/// here and never leaves the test).
fn grant(f: &Fixture, bearer: &str, subject: &str, audience: &str) -> baton_core::Envelope {
    let body = Body::TokenIssued(TokenIssued {
        token: baton_core::token_digest(bearer.as_bytes()),
        subject: Subject::new("subject", subject).unwrap(),
        issuer: f.client("as").id.clone(),
        holder: f.client("agent").id.clone(),
        audience: audience.to_owned(),
        scopes: events::names("scopes", &["files:read"]).unwrap(),
        tools: events::names("tools", &["fs/read"]).unwrap(),
        grant: baton_core::GrantType::AuthorizationCodePkce,
        issued_at_s: now_s(),
        expires_at_s: now_s() + 3600,
        session_id: None,
        transaction_id: None,
    });
    Signer::from_key(f.client("as").key.clone())
        .sign(body)
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_layer_answers_as_the_mcp_spec_asks() {
    let (f, mut events) = Fixture::standard(now_s());
    let audience = "https://agent.example/mcp";
    events.push(grant(&f, "alice-bearer-1", "user:alice", audience));
    events.push(grant(&f, "alice-bearer-2", "user:alice", audience));
    events.push(grant(
        &f,
        "elsewhere-bearer",
        "user:alice",
        "https://other.example/mcp",
    ));
    let node = Node::start(&f).await;
    let direct = node.client().await;
    let written = append(&direct, &events).await.unwrap();
    let proxy = Proxy::start(node.address).unwrap();
    let (config, clock) = config();
    let staleness = config.staleness;
    let checker = Checker::start(Endpoint::new(proxy.url()).connect_lazy().unwrap(), config)
        .await
        .unwrap();
    caught_up(&checker, &written).await;
    let mut resource = Resource::new("http://127.0.0.1/mcp", audience).unwrap();
    resource.metadata_url =
        Some("https://agent.example/.well-known/oauth-protected-resource".into());
    resource.scopes = ["files:read".to_owned()].into();
    let mut service = BatonLayer::new(checker.clone(), resource.clone()).layer(Echo);

    let none = call(&mut service, mcp(None, "tools/list", None)).await;
    assert_eq!(none.status(), 401);
    assert_eq!(
        challenge(&none),
        "Bearer resource_metadata=\"https://agent.example/.well-known/oauth-protected-resource\""
    );

    let allowed = call(
        &mut service,
        mcp(Some("alice-bearer-1"), "tools/call", Some("fs/read")),
    )
    .await;
    assert_eq!(allowed.status(), 200, "{:?}", allowed.headers());
    assert_eq!(allowed.body(), "user:alice agent fs/read agent");

    let tool = call(
        &mut service,
        mcp(Some("alice-bearer-1"), "tools/call", Some("fs/write")),
    )
    .await;
    assert_eq!(tool.status(), 403);
    assert!(
        challenge(&tool).starts_with("Bearer error=\"insufficient_scope\", scope=\"fs/write\""),
        "{}",
        challenge(&tool)
    );

    let mut wants_more = resource.clone();
    wants_more.scopes = ["repo:write".to_owned()].into();
    let mut stricter = BatonLayer::new(checker.clone(), wants_more).layer(Echo);
    let scope = call(
        &mut stricter,
        mcp(Some("alice-bearer-1"), "tools/list", None),
    )
    .await;
    assert_eq!(scope.status(), 403);
    assert!(
        challenge(&scope).contains("scope=\"repo:write\""),
        "{}",
        challenge(&scope)
    );

    let undescribed = http::Request::post("/mcp")
        .header("authorization", "Bearer alice-bearer-1")
        .body(())
        .unwrap();
    assert_eq!(call(&mut service, undescribed).await.status(), 400);

    for (bearer, why) in [
        ("nobody-knows-this", "not known"),
        ("elsewhere-bearer", "not addressed to this resource"),
    ] {
        let denied = call(&mut service, mcp(Some(bearer), "tools/list", None)).await;
        assert_eq!(denied.status(), 401, "{bearer}");
        assert!(
            challenge(&denied).contains("error=\"invalid_token\""),
            "{bearer}"
        );
        assert!(
            challenge(&denied).contains(why),
            "{bearer}: {}",
            challenge(&denied)
        );
    }

    // Revoked anywhere: the next request is refused, from the cache's
    // invalidation, with no restart.
    let revoked = append(
        &direct,
        &[f_revoke(
            &f,
            RevocationTarget::Token(baton_core::token_digest(b"alice-bearer-1")),
        )],
    )
    .await
    .unwrap();
    caught_up(&checker, &revoked).await;
    let after = call(
        &mut service,
        mcp(Some("alice-bearer-1"), "tools/list", None),
    )
    .await;
    assert_eq!(after.status(), 401);
    assert!(
        challenge(&after).contains("the token is revoked"),
        "{}",
        challenge(&after)
    );
    assert_eq!(
        call(
            &mut service,
            mcp(Some("alice-bearer-2"), "tools/list", None)
        )
        .await
        .status(),
        200
    );

    // Cut off past the bound: refused, 503, even for a cached token.
    proxy.cut();
    went_stale(&checker, &clock, staleness).await;
    let stale = call(
        &mut service,
        mcp(Some("alice-bearer-2"), "tools/list", None),
    )
    .await;
    assert_eq!(stale.status(), 503);
    assert!(challenge(&stale).is_empty());
    drop(service);
    drop(stricter);
    drop(checker);
    node.stop().await;
}

/// A revocation signed by the fixture's trust root.
fn f_revoke(f: &Fixture, target: RevocationTarget) -> baton_core::Envelope {
    Signer::from_key(f.root.clone())
        .sign(events::revoke(target, "test", None))
        .unwrap()
}
