//! The instruction table: which opcodes the generator emits, on which types.
//!
//! An opcode is in the table only if all three engines can run it with the same meaning:
//! the interpreter implements it, and the backend lowers it for that type without a libcall the
//! JIT cannot resolve. The unit test at the bottom compiles every (opcode, type) pair the table
//! allows for each of the four architectures, and interprets it, so an entry that breaks shows
//! up there.
//!
//! Left out on purpose:
//! * `band_not`, `bor_not`, `bxor_not` and the `_imm` forms (`iadd_imm` …): not opcodes of
//!   0.135.8's IR any more (an `iconst` operand is how the mid-end and backends see them).
//! * `sadd_overflow_cin`, `uadd_overflow_cin`, `ssub_overflow_bin`, `usub_overflow_bin`: in the
//!   IR and the interpreter, but no 0.135.8 backend has a lowering rule for them.
//! * `udiv sdiv urem srem` on `i128`, and `i128` <-> float conversions: x86_64 lowers them to
//!   compiler-rt libcalls (`__divti3`, `__floattidf`, …) that the JIT cannot resolve.
//! * `umulhi`/`smulhi` on `i128`: the interpreter does not implement them.
//! * `smin smax umin umax` on `i128`: x86_64 does not lower them.
//! * `uadd_sat` & co. on scalars: x86_64 only lowers the vector forms.
//! * trapping `fcvt_to_sint`/`fcvt_to_uint`: the saturating forms say the same without ending
//!   the run line; the interpreter's range check goes through an `f64 -> i128` cast.
//! * float `bitcast` and stores of raw float bits: NaN payloads differ legitimately between
//!   engines, so floats are canonicalised before their bits are observed (see `observe`).

use super::config::Config;
use crate::target::Arch;
use cranelift_codegen::ir::{Opcode, Type, types};

/// What an opcode needs from the generator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// `T, T -> T`
    Binary,
    /// `T -> T`
    Unary,
    /// `T, any int -> T`
    Shift,
    /// `T, T -> T` with a divisor guard against zero (and `MIN / -1` for signed).
    Div,
    /// `T, T -> T, i8`
    Overflow,
    /// `T, T, T -> T`
    Fma,
}

pub const INT_OPS: &[(Opcode, Shape)] = &[
    (Opcode::Iadd, Shape::Binary),
    (Opcode::Isub, Shape::Binary),
    (Opcode::Imul, Shape::Binary),
    (Opcode::Band, Shape::Binary),
    (Opcode::Bor, Shape::Binary),
    (Opcode::Bxor, Shape::Binary),
    (Opcode::Smin, Shape::Binary),
    (Opcode::Smax, Shape::Binary),
    (Opcode::Umin, Shape::Binary),
    (Opcode::Umax, Shape::Binary),
    (Opcode::Umulhi, Shape::Binary),
    (Opcode::Smulhi, Shape::Binary),
    (Opcode::Ishl, Shape::Shift),
    (Opcode::Ushr, Shape::Shift),
    (Opcode::Sshr, Shape::Shift),
    (Opcode::Rotl, Shape::Shift),
    (Opcode::Rotr, Shape::Shift),
    (Opcode::Bnot, Shape::Unary),
    (Opcode::Ineg, Shape::Unary),
    (Opcode::Iabs, Shape::Unary),
    (Opcode::Clz, Shape::Unary),
    (Opcode::Ctz, Shape::Unary),
    (Opcode::Cls, Shape::Unary),
    (Opcode::Popcnt, Shape::Unary),
    (Opcode::Bitrev, Shape::Unary),
    (Opcode::Bswap, Shape::Unary),
    (Opcode::Udiv, Shape::Div),
    (Opcode::Sdiv, Shape::Div),
    (Opcode::Urem, Shape::Div),
    (Opcode::Srem, Shape::Div),
    (Opcode::UaddOverflow, Shape::Overflow),
    (Opcode::SaddOverflow, Shape::Overflow),
    (Opcode::UsubOverflow, Shape::Overflow),
    (Opcode::SsubOverflow, Shape::Overflow),
    (Opcode::UmulOverflow, Shape::Overflow),
    (Opcode::SmulOverflow, Shape::Overflow),
];

