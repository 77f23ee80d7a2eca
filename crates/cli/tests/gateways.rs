//! The bridges, driven by software we did not write: Debian's nginx in front
//! of a Python MCP SDK server with Baton as its `auth_request` decision, a
//! Python MCP SDK client through it; FastMCP's RFC 7662 introspection
//! verifier; Envoy's ext_authz protocol from Envoy's published protos
//! (`xds-protos`, grpcio). Each against a real `baton serve` whose ledger the
//! CLI wrote, and whose log must never show a bearer token it was given.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use baton_testkit::tools;
use common::{Served, baton};

/// The audience of MCP server A's tokens, and another's.
const AUDIENCE_A: &str = "https://mcp-a.example/mcp";
const AUDIENCE_B: &str = "https://mcp-b.example/mcp";
const SUBJECT: &str = "user:alice@example.com";

/// A child process killed when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A bearer token as a client would present it: random, marked test-only.
fn bearer(name: &str) -> String {
    let mut bytes = [0u8; 16];
    let seed = format!(
        "{name}{:?}{}",
        std::time::SystemTime::now(),
        std::process::id()
    );
    bytes.copy_from_slice(&blake3::hash(seed.as_bytes()).as_bytes()[..16]);
    format!("test-only-{name}-{}", hex::encode(bytes))
}

/// A node with the HTTP bridges, and a ledger written through the CLI:
/// an authorization server, a gateway, an MCP client and MCP servers A and
/// B, with the tokens the tests present.
struct Ledger {
    dir: tempfile::TempDir,
    node: Served,
    /// The trust root's public key, and the arguments every node of this
    /// ledger is started with.
    root: String,
    args: Vec<String>,
    /// Bearer tokens by name, all recorded by digest.
    tokens: std::collections::BTreeMap<&'static str, String>,
    /// Environment for client verbs (a certificate, when the node is mTLS).
    cli_env: Vec<(String, String)>,
    /// Client ids and secrets the test used (never to be logged either).
    secrets: Vec<(String, String)>,
}

impl Ledger {
    /// `config` is the node's configuration file (`{dir}` in it: the
    /// ledger's directory, where the key files are).
    fn start(config: &str) -> Ledger {
        Ledger::start_with(config, Vec::new())
    }

    /// [`Ledger::start`], client verbs run with `cli_env`.
    fn start_with(config: &str, cli_env: Vec<(String, String)>) -> Ledger {
        let dir = tempfile::tempdir().unwrap();
        let path = |name: &str| dir.path().join(name);
        for key in ["root", "auth", "gateway", "client", "a", "b", "node"] {
            cli(None, &["keygen", "--out"], &[path(&format!("{key}.key"))]);
        }
        let root = cli(None, &["pubkey"], &[path("root.key")])
            .trim()
            .to_owned();
        let config_file = path("baton.toml");
        std::fs::write(
            &config_file,
            config.replace("{dir}", dir.path().to_str().unwrap()),
        )
        .unwrap();
        let args: Vec<String> = [
            "--config",
            config_file.to_str().unwrap(),
            "--http-listen",
            "127.0.0.1:0",
        ]
        .map(String::from)
        .into();
        let node = Ledger::serve(&path("data"), &root, &args);
        let mut ledger = Ledger {
            dir,
            node,
            root,
            args,
            tokens: Default::default(),
            cli_env,
            secrets: Vec::new(),
        };
        let scopes = "--scopes=mcp:tools";
        let tools = "--tools=echo,secret";
        ledger.run(&format!("register --key root.key --client-id auth.example --kind authorization-server --role delegating-layer --client-key auth.key {scopes} {tools}"));
        for (id, kind, role, key) in [
            ("gateway", "gateway", "delegating-layer", "gateway.key"),
            ("mcp-client", "mcp-client", "delegating-layer", "client.key"),
            ("mcp-a", "mcp-server", "tool-endpoint", "a.key"),
            ("mcp-b", "mcp-server", "tool-endpoint", "b.key"),
        ] {
            ledger.run(&format!("register --key auth.key --registered-by auth.example --client-id {id} --kind {kind} --role {role} --client-key {key} {scopes} {tools}"));
        }
        // The node's revocation delegate: its id is reserved by the
        // configuration, so a trust root registers it (README, RFC 7009).
        ledger.run(&format!("register --key root.key --client-id baton-node --kind service --role tool-endpoint --client-key node.key {scopes} {tools}"));
        // The MCP client's own token for server A: echo only.
        let direct = ledger.digest("direct");
        ledger.run(&format!("issue --key auth.key --issuer auth.example --token {direct} --subject {SUBJECT} --holder mcp-client --audience {AUDIENCE_A} {scopes} --tools=echo"));
        // A chain: Alice's grant to the gateway, exchanged for server A's
        // tokens (and one for B).
        let root = ledger.digest("root");
        ledger.run(&format!("issue --key auth.key --issuer auth.example --token {root} --subject {SUBJECT} --holder gateway --audience https://gateway.example/mcp {scopes} {tools}"));
        for (name, holder, audience, ttl) in [
            ("live", "mcp-a", AUDIENCE_A, "900"),
            ("revoked", "mcp-a", AUDIENCE_A, "900"),
            ("expired", "mcp-a", AUDIENCE_A, "1"),
            ("elsewhere", "mcp-b", AUDIENCE_B, "900"),
            ("spare", "mcp-a", AUDIENCE_A, "900"),
        ] {
            let token = ledger.digest(name);
            ledger.run(&format!("narrow --key gateway.key --parent {root} --token {token} --performed-by gateway --holder {holder} --audience {audience} {scopes} --tools=echo --ttl {ttl}"));
        }
        let revoked = ledger.digest("revoked");
        ledger.run(&format!(
            "revoke --key gateway.key --revoked-by gateway --token {revoked} --reason test"
        ));
        ledger
    }

