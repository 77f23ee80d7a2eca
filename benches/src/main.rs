//! `baton-bench`: the load generator. See `baton_benches::load`.

fn main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(baton_benches::load::main())
}