pub const FLOAT_OPS: &[(Opcode, Shape)] = &[
    (Opcode::Fadd, Shape::Binary),
    (Opcode::Fsub, Shape::Binary),
    (Opcode::Fmul, Shape::Binary),
    (Opcode::Fdiv, Shape::Binary),
    (Opcode::Fmin, Shape::Binary),
    (Opcode::Fmax, Shape::Binary),
    (Opcode::Fcopysign, Shape::Binary),
    (Opcode::Fneg, Shape::Unary),
    (Opcode::Fabs, Shape::Unary),
    (Opcode::Sqrt, Shape::Unary),
    (Opcode::Ceil, Shape::Unary),
    (Opcode::Floor, Shape::Unary),
    (Opcode::Trunc, Shape::Unary),
    (Opcode::Nearest, Shape::Unary),
    (Opcode::Fma, Shape::Fma),
];

/// Whether the generator may emit `op` with controlling type `ty` under `cfg`, for `arch` with
/// ISA flags `isa`.
pub fn supports(cfg: &Config, arch: Arch, isa: &str, op: Opcode, ty: Type) -> bool {
    let has = |flag: &str| isa.split_whitespace().any(|f| f == flag);
    let wide = ty == types::I128;
    if arch == Arch::Riscv64 {
        // Not lowered by the riscv64 backend (0.135.8).
        let overflow = matches!(
            op,
            Opcode::SaddOverflow
                | Opcode::SsubOverflow
                | Opcode::SmulOverflow
                | Opcode::UmulOverflow
                | Opcode::UsubOverflow
        );
        if overflow
            || (op == Opcode::UaddOverflow && ty.bits() < 32)
            || (op == Opcode::Iabs && wide)
        {
            return false;
        }
    }
    match op {
        // No backend lowers i128 division or high multiplication (0.135.8: "should be
        // implemented in ISLE" on all four).
        Opcode::Udiv | Opcode::Sdiv | Opcode::Urem | Opcode::Srem => cfg.int_division && !wide,
        Opcode::Umulhi | Opcode::Smulhi => !wide,
        // i128 min/max: riscv64 and s390x lower it; x86_64 has no lowering and aarch64 panics
        // (known bugs `x64-egraph-smax-i128`, `aarch64-i128-minmax-vector-rule-panic`, which the
        // mid-end still reaches from i128 `select`s).
        Opcode::Smin | Opcode::Smax | Opcode::Umin | Opcode::Umax => {
            !wide || matches!(arch, Arch::Riscv64 | Arch::S390x)
        }
        Opcode::Bswap => ty.bits() >= 16,
        Opcode::UaddOverflow
        | Opcode::SaddOverflow
        | Opcode::UsubOverflow
        | Opcode::SsubOverflow
        | Opcode::UmulOverflow
        | Opcode::SmulOverflow => !wide,
        // Without these features x86_64 calls libm, which the JIT engine cannot resolve.
        Opcode::Ceil | Opcode::Floor | Opcode::Trunc | Opcode::Nearest => {
            cfg.float_rounding && (cfg.float_libcalls || arch != Arch::X86_64 || has("has_sse41"))
        }
        Opcode::Fma => cfg.fma && (cfg.float_libcalls || arch != Arch::X86_64 || has("has_fma")),
        _ => true,
    }
}

/// Integer types a float may be converted from (no `i128`: libcalls).
pub fn converts_from_int(ty: Type) -> bool {
    ty.is_int() && ty.bits() <= 64
}

/// Integer types `fcvt_to_{s,u}int_sat` may produce: x86_64 panics in emission for `i8`/`i16`
/// (`isa/x64/inst/emit.rs`, `unreachable!` on the operand size) although the verifier accepts
/// them.
pub fn converts_to_int(ty: Type) -> bool {
    ty == types::I32 || ty == types::I64
}

#[cfg(test)]
mod tests {
    //! Every table entry, compiled for x86_64 at two optimisation levels and interpreted.
    use super::*;
    use cranelift_codegen::Context;
    use cranelift_codegen::cursor::{Cursor, FuncCursor};
    use cranelift_codegen::data_value::DataValue;
    use cranelift_codegen::ir::{AbiParam, Function, InstBuilder, Signature, UserFuncName, Value};
    use cranelift_codegen::isa::CallConv;
    use cranelift_codegen::settings::{self, Configurable};
    use cranelift_interpreter::environment::FunctionStore;
    use cranelift_interpreter::interpreter::{Interpreter, InterpreterState};
    use cranelift_interpreter::step::ControlFlow;

