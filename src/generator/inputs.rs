//! Run-line inputs: values that sit on the edges (0, ±1, min, max, powers of two, NaN, ±inf,
//! subnormals, conversion boundaries) more often than chance would put them there.

use super::values::{float_bits32, float_bits64, int_bits};
use super::weighted;
use crate::case::{Expect, RunLine};
use crate::value::Val;
use arbitrary::{Result, Unstructured};
use cranelift_codegen::ir::{Type, types};

pub fn value(u: &mut Unstructured, ty: Type) -> Result<Val> {
    Ok(match ty {
        types::I8 => Val::I8(int_bits(u, 8)? as i8),
        types::I16 => Val::I16(int_bits(u, 16)? as i16),
        types::I32 => Val::I32(int_bits(u, 32)? as i32),
        types::I64 => Val::I64(int_bits(u, 64)?),
        types::I128 => {
            let lo = int_bits(u, 64)?;
            Val::I128(match weighted(u, &[2, 1, 1])? {
                0 => lo as i128,
                1 => (lo as u64) as i128,
                _ => ((int_bits(u, 64)? as i128) << 64) | (lo as u64 as i128),
            })
        }
        types::F32 => Val::F32(float_bits32(u)?),
        types::F64 => Val::F64(float_bits64(u)?),
        other => unreachable!("the generator makes no {other} parameters"),
    })
}

/// `count` `; print:` lines invoking `func` with parameters of `types`.
pub fn run_lines(
    u: &mut Unstructured,
    func: &str,
    tys: &[Type],
    count: usize,
) -> Result<Vec<RunLine>> {
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        let args = tys
            .iter()
            .map(|&t| value(u, t))
            .collect::<Result<Vec<_>>>()?;
        out.push(RunLine {
            func: func.to_string(),
            args,
            expect: Expect::Print,
        });
    }
    Ok(out)
}
