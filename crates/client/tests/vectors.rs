//! The Rust half of the vectors both SDKs run (`proto/testvectors/sdk/`;
//! the Python SDK runs the same files in `python.rs`): consistency tokens as
//! `baton_log::ConsistencyToken` reads, writes and compares them, and the
//! gateway decision of `BatonLayer` (and the node's bridges): the request
//! read with `Presented::read`, admitted with `admit_to`, judged with
//! `conclude`. Revocation-target matching is in `checker.rs`'s unit tests,
//! where the cache's index is reachable.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;

use baton_bridge::{Headers, Presented, Resource, Verdict};
use baton_log::{ConsistencyToken, Position};
use baton_proto::v1;
use baton_testkit::repo_root;
use serde_json::Value;

fn vectors(name: &str) -> Value {
    let path = repo_root().join("proto/testvectors/sdk").join(name);
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn cases<'v>(file: &'v Value, section: &str) -> &'v Vec<Value> {
    let cases = file[section].as_array().unwrap();
    assert!(!cases.is_empty(), "{section}: no cases");
    cases
}

fn token(text: &Value) -> ConsistencyToken {
    ConsistencyToken::parse(text.as_str().unwrap()).unwrap()
}

#[test]
fn consistency_tokens_follow_the_shared_vectors() {
    let file = vectors("consistency.json");
    for case in cases(&file, "parse") {
        let text = case["text"].as_str().unwrap();
        let parsed = ConsistencyToken::parse(text).ok();
        let expected: Option<Vec<u64>> = serde_json::from_value(case["offsets"].clone()).unwrap();
        assert_eq!(
            parsed.as_ref().map(|t| t.next_offsets().to_vec()),
            expected,
            "parse {text:?}"
        );
    }
    for case in cases(&file, "format") {
        let offsets: Vec<u64> = serde_json::from_value(case["offsets"].clone()).unwrap();
        assert_eq!(
            ConsistencyToken::new(offsets.clone()).to_string(),
            case["text"].as_str().unwrap(),
            "format {offsets:?}"
        );
    }
    for case in cases(&file, "covers") {
        let applied = token(&case["applied"]);
        assert_eq!(
            token(&case["token"]).is_covered_by(applied.next_offsets()),
            case["covers"].as_bool().unwrap(),
            "{case}"
        );
    }
    for case in cases(&file, "merge") {
        let mut merged = token(&case["a"]);
        merged.merge(&token(&case["b"]));
        assert_eq!(
            merged.to_string(),
            case["merged"].as_str().unwrap(),
            "{case}"
        );
    }
    for case in cases(&file, "include") {
        let mut included = token(&case["token"]);
        let result = included.include(Position {
            partition: u32::try_from(case["partition"].as_u64().unwrap()).unwrap(),
            offset: case["offset"].as_u64().unwrap(),
        });
        assert_eq!(
            result.map(|()| included.to_string()).ok().as_deref(),
            case["result"].as_str(),
            "{case}"
        );
    }
}

/// `Bearer error="…"`'s parameter `name`, if present.
fn parameter(challenge: &str, name: &str) -> Option<String> {
    let start = challenge.find(&format!("{name}=\""))? + name.len() + 2;
    let end = challenge[start..].find('"')? + start;
    Some(challenge[start..end].to_owned())
}

/// The verdict for one case, by the calls `BatonLayer` makes.
fn decide(resource: &Resource, case: &Value) -> Verdict {
    let pairs: Vec<(String, String)> = case["headers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|pair| {
            (
                pair[0].as_str().unwrap().to_owned(),
                pair[1].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let mut headers = Headers::new();
    for (name, value) in &pairs {
        headers.push(name, value.as_bytes());
    }
    let presented = match Presented::read(&headers) {
        Ok(presented) => presented,
        Err(refusal) => return baton_bridge::refused(Some(resource), refusal),
    };
    let method = case["method"].as_str().unwrap();
    if let Err(verdict) = baton_bridge::admit_to(resource, method, &presented) {
        return verdict;
    }
    let answer = &case["answer"];
    let status = v1::TokenStatus::from_str_name(&format!(
        "TOKEN_STATUS_{}",
        answer["status"].as_str().unwrap()
    ))
    .unwrap();
    let strings =
        |field: &str| -> Vec<String> { serde_json::from_value(answer[field].clone()).unwrap() };
    let details = v1::TokenDetails {
        scopes: strings("scopes"),
        tools: strings("tools"),
        subject: "user:alice".into(),
        holder: "mcp-client".into(),
        ..Default::default()
    };
    baton_bridge::conclude(
        resource,
        &presented,
        status as i32,
        Some(&details),
        &[7; 32],
    )
}

#[test]
fn the_gateway_decision_follows_the_shared_vectors() {
    let file = vectors("gateway.json");
    let config = &file["resource"];
    let mut resource = Resource::new(
        "http://127.0.0.1:8000/mcp",
        config["audience"].as_str().unwrap(),
    )
    .unwrap();
    resource.scopes = serde_json::from_value::<BTreeSet<String>>(config["scopes"].clone()).unwrap();
    resource.metadata_url = Some(config["metadata_url"].as_str().unwrap().to_owned());
    let mut allowed = 0;
    for case in cases(&file, "cases") {
        let name = case["name"].as_str().unwrap();
        let expect = &case["expect"];
        let status = expect["status"].as_u64().unwrap() as u16;
        match decide(&resource, case) {
            Verdict::Allow(_) => {
                assert_eq!(status, 200, "{name}: allowed");
                allowed += 1;
            }
            Verdict::Deny {
                status: denied,
                www_authenticate,
                reason,
            } => {
                assert_eq!(denied, status, "{name}: denied ({reason})");
                let challenge = www_authenticate.unwrap_or_default();
                assert_eq!(
                    parameter(&challenge, "error"),
                    expect["error"].as_str().map(str::to_owned),
                    "{name}: {challenge}"
                );
                if let Some(scope) = expect["scope"].as_str() {
                    assert_eq!(
                        parameter(&challenge, "scope").as_deref(),
                        Some(scope),
                        "{name}"
                    );
                }
                if denied == 401 {
                    // RFC 9728 §5.1: every 401 names the metadata.
                    assert!(challenge.contains("resource_metadata=\""), "{name}");
                }
            }
        }
    }
    assert!(allowed >= 5, "{allowed} allowed cases");
}
