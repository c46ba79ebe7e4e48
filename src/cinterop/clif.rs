//! The Cranelift half of an interop test: per case, a callee that records what it received and
//! returns the expected results, and a caller that passes the expected arguments to the C
//! callee and records what came back.

use super::record::{self, what};
use super::sig::{AbiCase, Ext, Param, Scalar, Value};
use cranelift_codegen::ir::immediates::{Ieee32, Ieee64};
use cranelift_codegen::ir::{
    self, AbiParam, Function, InstBuilder, MemFlagsData, StackSlotData, StackSlotKind,
    UserFuncName, types,
};
use cranelift_codegen::isa::CallConv;
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use cranelift_module::{FuncId, Linkage, Module};

pub fn callee_symbol(k: usize) -> String {
    format!("abi_cl_callee_{k}")
}
pub fn caller_symbol(k: usize) -> String {
    format!("abi_cl_caller_{k}")
}
pub fn c_callee_symbol(k: usize) -> String {
    format!("abi_c_callee_{k}")
}

fn record_sig() -> ir::Signature {
    let mut s = ir::Signature::new(CallConv::SystemV);
    s.params.push(AbiParam::new(types::I32));
    s.params.push(AbiParam::new(types::I64));
    s.params.push(AbiParam::new(types::I64));
    s
}

/// The ids of one case's two functions, declared in `module`.
pub struct Declared {
    pub callee: FuncId,
    pub caller: FuncId,
    pub c_callee: FuncId,
    pub record: FuncId,
}

pub fn declare<M: Module>(module: &mut M, k: usize, case: &AbiCase) -> anyhow::Result<Declared> {
    let sig = case.sig.clif(CallConv::SystemV);
    let mut decl = |name: &str, linkage, sig: &ir::Signature| {
        module
            .declare_function(name, linkage, sig)
            .map_err(|e| anyhow::anyhow!("declaring {name}: {e}"))
    };
    Ok(Declared {
        callee: decl(&callee_symbol(k), Linkage::Export, &sig)?,
        caller: decl(
            &caller_symbol(k),
            Linkage::Export,
            &ir::Signature::new(CallConv::SystemV),
        )?,
        c_callee: decl(&c_callee_symbol(k), Linkage::Import, &sig)?,
        record: decl(record::RECORD_FN, Linkage::Import, &record_sig())?,
    })
}

/// `v` as (lo, hi) i64 halves, zero-extended: what `clif_record` takes.
fn halves(b: &mut FunctionBuilder, s: Scalar, v: ir::Value) -> (ir::Value, ir::Value) {
    let flags = MemFlagsData::new();
    let zero = b.ins().iconst(types::I64, 0);
    match s {
        Scalar::I8 | Scalar::I16 | Scalar::I32 => (b.ins().uextend(types::I64, v), zero),
        Scalar::I64 => (v, zero),
        Scalar::I128 => b.ins().isplit(v),
        Scalar::F32 => {
            let i = b.ins().bitcast(types::I32, flags, v);
            (b.ins().uextend(types::I64, i), zero)
        }
        Scalar::F64 => (b.ins().bitcast(types::I64, flags, v), zero),
    }
}

fn constant(b: &mut FunctionBuilder, s: Scalar, bits: u128) -> ir::Value {
    match s {
        Scalar::I128 => {
            let lo = b.ins().iconst(types::I64, bits as u64 as i64);
            let hi = b.ins().iconst(types::I64, (bits >> 64) as u64 as i64);
            b.ins().iconcat(lo, hi)
        }
        Scalar::F32 => b.ins().f32const(Ieee32::with_bits(bits as u32)),
        Scalar::F64 => b.ins().f64const(Ieee64::with_bits(bits as u64)),
        _ => b.ins().iconst(s.clif(), bits as u64 as i64),
    }
}

fn extended64(b: &mut FunctionBuilder, s: Scalar, e: Ext, v: ir::Value) -> Option<ir::Value> {
    if !s.extendable() {
        return None;
    }
    match e {
        Ext::None => None,
        Ext::Uext => Some(b.ins().uextend(types::I64, v)),
        Ext::Sext => Some(b.ins().sextend(types::I64, v)),
    }
}

fn call_record(
    b: &mut FunctionBuilder,
    rec: ir::FuncRef,
    tag: u32,
    (lo, hi): (ir::Value, ir::Value),
) {
    let t = b.ins().iconst(types::I32, tag as i64);
    b.ins().call(rec, &[t, lo, hi]);
}

