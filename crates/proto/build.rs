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
    tonic_prost_build::configure().compile_fds(descriptors)?;
    Ok(())
}
