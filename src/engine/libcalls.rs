//! The interpreter's model of the libcalls Cranelift emits.
//!
//! Upstream's interpreter has no libcall handler unless one is installed: a `call %CeilF32`
//! traps `unreachable` there while both native engines call libm. The math libcalls are modelled
//! here with Rust's own operations (which are IEEE-exact, as libm's are for these), and so is
//! `X86Pshufb`, the one an embedder provides. The memory libcalls (`Memcpy`, `Memmove`, `Memset`,
//! `Memcmp`) need the interpreter's memory, which a libcall handler never sees: [`memory_call`]
//! runs them on the state before the instruction reaches `step`. Libcalls that need the thread
//! (`ElfTlsGetAddr`, …) have no model: the run is reported `unsupported`, never a trap the
//! native engines would disagree with.

use cranelift_codegen::data_value::DataValue;
use cranelift_codegen::ir::{Function, Inst, LibCall, MemFlagsData, TrapCode, types};
use cranelift_interpreter::address::Address;
use cranelift_interpreter::interpreter::LibCallValues;
use cranelift_interpreter::state::{MemoryError, State};
use cranelift_interpreter::step::{ControlFlow, CraneliftTrap};
use std::cell::Cell;

thread_local! {
    /// The libcall the last interpretation stopped at for want of a model. The handler is a plain
    /// `fn` (the interpreter's type), so it reports through the thread it runs on.
    static UNMODELLED: Cell<Option<LibCall>> = const { Cell::new(None) };
}

/// Installed with `InterpreterState::with_libcall_handler`.
pub fn handler(libcall: LibCall, args: LibCallValues) -> Result<LibCallValues, CraneliftTrap> {
    match eval(libcall, &args) {
        Some(v) => Ok(LibCallValues::from_iter([v])),
        None => {
            UNMODELLED.with(|u| u.set(Some(libcall)));
            Err(CraneliftTrap::UnreachableCodeReached)
        }
    }
}

/// Forgets an earlier unmodelled libcall; call before each interpretation.
pub fn reset() {
    UNMODELLED.with(|u| u.set(None));
}

/// The libcall the last interpretation needed and could not model, if any.
pub fn unmodelled() -> Option<LibCall> {
    UNMODELLED.with(|u| u.get())
}

fn eval(libcall: LibCall, args: &[DataValue]) -> Option<DataValue> {
    use DataValue::{F32, F64};
    use cranelift_codegen::ir::immediates::{Ieee32, Ieee64};
    let f32s = |f: fn(f32) -> f32, a: &Ieee32| F32(Ieee32::with_float(f(a.as_f32())));
    let f64s = |f: fn(f64) -> f64, a: &Ieee64| F64(Ieee64::with_float(f(a.as_f64())));
    Some(match (libcall, args) {
        (LibCall::CeilF32, [F32(a)]) => f32s(f32::ceil, a),
        (LibCall::CeilF64, [F64(a)]) => f64s(f64::ceil, a),
        (LibCall::FloorF32, [F32(a)]) => f32s(f32::floor, a),
        (LibCall::FloorF64, [F64(a)]) => f64s(f64::floor, a),
        (LibCall::TruncF32, [F32(a)]) => f32s(f32::trunc, a),
        (LibCall::TruncF64, [F64(a)]) => f64s(f64::trunc, a),
        // `nearbyint` in the default rounding mode: ties to even.
        (LibCall::NearestF32, [F32(a)]) => f32s(f32::round_ties_even, a),
        (LibCall::NearestF64, [F64(a)]) => f64s(f64::round_ties_even, a),
        (LibCall::FmaF32, [F32(a), F32(b), F32(c)]) => F32(Ieee32::with_float(
            a.as_f32().mul_add(b.as_f32(), c.as_f32()),
        )),
        (LibCall::FmaF64, [F64(a), F64(b), F64(c)]) => F64(Ieee64::with_float(
            a.as_f64().mul_add(b.as_f64(), c.as_f64()),
        )),
        (LibCall::X86Pshufb, [DataValue::V128(a), DataValue::V128(b)]) => {
            DataValue::V128(pshufb(*a, *b))
        }
        _ => return None,
    })
}

