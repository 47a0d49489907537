//! Links this Lambda function as a non-PIE executable. Loaded at a fixed address, its tens of
//! thousands of relative relocations (vtables, string tables, the SDK's static data) need no
//! fixing up by the dynamic loader at each cold start, nor the copy-on-write page faults that
//! costs: api-health's init went from about 2.1 to 1.4 times a hello-world function's. Only the
//! final link changes; every object stays position-independent code. The address randomisation
//! given up is weighed in the start-up decision (docs/).

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    // GNU ld, lld and zig cc (cargo-lambda's cross-linker) alike: the last of rustc's `-pie` and
    // this `-no-pie` wins.
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo::rustc-link-arg-bins=-no-pie");
    }
}
