//! The `baton` binary. Parsing, configuration and dispatch live in the library.

fn main() -> std::process::ExitCode {
    baton::main()
}