    fn probe(op: Opcode, shape: Shape, ty: Type) -> Function {
        let mut sig = Signature::new(CallConv::SystemV);
        for _ in 0..3 {
            sig.params.push(AbiParam::new(ty));
        }
        sig.returns.push(AbiParam::new(ty));
        if shape == Shape::Overflow {
            sig.returns.push(AbiParam::new(types::I8));
        }
        let mut f = Function::with_name_signature(UserFuncName::testcase("probe"), sig);
        let b = f.dfg.make_block();
        f.dfg.append_block_param(b, ty);
        f.dfg.append_block_param(b, ty);
        f.dfg.append_block_param(b, ty);
        let p: Vec<Value> = f.dfg.block_params(b).to_vec();
        let mut pos = FuncCursor::new(&mut f);
        pos.insert_block(b);
        let rets: Vec<Value> = match shape {
            Shape::Binary | Shape::Div => {
                let (i, dfg) = pos.ins().Binary(op, ty, p[0], p[1]);
                vec![dfg.first_result(i)]
            }
            Shape::Shift => {
                let (i, dfg) = pos.ins().Binary(op, ty, p[0], p[1]);
                vec![dfg.first_result(i)]
            }
            Shape::Unary => {
                let (i, dfg) = pos.ins().Unary(op, ty, p[0]);
                vec![dfg.first_result(i)]
            }
            Shape::Overflow => {
                let (i, dfg) = pos.ins().Binary(op, ty, p[0], p[1]);
                dfg.inst_results(i).to_vec()
            }
            Shape::Fma => {
                let (i, dfg) = pos.ins().Ternary(op, ty, p[0], p[1], p[2]);
                vec![dfg.first_result(i)]
            }
        };
        pos.ins().return_(&rets);
        f
    }

    fn sample(ty: Type) -> DataValue {
        match ty {
            types::F32 => DataValue::F32(2.5f32.into()),
            types::F64 => DataValue::F64(2.5f64.into()),
            _ => DataValue::from_integer(3, ty).unwrap(),
        }
    }

    #[test]
    fn every_table_entry_compiles_everywhere_and_interprets() {
        let cfg = Config {
            float_libcalls: true,
            ..Config::default()
        };
        let ints = [types::I8, types::I16, types::I32, types::I64, types::I128];
        let floats = [types::F32, types::F64];
        let mut failures = Vec::new();
        for arch in [Arch::X86_64, Arch::Aarch64, Arch::Riscv64, Arch::S390x] {
            let mut cases = Vec::new();
            for &(op, shape) in INT_OPS {
                cases.extend(ints.iter().map(|&t| (op, shape, t)));
            }
            for &(op, shape) in FLOAT_OPS {
                cases.extend(floats.iter().map(|&t| (op, shape, t)));
            }
            cases.retain(|&(op, _, ty)| supports(&cfg, arch, "", op, ty));
            for opt in ["none", "speed"] {
                let mut b = settings::builder();
                b.set("opt_level", opt).unwrap();
                b.set("enable_llvm_abi_extensions", "true").unwrap();
                b.set("enable_multi_ret_implicit_sret", "true").unwrap();
                let isa = cranelift_codegen::isa::lookup(arch.linux_triple())
                    .unwrap()
                    .finish(settings::Flags::new(b))
                    .unwrap();
                for &(op, shape, ty) in &cases {
                    let mut ctx = Context::for_function(probe(op, shape, ty));
                    let compiled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        ctx.compile(&*isa, &mut Default::default()).is_ok()
                    }));
                    if !matches!(compiled, Ok(true)) {
                        failures.push(format!("{op} {ty} does not compile for {arch:?} at {opt}"));
                    }
                }
            }
            if arch != Arch::X86_64 {
                continue;
            }
            for &(op, shape, ty) in &cases {
                let f = probe(op, shape, ty);
                let mut store = FunctionStore::default();
                store.add("%probe".into(), &f);
                let args = [sample(ty), sample(ty), sample(ty)];
                let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    let state = InterpreterState::default().with_function_store(store.clone());
                    Interpreter::new(state).call_by_name("%probe", &args)
                }));
                if !matches!(ran, Ok(Ok(ControlFlow::Return(_)))) {
                    failures.push(format!("{op} {ty} does not interpret"));
                }
            }
        }
        assert!(failures.is_empty(), "{failures:#?}");
    }
}
