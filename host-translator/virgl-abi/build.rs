//! Gives the shared library the soname QEMU links against.

fn main() {
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libvirglrenderer.so.1");
    println!("cargo:rerun-if-changed=build.rs");
}
