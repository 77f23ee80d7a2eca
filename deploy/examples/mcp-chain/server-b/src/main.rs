//! MCP server B of the mcp-chain example: a Rust MCP server (rmcp's
//! streamable HTTP service on axum) behind Baton's tower layer. It does no
//! token handling of its own: the layer checks every request's bearer token
//! against a Watch-fed cache, answers 401/403 as the MCP authorization spec
//! asks, and hands the tool the token's subject and chain.
//!
//! usage: mcp-chain-server-b --listen 127.0.0.1:0 --baton http://NODE
//!        --url http://127.0.0.1:PORT/mcp --audience https://server-b.example/mcp

use std::sync::Arc;

use anyhow::Context as _;
use baton_client::{Authorized, BatonLayer, Checker, CheckerConfig, Endpoint, Resource};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, ListToolsResult,
    PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData, RoleServer, ServerHandler};

#[derive(Debug, Clone)]
struct ServerB;

impl ServerHandler for ServerB {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
    }

    async fn list_tools(
        &self,
        _: Option<PaginatedRequestParams>,
        _: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let schema = serde_json::json!({
            "type": "object",
            "properties": {"topic": {"type": "string"}},
            "required": ["topic"],
        });
        let serde_json::Value::Object(schema) = schema else {
            unreachable!("an object")
        };
        Ok(ListToolsResult::with_all_items(vec![Tool::new(
            "lookup",
            "Looks a topic up, and says for whom and through which chain",
            Arc::new(schema),
        )]))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        if request.name != "lookup" {
            return Err(ErrorData::invalid_params("no such tool", None));
        }
        let topic = request
            .arguments
            .as_ref()
            .and_then(|a| a.get("topic"))
            .and_then(|t| t.as_str())
            .unwrap_or("");
        // What Baton's layer learned of the caller's token.
        let authorized = context
            .extensions
            .get::<http::request::Parts>()
            .and_then(|parts| parts.extensions.get::<Authorized>())
            .and_then(Authorized::details)
            .ok_or_else(|| ErrorData::internal_error("no Baton authorization", None))?;
        let chain: Vec<&str> = authorized
            .chain
            .iter()
            .map(|link| link.holder.as_str())
            .collect();
        let text = format!(
            "B looked up {topic:?} for {} via {}",
            authorized.subject,
            chain.join(" > ")
        );
        Ok(CallToolResult::success(vec![ContentBlock::text(text)]).into())
    }
}

fn arg(args: &[String], name: &str) -> anyhow::Result<String> {
    args.windows(2)
        .find(|pair| pair[0] == name)
        .map(|pair| pair[1].clone())
        .with_context(|| format!("{name} is required"))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let listener = tokio::net::TcpListener::bind(arg(&args, "--listen")?).await?;
    let (baton_url, url, audience) = (
        arg(&args, "--baton")?,
        arg(&args, "--url")?,
        arg(&args, "--audience")?,
    );

    // Use Baton from a Rust MCP server: a Watch-fed checker, and the layer.
    let baton = Endpoint::new(baton_url).connect_lazy()?;
    let checker = Checker::start(baton, CheckerConfig::default()).await?;
    let resource = Resource::new(&url, &audience).map_err(anyhow::Error::msg)?;
    let mcp = StreamableHttpService::new(
        || Ok(ServerB),
        Arc::new(LocalSessionManager::default()),
        StreamableHttpServerConfig::default(),
    );
    let app = axum::Router::new()
        .nest_service("/mcp", mcp)
        .layer(BatonLayer::new(checker, resource));
    // (end of the README snippet)

    println!("server-b listening on {url}");
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
