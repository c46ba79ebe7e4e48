//! What the Cranelift side reports to the C side: `clif_record(what, lo, hi)`.
//!
//! Cranelift code cannot print, so whatever it received (arguments in a callee, results in a
//! caller) it hands to a C function with a fixed, simple signature; the C side then checks the
//! records against the expected values. `what` packs the kind of record, the parameter or result
//! index, and the word of a struct.

/// An argument as the callee saw it, zero-extended to 64 bits (`i128`: both halves).
pub const PARAM: u32 = 1;
/// A narrow argument with `uext`/`sext`, extended to 64 bits by the callee's own code.
pub const PARAM_EXT64: u32 = 2;
/// One 8-byte word of a `sarg` struct as the callee saw it.
pub const WORD: u32 = 3;
/// A result as the caller saw it.
pub const RET: u32 = 4;
/// A narrow result with `uext`/`sext`, extended to 64 bits by the caller's own code.
pub const RET_EXT64: u32 = 5;
/// Word 0 of the caller's own `sarg` struct after the call (the callee wrote to its copy).
pub const CALLER_COPY: u32 = 6;

/// The name of the C function the Cranelift side calls.
pub const RECORD_FN: &str = "clif_record";

pub fn what(kind: u32, index: usize, word: usize) -> u32 {
    debug_assert!(index < 4096 && word < 4096);
    kind << 24 | (index as u32) << 12 | word as u32
}
