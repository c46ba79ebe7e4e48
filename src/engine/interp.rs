//! The reference engine: `cranelift-interpreter` over the case's functions.
//!
//! The interpreter resolves a callee by its printed external name (`%foo` or `u0:1`), so functions
//! are registered under `Function::name`'s printed form. `sarg` parameters are lowered to explicit
//! copies first (see [`super::sarg_copy`]) unless a test asks for that fault. Data objects and
//! symbols, which the interpreter does not know, are modelled by [`super::symbols`].

use super::symbols::{DataState, Machine};
use super::{EngineSpec, RunOptions, catch, report_all};
use crate::case::TestCase;
use crate::outcome::{Outcome, Phase, first_line};
use crate::value::Val;
use cranelift_codegen::ir::instructions::InstructionFormat;
use cranelift_codegen::ir::{Endianness, Function, InstructionData, Opcode, Type};
use cranelift_interpreter::environment::FunctionStore;
use cranelift_interpreter::interpreter::{InterpreterError, InterpreterState};
use cranelift_interpreter::step::{ControlFlow, CraneliftTrap};
use std::ops::Range;

pub fn run(
    case: &TestCase,
    spec: &EngineSpec,
    opts: &RunOptions,
    runs: Range<usize>,
    report: &mut dyn FnMut(usize, Outcome),
) {
    if !spec.overrides.is_empty() {
        // Settings change code generation only; the interpreter's answer does not depend on them.
        report_all(
            runs,
            Outcome::Unsupported {
                reason: "settings overrides do not apply to the interpreter".into(),
            },
            report,
        );
        return;
    }
    if let Some(reason) = unimplemented(case).or_else(|| super::symbols::unmodelled(case)) {
        return report_all(runs, Outcome::Unsupported { reason }, report);
    }
    let funcs: Vec<Function> = case
        .functions
        .iter()
        .map(|f| {
            let mut f = f.clone();
            if !opts.faults.interp_skip_sarg_copy {
                super::sarg_copy::lower(&mut f);
            }
            for (from, to) in &opts.faults.interp_swap {
                swap_opcode(&mut f, from, to);
            }
            f
        })
        .collect();
    let mut store = FunctionStore::default();
    for f in &funcs {
        store.add(f.name.to_string(), f);
    }
    let endianness = match crate::target::case_arch(case) {
        Ok(a) if a.big_endian() => Endianness::Big,
        _ => Endianness::Little,
    };
    for i in runs {
        let run = &case.runs[i];
        let args: Vec<_> = run.args.iter().map(|a| a.to_data_value()).collect();
        let name = format!("%{}", run.func);
        let returns: Vec<Type> = case
            .function(&run.func)
            .map(|f| f.signature.returns.iter().map(|p| p.value_type).collect())
            .unwrap_or_default();
        let outcome = catch(Phase::Run, || {
            let mut state = InterpreterState::default()
                .with_function_store(store.clone())
                .with_libcall_handler(super::libcalls::handler);
            // Memory without an explicit byte order is the target's, not the host's.
            state.native_endianness = endianness;
            super::libcalls::reset();
            let result = match (DataState::new(state, case), store.get_by_name(&name)) {
                (Ok(state), Some(func)) => Machine::new(state, opts.fuel).call(func, &args),
                (Err(e), _) => Err(InterpreterError::StepError(e.into())),
                (_, None) => Err(InterpreterError::UnknownFunctionName(name.clone())),
            };
            match super::libcalls::unmodelled() {
                Some(lc) => Outcome::Unsupported {
                    reason: format!("the interpreter has no model of libcall {lc}"),
                },
                None => classify(result, &returns, opts.fuel),
            }
        })
        .unwrap_or_else(|panic| panic);
        report(i, outcome);
    }
}

