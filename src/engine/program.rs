//! A case laid out for a `cranelift-module` backend (JIT or object).
//!
//! Functions in a case call each other by test-case name (`%foo`) or user name (`u0:1`). The
//! backends link by `FuncId`, so every function is declared under a symbol, and every external
//! name is rewritten to the `u0:<FuncId>` form `cranelift-module` resolves. Callees the case does
//! not define become imports of the same symbol.
//!
//! Native engines cannot call an arbitrary signature from Rust or C, so each entry that a run line
//! invokes gets a *trampoline*: `tramp(args: ptr, rets: ptr)` in the target's default convention,
//! which loads the arguments from 16-byte slots, calls the entry, and stores the results. Both
//! the JIT and the C driver of the object path call only trampolines.
//!
//! Data objects are declared under their symbols too (`%d0` -> `<prefix>d0`, a `u1:<DataId>`
//! name in the functions). A run line must see every object at its initial contents, as the
//! interpreter does, though native run lines share one process: so each writable object gets a
//! read-only twin (`<prefix>d0.init`, same bytes and relocations) that the trampoline copies
//! back before it calls the entry. A thread-local object's twin is an ordinary one; the
//! trampoline reaches the object itself with `tls_value`, so it needs the case's `tls_model`.

use crate::case::{TestCase, testcase_name};
use crate::data::{DataObject, Target};
use crate::outcome::{Outcome, Phase};
use cranelift_codegen::Context;
use cranelift_codegen::ir::{
    self, AbiParam, ArgumentPurpose, ExtFuncData, ExternalName, Function, InstBuilder,
    MemFlagsData, Signature, TrapCode, UserExternalName, UserFuncName, types,
};
use cranelift_codegen::isa::TargetIsa;
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use cranelift_module::{
    DataDescription, DataId, FuncId, Linkage, Module, ModuleError, ModuleRelocTarget,
};
use std::collections::HashMap;

/// Bytes per argument/result slot in the trampoline buffers (enough for `i128`).
pub const SLOT: usize = 16;

/// A compiled function's code size and trap sites, for mapping a faulting PC to a trap code.
#[derive(Clone, Debug)]
pub struct CodeInfo {
    pub symbol: String,
    pub size: u32,
    /// (offset within the function, trap code)
    pub traps: Vec<(u32, TrapCode)>,
}

/// What was declared and defined in the module.
pub struct Defined {
    /// Case functions, in case order.
    pub funcs: Vec<FuncId>,
    /// Trampolines, indexed like [`Program::entries`].
    pub tramps: Vec<FuncId>,
    /// Code info per defined function (case functions, then trampolines), with their ids.
    pub code: Vec<(FuncId, CodeInfo)>,
}

/// The case's functions, named for linking, plus the trampolines the run lines need.
pub struct Program {
    /// (symbol, function with rewritten external names)
    pub funcs: Vec<(String, Function)>,
    /// Distinct entry functions (indices into `funcs`) invoked by run lines.
    pub entries: Vec<usize>,
    /// For each run line, its index in `entries`.
    pub run_entry: Vec<usize>,
    /// (symbol, data object)
    pub data: Vec<(String, DataObject)>,
    /// Test-only: compiling a function with this opcode panics (a planted Cranelift panic).
    pub planted_panic: Option<String>,
}

impl Program {
    /// Plans `case` with every symbol prefixed by `prefix` (so batches and libc never clash).
    pub fn plan(case: &TestCase, prefix: &str) -> Result<Program, Outcome> {
        if let Some(d) = case.data.iter().find(|d| d.tls)
            && case.setting("tls_model") != Some("elf_gd")
        {
            return Err(Outcome::Unsupported {
                reason: format!(
                    "thread-local %{} needs `set tls_model=elf_gd` (the trampoline that resets it \
                     uses `tls_value`)",
                    d.name
                ),
            });
        }
        let funcs: Vec<(String, Function)> = case
            .functions
            .iter()
            .map(|f| (symbol_for(prefix, &f.name), f.clone()))
            .collect();
        let mut entries = Vec::new();
        let mut run_entry = Vec::new();
        for run in &case.runs {
            let idx = case
                .functions
                .iter()
                .position(|f| testcase_name(f) == run.func)
                .ok_or_else(|| Outcome::Error {
                    phase: Phase::Setup,
                    message: format!("run line invokes unknown function %{}", run.func),
                })?;
            let func = &case.functions[idx];
            if let Some(p) = func
                .signature
                .params
                .iter()
                .find(|p| p.purpose != ArgumentPurpose::Normal)
            {
                return Err(Outcome::Unsupported {
                    reason: format!(
                        "entry %{} takes a `{}` parameter, which a run line cannot supply",
                        run.func, p
                    ),
                });
            }
            let e = match entries.iter().position(|&e| e == idx) {
                Some(e) => e,
                None => {
                    entries.push(idx);
                    entries.len() - 1
                }
            };
            run_entry.push(e);
        }
        let data = case
            .data
            .iter()
            .map(|d| (format!("{prefix}{}", d.name), d.clone()))
            .collect();
        Ok(Program {
            funcs,
            entries,
            run_entry,
            data,
            planted_panic: None,
        })
    }

