//! Generates the `baton.v1` messages and services from `proto/` with protox, a
//! pure-Rust protobuf compiler, so a fresh machine builds with cargo alone.

use std::path::PathBuf;

use prost::Message as _;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    let dir = root.join("baton/v1");
    let mut files: Vec<String> = std::fs::read_dir(&dir)?
        .filter_map(|entry| entry.ok())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".proto"))
        .map(|name| format!("baton/v1/{name}"))
        .collect();
    files.sort();
    println!("cargo:rerun-if-changed={}", dir.display());
    let descriptors = protox::compile(&files, [&root])?;
    // The encoded descriptor set serves gRPC server reflection.
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out.join("baton_descriptor.bin"),
        descriptors.encode_to_vec(),
    )?;
    let service_count: usize = descriptors.file.iter().map(|f| f.service.len()).sum();
    tonic_prost_build::configure().compile_fds(descriptors)?;
    // The services (tonic clients and servers) only with the `grpc`
    // feature: the messages alone need prost only, so a crate that keeps
    // the wire out (the projector, the node) can use them without tonic.
    let generated = out.join("baton.v1.rs");
    let text = std::fs::read_to_string(&generated)?;
    let mut gated = String::with_capacity(text.len() + 512);
    let mut services = 0;
    for line in text.split_inclusive('\n') {
        let service = line.starts_with("pub mod ")
            && (line.contains("_client {") || line.contains("_server {"));
        if service {
            gated.push_str("#[cfg(feature = \"grpc\")]\n");
            services += 1;
        }
        gated.push_str(line);
    }
    // A client and a server module per service, and nothing else gated.
    let expected: usize = 2 * service_count;
    if services != expected {
        return Err(format!(
            "gated {services} modules behind the grpc feature, expected {expected} (a client and a server per service)"
        )
        .into());
    }
    std::fs::write(&generated, gated)?;
    Ok(())
}