/// Opcodes `cranelift-interpreter` 0.135 leaves `unimplemented!()`: a case using one is not
/// something the interpreter can judge, so it says so instead of panicking.
const UNIMPLEMENTED: &[(Opcode, &str)] = &[
    (Opcode::TryCall, "exceptions"),
    (Opcode::TryCallIndirect, "exceptions"),
    (Opcode::GetExceptionHandlerAddress, "exceptions"),
    (Opcode::StackSwitch, "stack switching"),
    (Opcode::DynamicStackAddr, "dynamic stack slots"),
    (Opcode::ExtractVector, "dynamic vectors"),
    (Opcode::GetFramePointer, "frame introspection"),
    (Opcode::GetStackPointer, "frame introspection"),
    (Opcode::GetReturnAddress, "frame introspection"),
    (Opcode::SequencePoint, "debug sequence points"),
    (Opcode::X86Pshufb, "x86-specific opcodes"),
    (Opcode::Blendv, "x86-specific opcodes"),
    (Opcode::X86Pmulhrsw, "x86-specific opcodes"),
    (Opcode::X86Pmaddubsw, "x86-specific opcodes"),
    (Opcode::X86Cvtt2dq, "x86-specific opcodes"),
];

fn unimplemented(case: &TestCase) -> Option<String> {
    case.functions.iter().find_map(|f| {
        crate::facts::insts(f).find_map(|i| {
            let op = f.dfg.insts[i].opcode();
            UNIMPLEMENTED
                .iter()
                .find(|(o, _)| *o == op)
                .map(|(_, what)| format!("the interpreter does not implement `{op}` ({what})"))
        })
    })
}

/// Checks that `from` and `to` are binary opcodes the `interp-swap` fault can exchange.
pub fn check_swap(from: &str, to: &str) -> anyhow::Result<()> {
    for name in [from, to] {
        let op: Opcode = name
            .parse()
            .map_err(|_| anyhow::anyhow!("`interp-swap`: unknown opcode `{name}`"))?;
        if op.format() != InstructionFormat::Binary {
            anyhow::bail!("`interp-swap`: `{name}` is not a binary opcode");
        }
    }
    Ok(())
}

/// The `interp-swap` fault: every `from` instruction of `f` executes as `to`.
fn swap_opcode(f: &mut Function, from: &str, to: &str) {
    let (Ok(from), Ok(to)) = (from.parse::<Opcode>(), to.parse::<Opcode>()) else {
        return;
    };
    let insts: Vec<_> = f
        .layout
        .blocks()
        .flat_map(|b| f.layout.block_insts(b))
        .collect();
    for inst in insts {
        if let InstructionData::Binary { opcode, args } = f.dfg.insts[inst]
            && opcode == from
        {
            f.dfg.insts[inst] = InstructionData::Binary { opcode: to, args };
        }
    }
}

fn classify(result: Result<ControlFlow, InterpreterError>, returns: &[Type], fuel: u64) -> Outcome {
    match result {
        Ok(ControlFlow::Return(vals)) => {
            match vals
                .iter()
                .zip(returns)
                .map(|(v, ty)| Val::from_data_value_typed(v, *ty))
                .collect::<Option<Vec<_>>>()
                .filter(|v| v.len() == vals.len())
            {
                Some(values) => Outcome::Returned { values },
                None => Outcome::Unsupported {
                    reason: "result type not supported by clif-diff".into(),
                },
            }
        }
        Ok(ControlFlow::Trap(trap)) => Outcome::Trap {
            code: trap_name(&trap),
        },
        Ok(other) => Outcome::Error {
            phase: Phase::Run,
            message: format!("unexpected control flow {other:?}"),
        },
        Err(InterpreterError::FuelExhausted) => Outcome::Timeout {
            limit: format!("{fuel} instructions"),
        },
        Err(e) => {
            let mut message = e.to_string();
            if let Some(src) = std::error::Error::source(&e) {
                message = format!("{message}: {}", first_line(&format!("{src:?}")));
            }
            Outcome::Error {
                phase: Phase::Run,
                message,
            }
        }
    }
}

/// Trap names as the native engines report them (`TrapCode`'s display form).
pub fn trap_name(trap: &CraneliftTrap) -> String {
    match trap {
        CraneliftTrap::User(code) => code.to_string(),
        CraneliftTrap::BadSignature => "bad_sig".into(),
        CraneliftTrap::UnreachableCodeReached => "unreachable".into(),
        CraneliftTrap::HeapMisaligned => "heap_misaligned".into(),
        CraneliftTrap::Debug => "debug".into(),
    }
}
