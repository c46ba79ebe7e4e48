//! Explicit calls of Cranelift's math libcalls: `fn0 = %CeilF32(f32) -> f32`, then `call fn0`.
//!
//! Lowering already produces these libcalls where a backend lacks the instruction (x86_64
//! without SSE4.1 or FMA, see `ops`); an explicit call reaches them on every target and through
//! the paths an embedder's own calls take: an imported, non-colocated function that the JIT
//! resolves among the process's symbols (`ceilf` in libm) and the object file leaves to the
//! linker. The interpreter runs them through its libcall handler (`engine::libcalls`).
//!
//! The memory libcalls (`Memcpy`, `Memmove`, `Memset`, `Memcmp`, as `FunctionBuilder::call_memcpy`
//! and its siblings declare them) work on in-bounds ranges of the function's memory regions; the
//! interpreter runs them on its own memory (`engine::libcalls::memory_call`). What C leaves
//! undefined stays out: `memcpy` only between ranges that cannot overlap (otherwise the call is a
//! `memmove`), the destination pointer they return never enters the value pool (it is an
//! address), and `memcmp`'s result is only compared with zero (C fixes its sign, not its value:
//! glibc returns a byte difference on x86_64 and ±1 on aarch64).
//!
//! `Probestack` and the TLS helpers are not functions a case may call, and `X86Pshufb` is the
//! embedder's own.

use super::body::{FuncGen, RegionKind};
use arbitrary::Result;
use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{
    AbiParam, ExtFuncData, ExternalName, FuncRef, InstBuilder, LibCall, Signature, Type, types,
};
use cranelift_codegen::isa::CallConv;

/// The math libcalls on `ty`, with their arity.
fn math_libcalls(ty: Type) -> &'static [(LibCall, usize)] {
    match ty {
        types::F32 => &[
            (LibCall::CeilF32, 1),
            (LibCall::FloorF32, 1),
            (LibCall::TruncF32, 1),
            (LibCall::NearestF32, 1),
            (LibCall::FmaF32, 3),
        ],
        types::F64 => &[
            (LibCall::CeilF64, 1),
            (LibCall::FloorF64, 1),
            (LibCall::TruncF64, 1),
            (LibCall::NearestF64, 1),
            (LibCall::FmaF64, 3),
        ],
        _ => &[],
    }
}

impl FuncGen<'_, '_> {
    /// Whether this function may call libcalls explicitly.
    pub fn has_explicit_libcalls(&self) -> bool {
        self.cfg.explicit_libcalls
            && self
                .float_types()
                .iter()
                .any(|&t| !math_libcalls(t).is_empty())
    }

    /// One explicit call of a math libcall on a float type of the config.
    pub fn libcall_op(&mut self) -> Result<()> {
        let fts: Vec<Type> = self
            .float_types()
            .into_iter()
            .filter(|&t| !math_libcalls(t).is_empty())
            .collect();
        let ty = *self.u.choose(&fts)?;
        let (libcall, arity) = *self.u.choose(math_libcalls(ty))?;
        let args = (0..arity)
            .map(|_| self.value(ty))
            .collect::<Result<Vec<_>>>()?;
        // The C ABI of the platform (every target here is Linux), whatever the caller's own
        // convention; libm is never colocated with generated code.
        let func_ref =
            self.libcall_ref(libcall, || libcall.signature(CallConv::SystemV, types::I64));
        let call = self.ins().call(func_ref, &args);
        let v = self.func.dfg.first_result(call);
        self.add(v);
        Ok(())
    }

    /// The function's reference to `libcall`, imported on first use with `sig`.
    fn libcall_ref(&mut self, libcall: LibCall, sig: impl FnOnce() -> Signature) -> FuncRef {
        if let Some(&(_, f)) = self.libcall_refs.iter().find(|(l, _)| *l == libcall) {
            return f;
        }
        let signature = self.func.import_signature(sig());
        let f = self.func.import_function(ExtFuncData {
            name: ExternalName::LibCall(libcall),
            signature,
            colocated: false,
            patchable: false,
        });
        self.libcall_refs.push((libcall, f));
        f
    }

