//! `baton-bench`: the load generator. See `baton_benches::load`.

// The same allocator as the `baton` binary, so the replay it measures is the node's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    baton_benches::run(baton_benches::load::main())
}
