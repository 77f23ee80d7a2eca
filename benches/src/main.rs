//! `baton-bench`: the load generator. See `baton_benches::load`.

// The same allocator as the `baton` binary, so the replay it measures is the node's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(baton_benches::load::main())
}
