//! What a case exercises, read from its IR: the features `gen --stats` counts and the tests ask
//! for (stack-passed arguments, `sarg` reads and writes, each call kind and convention, ...).
//!
//! Whether arguments or returns go on the stack is decided by a model of each backend's
//! register assignment (registers per class and convention), not by compiling.

use crate::case::TestCase;
use crate::target::{Arch, case_arch};
use cranelift_codegen::ir::{
    ArgumentPurpose, Block, Function, InstructionData, LibCall, Opcode, Signature, Value, types,
};
use cranelift_codegen::isa::CallConv;

/// Kinds of call site, as named in reports.
pub const CALL_KINDS: [&str; 5] = [
    "call colocated",
    "call non-colocated",
    "call_indirect",
    "return_call",
    "return_call_indirect",
];

/// The atomic opcodes the generator emits.
pub const ATOMICS: [Opcode; 5] = [
    Opcode::AtomicRmw,
    Opcode::AtomicCas,
    Opcode::AtomicLoad,
    Opcode::AtomicStore,
    Opcode::Fence,
];

#[derive(Clone, Debug, Default)]
pub struct Features {
    /// Some signature passes an argument on the stack.
    pub stack_args: bool,
    /// Some signature returns more values than its convention has registers for.
    pub stack_returns: bool,
    pub multi_returns: bool,
    pub sarg: bool,
    /// Some function both loads from and stores to its `sarg` copy.
    pub sarg_read_write: bool,
    /// Plain `i64` parameters used as addresses (into the caller's memory).
    pub pointer_params: bool,
    pub i128: bool,
    pub floats: bool,
    pub br_table: bool,
    pub loops: bool,
    /// Distinct atomic opcodes present (`atomic_rmw`, `atomic_cas`, `atomic_load`,
    /// `atomic_store`, `fence`).
    pub atomics: Vec<Opcode>,
    /// Distinct call kinds present, from [`CALL_KINDS`].
    pub call_kinds: Vec<&'static str>,
    /// `return_call`s made from a `tail` function.
    pub tail_calls_from_tail: bool,
    /// Distinct conventions of the case's functions.
    pub conventions: Vec<CallConv>,
    /// Distinct uses of data objects, from [`DATA_USES`].
    pub data: Vec<&'static str>,
    /// Some function reads or writes a thread-local object through `tls_value`.
    pub thread_local: bool,
    /// Distinct vector types of values.
    pub vector_types: Vec<cranelift_codegen::ir::Type>,
    /// Distinct types of `f16` and `f128` values.
    pub f16_f128: Vec<cranelift_codegen::ir::Type>,
    /// Distinct opcodes with a vector operand or result.
    pub vector_ops: Vec<Opcode>,
    /// Distinct instructions that may trap by design, from [`TRAPPING`].
    pub trap_ops: Vec<Opcode>,
    /// Some division is unguarded (it may trap).
    pub unguarded_division: bool,
    /// Distinct libcalls called explicitly (`call %CeilF32`).
    pub libcalls: Vec<LibCall>,
    /// Distinct memory flags on accesses, from [`MEMORY_FLAGS`].
    pub memory_flags: Vec<&'static str>,
}

/// Memory flags the generator gives where they hold (besides `notrap` and byte order).
pub const MEMORY_FLAGS: [&str; 4] = ["alias region", "readonly", "can_move", "aligned"];

/// The trapping instructions the generator emits as a feature (besides unguarded divisions).
pub const TRAPPING: [Opcode; 5] = [
    Opcode::Trapz,
    Opcode::Trapnz,
    Opcode::UaddOverflowTrap,
    Opcode::FcvtToSint,
    Opcode::FcvtToUint,
];

/// Ways a case uses data objects, as named in reports.
pub const DATA_USES: [&str; 10] = [
    "writable object",
    "read-only object",
    "symbol_value colocated",
    "symbol_value non-colocated",
    "symbol with offset",
    "load from data",
    "store to data",
    "call through a data table",
    "pointer in data followed",
    "data lent to a callee",
];

