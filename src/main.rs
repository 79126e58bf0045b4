//! The `tocsin` binary.

fn main() {
    tocsin::cli::main()
}