/// `callee(args…) -> rets…`: records every argument, writes to its `sarg` copies, returns the
/// expected results.
pub fn callee<M: Module>(module: &mut M, d: &Declared, case: &AbiCase) -> Function {
    let sig = case.sig.clif(CallConv::SystemV);
    let mut func = Function::with_name_signature(UserFuncName::user(0, d.callee.as_u32()), sig);
    let rec = module.declare_func_in_func(d.record, &mut func);
    let mut fctx = FunctionBuilderContext::new();
    let mut b = FunctionBuilder::new(&mut func, &mut fctx);
    let block = b.create_block();
    b.append_block_params_for_function_params(block);
    b.switch_to_block(block);
    b.seal_block(block);
    let params = b.block_params(block).to_vec();
    for (i, (p, v)) in case.sig.params.iter().zip(params).enumerate() {
        match *p {
            Param::Scalar(s, e) => {
                let h = halves(&mut b, s, v);
                call_record(&mut b, rec, what(record::PARAM, i, 0), h);
                if let Some(x) = extended64(&mut b, s, e, v) {
                    let zero = b.ins().iconst(types::I64, 0);
                    call_record(&mut b, rec, what(record::PARAM_EXT64, i, 0), (x, zero));
                }
            }
            Param::Struct(n) => {
                let flags = MemFlagsData::trusted();
                let zero = b.ins().iconst(types::I64, 0);
                for w in 0..(n / 8) as usize {
                    let x = b.ins().load(types::I64, flags, v, (8 * w) as i32);
                    call_record(&mut b, rec, what(record::WORD, i, w), (x, zero));
                }
                // The callee owns its copy; the caller's struct must not see this.
                let x = b.ins().load(types::I64, flags, v, 0);
                let y = b.ins().bnot(x);
                b.ins().store(flags, y, v, 0);
            }
        }
    }
    let rets: Vec<ir::Value> = case
        .sig
        .returns
        .iter()
        .zip(&case.rets)
        .map(|((s, _), v)| match v {
            Value::Bits(bits) => constant(&mut b, *s, *bits),
            Value::Words(_) => unreachable!("results are scalars"),
        })
        .collect();
    b.ins().return_(&rets);
    b.finalize(module.isa().frontend_config());
    func
}

/// `caller()`: calls the C callee with the expected arguments, records the results, and checks
/// (by recording) that its own `sarg` structs survived the call.
pub fn caller<M: Module>(module: &mut M, d: &Declared, case: &AbiCase) -> Function {
    let mut func = Function::with_name_signature(
        UserFuncName::user(0, d.caller.as_u32()),
        ir::Signature::new(CallConv::SystemV),
    );
    let rec = module.declare_func_in_func(d.record, &mut func);
    let target = module.declare_func_in_func(d.c_callee, &mut func);
    let mut fctx = FunctionBuilderContext::new();
    let mut b = FunctionBuilder::new(&mut func, &mut fctx);
    let block = b.create_block();
    b.switch_to_block(block);
    b.seal_block(block);
    let flags = MemFlagsData::trusted();
    let mut slots = Vec::new();
    let args: Vec<ir::Value> = case
        .sig
        .params
        .iter()
        .zip(&case.args)
        .enumerate()
        .map(|(i, (p, v))| match (p, v) {
            (Param::Scalar(s, _), Value::Bits(bits)) => constant(&mut b, *s, *bits),
            (Param::Struct(n), Value::Words(words)) => {
                let slot = b.create_sized_stack_slot(StackSlotData::new(
                    StackSlotKind::ExplicitSlot,
                    *n,
                    3,
                ));
                let addr = b.ins().stack_addr(types::I64, slot, 0);
                for (w, word) in words.iter().enumerate() {
                    let x = b.ins().iconst(types::I64, *word as i64);
                    b.ins().store(flags, x, addr, (8 * w) as i32);
                }
                slots.push((i, slot));
                addr
            }
            _ => unreachable!("values follow the signature"),
        })
        .collect();
    let call = b.ins().call(target, &args);
    let results = b.inst_results(call).to_vec();
    for (j, ((s, e), v)) in case.sig.returns.iter().zip(results).enumerate() {
        let h = halves(&mut b, *s, v);
        call_record(&mut b, rec, what(record::RET, j, 0), h);
        if let Some(x) = extended64(&mut b, *s, *e, v) {
            let zero = b.ins().iconst(types::I64, 0);
            call_record(&mut b, rec, what(record::RET_EXT64, j, 0), (x, zero));
        }
    }
    for (i, slot) in slots {
        let addr = b.ins().stack_addr(types::I64, slot, 0);
        let x = b.ins().load(types::I64, flags, addr, 0);
        let zero = b.ins().iconst(types::I64, 0);
        call_record(&mut b, rec, what(record::CALLER_COPY, i, 0), (x, zero));
    }
    b.ins().return_(&[]);
    b.finalize(module.isa().frontend_config());
    func
}