pub fn features(case: &TestCase) -> Features {
    let arch = case_arch(case).unwrap_or(Arch::X86_64);
    let llvm_abi = case.setting("enable_llvm_abi_extensions") == Some("true");
    let mut ft = Features::default();
    for f in &case.functions {
        let sig = &f.signature;
        ft.stack_args |= passes_on_stack(arch, sig);
        ft.stack_returns |= returns_on_stack(arch, sig, llvm_abi);
        ft.multi_returns |= sig.returns.len() > 1;
        ft.sarg |= sig
            .params
            .iter()
            .any(|p| matches!(p.purpose, ArgumentPurpose::StructArgument(_)));
        ft.sarg_read_write |= reads_and_writes_sarg(f);
        ft.pointer_params |= has_pointer_params(f);
        if !ft.conventions.contains(&sig.call_conv) {
            ft.conventions.push(sig.call_conv);
        }
        let order: Vec<Block> = f.layout.blocks().collect();
        let at = |b: Block| order.iter().position(|&x| x == b);
        for &block in &order {
            for &v in f.dfg.block_params(block) {
                ft.note_type(f.dfg.value_type(v));
            }
            for inst in f.layout.block_insts(block) {
                let data = &f.dfg.insts[inst];
                for &r in f.dfg.inst_results(inst) {
                    ft.note_type(f.dfg.value_type(r));
                }
                if let Some(m) = data.memflags_data(&f.dfg) {
                    let on = [
                        m.alias_region().is_some(),
                        m.readonly(),
                        m.can_move(),
                        m.aligned(),
                    ];
                    for (name, on) in MEMORY_FLAGS.iter().zip(on) {
                        if on && !ft.memory_flags.contains(name) {
                            ft.memory_flags.push(name);
                        }
                    }
                }
                if let Some(lc) = crate::facts::libcall(f, data)
                    && !ft.libcalls.contains(&lc)
                {
                    ft.libcalls.push(lc);
                }
                if let Some(kind) = call_kind(f, data) {
                    if !ft.call_kinds.contains(&kind) {
                        ft.call_kinds.push(kind);
                    }
                    ft.tail_calls_from_tail |=
                        kind.starts_with("return_call") && sig.call_conv == CallConv::Tail;
                }
                ft.br_table |= data.opcode() == Opcode::BrTable;
                let op = data.opcode();
                if ATOMICS.contains(&op) && !ft.atomics.contains(&op) {
                    ft.atomics.push(op);
                }
                if TRAPPING.contains(&op) && !ft.trap_ops.contains(&op) {
                    ft.trap_ops.push(op);
                }
                let vector = |v: &Value| f.dfg.value_type(*v).is_vector();
                if (f.dfg.inst_results(inst).iter().any(vector)
                    || f.dfg.inst_args(inst).iter().any(vector))
                    && !ft.vector_ops.contains(&op)
                {
                    ft.vector_ops.push(op);
                }
                // Blocks are laid out in program order, so a branch to an earlier (or the same)
                // block is a loop's back edge.
                ft.loops |= data
                    .branch_destination(&f.dfg.jump_tables, &f.dfg.exception_tables)
                    .iter()
                    .any(|d| at(d.block(&f.dfg.value_lists)) <= at(block));
            }
        }
    }
    ft.data = data_uses(case);
    ft.thread_local = case.functions.iter().any(|f| {
        crate::facts::insts(f).any(|i| {
            crate::facts::memory::access_address(f, i)
                .and_then(|a| crate::facts::memory::data_access(case, f, a))
                .is_some_and(|(d, _)| case.data[d].tls)
        })
    });
    ft.unguarded_division = !crate::facts::guards::divisions_guarded(case);
    ft
}

