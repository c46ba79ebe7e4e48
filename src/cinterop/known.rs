//! Known divergences between Cranelift and C, recognised by signature shape.
//!
//! The C side reports *which* value differs, which is a symptom; the cause is a rule of the ABI
//! that one side applies differently, visible in the signature. A mismatch on a signature of a
//! known shape gets the cause's bucket (listed in `corpus/known-bugs.toml`), so thousands of
//! random signatures separate new findings from the one already understood.

use super::sig::{AbiSig, Param, Scalar};
use crate::target::Arch;

/// `i128-leftover-gpr`: an `i128` argument meets exactly one free integer register.
///
/// The x86-64 psABI then passes the whole `i128` on the stack *and leaves that register to the
/// following arguments*; GCC does, and LLVM does since llvm-project#124134 (LLVM 20).
/// Cranelift 0.135.8 (`x64/abi.rs`, "unconditionally increment next_gpr") skips the register,
/// as LLVM did before, so every later integer argument is read from the wrong place.
pub fn i128_leftover_gpr(sig: &AbiSig) -> bool {
    const GPRS: usize = 6;
    let mut used = 0;
    for (i, p) in sig.params.iter().enumerate() {
        let Param::Scalar(s, _) = p else { continue };
        match s {
            Scalar::F32 | Scalar::F64 => {}
            Scalar::I128 if used + 2 <= GPRS => used += 2,
            Scalar::I128 if used + 1 == GPRS => {
                let later_int = sig.params[i + 1..].iter().any(
                    |q| matches!(q, Param::Scalar(t, _) if !t.is_float() && *t != Scalar::I128),
                );
                if later_int {
                    return true;
                }
                used = GPRS;
            }
            Scalar::I128 => {}
            _ => used += 1,
        }
    }
    false
}

/// `aarch64-i128-ngrn`: an `i128` argument meets exactly one free integer register (x7).
///
/// AAPCS64 rounds the next register number up to even (C.8), finds no pair free, passes the
/// `i128` on the stack and sets the next register number to 8 (C.11): every later integer
/// argument goes on the stack too. GCC and LLVM do so. Cranelift 0.135.8 (`aarch64/abi.rs`)
/// only rounds when a pair is free and never sets it to 8, so the next integer argument goes in
/// x7 and every later stack argument is shifted.
pub fn aarch64_i128_ngrn(sig: &AbiSig) -> bool {
    const GPRS: usize = 8;
    let mut next = 0;
    for (i, p) in sig.params.iter().enumerate() {
        let Param::Scalar(s, _) = p else { continue };
        match s {
            Scalar::F32 | Scalar::F64 => {}
            Scalar::I128 if next + 2 <= GPRS => next = next.next_multiple_of(2) + 2,
            Scalar::I128 if next + 1 == GPRS => {
                return sig.params[i + 1..].iter().any(
                    |q| matches!(q, Param::Scalar(t, _) if !t.is_float() && *t != Scalar::I128),
                );
            }
            Scalar::I128 => {}
            _ => next += 1,
        }
    }
    false
}

/// The first rule of the RISC-V psABI (LP64D) that Cranelift 0.135.8 applies differently to
/// `sig`'s arguments, walking them as C (GCC) assigns them:
///
/// * `riscv64-float-in-gpr`: a float argument after the eight float registers are used, while an
///   integer register is free. The psABI then passes it "according to the integer calling
///   convention", in that register; Cranelift puts it on the stack, so it and every later stack
///   argument are read from the wrong place.
/// * `riscv64-i128-stack-align`: an `i128` passed wholly on the stack where the arguments before
///   it end at an offset that is not a multiple of 16. The psABI aligns a stack argument to its
///   type (16 bytes for a 2×XLEN scalar); Cranelift packs stack arguments in 8-byte slots.
///
/// A split `i128` (low half in a7, high half on the stack at offset 0) agrees.
pub fn riscv64_divergence(sig: &AbiSig) -> Option<&'static str> {
    const GPRS: usize = 8;
    const FPRS: usize = 8;
    let (mut gprs, mut fprs, mut stack) = (0, 0, 0u32);
    for p in &sig.params {
        let Param::Scalar(s, _) = p else { continue };
        match s {
            Scalar::F32 | Scalar::F64 if fprs < FPRS => fprs += 1,
            Scalar::F32 | Scalar::F64 if gprs < GPRS => return Some("riscv64-float-in-gpr"),
            Scalar::I128 if gprs + 2 <= GPRS => gprs += 2,
            Scalar::I128 if gprs + 1 == GPRS => {
                gprs = GPRS;
                stack += 8;
            }
            Scalar::I128 if stack % 16 != 0 => return Some("riscv64-i128-stack-align"),
            Scalar::I128 => stack += 16,
            _ if gprs < GPRS => gprs += 1,
            _ => stack += 8,
        }
    }
    None
}

