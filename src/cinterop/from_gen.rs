//! Signatures drawn from the generator, so that C interop covers the shapes campaigns produce.
//!
//! The generator plans each module's signatures before it writes any body
//! ([`crate::generator::signature::plan`]). Those signatures use Cranelift's whole domain; here
//! they are brought into C's (see [`AbiSig::c_expressible`]) with as little change as possible:
//! the parameter list, which decides register assignment, is kept; `sarg` structs of 16 bytes or
//! less grow to 24 (C passes smaller ones in registers); extensions are dropped on aarch64 (they
//! model no C type there); results are cut to what C returns in registers.

use super::sig::{AbiSig, Ext, Param, Scalar};
use crate::generator::signature::{self, FuncSig};
use crate::generator::{Config, seed_bytes};
use crate::target::Arch;
use arbitrary::Unstructured;
use cranelift_codegen::ir::{ArgumentExtension, Type, types};

fn scalar(ty: Type) -> Option<Scalar> {
    Some(match ty {
        types::I8 => Scalar::I8,
        types::I16 => Scalar::I16,
        types::I32 => Scalar::I32,
        types::I64 => Scalar::I64,
        types::I128 => Scalar::I128,
        types::F32 => Scalar::F32,
        types::F64 => Scalar::F64,
        _ => return None,
    })
}

/// The extension as C's types have it on `arch`: none on aarch64 (callers need not extend);
/// on riscv64 and s390x callers always extend, so an unextended narrow integer becomes a signed
/// one, and riscv64 sign-extends 32-bit values whatever their signedness.
fn ext(e: ArgumentExtension, s: Scalar, arch: Arch) -> Ext {
    let given = match e {
        ArgumentExtension::Uext => Ext::Uext,
        ArgumentExtension::Sext => Ext::Sext,
        ArgumentExtension::None => Ext::None,
    };
    match arch {
        _ if !s.extendable() => Ext::None,
        Arch::X86_64 => given,
        Arch::Aarch64 => Ext::None,
        Arch::Riscv64 if s == Scalar::I32 => Ext::Sext,
        Arch::Riscv64 | Arch::S390x if given == Ext::None => Ext::Sext,
        Arch::Riscv64 | Arch::S390x => given,
    }
}

/// `f` brought into C's domain on `arch`, or `None` when a type has no C counterpart.
pub fn to_c(f: &FuncSig, arch: Arch) -> Option<AbiSig> {
    let mut params = Vec::new();
    for p in &f.params {
        params.push(match *p {
            signature::Param::Value { ty, ext: e } => {
                let s = scalar(ty)?;
                Param::Scalar(s, ext(e, s, arch))
            }
            signature::Param::Sarg(n) if arch == Arch::X86_64 => Param::Struct(n.max(24)),
            signature::Param::Sarg(_) => return None,
            // A pointer is an i64 as far as the ABI goes.
            signature::Param::Ptr(_) => Param::Scalar(Scalar::I64, Ext::None),
        });
    }
    let mut returns = Vec::new();
    for &(ty, e) in &f.returns {
        let s = scalar(ty)?;
        returns.push((s, ext(e, s, arch)));
    }
    let mut sig = AbiSig { params, returns };
    // Fewer results until C can return them in registers.
    while sig.c_expressible(arch).is_err() && !sig.returns.is_empty() {
        sig.returns.pop();
    }
    sig.c_expressible(arch).ok().map(|_| sig)
}

/// The System V signatures of the module the generator plans for `seed` on `arch`.
pub fn signatures(seed: u64, arch: Arch) -> Vec<AbiSig> {
    let mut cfg = Config::for_target(arch);
    cfg.conventions = vec!["system_v".into()];
    let bytes = seed_bytes(seed);
    let mut u = Unstructured::new(&bytes);
    match signature::plan(&mut u, &cfg) {
        Ok(plan) => plan.funcs.iter().filter_map(|f| to_c(f, arch)).collect(),
        Err(_) => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_signatures_become_c_expressible_ones() {
        for arch in [Arch::X86_64, Arch::Aarch64, Arch::Riscv64, Arch::S390x] {
            let mut total = 0;
            let mut with_sarg = 0;
            for seed in 0..200 {
                for s in signatures(seed, arch) {
                    s.c_expressible(arch).unwrap();
                    total += 1;
                    with_sarg += s.params.iter().any(|p| matches!(p, Param::Struct(_))) as usize;
                }
            }
            assert!(total > 200, "{arch:?}: {total}");
            assert_eq!(with_sarg > 0, arch == Arch::X86_64, "{arch:?}");
        }
    }
}