    /// Declares and compiles everything into `module`. Panics are the caller's to catch.
    pub fn define<M: Module>(&self, module: &mut M, prefix: &str) -> Result<Defined, Outcome> {
        let compile_err = |e: ModuleError| Outcome::Error {
            phase: Phase::Compile,
            message: module_error_text(&e),
        };
        let mut ids: HashMap<String, FuncId> = HashMap::new();
        let mut funcs = Vec::new();
        for (sym, f) in &self.funcs {
            let id = module
                .declare_function(sym, Linkage::Export, &f.signature)
                .map_err(compile_err)?;
            ids.insert(sym.clone(), id);
            funcs.push(id);
        }
        let datas = self.define_data(module, prefix, &ids)?;
        let mut tramps = Vec::new();
        for (k, &e) in self.entries.iter().enumerate() {
            let sig = tramp_signature(module.isa());
            let id = module
                .declare_function(&tramp_symbol(prefix, k), Linkage::Export, &sig)
                .map_err(compile_err)?;
            tramps.push((id, e));
        }

        let mut code = Vec::new();
        let mut ctx = Context::new();
        for ((sym, f), &id) in self.funcs.iter().zip(&funcs) {
            let mut func = f.clone();
            relink(&mut func, prefix, module, &mut ids, &datas.ids)?;
            func.name = UserFuncName::user(0, id.as_u32());
            ctx.clear();
            ctx.func = func;
            if let Some(op) = &self.planted_panic
                && super::has_opcode(&ctx.func, op)
            {
                panic!("planted Cranelift panic: compiling `{op}`");
            }
            module.define_function(id, &mut ctx).map_err(compile_err)?;
            crate::coverage::worker::compiled(std::any::type_name::<M>(), &ctx, module.isa());
            code.push((id, code_info(sym, &ctx)));
        }
        for (k, &(id, e)) in tramps.iter().enumerate() {
            let entry_id = funcs[e];
            let entry_sig = &self.funcs[e].1.signature;
            ctx.clear();
            ctx.func = trampoline(module, id, entry_id, entry_sig, &datas.resets);
            module.define_function(id, &mut ctx).map_err(compile_err)?;
            code.push((id, code_info(&tramp_symbol(prefix, k), &ctx)));
        }
        Ok(Defined {
            funcs,
            tramps: tramps.into_iter().map(|(id, _)| id).collect(),
            code,
        })
    }
}

/// A writable object that each trampoline restores from its read-only twin.
#[derive(Clone, Copy)]
struct Reset {
    obj: DataId,
    twin: DataId,
    size: u32,
    tls: bool,
}

/// Data objects as declared: ids by symbol, and what each trampoline restores.
struct DefinedData {
    ids: HashMap<String, DataId>,
    resets: Vec<Reset>,
}

impl Program {
    /// Declares and defines every data object (and each writable one's twin).
    fn define_data<M: Module>(
        &self,
        module: &mut M,
        prefix: &str,
        funcs: &HashMap<String, FuncId>,
    ) -> Result<DefinedData, Outcome> {
        let err = |e: ModuleError| Outcome::Error {
            phase: Phase::Compile,
            message: module_error_text(&e),
        };
        let mut ids = HashMap::new();
        let mut twins = HashMap::new();
        for (sym, d) in &self.data {
            let id = module
                .declare_data(sym, Linkage::Export, d.writable, d.tls)
                .map_err(err)?;
            ids.insert(sym.clone(), id);
            if d.writable {
                let twin = module
                    .declare_data(&format!("{sym}.init"), Linkage::Local, false, false)
                    .map_err(err)?;
                twins.insert(sym.clone(), twin);
            }
        }
        let mut resets = Vec::new();
        for (sym, d) in &self.data {
            let mut desc = DataDescription::new();
            desc.define(d.bytes.clone().into_boxed_slice());
            desc.set_align(d.align);
            for (off, target) in &d.relocs {
                match target {
                    Target::Func(n) => {
                        let id =
                            funcs
                                .get(&format!("{prefix}{n}"))
                                .ok_or_else(|| Outcome::Error {
                                    phase: Phase::Setup,
                                    message: format!(
                                        "data %{}: no function %{n} in the case",
                                        d.name
                                    ),
                                })?;
                        let f = desc.import_function(ModuleRelocTarget::user(0, id.as_u32()));
                        desc.write_function_addr(*off, f);
                    }
                    Target::Data(n, addend) => {
                        let id =
                            ids.get(&format!("{prefix}{n}"))
                                .ok_or_else(|| Outcome::Error {
                                    phase: Phase::Setup,
                                    message: format!(
                                        "data %{}: no data object %{n} in the case",
                                        d.name
                                    ),
                                })?;
                        let gv = desc.import_global_value(ModuleRelocTarget::user(1, id.as_u32()));
                        desc.write_data_addr(*off, gv, *addend);
                    }
                }
            }
            module.define_data(ids[sym], &desc).map_err(err)?;
            if let Some(&twin) = twins.get(sym) {
                module.define_data(twin, &desc).map_err(err)?;
                resets.push(Reset {
                    obj: ids[sym],
                    twin,
                    size: d.size(),
                    tls: d.tls,
                });
            }
        }
        Ok(DefinedData { ids, resets })
    }
}

