//! The `tocsin` binary.

fn main() -> std::process::ExitCode {
    tocsin::cli::main()
}