    /// A node of this ledger, with data in `data`.
    fn serve(data: &Path, root: &str, args: &[String]) -> Served {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        Served::start_logging(
            data,
            root,
            &args,
            // Everything Baton says, so the bearer-token grep has teeth.
            "info,baton=debug,baton_server=debug,baton_projector=debug,baton_log=debug",
        )
    }

    /// Another node over the same log (a Kafka ledger's).
    fn another_node(&self) -> Served {
        Ledger::serve(&self.path("data-2"), &self.root, &self.args)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn http_url(&self) -> String {
        format!("http://{}", self.node.http_address.as_ref().unwrap())
    }

    /// The bearer token `name` (made on first use) as a token reference.
    fn digest(&mut self, name: &'static str) -> String {
        let token = self
            .tokens
            .entry(name)
            .or_insert_with(|| bearer(name))
            .clone();
        let mut child = baton()
            .arg("digest")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(token.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }

    /// Runs a client verb (`line`, split at spaces) against the node, key
    /// files relative to the ledger's directory.
    fn run(&self, line: &str) -> String {
        let args: Vec<String> = line
            .split_whitespace()
            .map(|arg| {
                if arg.ends_with(".key") {
                    self.path(arg).to_str().unwrap().to_owned()
                } else {
                    (*arg).to_owned()
                }
            })
            .collect();
        let mut command = baton();
        command
            .args(&args)
            .env("BATON_SERVER", self.node.url())
            .envs(self.cli_env.iter().map(|(k, v)| (k, v)));
        let out = command.output().unwrap();
        assert!(
            out.status.success(),
            "baton {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// No line the node logged holds any bearer token the test used.
    fn assert_no_token_logged(&self) {
        self.assert_no_token_logged_by(&self.node);
    }

    fn assert_no_token_logged_by(&self, node: &Served) {
        let logs = node.logs();
        assert!(
            !logs.is_empty(),
            "the node logged nothing: the grep has no teeth"
        );
        use base64::Engine as _;
        let mut secret_parts: Vec<(String, String)> = self
            .tokens
            .iter()
            .map(|(name, token)| {
                (
                    format!("bearer token {name}"),
                    token[token.len() - 32..].to_owned(),
                )
            })
            .collect();
        for (id, secret) in &self.secrets {
            secret_parts.push((format!("{id}'s secret"), secret.clone()));
            // As it travels in a Basic header, too.
            let basic = base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"));
            secret_parts.push((format!("{id}'s Basic header"), basic));
        }
        for (what, part) in &secret_parts {
            for line in &logs {
                assert!(
                    !line.contains(part.as_str()),
                    "the node logged {what}: {line}"
                );
            }
        }
    }
}

/// A `baton` command that must succeed; its stdout.
fn cli(server: Option<&str>, args: &[&str], paths: &[PathBuf]) -> String {
    let mut command = baton();
    command.args(args).args(paths);
    if let Some(server) = server {
        command.env("BATON_SERVER", server);
    }
    let out = command.output().unwrap();
    assert!(out.status.success(), "{:?}: {:?}", args, out);
    String::from_utf8(out.stdout).unwrap()
}

fn python(script: &str) -> Command {
    let mut command = Command::new(tools::interop_python().unwrap());
    command
        .arg(
            baton_testkit::repo_root()
                .join("tests/interop")
                .join(script),
        )
        .env("PYTHONUNBUFFERED", "1");
    command
}

/// The last line of `out` must be `{name}: N passed, 0 failed` with N > 0.
fn assert_passed(name: &str, out: &str, at_least: u32) {
    let summary = out
        .lines()
        .rev()
        .find(|line| line.starts_with(&format!("{name}: ")))
        .unwrap_or_else(|| panic!("{name} printed no summary:\n{out}"));
    let passed: u32 = summary[name.len() + 2..]
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!(
        summary.ends_with(" 0 failed") && passed >= at_least,
        "{summary}\n{out}"
    );
}

/// Runs a check script to its end: it must pass at least `at_least` checks
/// and fail none.
fn run_checks(command: &mut Command, name: &str, at_least: u32) {
    let out = command.output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    print!("{text}{}", String::from_utf8_lossy(&out.stderr));
    assert_passed(name, &text, at_least);
    assert!(out.status.success());
}

/// nginx's configuration: README's snippet (the MCP server and Baton's
/// HTTP listener put where they are), in a server on `listen`.
fn nginx_config(dir: &Path, listen: u16, host: &str, upstream: u16, baton_http: &str) -> PathBuf {
    for temp in ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"] {
        std::fs::create_dir_all(dir.join(temp)).unwrap();
    }
    let snippet = baton_testkit::readme_snippet("nginx");
    for part in [
        "127.0.0.1:8000",
        "http://127.0.0.1:7701",
        "listen 8080",
        "mcp-a.example",
    ] {
        assert!(snippet.contains(part), "{part}");
    }
    let servers = snippet
        .replace("127.0.0.1:8000", &format!("127.0.0.1:{upstream}"))
        .replace("http://127.0.0.1:7701", baton_http)
        .replace("listen 8080", &format!("listen 127.0.0.1:{listen}"))
        .replace("mcp-a.example", host);
    let config = format!(
        r#"daemon off;
master_process off;
user root;
pid {dir}/nginx.pid;
error_log stderr warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {dir}/client_body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
{servers}
}}
"#,
        dir = dir.display()
    );
    let path = dir.join("nginx.conf");
    std::fs::write(&path, config).unwrap();
    path
}

/// Debian's nginx with README's snippet in front of `upstream` for `host`,
/// asking `ledger`'s node; and the port it listens on.
fn start_nginx(ledger: &Ledger, host: &str, upstream: u16) -> (Running, u16) {
    let nginx = tools::nginx().unwrap();
    let listen = tools::free_port();
    let nginx_dir = ledger.path("nginx");
    std::fs::create_dir_all(&nginx_dir).unwrap();
    let config = nginx_config(&nginx_dir, listen, host, upstream, &ledger.http_url());
    let running = Running(
        Command::new(nginx)
            .arg("-p")
            .arg(&nginx_dir)
            .arg("-c")
            .arg(&config)
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    tools::wait_for_port(listen, Duration::from_secs(30)).unwrap();
    (running, listen)
}

/// Runs a README shell snippet in `dir` with `env`, Baton's HTTP listener
/// where the node has it; its output.
fn run_snippet(name: &str, dir: &Path, baton_http: &str, env: &[(&str, &str)]) -> String {
    let script = baton_testkit::readme_snippet(name).replace("http://127.0.0.1:7701", baton_http);
    let out = Command::new("bash")
        .args(["-euo", "pipefail", "-c", &script])
        .current_dir(dir)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    assert!(out.status.success(), "README snippet {name}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn nginx_asks_baton_before_an_mcp_sdk_server_answers_an_mcp_sdk_client() {
    let mut ledger = Ledger::start(&format!(
        "[[resource]]\nurl = \"http://127.0.0.1/mcp\"\naudience = \"{AUDIENCE_A}\"\nscopes = [\"mcp:tools\"]\n"
    ));
    let token = ledger.tokens["direct"].clone();
    let direct = ledger.digest("direct");

    let upstream = tools::free_port();
    let _server = Running(
        python("mcp_server.py")
            .arg(upstream.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    tools::wait_for_port(upstream, Duration::from_secs(60)).unwrap();
    let (_nginx, listen) = start_nginx(&ledger, "127.0.0.1", upstream);

    let mut client = python("mcp_client.py")
        .arg(format!("http://127.0.0.1:{listen}/mcp"))
        .arg(&token)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(client.stdout.take().unwrap()).lines();
    let mut out = String::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        out.push_str(&line);
        out.push('\n');
        if line == "READY FOR REVOCATION" {
            break;
        }
    }
    assert!(out.contains("READY FOR REVOCATION"), "{out}");
    // Revoked on the node while the session is open; the next call is refused.
    ledger.run(&format!(
        "revoke --key auth.key --revoked-by auth.example --token {direct} --reason session-ended"
    ));
    client
        .stdin
        .take()
        .unwrap()
        .write_all(b"revoked\n")
        .unwrap();
    for line in lines {
        out.push_str(&line.unwrap());
        out.push('\n');
    }
    let status = client.wait().unwrap();
    print!("{out}");
    assert_passed("mcp client", &out, 9);
    assert!(status.success());
    ledger.assert_no_token_logged();
}

#[test]
fn fastmcp_introspection_verifier_accepts_live_tokens_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    // Named as README's snippets name it.
    let secret_file = dir.path().join("mcp-a.secret");
    let hash = cli(None, &["secret", "new"], std::slice::from_ref(&secret_file));
    let mut ledger = Ledger::start(&format!(
        "[[access]]\nprincipal = \"mcp-a\"\nroles = [\"checker\"]\naudiences = [\"{AUDIENCE_A}\"]\nsecret_hash = \"{}\"\n",
        hash.trim()
    ));
    // The unknown one is never recorded.
    let unknown = bearer("unknown");
    ledger.tokens.insert("unknown", unknown);
    let secret = std::fs::read_to_string(&secret_file).unwrap();
    ledger
        .secrets
        .push(("mcp-a".into(), secret.trim().to_owned()));
    // Expired: its one second of life has passed once the node says so.
    let expired = ledger.digest("expired");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let mut check = baton();
        check
            .args(["check", &expired])
            .env("BATON_SERVER", ledger.node.url());
        if check.output().unwrap().status.code() == Some(4) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the token never expired"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let mut command = python("introspect_fastmcp.py");
    command
        .arg(format!("{}/oauth2/introspect", ledger.http_url()))
        .arg("mcp-a")
        .arg(&secret_file);
    for name in ["live", "revoked", "expired", "unknown", "elsewhere"] {
        command.arg(&ledger.tokens[name]);
    }
    run_checks(&mut command, "fastmcp", 10);
    // README's curl, as written.
    let answer = run_snippet(
        "introspect",
        dir.path(),
        &ledger.http_url(),
        &[("TOKEN", &ledger.tokens["live"])],
    );
    let answer: serde_json::Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(answer["active"], true, "{answer}");
    assert_eq!(answer["act"]["act"]["sub"], "gateway", "{answer}");
    // How fresh the node's view was: an end of the log it confirmed.
    assert!(
        answer["baton_view_confirmed_end"]
            .as_str()
            .is_some_and(|end| end.starts_with("ct1."))
            && answer["baton_view_confirmed_at_ms"].as_i64() > Some(0)
            && answer["baton_view_age_ms"]
                .as_u64()
                .is_some_and(|age| age < 5000),
        "{answer}"
    );
    ledger.assert_no_token_logged();
}

#[test]
fn envoy_ext_authz_clients_get_http_answers() {
    let mut ledger = Ledger::start(&format!(
        "[[resource]]\nurl = \"https://mcp-a.example/mcp\"\naudience = \"{AUDIENCE_A}\"\nscopes = [\"mcp:tools\"]\n"
    ));
    ledger.tokens.insert("unknown", bearer("unknown"));
    let mut command = python("ext_authz.py");
    command.arg(&ledger.node.address);
    for name in ["live", "revoked", "elsewhere"] {
        command.arg(&ledger.tokens[name]);
    }
    run_checks(&mut command, "ext_authz", 60);
    run_checks(&mut python("envoy_config.py"), "envoy config", 4);
    ledger.assert_no_token_logged();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc7009_revocation_cascades_to_another_node_and_stays_within_the_callers_chain() {
    let cluster = baton_testkit::KafkaCluster::start(1).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let secret = |name: &str| {
        let file = dir.path().join(format!("{name}.secret"));
        let hash = cli(None, &["secret", "new"], std::slice::from_ref(&file));
        (file, hash.trim().to_owned())
    };
    let (gateway_secret, gateway_hash) = secret("gateway-admin");
    let (outsider_secret, outsider_hash) = secret("outsider");
    let mut ledger = Ledger::start(&format!(
        r#"[kafka]
brokers = "{}"
topic = "rfc7009"
partitions = 2
[rules]
revocation_delegates = ["baton-node"]
[revocation]
client_id = "baton-node"
key_file = "{{dir}}/node.key"
[[access]]
principal = "gateway-admin"
roles = ["writer", "checker"]
client_id = "gateway"
secret_hash = "{gateway_hash}"
[[access]]
principal = "mcp-b-admin"
roles = ["writer", "checker"]
client_id = "mcp-b"
secret_hash = "{outsider_hash}"
"#,
        cluster.bootstrap()
    ));
    for (id, file) in [
        ("gateway-admin", &gateway_secret),
        ("mcp-b-admin", &outsider_secret),
    ] {
        let secret = std::fs::read_to_string(file).unwrap();
        ledger.secrets.push((id.into(), secret.trim().to_owned()));
    }
    // README's curl, as written, on a token the gateway's chain holds.
    let answer = run_snippet(
        "revoke",
        dir.path(),
        &ledger.http_url(),
        &[("TOKEN", &ledger.tokens["spare"])],
    );
    assert!(
        answer.starts_with("HTTP/1.1 200") && answer.contains("x-baton-consistency-token: ct1."),
        "{answer}"
    );
    let other = ledger.another_node();
    let mut command = python("revoke_rfc7009.py");
    command
        .arg(ledger.http_url())
        .arg(format!("http://{}", other.http_address.as_ref().unwrap()))
        .arg(&gateway_secret)
        .arg(&outsider_secret)
        .arg(&ledger.tokens["root"])
        .arg(&ledger.tokens["live"]);
    run_checks(&mut command, "rfc7009", 14);

    // The event records who asked, and which delegate signed for it.
    let mut revocation =
        baton_proto::v1::revocation_service_client::RevocationServiceClient::connect(other.url())
            .await
            .unwrap();
    let live = baton_core::token_digest(ledger.tokens["live"].as_bytes());
    let answer = revocation
        .check(baton_proto::v1::CheckRequest {
            token: Some(baton_proto::token_ref_to_wire(&live)),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let revoked = answer.cause.and_then(|cause| cause.revoked).unwrap();
    assert_eq!(
        (revoked.revoked_by.as_str(), revoked.requested_by.as_str()),
        ("baton-node", "gateway")
    );
    assert!(
        revoked.reason.contains("gateway-admin"),
        "{}",
        revoked.reason
    );
    ledger.assert_no_token_logged();
    ledger.assert_no_token_logged_by(&other);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_known_by_jti_is_answered_only_for_a_jwt_its_issuer_signed() {
    let keys = tempfile::tempdir().unwrap();
    let out = python("make_jwts.py")
        .arg(keys.path())
        .args([
            "https://auth.example.com",
            "jwt-1",
            "https://other.example.com",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let jwts: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let jwks = keys.path().join("jwks.json");
    // A resource server that introspects over HTTP (RFC 7662, Basic).
    let secret_file = keys.path().join("rs.secret");
    let secret_hash = cli(None, &["secret", "new"], std::slice::from_ref(&secret_file));
    let secret = std::fs::read_to_string(&secret_file).unwrap();
    // The other issuer shares the keys but is another authorization server:
    // its JWTs may not speak for auth.example's tokens.
    let ledger = Ledger::start(&format!(
        "[[jwt_issuer]]\niss = \"https://auth.example.com\"\nclient_id = \"auth.example\"\njwks_file = {jwks:?}\n\
         [[jwt_issuer]]\niss = \"https://other.example.com\"\nclient_id = \"gateway\"\njwks_file = {jwks:?}\n\
         [[access]]\nprincipal = \"rs\"\nroles = [\"checker\"]\nsecret_hash = \"{}\"\n",
        secret_hash.trim()
    ));
    ledger.run(&format!("issue --key auth.key --issuer auth.example --token jti:jwt-1 --subject {SUBJECT} --holder mcp-client --audience {AUDIENCE_A} --scopes=mcp:tools --tools=echo"));
    let mut revocation =
        baton_proto::v1::revocation_service_client::RevocationServiceClient::connect(
            ledger.node.url(),
        )
        .await
        .unwrap();
    use baton_proto::v1::TokenStatus::{Active, Expired, Unknown};
    for (name, want) in [
        ("good", Active),
        ("tampered", Unknown),
        ("stranger", Unknown),
        ("none", Unknown),
        ("other_issuer", Unknown),
        ("expired", Expired),
    ] {
        let answer = revocation
            .introspect(baton_proto::v1::IntrospectRequest {
                bearer: jwts[name].as_str().unwrap().as_bytes().to_vec(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        let check = answer.check.unwrap();
        assert_eq!(check.status, want as i32, "{name}");
        if want == Active {
            assert_eq!(answer.details.unwrap().subject, SUBJECT);
            // The JWT's own exp (10 minutes) bounds the expiry the answer
            // reports, below the ledger's hour: a cache judges by it.
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs() as i64;
            assert!(
                (now..=now + 600).contains(&check.expires_at_unix_s),
                "{name}: expires at {} (now {now})",
                check.expires_at_unix_s
            );
        }
    }
    // RFC 7662 answers with the JWT's own issuer and the sooner of the
    // JWT's exp and the ledger's expiry.
    let out = std::process::Command::new("curl")
        .args(["-sS", "-u"])
        .arg(format!("rs:{}", secret.trim()))
        .arg("--data-urlencode")
        .arg(format!("token={}", jwts["good"].as_str().unwrap()))
        .arg(format!("{}/oauth2/introspect", ledger.http_url()))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let body: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(body["active"], true, "{body}");
    assert_eq!(body["iss"], "https://auth.example.com", "{body}");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let exp = body["exp"].as_i64().unwrap();
    assert!((now..=now + 600).contains(&exp), "exp {exp} (now {now})");
    // A JWKS file that does not read stops the node from starting.
    std::fs::write(&jwks, "{\"keys\": [{\"kty\": \"oct\"}]}").unwrap();
    let config = ledger.path("bad-jwks.toml");
    std::fs::write(
        &config,
        format!(
            "[[jwt_issuer]]\niss = \"i\"\nclient_id = \"auth.example\"\njwks_file = {jwks:?}\n"
        ),
    )
    .unwrap();
    let said = common::serve_refused(&[
        "--listen",
        "127.0.0.1:0",
        "--trust-root",
        &ledger.root,
        "--data-dir",
        ledger.path("refused").to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
    ]);
    assert!(said.contains("jwt_issuer[0].jwks_file"), "{said}");
}

#[test]
fn the_bridges_serve_certificate_callers_over_tls() {
    let pki = tempfile::tempdir().unwrap();
    let pem = |name: &str| pki.path().join(name).to_str().unwrap().to_owned();
    let tls = common::mtls_config(pki.path(), "", "");
    let tls = std::fs::read_to_string(tls).unwrap();
    for (name, principal) in [
        ("admin", "spiffe://corp.example/admin"),
        ("gateway", "spiffe://corp.example/gateway"),
        ("other", "spiffe://corp.example/other"),
    ] {
        baton::pki::issue_leaf(
            pki.path(),
            name,
            baton::pki::Leaf::Client(principal.into()),
            baton::pki::DAYS_DEFAULT,
        )
        .unwrap();
    }
    let ledger = Ledger::start_with(
        &format!(
            "{tls}\n[[access]]\nprincipal = \"spiffe://corp.example/admin\"\nroles = [\"admin\"]\n\
             [[access]]\nprincipal = \"spiffe://corp.example/gateway\"\nroles = [\"checker\"]\naudiences = [\"{AUDIENCE_A}\"]\n\
             [[access]]\nprincipal = \"spiffe://corp.example/other\"\nroles = [\"checker\"]\naudiences = [\"{AUDIENCE_B}\"]\n\
             [[resource]]\nurl = \"https://mcp-a.example/mcp\"\naudience = \"{AUDIENCE_A}\"\n"
        ),
        vec![
            ("BATON_CA".into(), pem("ca.pem")),
            ("BATON_CERT".into(), pem("admin.pem")),
            ("BATON_CERT_KEY".into(), pem("admin.key")),
        ],
    );
    assert!(ledger.node.tls);
    let mut command = python("bridges_mtls.py");
    command
        .arg(format!(
            "https://{}",
            ledger.node.http_address.as_ref().unwrap()
        ))
        .arg(&ledger.node.address)
        .args([
            pem("ca.pem"),
            pem("gateway.pem"),
            pem("gateway.key"),
            pem("other.pem"),
            pem("other.key"),
        ])
        .arg(&ledger.tokens["live"])
        .arg(&ledger.tokens["elsewhere"]);
    run_checks(&mut command, "bridges over mTLS", 11);
    ledger.assert_no_token_logged();
}

/// The resource the differential test's token is for, and two it is not:
/// one under it on the same host, one on a host the gateway does not front
/// (the second token of the corpus is for both).
const MCP_HOST: &str = "mcp.example";
const MCP_URL: &str = "http://mcp.example/mcp";
const ADMIN_URL: &str = "http://mcp.example/mcp/admin";
const OTHER_URL: &str = "http://other.example/mcp";

/// One request of `tests/gateway/corpus.json`.
#[derive(Debug, serde::Deserialize)]
struct Case {
    name: String,
    rule: String,
    method: String,
    target: String,
    /// The `Host` the client names (`mcp.example` if absent).
    #[serde(default)]
    host: Option<String>,
    headers: Vec<String>,
    /// "allow" or "deny", or a map from gateway to one of them.
    expect: serde_json::Value,
}

fn corpus() -> Vec<Case> {
    let path = baton_testkit::repo_root().join("tests/gateway/corpus.json");
    let text = std::fs::read_to_string(path).unwrap();
    let mut corpus: serde_json::Value = serde_json::from_str(&text).unwrap();
    serde_json::from_value(corpus["cases"].take()).unwrap()
}

/// An HTTP/1.1 exchange on a fresh connection, bytes as given (no client
/// library normalises them): the status and the body.
fn exchange(port: u16, request: &[u8]) -> (u16, Vec<u8>) {
    use std::io::Read as _;
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream.write_all(request).unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).unwrap();
    let end = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {:?}", String::from_utf8_lossy(&answer)));
    let head = String::from_utf8_lossy(&answer[..end]).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head:?}"));
    (status, answer[end + 4..].to_vec())
}

/// A request to `target` with `headers` (each `Name: value`), as bytes.
fn raw_request(method: &str, target: &str, host: &str, headers: &[String]) -> Vec<u8> {
    let mut request =
        format!("{method} {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for header in headers {
        request.push_str(header);
        request.push_str("\r\n");
    }
    if method == "POST" {
        request.push_str("Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}");
    } else {
        request.push_str("\r\n");
    }
    request.into_bytes()
}

/// The ways a reasonable server could read the headers Baton decides on
/// from what the upstream received: the first copy, the last, each element
/// of a comma-joined value, trimmed, and an Mcp-Method compared without
/// case. Each reading is the set of headers with one choice changed.
fn readings(received: &[(String, String)]) -> Vec<Vec<(String, String)>> {
    let names = [
        "authorization",
        "mcp-method",
        "mcp-name",
        "mcp-protocol-version",
    ];
    let copies = |name: &str| -> Vec<String> {
        received
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
            .collect()
    };
    let first: Vec<(String, String)> = names
        .iter()
        .filter_map(|name| copies(name).first().map(|v| (name.to_string(), v.clone())))
        .collect();
    let mut all = vec![first.clone()];
    for name in names {
        let values = copies(name);
        let mut variants: Vec<String> = Vec::new();
        for value in values.first().into_iter().chain(values.last()) {
            variants.push(value.clone());
            variants.extend(value.split(',').map(|v| v.trim().to_owned()));
            if name == "mcp-method" {
                variants.push(value.to_ascii_lowercase());
            }
        }
        for variant in variants {
            let mut reading: Vec<(String, String)> =
                first.iter().filter(|(n, _)| n != name).cloned().collect();
            reading.push((name.to_owned(), variant));
            if !all.contains(&reading) {
                all.push(reading);
            }
        }
    }
    all
}

/// Runs the corpus through `gateway` (listening on `port`, in front of the
/// recorder that logs to `log`), then judges every request the upstream
/// served again, as the upstream read it, on Baton's own forward-auth in
/// the family `gateway` sends (`uri`, `method` headers).
fn differential(
    gateway: &str,
    port: u16,
    log: &Path,
    ledger: &Ledger,
    baton_http: u16,
    family: (&str, &str),
) {
    // The corpus's two tokens: one for its resource, one for the others.
    let tokens = (
        ledger.tokens["direct"].as_str(),
        ledger.tokens["elsewhere"].as_str(),
    );
    let served = || {
        std::fs::read_to_string(log)
            .map(|text| text.lines().count())
            .unwrap_or(0)
    };
    let mut rules = std::collections::BTreeSet::new();
    let (mut allowed, mut denied) = (0, 0);
    for case in corpus() {
        rules.insert(case.rule.clone());
        let expect = case
            .expect
            .get(gateway)
            .unwrap_or(&case.expect)
            .as_str()
            .unwrap()
            .to_owned();
        let headers: Vec<String> = case
            .headers
            .iter()
            .map(|h| {
                h.replace("{token}", tokens.0)
                    .replace("{token_b}", tokens.1)
            })
            .collect();
        let host = case.host.as_deref().unwrap_or(MCP_HOST);
        let before = served();
        let (status, body) = exchange(
            port,
            &raw_request(&case.method, &case.target, host, &headers),
        );
        let reached = served() - before;
        let what = format!(
            "{gateway}: {} ({}, rule {})",
            case.name, case.target, case.rule
        );
        if expect == "deny" {
            assert!(
                status != 200 && reached == 0,
                "{what}: expected a denial, got {status} and {reached} upstream requests: {}",
                String::from_utf8_lossy(&body)
            );
            denied += 1;
            continue;
        }
        assert!(
            status == 200 && reached == 1,
            "{what}: expected it served, got {status}: {}",
            String::from_utf8_lossy(&body)
        );
        allowed += 1;
        let seen: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let received: Vec<(String, String)> = seen["headers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| {
                (
                    h[0].as_str().unwrap().to_owned(),
                    h[1].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        // The upstream trusts Baton's headers: one copy each, Baton's.
        let subjects: Vec<&str> = received
            .iter()
            .filter(|(n, _)| n == "x-baton-subject")
            .map(|(_, v)| v.as_str())
            .collect();
        assert_eq!(subjects, [SUBJECT], "{what}: {received:?}");
        let path = seen["path"].as_str().unwrap();
        let method = seen["method"].as_str().unwrap();
        // The host the upstream was asked for, without the gateway's port.
        let hosts: Vec<&str> = received
            .iter()
            .filter(|(n, _)| n == "host")
            .map(|(_, v)| v.rsplit_once(':').map_or(v.as_str(), |(h, _)| h))
            .collect();
        assert_eq!(hosts.len(), 1, "{what}: {received:?}");
        for reading in readings(&received) {
            let mut headers = vec![
                "X-Forwarded-Proto: http".to_owned(),
                format!("X-Forwarded-Host: {}", hosts[0]),
                format!("{}: {}", family.0, baton_bridge::path::encode(path)),
                format!("{}: {method}", family.1),
            ];
            headers.extend(reading.iter().map(|(n, v)| format!("{n}: {v}")));
            let (again, answer) = exchange(
                baton_http,
                &raw_request("GET", "/authz", "127.0.0.1", &headers),
            );
            assert_eq!(
                again,
                200,
                "{what}: Baton allowed it, but judges the upstream's reading {path:?} {method} {reading:?} {again}: {}",
                String::from_utf8_lossy(&answer)
            );
        }
    }
    eprintln!("{gateway}: {allowed} served, {denied} denied, rules {rules:?}");
    assert!(allowed >= 5 && denied >= 20, "{allowed} {denied}");
}

/// A ledger whose node decides for `gateway`, the corpus's two resources
/// configured; its HTTP port.
fn differential_ledger(gateway: &str) -> (Ledger, u16) {
    let ledger = Ledger::start(&format!(
        "gateway = \"{gateway}\"\n\
         [[resource]]\nurl = \"{MCP_URL}\"\naudience = \"{AUDIENCE_A}\"\nscopes = [\"mcp:tools\"]\n\
         [[resource]]\nurl = \"{ADMIN_URL}\"\naudience = \"{AUDIENCE_B}\"\n\
         [[resource]]\nurl = \"{OTHER_URL}\"\naudience = \"{AUDIENCE_B}\"\n"
    ));
    let port = ledger
        .node
        .http_address
        .as_ref()
        .unwrap()
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    (ledger, port)
}

/// The recording upstream on a free port, logging to `log`.
fn recorder(log: &Path) -> (Running, u16) {
    let port = tools::free_port();
    let running = Running(
        python("recorder.py")
            .arg(port.to_string())
            .arg(log)
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    tools::wait_for_port(port, Duration::from_secs(60)).unwrap();
    (running, port)
}

#[test]
fn the_gateway_decision_is_the_request_nginx_serves() {
    let (ledger, baton_http) = differential_ledger("nginx");
    let log = ledger.path("upstream.log");
    let (_upstream, upstream) = recorder(&log);
    let (_nginx, listen) = start_nginx(&ledger, MCP_HOST, upstream);
    differential(
        "nginx",
        listen,
        &log,
        &ledger,
        baton_http,
        ("X-Original-URI", "X-Original-Method"),
    );
    ledger.assert_no_token_logged();
}

#[test]
fn the_gateway_decision_is_the_request_caddy_serves() {
    let caddy = tools::caddy().unwrap();
    let (ledger, baton_http) = differential_ledger("caddy");
    let log = ledger.path("upstream.log");
    let (_upstream, upstream) = recorder(&log);
    let listen = tools::free_port();
    let caddy_dir = ledger.path("caddy");
    std::fs::create_dir_all(&caddy_dir).unwrap();
    let snippet = baton_testkit::readme_snippet("caddy");
    for part in [
        "127.0.0.1:8000",
        "127.0.0.1:7701",
        "http://mcp-a.example:8080",
        ":8080 {",
    ] {
        assert!(snippet.contains(part), "{part}");
    }
    let sites = snippet
        .replace("127.0.0.1:8000", &format!("127.0.0.1:{upstream}"))
        .replace("127.0.0.1:7701", &format!("127.0.0.1:{baton_http}"))
        .replace("mcp-a.example:8080", &format!("{MCP_HOST}:{listen}"))
        .replace(":8080 {", &format!("http://:{listen} {{"));
    let caddyfile = caddy_dir.join("Caddyfile");
    std::fs::write(
        &caddyfile,
        format!(
            "{{\n\tadmin off\n\tauto_https off\n\tpersist_config off\n\tdefault_bind 127.0.0.1\n}}\n{sites}"
        ),
    )
    .unwrap();
    let _caddy = Running(
        Command::new(caddy)
            .args(["run", "--adapter", "caddyfile", "--config"])
            .arg(&caddyfile)
            .env("XDG_DATA_HOME", &caddy_dir)
            .env("XDG_CONFIG_HOME", &caddy_dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    tools::wait_for_port(listen, Duration::from_secs(30)).unwrap();
    differential(
        "caddy",
        listen,
        &log,
        &ledger,
        baton_http,
        ("X-Forwarded-Uri", "X-Forwarded-Method"),
    );
    ledger.assert_no_token_logged();
}

#[test]
fn the_gateway_decision_is_the_request_traefik_serves() {
    let traefik = tools::traefik().unwrap();
    let (ledger, baton_http) = differential_ledger("traefik");
    let log = ledger.path("upstream.log");
    let (_upstream, upstream) = recorder(&log);
    let listen = tools::free_port();
    let dir = ledger.path("traefik");
    std::fs::create_dir_all(&dir).unwrap();
    let snippet = baton_testkit::readme_snippet("traefik");
    for part in [
        "127.0.0.1:8000",
        "http://127.0.0.1:7701",
        "Host(`mcp-a.example`)",
    ] {
        assert!(snippet.contains(part), "{part}");
    }
    let dynamic = dir.join("dynamic.yml");
    std::fs::write(
        &dynamic,
        snippet
            .replace("127.0.0.1:8000", &format!("127.0.0.1:{upstream}"))
            .replace("http://127.0.0.1:7701", &ledger.http_url())
            .replace("mcp-a.example", MCP_HOST),
    )
    .unwrap();
    let config = dir.join("traefik.yml");
    std::fs::write(
        &config,
        format!(
            "entryPoints:\n  web:\n    address: \"127.0.0.1:{listen}\"\n\
             providers:\n  file:\n    filename: \"{}\"\n\
             log:\n  level: ERROR\n\
             global:\n  checkNewVersion: false\n  sendAnonymousUsage: false\n",
            dynamic.display()
        ),
    )
    .unwrap();
    let _traefik = Running(
        Command::new(traefik)
            .arg(format!("--configfile={}", config.display()))
            .current_dir(&dir)
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    tools::wait_for_port(listen, Duration::from_secs(30)).unwrap();
    // The entry point listens before the file provider's routers are in
    // place: wait until the fronted host is routed (401: Baton was asked).
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (status, _) = exchange(listen, &raw_request("GET", "/mcp", MCP_HOST, &[]));
        if status == 401 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "traefik never routed {MCP_HOST}: {status}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    differential(
        "traefik",
        listen,
        &log,
        &ledger,
        baton_http,
        ("X-Forwarded-Uri", "X-Forwarded-Method"),
    );
    ledger.assert_no_token_logged();
}

/// Each bridge's decisions are counted by route and decision
/// (`baton_bridge_decisions_total`): forward-auth and ext_authz allow a live
/// token and deny a revoked one, RFC 7662 answers active and inactive,
/// RFC 7009 revokes and then finds nothing to change, and a refusal before
/// any decision (no credentials) is counted as a request only.
#[test]
fn the_bridges_count_their_decisions_by_route() {
    let dir = tempfile::tempdir().unwrap();
    let secret_file = dir.path().join("mcp-a.secret");
    let hash = cli(None, &["secret", "new"], std::slice::from_ref(&secret_file));
    let revoker_file = dir.path().join("gateway-admin.secret");
    let revoker_hash = cli(
        None,
        &["secret", "new"],
        std::slice::from_ref(&revoker_file),
    );
    let mut ledger = Ledger::start(&format!(
        r#"metrics_listen = "127.0.0.1:0"
[rules]
revocation_delegates = ["baton-node"]
[revocation]
client_id = "baton-node"
key_file = "{{dir}}/node.key"
[[resource]]
url = "http://127.0.0.1/mcp"
audience = "{AUDIENCE_A}"
scopes = ["mcp:tools"]
[[access]]
principal = "mcp-a"
roles = ["checker"]
audiences = ["{AUDIENCE_A}"]
secret_hash = "{}"
[[access]]
principal = "gateway-admin"
roles = ["writer"]
client_id = "gateway"
secret_hash = "{}"
"#,
        hash.trim(),
        revoker_hash.trim()
    ));
    let secret = std::fs::read_to_string(&secret_file).unwrap();
    let revoker = std::fs::read_to_string(&revoker_file).unwrap();
    ledger
        .secrets
        .push(("mcp-a".into(), secret.trim().to_owned()));
    ledger
        .secrets
        .push(("gateway-admin".into(), revoker.trim().to_owned()));
    let metrics = ledger.node.metrics_address.clone().unwrap();
    let http = ledger.http_url();
    let before = common::scrape(&metrics);

    // curl's status code for one request.
    let curl = |args: &[&str]| {
        let out = Command::new("curl")
            .args(["-s", "-o", "/dev/null", "-w", "%{http_code}"])
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let forward_auth = |token: &str| {
        curl(&[
            "-H",
            "X-Forwarded-Proto: http",
            "-H",
            "X-Forwarded-Host: 127.0.0.1",
            "-H",
            "X-Original-URI: /mcp",
            "-H",
            "X-Original-Method: GET",
            "-H",
            &format!("Authorization: Bearer {token}"),
            &format!("{http}/authz"),
        ])
    };
    assert_eq!(forward_auth(&ledger.tokens["live"]), "200");
    assert_eq!(forward_auth(&ledger.tokens["revoked"]), "401");
    // A gateway that does not say which host was asked: its configuration
    // (500, `error`).
    assert_eq!(
        curl(&[
            "-H",
            "X-Forwarded-Proto: http",
            "-H",
            "X-Original-URI: /mcp",
            "-H",
            "X-Original-Method: GET",
            &format!("{http}/authz"),
        ]),
        "500"
    );
    let introspect = |token: &str, user: &str| {
        curl(&[
            "-u",
            user,
            "-d",
            &format!("token={token}"),
            &format!("{http}/oauth2/introspect"),
        ])
    };
    let basic = format!("mcp-a:{}", secret.trim());
    assert_eq!(introspect(&ledger.tokens["live"], &basic), "200");
    assert_eq!(introspect(&ledger.tokens["revoked"], &basic), "200");
    assert_eq!(introspect(&ledger.tokens["live"], "mcp-a:wrong"), "401");
    // RFC 7009: a live token revoked, then again (unchanged).
    let revoke = || {
        curl(&[
            "-u",
            &format!("gateway-admin:{}", revoker.trim()),
            "-d",
            &format!("token={}", ledger.tokens["spare"]),
            &format!("{http}/oauth2/revoke"),
        ])
    };
    assert_eq!(revoke(), "200");
    assert_eq!(revoke(), "200");
    // ext_authz, from Envoy's published protos: the live token, then the
    // revoked one.
    let ext_authz = Command::new(tools::interop_python().unwrap())
        .arg("-c")
        .arg(
            r#"
import sys, grpc
from envoy.service.auth.v3 import attribute_context_pb2 as ac, external_auth_pb2 as ea, external_auth_pb2_grpc as ea_grpc
with grpc.insecure_channel(sys.argv[1]) as channel:
    stub = ea_grpc.AuthorizationStub(channel)
    for token in sys.argv[2:]:
        http = ac.AttributeContext.HttpRequest(method="GET", scheme="http", host="127.0.0.1", path="/mcp",
                                               headers={"authorization": "Bearer " + token})
        r = stub.Check(ea.CheckRequest(attributes=ac.AttributeContext(request=ac.AttributeContext.Request(http=http))), timeout=30)
        print(r.WhichOneof("http_response"))
"#,
        )
        .arg(&ledger.node.address)
        .arg(&ledger.tokens["live"])
        .arg(&ledger.tokens["revoked"])
        .output()
        .unwrap();
    assert!(ext_authz.status.success(), "{ext_authz:?}");
    assert_eq!(
        String::from_utf8_lossy(&ext_authz.stdout),
        "ok_response\ndenied_response\n"
    );

    let after = common::scrape(&metrics);
    let decided = |route: &str, decision: &str| {
        common::moved(
            &before,
            &after,
            "baton_bridge_decisions_total",
            &[("route", route), ("decision", decision)],
        )
    };
    for route in ["/authz", "/envoy.service.auth.v3.Authorization/Check"] {
        assert_eq!(decided(route, "allow"), 1.0, "{route}");
        assert_eq!(decided(route, "deny"), 1.0, "{route}");
        assert_eq!(decided(route, "unavailable"), 0.0, "{route}");
    }
    assert_eq!(decided("/authz", "error"), 1.0);
    assert_eq!(decided("/oauth2/introspect", "active"), 1.0);
    assert_eq!(decided("/oauth2/introspect", "inactive"), 1.0);
    assert_eq!(decided("/oauth2/revoke", "revoked"), 1.0);
    assert_eq!(decided("/oauth2/revoke", "unchanged"), 1.0);
    // Every family this node declares (it has served each bridge) is one
    // the dashboard's check knows, and so is on a panel; and the check
    // lists nothing the node does not declare.
    let exposition = dir.path().join("metrics.txt");
    std::fs::write(&exposition, common::metrics_text(&metrics)).unwrap();
    let root = baton_testkit::repo_root();
    let checked = Command::new(tools::interop_python().unwrap())
        .arg(root.join("deploy/check/dashboard.py"))
        .arg(root.join("deploy/grafana/baton.json"))
        .arg("--scrape")
        .arg(&exposition)
        .output()
        .unwrap();
    assert!(
        checked.status.success(),
        "{}",
        String::from_utf8_lossy(&checked.stdout)
    );
    // The refused caller: a request answered 401, no decision.
    assert_eq!(
        common::moved(
            &before,
            &after,
            "baton_http_requests_total",
            &[("route", "/oauth2/introspect"), ("code", "401")]
        ),
        1.0
    );
    ledger.assert_no_token_logged();
}
