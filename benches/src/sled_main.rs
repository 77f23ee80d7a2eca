//! `baton-bench-sled`: what sled charges per entry. See
//! `baton_benches::sled_entries`.

// The same allocator as the `baton` binary.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    baton_benches::sled_entries::main()
}
