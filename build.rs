//! Links the unwinder the rest of the process uses, glibc's `libgcc_s`, where zig links the
//! extension (maturin's `--zig`, how the manylinux2014 wheel is built).
//!
//! zig puts its own unwinder in `libgcc_s`'s place, statically: it then serves our frames, and
//! cannot read the state of glibc's `pthread_exit`, which unwinds with `libgcc_s`. CPython before
//! 3.14 ends a daemon thread at exit that way, and the process crashed as soon as the unwind
//! reached a Rust frame (SIGSEGV; `exit_gate.rs` keeps our threads from being unwound, and needs
//! this for a thread caught in Python code called from Rust). Named as a file, `libgcc_s` is
//! linked as a shared library, and zig's copy is not pulled in.

use std::env;
use std::path::Path;

fn main() {
    println!("cargo:rerun-if-env-changed=RUSTC_LINKER");
    let zig = env::var("RUSTC_LINKER").is_ok_and(|linker| linker.contains("zig"));
    let gnu = env::var("CARGO_CFG_TARGET_ENV").is_ok_and(|target| target == "gnu");
    if !(zig && gnu) {
        return;
    }
    let arch = env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let multiarch = [
        format!("/lib/{arch}-linux-gnu"),
        format!("/usr/lib/{arch}-linux-gnu"),
    ];
    let found = multiarch
        .iter()
        .map(String::as_str)
        .chain(["/lib64", "/usr/lib64"])
        .map(|dir| Path::new(dir).join("libgcc_s.so.1"))
        .find(|path| path.is_file());
    // Better no wheel than one that crashes at exit.
    let path = found.unwrap_or_else(|| {
        panic!("libgcc_s.so.1 for {arch} not found: linked by zig alone, the extension can crash at exit")
    });
    println!("cargo:rustc-link-arg-cdylib={}", path.display());
}
