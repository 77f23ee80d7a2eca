//! `baton serve` as a child process on a free loopback port, stopped with
//! SIGTERM (and checked to exit cleanly) when the test is done with it.

#![allow(clippy::unwrap_used, dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn baton() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_baton"));
    command.env("BATON_LOG", "warn").env_remove("BATON_SERVER");
    command
}

pub struct Served {
    child: Option<Child>,
    pub address: String,
}

impl Served {
    /// Starts `baton serve` with `args` and waits for its listening line.
    pub fn start(data: &Path, trust_root: &str, args: &[&str]) -> Served {
        let mut child = baton()
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--trust-root",
                trust_root,
                "--data-dir",
            ])
            .arg(data)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        // From here on, a failure drops `served`, which kills and reaps the child.
        let mut served = Served {
            child: Some(child),
            address: String::new(),
        };
        let (send, receive) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = send.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline
                .checked_duration_since(Instant::now())
                .expect("baton serve did not announce its address");
            let line = receive
                .recv_timeout(left)
                .expect("baton serve exited before listening");
            if let Some(rest) = line.strip_prefix("baton listening on ") {
                served.address = rest.split_whitespace().next().unwrap().to_owned();
                return served;
            }
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// SIGKILL: the node dies wherever it is.
    pub fn kill(mut self) {
        let mut child = self.child.take().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
    }

    /// SIGTERM, and the node must exit cleanly.
    pub fn stop(mut self) {
        let mut child = self.child.take().unwrap();
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let exit = child.wait().unwrap();
        assert!(exit.success(), "baton serve exited with {exit} on SIGTERM");
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
