//! Builds the one piece of C in the library: the guarded call of the persistent JIT runner
//! (`src/engine/guard.c`), which needs `sigsetjmp`.

fn main() {
    println!("cargo::rerun-if-changed=src/engine/guard.c");
    cc::Build::new()
        .file("src/engine/guard.c")
        .warnings(true)
        .compile("clif_diff_guard");
}