pub fn tramp_symbol(prefix: &str, k: usize) -> String {
    format!("{prefix}tramp{k}")
}

/// Link symbol of a case function: `%foo` -> `<prefix>foo`, `u0:1` -> `<prefix>u0_1`.
pub fn symbol_for(prefix: &str, name: &UserFuncName) -> String {
    match name {
        UserFuncName::Testcase(t) => format!("{prefix}{}", t.to_string().trim_start_matches('%')),
        UserFuncName::User(u) => format!("{prefix}u{}_{}", u.namespace, u.index),
    }
}

fn external_symbol(prefix: &str, name: &ExternalName, func: &Function) -> Option<String> {
    match name {
        ExternalName::TestCase(t) => {
            Some(format!("{prefix}{}", t.to_string().trim_start_matches('%')))
        }
        ExternalName::User(r) => {
            let u = &func.params.user_named_funcs()[*r];
            Some(format!("{prefix}u{}_{}", u.namespace, u.index))
        }
        _ => None,
    }
}

/// Rewrites every call target of `func` to `u0:<FuncId>`, declaring undefined callees as imports.
fn relink<M: Module>(
    func: &mut Function,
    prefix: &str,
    module: &mut M,
    ids: &mut HashMap<String, FuncId>,
    datas: &HashMap<String, DataId>,
) -> Result<(), Outcome> {
    // Symbols: data objects become `u1:<DataId>`, functions of the case `u0:<FuncId>`; other
    // names are left as written (they fail to link, as anywhere).
    let gvs: Vec<ir::GlobalValue> = func.global_values.keys().collect();
    for gv in gvs {
        let ir::GlobalValueData::Symbol { name, .. } = &func.global_values[gv] else {
            continue;
        };
        let Some(sym) = external_symbol(prefix, name, func) else {
            continue;
        };
        let user = if let Some(id) = datas.get(&sym) {
            UserExternalName::new(1, id.as_u32())
        } else if let Some(id) = ids.get(&sym) {
            UserExternalName::new(0, id.as_u32())
        } else {
            continue;
        };
        let r = func.declare_imported_user_function(user);
        if let ir::GlobalValueData::Symbol { name, .. } = &mut func.global_values[gv] {
            *name = ExternalName::user(r);
        }
    }
    let refs: Vec<ir::FuncRef> = func.dfg.ext_funcs.keys().collect();
    for r in refs {
        let ExtFuncData {
            name, signature, ..
        } = func.dfg.ext_funcs[r].clone();
        let Some(sym) = external_symbol(prefix, &name, func) else {
            continue;
        };
        let id = match ids.get(&sym) {
            Some(id) => *id,
            None => {
                // Not defined in the case: an import under its own, unprefixed name.
                let raw = sym.trim_start_matches(prefix).to_string();
                let sig = func.dfg.signatures[signature].clone();
                let id = module
                    .declare_function(&raw, Linkage::Import, &sig)
                    .map_err(|e| Outcome::Error {
                        phase: Phase::Compile,
                        message: module_error_text(&e),
                    })?;
                ids.insert(sym, id);
                id
            }
        };
        let user = func.declare_imported_user_function(UserExternalName::new(0, id.as_u32()));
        func.dfg.ext_funcs[r].name = ExternalName::user(user);
    }
    Ok(())
}