    /// One call of a memory libcall on in-bounds ranges of this function's regions; `false`
    /// when no region allows the one drawn.
    pub fn memory_libcall_op(&mut self) -> Result<bool> {
        let writable: Vec<usize> = (0..self.regions.len())
            .filter(|&r| self.regions[r].writable)
            .collect();
        let mut libcall = *self.u.choose(&[
            LibCall::Memcpy,
            LibCall::Memmove,
            LibCall::Memset,
            LibCall::Memcmp,
        ])?;
        if self.regions.iter().any(|r| r.size == 0)
            || (libcall != LibCall::Memcmp && writable.is_empty())
        {
            return Ok(false);
        }
        let (a, b) = if libcall == LibCall::Memcmp {
            let n = self.regions.len();
            (self.u.choose_index(n)?, self.u.choose_index(n)?)
        } else {
            let n = self.regions.len();
            (*self.u.choose(&writable)?, self.u.choose_index(n)?)
        };
        // Start offsets, then a length that fits both ranges (short ones most of the time, so
        // the rest of the region keeps what was stored there).
        let a_off = self.u.int_in_range(0..=self.regions[a].size - 1)?;
        let b_off = self.u.int_in_range(0..=self.regions[b].size - 1)?;
        let room = (self.regions[a].size - a_off).min(if libcall == LibCall::Memset {
            u32::MAX
        } else {
            self.regions[b].size - b_off
        });
        let len = if self.u.ratio(3, 4)? {
            self.u.int_in_range(0..=room.min(16))?
        } else {
            self.u.int_in_range(0..=room)?
        };
        if libcall == LibCall::Memcpy && !self.disjoint(a, a_off, b, b_off, len) {
            libcall = LibCall::Memmove;
        }
        let ptr = types::I64;
        let sig = || {
            let mut s = Signature::new(CallConv::SystemV);
            s.params.push(AbiParam::new(ptr));
            s.params.push(AbiParam::new(if libcall == LibCall::Memset {
                types::I32
            } else {
                ptr
            }));
            s.params.push(AbiParam::new(ptr));
            s.returns.push(AbiParam::new(if libcall == LibCall::Memcmp {
                types::I32
            } else {
                ptr
            }));
            s
        };
        let f = self.libcall_ref(libcall, sig);
        let first = self.pointer_to(a, a_off)?;
        let second = if libcall == LibCall::Memset {
            self.value(types::I32)?
        } else {
            self.pointer_to(b, b_off)?
        };
        let n = self.ins().iconst(ptr, i64::from(len));
        let call = self.ins().call(f, &[first, second, n]);
        if libcall == LibCall::Memcmp {
            let r = self.func.dfg.first_result(call);
            let cc = *self.u.choose(&[
                IntCC::Equal,
                IntCC::NotEqual,
                IntCC::SignedLessThan,
                IntCC::SignedGreaterThan,
                IntCC::SignedLessThanOrEqual,
                IntCC::SignedGreaterThanOrEqual,
            ])?;
            let zero = self.ins().iconst(types::I32, 0);
            let sign = self.ins().icmp(cc, r, zero);
            self.add(sign);
        }
        Ok(true)
    }

    /// Whether `len` bytes at `a_off` of region `a` and at `b_off` of region `b` cannot overlap:
    /// one region, apart; or two regions of which one is a stack slot or a `sarg` copy, which
    /// nothing else reaches (two pointer regions may be the same memory).
    fn disjoint(&self, a: usize, a_off: u32, b: usize, b_off: u32, len: u32) -> bool {
        let private =
            |r: usize| matches!(self.regions[r].kind, RegionKind::Slot | RegionKind::Sarg);
        if a == b {
            a_off + len <= b_off || b_off + len <= a_off
        } else {
            private(a) || private(b)
        }
    }
}
