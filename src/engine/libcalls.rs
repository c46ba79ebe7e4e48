//! The interpreter's model of the libcalls Cranelift emits.
//!
//! Upstream's interpreter has no libcall handler unless one is installed: a `call %CeilF32`
//! traps `unreachable` there while both native engines call libm. The math libcalls are modelled
//! here with Rust's own operations (which are IEEE-exact, as libm's are for these). Libcalls that
//! need memory or the thread (`Memcpy`, `ElfTlsGetAddr`, …) have no model (`X86Pshufb`, the one
//! an embedder provides, is modelled too): the run is reported
//! `unsupported`, never a trap the native engines would disagree with.

use cranelift_codegen::data_value::DataValue;
use cranelift_codegen::ir::LibCall;
use cranelift_interpreter::interpreter::LibCallValues;
use cranelift_interpreter::step::CraneliftTrap;
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
        assert!(handler(LibCall::Memcpy, LibCallValues::new()).is_err());
        assert_eq!(unmodelled(), Some(LibCall::Memcpy));
        reset();
        assert_eq!(unmodelled(), None);
    }
}