fn data_uses(case: &TestCase) -> Vec<&'static str> {
    use crate::facts::memory::{DataAccess, access_address, data_access};
    let mut on = [false; DATA_USES.len()];
    on[0] = case.data.iter().any(|d| d.writable);
    on[1] = case.data.iter().any(|d| !d.writable);
    for (fi, f) in case.functions.iter().enumerate() {
        for inst in crate::facts::insts(f) {
            let data = &f.dfg.insts[inst];
            if let InstructionData::UnaryGlobalValue {
                opcode: Opcode::SymbolValue,
                global_value,
            } = *data
                && let cranelift_codegen::ir::GlobalValueData::Symbol {
                    colocated, offset, ..
                } = f.global_values[global_value]
            {
                on[if colocated { 2 } else { 3 }] = true;
                on[4] |= i64::from(offset) != 0;
            }
            if let Some(a) = access_address(f, inst)
                && let Some((_, how)) = data_access(case, f, a)
            {
                on[if data.opcode().can_store() { 6 } else { 5 }] = true;
                on[8] |= how == DataAccess::Pointer;
            }
        }
        for site in crate::facts::call_sites(case, fi) {
            let args = f.dfg.inst_args(site.inst);
            let indirect = matches!(
                site.kind,
                crate::facts::CallKind::Indirect | crate::facts::CallKind::TailIndirect
            );
            on[7] |= indirect && crate::facts::data::loaded_function(case, f, args[0]).is_some();
            on[9] |= args.iter().any(|&a| data_access(case, f, a).is_some());
        }
    }
    DATA_USES
        .iter()
        .zip(on)
        .filter(|(_, o)| *o)
        .map(|(n, _)| *n)
        .collect()
}

impl Features {
    /// The feature names this case has, for seed corpora and tables.
    pub fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = [
            ("stack_args", self.stack_args),
            ("stack_returns", self.stack_returns),
            ("multi_returns", self.multi_returns),
            ("sarg", self.sarg),
            ("sarg_read_write", self.sarg_read_write),
            ("pointer_params", self.pointer_params),
            ("i128", self.i128),
            ("floats", self.floats),
            ("br_table", self.br_table),
            ("loops", self.loops),
            ("tail_calls_from_tail", self.tail_calls_from_tail),
            ("thread_local", self.thread_local),
        ]
        .iter()
        .filter(|(_, on)| *on)
        .map(|(n, _)| n.to_string())
        .collect();
        v.extend(self.atomics.iter().map(|o| o.to_string()));
        v.extend(self.call_kinds.iter().map(|k| format!("call_{k}")));
        v.extend(self.conventions.iter().map(|c| format!("conv_{c}")));
        v.extend(
            self.data
                .iter()
                .map(|d| format!("data_{}", d.replace([' ', '-'], "_"))),
        );
        v.extend(self.vector_types.iter().map(|t| format!("vector_{t}")));
        v.extend(self.f16_f128.iter().map(|t| t.to_string()));
        v.extend(self.trap_ops.iter().map(|o| format!("trap_{o}")));
        if self.unguarded_division {
            v.push("trap_unguarded_division".into());
        }
        v.extend(self.libcalls.iter().map(|l| format!("libcall_{l}")));
        v.extend(
            self.memory_flags
                .iter()
                .map(|m| format!("memflag_{}", m.replace(' ', "_"))),
        );
        v
    }

    fn note_type(&mut self, ty: cranelift_codegen::ir::Type) {
        self.i128 |= ty == types::I128;
        let f16_f128 = super::f16_f128::is_f16_f128(ty);
        self.floats |= ty.is_float() && !f16_f128;
        if ty.is_vector() && !self.vector_types.contains(&ty) {
            self.vector_types.push(ty);
        }
        if f16_f128 && !self.f16_f128.contains(&ty) {
            self.f16_f128.push(ty);
        }
    }
}

/// The kind of call `inst` is, if it is one.
pub fn call_kind(f: &Function, inst: &InstructionData) -> Option<&'static str> {
    if crate::facts::libcall(f, inst).is_some() {
        return None;
    }
    Some(match *inst {
        InstructionData::Call {
            opcode: Opcode::Call,
            func_ref,
            ..
        } => {
            if f.dfg.ext_funcs[func_ref].colocated {
                CALL_KINDS[0]
            } else {
                CALL_KINDS[1]
            }
        }
        InstructionData::CallIndirect {
            opcode: Opcode::CallIndirect,
            ..
        } => CALL_KINDS[2],
        InstructionData::Call {
            opcode: Opcode::ReturnCall,
            ..
        } => CALL_KINDS[3],
        InstructionData::CallIndirect {
            opcode: Opcode::ReturnCallIndirect,
            ..
        } => CALL_KINDS[4],
        _ => return None,
    })
}

