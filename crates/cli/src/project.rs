//! `baton project`: a projector on its own, under a node's own configuration
//! (its rules, delegates and federation, its Kafka with TLS and SASL), for
//! operations (rebuilding a node's projection while it is stopped) and for
//! the crash tests, which kill it mid-stream.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::time::Duration;

use anyhow::Context as _;
use baton_log::EventLog;
use baton_projector::{OtherRules, Projector, ProjectorOptions};

use crate::config::{Config, Flags};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The node's own settings (--config FILE, --data-dir, --trust-root,
    /// --kafka-*; `BATON_*` variables), read as `baton serve` reads them;
    /// its listeners are not opened.
    #[command(flatten)]
    node: Box<Flags>,
    /// Drop a projection in the data directory that was built by another
    /// layout or under other rules, and rebuild it from the log. Without
    /// it such a projection is refused, untouched.
    #[arg(long)]
    rebuild: bool,
    /// Print a JSON progress line to stdout this often (milliseconds; 0:
    /// never) [default: 0].
    #[arg(long, default_value_t = 0)]
    progress_ms: u64,
}

pub async fn run(args: Args, env: &BTreeMap<String, String>) -> anyhow::Result<()> {
    let config = Config::load(&args.node, env)?;
    let options = ProjectorOptions {
        other_rules: if args.rebuild {
            OtherRules::Rebuild
        } else {
            OtherRules::Refuse
        },
        ..baton_server::projector_options(config.policy()?, &config.limits())
    };
    let projecting = Projecting {
        dir: config.data_dir.join("projection"),
        options,
        progress_ms: args.progress_ms,
    };
    crate::eventlog::open_log(&config, projecting).await
}

/// Applies the log to the projection in `dir` until SIGTERM or Ctrl-C.
struct Projecting {
    dir: std::path::PathBuf,
    options: ProjectorOptions,
    progress_ms: u64,
}

impl crate::eventlog::OnLog for Projecting {
    type Output = ();

    async fn run<L: EventLog>(self, log: L, described: String) -> anyhow::Result<()> {
        let projector = Projector::open(log, &self.dir, self.options)
            .with_context(|| format!("projection in {}", self.dir.display()))?;
        tracing::info!(log = %described, dir = %self.dir.display(), "projecting");
        let handle = projector.handle();
        if self.progress_ms > 0 {
            let every = Duration::from_millis(self.progress_ms);
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(every);
                loop {
                    tick.tick().await;
                    let count = |name| handle.counter(name).unwrap_or(0);
                    let line = format!(
                        "{{\"applied\":{},\"duplicates\":{},\"quarantined\":{},\"offsets\":{:?}}}\n",
                        count("applied"),
                        count("duplicates"),
                        count("quarantined"),
                        handle.applied()
                    );
                    // Nobody reading any more (a pipe closed): projecting
                    // goes on, silently.
                    let mut out = std::io::stdout().lock();
                    if out
                        .write_all(line.as_bytes())
                        .and_then(|()| out.flush())
                        .is_err()
                    {
                        return;
                    }
                }
            });
        }
        projector.run(crate::shutdown_signal()).await?;
        Ok(())
    }
}