/// The shapes [`divergence`] recognises: the `abi_shape` a known-bugs entry may name.
pub const SHAPES: [&str; 4] = [
    "i128-leftover-gpr",
    "aarch64-i128-ngrn",
    "riscv64-float-in-gpr",
    "riscv64-i128-stack-align",
];

/// The bucket of a known divergence `sig` falls into on `arch`, if any.
pub fn divergence(sig: &AbiSig, arch: Arch) -> Option<&'static str> {
    match arch {
        Arch::X86_64 => i128_leftover_gpr(sig).then_some("i128-leftover-gpr"),
        Arch::Aarch64 => aarch64_i128_ngrn(sig).then_some("aarch64-i128-ngrn"),
        Arch::Riscv64 => riscv64_divergence(sig),
        Arch::S390x => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sig(t: &str) -> AbiSig {
        t.parse().unwrap()
    }

    #[test]
    fn the_shape_needs_one_leftover_register_and_a_later_integer() {
        assert!(i128_leftover_gpr(&sig(
            "(i64, i64, i64, i64, i64, i128, i64) -> i64"
        )));
        // Two registers left: the i128 fits, nothing diverges.
        assert!(!i128_leftover_gpr(&sig("(i64, i64, i64, i64, i128, i64)")));
        // Nothing after it could use the register.
        assert!(!i128_leftover_gpr(&sig(
            "(i64, i64, i64, i64, i64, i128, f64)"
        )));
        assert!(aarch64_i128_ngrn(&sig(
            "(i64, i64, i64, i64, i64, i64, i64, i128, i64) -> i64"
        )));
        // An odd register is skipped while a pair is still free: no divergence.
        assert!(!aarch64_i128_ngrn(&sig("(i64, i128, i64, i64, i128, i64)")));
        assert!(aarch64_i128_ngrn(&sig(
            "(i64, i128, i64, i64, i64, i128, i8)"
        )));
        // riscv64: the third i128 lands at stack offset 8 after the second was split.
        let rv = |t: &str| riscv64_divergence(&sig(t));
        let align = Some("riscv64-i128-stack-align");
        assert_eq!(
            rv("(i64, f32, i16 sext, f32, i64, i64, i64, i128, i128, i128) -> i64"),
            align
        );
        assert_eq!(
            rv("(i64, i64, i64, i64, i64, i64, i64, i64, i64, i128) -> i64"),
            align
        );
        // On the stack at offset 0, or split across a7: no divergence.
        assert_eq!(
            rv("(i64, i64, i64, i64, i64, i64, i64, i64, i128) -> i64"),
            None
        );
        assert_eq!(rv("(i64, i64, i64, i64, i64, i64, i64, i128) -> i64"), None);
        // A ninth float with a7 free goes to a7 in C; with no integer register left, both
        // sides put it on the stack.
        let f8 = "f64, f64, f64, f64, f64, f64, f64, f64";
        assert_eq!(
            rv(&format!(
                "({f8}, i64, i64, i64, i64, i64, i64, i64, f64) -> i64"
            )),
            Some("riscv64-float-in-gpr")
        );
        assert_eq!(
            rv(&format!(
                "({f8}, i64, i64, i64, i64, i64, i64, i64, i64, f64) -> i64"
            )),
            None
        );
        // Floats and structs use no integer registers.
        assert!(i128_leftover_gpr(&sig(
            "(f64, i64, i64 sarg(24), i64, i64, i64, i8 sext, i128, i16)"
        )));
    }
}
