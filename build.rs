//! Rebuild when a migration is added: `embed_migrations!` cannot tell Cargo
//! about new directories by itself.
//!
//! Link the binaries with packed relative relocations (DT_RELR) where the C
//! library can load them (glibc 2.36 or later; rust-lld, the default linker,
//! and GNU ld 2.38 or later know the flag):
//! the relocation table of the PIE executable shrinks from ~2 MB to a few
//! kB, and the dynamic loader no longer reads 2 MB of it into memory at
//! every start (docs/performance.md, footprint). Older systems and cross
//! builds link as before.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=migrations");
    println!("cargo:rerun-if-env-changed=TOCSIN_NO_RELR");
    if std::env::var_os("TOCSIN_NO_RELR").is_none() && glibc_has_relr() {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}

/// True when building for the machine itself on Linux with glibc 2.36+.
fn glibc_has_relr() -> bool {
    let var = |name: &str| std::env::var(name).unwrap_or_default();
    if var("CARGO_CFG_TARGET_OS") != "linux"
        || var("CARGO_CFG_TARGET_ENV") != "gnu"
        || var("TARGET") != var("HOST")
    {
        return false;
    }
    // "glibc 2.36"
    let Ok(out) = Command::new("getconf").arg("GNU_LIBC_VERSION").output() else {
        return false;
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let mut version = text
        .trim()
        .strip_prefix("glibc ")
        .unwrap_or("")
        .split('.')
        .map(|part| part.parse::<u32>().unwrap_or(0));
    let (major, minor) = (version.next().unwrap_or(0), version.next().unwrap_or(0));
    (major, minor) >= (2, 36)
}