/// Runs `inst` of `f` on `state` when it calls a memory libcall: `Assign` of its results (the
/// destination pointer, or `memcmp`'s -1, 0 or 1: C fixes only the sign, and the generator and
/// `facts::memory` only ever compare it with zero), or the heap-out-of-bounds trap the
/// interpreter gives any access outside its memory. `None` for every other instruction.
///
/// Bytes are read in full before any is written, which is `memmove`; `memcpy` of overlapping
/// ranges is undefined, and `facts::memory` keeps cases from doing it.
pub fn memory_call<'a>(
    state: &mut dyn State<'a>,
    f: &Function,
    inst: Inst,
) -> Option<ControlFlow<'a>> {
    let libcall = crate::facts::memory_libcall(f, inst)?;
    let args: Vec<DataValue> = f
        .dfg
        .inst_args(inst)
        .iter()
        .map(|&v| state.current_frame().get(v).clone())
        .collect();
    let result = match (libcall, &args[..]) {
        (LibCall::Memcpy | LibCall::Memmove, [dst, src, n]) => read(state, src, n)
            .and_then(|bytes| write(state, dst, &bytes))
            .map(|()| dst.clone()),
        (LibCall::Memset, [dst, c, n]) => int(n).and_then(|n| {
            let byte = int(c)? as u8;
            write(state, dst, &vec![byte; n as usize]).map(|()| dst.clone())
        }),
        (LibCall::Memcmp, [a, b, n]) => read(state, a, n).and_then(|x| {
            let y = read(state, b, n)?;
            Ok(DataValue::I32(x.cmp(&y) as i32))
        }),
        _ => Err(MemoryError::InvalidAddress(DataValue::I64(0))),
    };
    Some(match result {
        Ok(v) => ControlFlow::Assign([v].into_iter().collect()),
        Err(_) => ControlFlow::Trap(CraneliftTrap::User(TrapCode::HEAP_OUT_OF_BOUNDS)),
    })
}

fn int(v: &DataValue) -> Result<i64, MemoryError> {
    match *v {
        DataValue::I32(x) => Ok(i64::from(x)),
        DataValue::I64(x) => Ok(x),
        _ => Err(MemoryError::InvalidAddress(v.clone())),
    }
}

/// Byte `i` of the memory `p` points to: the interpreter's addresses are plain integers in
/// which the offset is the low field, as `iadd` on a pointer treats them.
fn byte_address(p: &DataValue, i: i64) -> Result<Address, MemoryError> {
    Address::try_from(DataValue::I64(int(p)?.wrapping_add(i)))
}

fn read<'a>(state: &dyn State<'a>, p: &DataValue, n: &DataValue) -> Result<Vec<u8>, MemoryError> {
    (0..int(n)?)
        .map(
            |i| match state.checked_load(byte_address(p, i)?, types::I8, MemFlagsData::new())? {
                DataValue::I8(b) => Ok(b as u8),
                other => Err(MemoryError::InvalidAddress(other)),
            },
        )
        .collect()
}

fn write<'a>(state: &mut dyn State<'a>, p: &DataValue, bytes: &[u8]) -> Result<(), MemoryError> {
    for (i, &b) in bytes.iter().enumerate() {
        let addr = byte_address(p, i as i64)?;
        state.checked_store(addr, DataValue::I8(b as i8), MemFlagsData::new())?;
    }
    Ok(())
}

/// x86's `pshufb`: each byte of `b` selects a byte of `a` (low four bits), or zero (high bit).
pub fn pshufb(a: [u8; 16], b: [u8; 16]) -> [u8; 16] {
    std::array::from_fn(|i| {
        if b[i] & 0x80 != 0 {
            0
        } else {
            a[(b[i] & 15) as usize]
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use cranelift_codegen::ir::immediates::{Ieee32, Ieee64};

    fn f32v(x: f32) -> DataValue {
        DataValue::F32(Ieee32::with_float(x))
    }

    #[test]
    fn math_libcalls_round_as_libm_does() {
        let one = |lc, x| handler(lc, LibCallValues::from_iter([f32v(x)])).unwrap()[0].clone();
        assert_eq!(one(LibCall::CeilF32, -0.5), f32v(-0.0));
        assert_eq!(one(LibCall::FloorF32, -0.5), f32v(-1.0));
        assert_eq!(one(LibCall::TruncF32, -1.7), f32v(-1.0));
        // Ties go to even, unlike `f32::round`.
        assert_eq!(one(LibCall::NearestF32, 2.5), f32v(2.0));
        assert_eq!(one(LibCall::NearestF32, 3.5), f32v(4.0));
        let fma = handler(
            LibCall::FmaF64,
            LibCallValues::from_iter([
                DataValue::F64(Ieee64::with_float(0.1)),
                DataValue::F64(Ieee64::with_float(10.0)),
                DataValue::F64(Ieee64::with_float(-1.0)),
            ]),
        )
        .unwrap();
        // Fused: the product is not rounded before the add (an unfused one gives exactly 0).
        assert_eq!(
            fma[0],
            DataValue::F64(Ieee64::with_float(0.1f64.mul_add(10.0, -1.0)))
        );
        assert_ne!(fma[0], DataValue::F64(Ieee64::with_float(0.1 * 10.0 - 1.0)));
    }

    #[test]
    fn a_libcall_without_a_model_is_reported_not_guessed() {
        reset();
        assert!(handler(LibCall::Probestack, LibCallValues::new()).is_err());
        assert_eq!(unmodelled(), Some(LibCall::Probestack));
        reset();
        assert_eq!(unmodelled(), None);
    }
}