/// Values used as the address of a load and of a store, among `roots` and pointers derived from
/// them by `iadd`.
fn loads_and_stores_through(f: &Function, roots: &[Value]) -> (bool, bool) {
    let mut ptrs: Vec<Value> = roots.to_vec();
    let insts: Vec<_> = f
        .layout
        .blocks()
        .flat_map(|b| f.layout.block_insts(b))
        .collect();
    // Derived pointers are defined after their bases in layout order, which is program order.
    for &i in &insts {
        if f.dfg.insts[i].opcode() == Opcode::Iadd
            && f.dfg.inst_args(i).iter().any(|a| ptrs.contains(a))
        {
            ptrs.push(f.dfg.first_result(i));
        }
    }
    let mut loads = false;
    let mut stores = false;
    for &i in &insts {
        let op = f.dfg.insts[i].opcode();
        let through = f.dfg.inst_args(i).last().is_some_and(|a| ptrs.contains(a));
        loads |= op.can_load() && through;
        stores |= op.can_store() && through;
    }
    (loads, stores)
}

fn reads_and_writes_sarg(f: &Function) -> bool {
    let Some(entry) = f.layout.entry_block() else {
        return false;
    };
    let sargs: Vec<Value> = f
        .signature
        .params
        .iter()
        .zip(f.dfg.block_params(entry))
        .filter(|(p, _)| matches!(p.purpose, ArgumentPurpose::StructArgument(_)))
        .map(|(_, &v)| v)
        .collect();
    !sargs.is_empty() && loads_and_stores_through(f, &sargs) == (true, true)
}

/// Plain `i64` parameters used as load/store addresses (the generator never uses a scalar as an
/// address, so these are its pointer parameters).
pub fn has_pointer_params(f: &Function) -> bool {
    let Some(entry) = f.layout.entry_block() else {
        return false;
    };
    let ptrs: Vec<Value> = f
        .signature
        .params
        .iter()
        .zip(f.dfg.block_params(entry))
        .filter(|(p, _)| p.purpose == ArgumentPurpose::Normal && p.value_type == types::I64)
        .map(|(_, &v)| v)
        .collect();
    let (l, s) = loads_and_stores_through(f, &ptrs);
    l || s
}

/// Argument registers per class (integer, float) of a convention on an architecture, or `None`
/// for Windows fastcall (which counts positions, not classes).
fn arg_regs(arch: Arch, cc: CallConv) -> Option<(usize, usize)> {
    match arch {
        Arch::X86_64 if cc == CallConv::WindowsFastcall => None,
        Arch::X86_64 => Some((6, 8)),
        Arch::Aarch64 | Arch::Riscv64 => Some((8, 8)),
        Arch::S390x => Some((5, 4)),
    }
}

/// Whether some argument of `sig` goes on the stack (a model of the backends' assignment).
pub fn passes_on_stack(arch: Arch, sig: &Signature) -> bool {
    let mut ints = 0;
    let mut floats = 0;
    let mut sarg = false;
    for p in &sig.params {
        match p.purpose {
            ArgumentPurpose::StructArgument(_) => sarg = true,
            _ if p.value_type.is_float() => floats += 1,
            _ => ints += (p.value_type.bits() as usize).div_ceil(64),
        }
    }
    match arg_regs(arch, sig.call_conv) {
        None => sarg || ints + floats > 4,
        Some((ri, rf)) => sarg || ints > ri || floats > rf,
    }
}

/// Whether `sig` returns more values than its convention has return registers for (x86_64;
/// elsewhere counted as two per class).
pub fn returns_on_stack(arch: Arch, sig: &Signature, llvm_abi: bool) -> bool {
    let ints: usize = sig
        .returns
        .iter()
        .filter(|r| r.value_type.is_int())
        .map(|r| (r.value_type.bits() as usize).div_ceil(64))
        .sum();
    let floats = sig
        .returns
        .iter()
        .filter(|r| r.value_type.is_float())
        .count();
    let (ri, rf) = match (arch, sig.call_conv) {
        (Arch::X86_64, CallConv::Tail) => (8, 8),
        (Arch::X86_64, CallConv::Winch) => return ints + floats > 1,
        (Arch::X86_64, CallConv::WindowsFastcall) => (2, 1),
        (Arch::X86_64, _) => (if llvm_abi { 3 } else { 2 }, 2),
        _ => (2, 2),
    };
    ints > ri || floats > rf
}
