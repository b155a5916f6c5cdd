//! Link settings that make the add-in self-contained on the machines 1C runs on.

fn main() {
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if os == "windows" && env == "gnu" {
        // A 1C server has no MinGW runtime DLLs: link libgcc (unwinding) into the DLL itself.
        println!("cargo:rustc-link-arg=-static-libgcc");
        println!("cargo:rustc-link-arg=-Wl,-Bstatic");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
