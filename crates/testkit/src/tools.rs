//! Stock tools the interop tests run: grpcurl, and a Python venv with grpcio
//! and friends. Installed once into the cache `tests/run.sh` also uses
//! (`$BATON_CACHE`, default `~/.cache/baton`), from the Go module proxy and
//! PyPI, at pinned versions.

use std::path::PathBuf;
use std::process::Command;

const GRPCURL: &str = "github.com/fullstorydev/grpcurl/cmd/grpcurl@v1.9.4";
/// Caddy, a gateway in front of the bridge tests (`forward_auth`); the same
/// pin as `tests/run.sh`.
const CADDY: &str = "github.com/caddyserver/caddy/v2/cmd/caddy@v2.11.9";

pub fn cache_dir() -> PathBuf {
    match std::env::var_os("BATON_CACHE") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| ".".into()))
            .join(".cache/baton"),
    }
}

fn run(command: &mut Command) -> Result<(), String> {
    let status = command.status().map_err(|e| format!("{command:?}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{command:?} failed with {status}"))
    }
}

/// The grpcurl binary, installed with `go install` if it is not cached yet.
pub fn grpcurl() -> Result<PathBuf, String> {
    go_tool("grpcurl", GRPCURL)
}

/// The Caddy binary, installed with `go install` if it is not cached yet
/// (`tests/run.sh` installs it first, so tests do not build it in parallel).
pub fn caddy() -> Result<PathBuf, String> {
    go_tool("caddy", CADDY)
}

/// The Traefik binary, built by `tests/install-traefik.sh` (the one pin) if
/// it is not cached yet (`tests/run.sh` builds it first, so tests do not
/// build it in parallel).
pub fn traefik() -> Result<PathBuf, String> {
    static INSTALLING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one_at_a_time = INSTALLING.lock().unwrap_or_else(|e| e.into_inner());
    let bin = cache_dir().join("bin");
    let path = bin.join("traefik");
    if !path.exists() {
        run(Command::new(crate::repo_root().join("tests/install-traefik.sh")).arg(&bin))?;
    }
    Ok(path)
}

/// The cached binary `name`, `go install`ed from `module` if missing; one
/// install at a time in a test process.
fn go_tool(name: &str, module: &str) -> Result<PathBuf, String> {
    static INSTALLING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one_at_a_time = INSTALLING.lock().unwrap_or_else(|e| e.into_inner());
    let bin = cache_dir().join("bin");
    let path = bin.join(name);
    if !path.exists() {
        std::fs::create_dir_all(&bin).map_err(|e| e.to_string())?;
        run(Command::new("go")
            .args(["install", module])
            .env("GOBIN", &bin))?;
    }
    Ok(path)
}

/// The Python of the interop venv, created from `tests/interop/requirements.txt`
/// if it is not cached yet (or the requirements changed).
pub fn interop_python() -> Result<PathBuf, String> {
    // The tests of one binary run on threads: one of them (re)builds the
    // venv while the others wait, rather than each deleting it under the
    // others' feet.
    static BUILDING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one_at_a_time = BUILDING.lock().unwrap_or_else(|e| e.into_inner());
    let venv = cache_dir().join("venv-interop");
    let python = venv.join("bin/python");
    let requirements = crate::repo_root().join("tests/interop/requirements.txt");
    let wanted = std::fs::read_to_string(&requirements).map_err(|e| e.to_string())?;
    let stamp = venv.join(".requirements");
    if python.exists() && std::fs::read_to_string(&stamp).ok().as_deref() == Some(wanted.as_str()) {
        return Ok(python);
    }
    let _ = std::fs::remove_dir_all(&venv);
    run(Command::new("python3").args(["-m", "venv"]).arg(&venv))?;
    pip_install(&python, &["-r".as_ref(), requirements.as_os_str()])?;
    std::fs::write(&stamp, wanted).map_err(|e| e.to_string())?;
    Ok(python)
}

/// `python -m pip install --quiet ARGS`.
fn pip_install(python: &std::path::Path, args: &[&std::ffi::OsStr]) -> Result<(), String> {
    run(Command::new(python)
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
        ])
        .args(args))
}

/// The interop venv's Python with the repository's Python SDK
/// (`crates/client-python`) installed from this checkout by pip, once per
/// test process (so it is always the code under test).
pub fn sdk_python() -> Result<PathBuf, String> {
    static INSTALLED: std::sync::Mutex<bool> = std::sync::Mutex::new(false);
    let python = interop_python()?;
    let mut installed = INSTALLED.lock().unwrap_or_else(|e| e.into_inner());
    if !*installed {
        let package = crate::repo_root().join("crates/client-python");
        let args = ["--no-deps", "--no-build-isolation", "--force-reinstall"];
        let mut all: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_ref()).collect();
        all.push(package.as_os_str());
        pip_install(&python, &all)?;
        *installed = true;
    }
    Ok(python)
}

/// Debian's nginx (package `nginx-light`, which has `auth_request`),
/// installed with apt-get when it is missing and this runs as root.
pub fn nginx() -> Result<PathBuf, String> {
    let installed = PathBuf::from("/usr/sbin/nginx");
    if !installed.exists() {
        let root = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|out| out.stdout.trim_ascii() == b"0");
        if !root {
            return Err("nginx is required: apt-get install nginx-light".into());
        }
        run(Command::new("apt-get").args(["install", "-y", "-q", "nginx-light"]))?;
    }
    Ok(installed)
}

/// A loopback port nothing listens on now (for servers that cannot be told
/// to pick their own and report it).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("binding 127.0.0.1:0")
}

/// Waits until something accepts connections on `port` (at most `within`).
pub fn wait_for_port(port: u16, within: std::time::Duration) -> Result<(), String> {
    let deadline = std::time::Instant::now() + within;
    loop {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        if std::time::Instant::now() > deadline {
            return Err(format!(
                "nothing listens on 127.0.0.1:{port} after {within:?}"
            ));
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
