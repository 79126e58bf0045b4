//! Rebuild when a migration is added: `embed_migrations!` cannot tell Cargo
//! about new directories by itself.

fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
