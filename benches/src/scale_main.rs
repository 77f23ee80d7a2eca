//! `baton-bench-scale`: how a node's costs grow with the ledger. See
//! `baton_benches::scale`.

// The same allocator as the `baton` binary, so the replay it measures is the node's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    baton_benches::run(baton_benches::scale::main())
}
