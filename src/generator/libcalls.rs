//! Explicit calls of Cranelift's math libcalls: `fn0 = %CeilF32(f32) -> f32`, then `call fn0`.
//!
//! Lowering already produces these libcalls where a backend lacks the instruction (x86_64
//! without SSE4.1 or FMA, see `ops`); an explicit call reaches them on every target and through
//! the paths an embedder's own calls take: an imported, non-colocated function that the JIT
//! resolves among the process's symbols (`ceilf` in libm) and the object file leaves to the
//! linker. The interpreter runs them through its libcall handler (`engine::libcalls`).
//!
//! Only the math libcalls are called: `Memcpy`/`Memset`/`Memmove`/`Memcmp` take pointers that
//! the interpreter's handler cannot follow (it sees values, not memory), `Probestack` and the
//! TLS helpers are not functions a case may call, and `X86Pshufb` is the embedder's own.

use super::body::FuncGen;
use arbitrary::Result;
use cranelift_codegen::ir::{ExtFuncData, ExternalName, InstBuilder, LibCall, Type, types};
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
        let func_ref = match self.libcall_refs.iter().find(|(l, _)| *l == libcall) {
            Some(&(_, f)) => f,
            None => {
                // The C ABI of the platform (every target here is Linux), whatever the caller's
                // own convention; libm is never colocated with generated code.
                let sig = libcall.signature(CallConv::SystemV, types::I64);
                let signature = self.func.import_signature(sig);
                let f = self.func.import_function(ExtFuncData {
                    name: ExternalName::LibCall(libcall),
                    signature,
                    colocated: false,
                    patchable: false,
                });
                self.libcall_refs.push((libcall, f));
                f
            }
        };
        let call = self.ins().call(func_ref, &args);
        let v = self.func.dfg.first_result(call);
        self.add(v);
        Ok(())
    }
}
