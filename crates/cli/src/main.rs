//! The `baton` binary. Parsing, configuration and dispatch live in the library.

// mimalloc rather than the system allocator: the node allocates on every
// check and every applied event (see docs/benchmarks.md for the difference).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    baton::main()
}