fn code_info(symbol: &str, ctx: &Context) -> CodeInfo {
    let cc = ctx
        .compiled_code()
        .expect("defined function has compiled code");
    CodeInfo {
        symbol: symbol.to_string(),
        size: cc.code_info().total_size,
        traps: cc
            .buffer
            .traps()
            .iter()
            .map(|t| (t.offset, t.code))
            .collect(),
    }
}

pub fn tramp_signature(isa: &dyn TargetIsa) -> Signature {
    let ptr = isa.pointer_type();
    let mut sig = Signature::new(isa.default_call_conv());
    sig.params.push(AbiParam::new(ptr));
    sig.params.push(AbiParam::new(ptr));
    sig
}

fn trampoline<M: Module>(
    module: &mut M,
    id: FuncId,
    entry: FuncId,
    entry_sig: &Signature,
    resets: &[Reset],
) -> Function {
    let sig = tramp_signature(module.isa());
    let frontend_config = module.isa().frontend_config();
    let mut func = Function::with_name_signature(UserFuncName::user(0, id.as_u32()), sig);
    let callee = module.declare_func_in_func(entry, &mut func);
    // Exported definitions are `colocated` by default; the trampoline is harness code, and a
    // near call from it would itself hit range limits (e.g. under the `far` JIT memory provider,
    // making every case a finding). Only the case's own calls may be colocated.
    func.dfg.ext_funcs[callee].colocated = false;
    // Far references for the same reason.
    let far = |func: &mut Function, id: DataId, module: &mut M| {
        let gv = module.declare_data_in_func(id, func);
        if let ir::GlobalValueData::Symbol { colocated, .. } = &mut func.global_values[gv] {
            *colocated = false;
        }
        gv
    };
    let resets: Vec<_> = resets
        .iter()
        .map(|r| {
            (
                far(&mut func, r.obj, module),
                far(&mut func, r.twin, module),
                r.size,
                r.tls,
            )
        })
        .collect();
    let mut fctx = FunctionBuilderContext::new();
    let mut b = FunctionBuilder::new(&mut func, &mut fctx);
    let block = b.create_block();
    b.append_block_params_for_function_params(block);
    b.switch_to_block(block);
    b.seal_block(block);
    let (args_ptr, rets_ptr) = (b.block_params(block)[0], b.block_params(block)[1]);
    let flags = MemFlagsData::trusted();
    let ptr = module.isa().pointer_type();
    for (obj, twin, size, tls) in resets {
        let dst = if tls {
            b.ins().tls_value(ptr, obj)
        } else {
            b.ins().symbol_value(ptr, obj)
        };
        let src = b.ins().symbol_value(ptr, twin);
        let mut off = 0;
        while off < size {
            let ty = crate::value::word_within(size - off);
            let unaligned = MemFlagsData::new().with_notrap();
            let v = b.ins().load(ty, unaligned, src, off as i32);
            b.ins().store(unaligned, v, dst, off as i32);
            off += ty.bytes();
        }
    }
    let args: Vec<ir::Value> = entry_sig
        .params
        .iter()
        .enumerate()
        .map(|(i, p)| {
            b.ins()
                .load(p.value_type, flags, args_ptr, (i * SLOT) as i32)
        })
        .collect();
    let call = b.ins().call(callee, &args);
    let results = b.inst_results(call).to_vec();
    for (i, r) in results.into_iter().enumerate() {
        b.ins().store(flags, r, rets_ptr, (i * SLOT) as i32);
    }
    b.ins().return_(&[]);
    b.finalize(frontend_config);
    debug_assert!(
        entry_sig
            .params
            .iter()
            .all(|p| p.value_type != types::INVALID)
    );
    func
}

/// A module error as text, including the chain of causes (codegen errors carry the detail).
pub fn module_error_text(e: &ModuleError) -> String {
    let mut s = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(cause) = src {
        // Some errors already print their cause; do not say it twice.
        let text = cause.to_string();
        if !s.contains(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        src = cause.source();
    }
    s
}

/// Maps a faulting address to a trap code using the compiled functions' trap tables.
///
/// `funcs` gives each function's runtime start address; `pc` must be the trap site as Cranelift
/// records it (on s390x, the caller first moves a SIGILL/SIGFPE PC back by one byte: the kernel
/// reports the address after the instruction and Cranelift records its last byte).
pub fn trap_at(pc: u64, funcs: &[(u64, &CodeInfo)]) -> Option<TrapCode> {
    let (start, info) = funcs
        .iter()
        .filter(|(start, info)| pc >= *start && pc < start + info.size as u64)
        .max_by_key(|(start, _)| *start)?;
    let off = (pc - start) as u32;
    info.traps
        .iter()
        .find(|(o, _)| *o == off)
        .map(|(_, code)| *code)
}
