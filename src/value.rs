//! Scalar values that cross process boundaries.
//!
//! `DataValue` is what Cranelift's reader and interpreter speak, but it is not serialisable and its
//! equality is not the one a differential oracle wants. [`Val`] is the wire form: integers by value,
//! floats by bit pattern, with an equality under which every NaN equals every other NaN (NaN
//! payloads are not specified by Cranelift) while `+0.0` and `-0.0` still differ.

use cranelift_codegen::data_value::DataValue;
use cranelift_codegen::ir::immediates::{Ieee32, Ieee64};
use cranelift_codegen::ir::{Type, types};
use serde::{Deserialize, Serialize};
use std::fmt;

/// One scalar argument or result.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub enum Val {
    I8(i8),
    I16(i16),
    I32(i32),
    I64(i64),
    /// As a decimal string on the wire: `Outcome` is an internally tagged enum, which serde
    /// buffers through a representation that cannot hold integers beyond 64 bits.
    I128(#[serde(with = "i128_text")] i128),
    /// Bit pattern of an `f32`.
    F32(u32),
    /// Bit pattern of an `f64`.
    F64(u64),
}

impl Val {
    pub fn ty(&self) -> Type {
        match self {
            Val::I8(_) => types::I8,
            Val::I16(_) => types::I16,
            Val::I32(_) => types::I32,
            Val::I64(_) => types::I64,
            Val::I128(_) => types::I128,
            Val::F32(_) => types::F32,
            Val::F64(_) => types::F64,
        }
    }

    /// Oracle equality: bitwise, except that all NaNs are equal.
    pub fn same(&self, other: &Val) -> bool {
        match (self, other) {
            (Val::F32(a), Val::F32(b)) => {
                a == b || (f32::from_bits(*a).is_nan() && f32::from_bits(*b).is_nan())
            }
            (Val::F64(a), Val::F64(b)) => {
                a == b || (f64::from_bits(*a).is_nan() && f64::from_bits(*b).is_nan())
            }
            (a, b) => a.to_bytes_le() == b.to_bytes_le() && a.ty() == b.ty(),
        }
    }

    /// Little-endian bytes of the value, `ty().bytes()` long.
    pub fn to_bytes_le(&self) -> Vec<u8> {
        match *self {
            Val::I8(v) => v.to_le_bytes().to_vec(),
            Val::I16(v) => v.to_le_bytes().to_vec(),
            Val::I32(v) => v.to_le_bytes().to_vec(),
            Val::I64(v) => v.to_le_bytes().to_vec(),
            Val::I128(v) => v.to_le_bytes().to_vec(),
            Val::F32(v) => v.to_le_bytes().to_vec(),
            Val::F64(v) => v.to_le_bytes().to_vec(),
        }
    }

    /// Encodes the value in a target's byte order.
    pub fn to_bytes(&self, big_endian: bool) -> Vec<u8> {
        let mut b = self.to_bytes_le();
        if big_endian {
            b.reverse();
        }
        b
    }

    /// Decodes a value of type `ty` from `bytes` (at least `ty.bytes()` long).
    pub fn from_bytes(ty: Type, bytes: &[u8], big_endian: bool) -> Option<Val> {
        let n = ty.bytes() as usize;
        let mut b = bytes.get(..n)?.to_vec();
        if big_endian {
            b.reverse();
        }
        let mut buf = [0u8; 16];
        buf[..n].copy_from_slice(&b);
        Some(match ty {
            types::I8 => Val::I8(buf[0] as i8),
            types::I16 => Val::I16(i16::from_le_bytes(buf[..2].try_into().ok()?)),
            types::I32 => Val::I32(i32::from_le_bytes(buf[..4].try_into().ok()?)),
            types::I64 => Val::I64(i64::from_le_bytes(buf[..8].try_into().ok()?)),
            types::I128 => Val::I128(i128::from_le_bytes(buf)),
            types::F32 => Val::F32(u32::from_le_bytes(buf[..4].try_into().ok()?)),
            types::F64 => Val::F64(u64::from_le_bytes(buf[..8].try_into().ok()?)),
            _ => return None,
        })
    }

    pub fn from_data_value(v: &DataValue) -> Option<Val> {
        Some(match v {
            DataValue::I8(x) => Val::I8(*x),
            DataValue::I16(x) => Val::I16(*x),
            DataValue::I32(x) => Val::I32(*x),
            DataValue::I64(x) => Val::I64(*x),
            DataValue::I128(x) => Val::I128(*x),
            DataValue::F32(x) => Val::F32(x.bits()),
            DataValue::F64(x) => Val::F64(x.bits()),
            _ => return None,
        })
    }

    pub fn to_data_value(&self) -> DataValue {
        match *self {
            Val::I8(x) => DataValue::I8(x),
            Val::I16(x) => DataValue::I16(x),
            Val::I32(x) => DataValue::I32(x),
            Val::I64(x) => DataValue::I64(x),
            Val::I128(x) => DataValue::I128(x),
            Val::F32(x) => DataValue::F32(Ieee32::with_bits(x)),
            Val::F64(x) => DataValue::F64(Ieee64::with_bits(x)),
        }
    }
}

/// Prints in CLIF run-line syntax, so values can be pasted into `; run:` lines.
impl fmt::Display for Val {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_data_value())
    }
}

mod i128_text {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(v: &i128, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(v)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<i128, D::Error> {
        String::deserialize(d)?.parse().map_err(D::Error::custom)
    }
}

/// Oracle equality of two result lists.
pub fn same_list(a: &[Val], b: &[Val]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.same(y))
}

/// Formats a result list as a run line's right-hand side (`42` or `[1, 2]`).
pub fn display_list(vals: &[Val]) -> String {
    match vals {
        [one] => one.to_string(),
        many => format!(
            "[{}]",
            many.iter()
                .map(|v| v.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nans_are_equal_but_zero_signs_differ() {
        let qnan = Val::F64(f64::NAN.to_bits());
        let other_nan = Val::F64(0x7ff0_0000_0000_0001);
        assert!(qnan.same(&other_nan));
        assert!(!Val::F32(0.0f32.to_bits()).same(&Val::F32((-0.0f32).to_bits())));
        assert!(!Val::I32(1).same(&Val::I64(1)));
    }

    #[test]
    fn wide_values_survive_the_worker_protocol() {
        let o = crate::outcome::Outcome::Returned {
            values: vec![Val::I128(i128::MIN + 7), Val::I128(1 << 100)],
        };
        let back: crate::outcome::Outcome =
            serde_json::from_str(&serde_json::to_string(&o).unwrap()).unwrap();
        let crate::outcome::Outcome::Returned { values } = back else {
            panic!("not a return")
        };
        assert!(same_list(
            &values,
            &[Val::I128(i128::MIN + 7), Val::I128(1 << 100)]
        ));
    }

    #[test]
    fn i128_survives_json_inside_tagged_outcomes() {
        let o = crate::outcome::Outcome::Returned {
            values: vec![Val::I128(-5 << 100), Val::I128(i128::MAX)],
        };
        let back: crate::outcome::Outcome =
            serde_json::from_str(&serde_json::to_string(&o).unwrap()).unwrap();
        assert!(crate::oracle::same_outcome(&o, &back));
    }

    #[test]
    fn bytes_round_trip_both_endians() {
        for v in [
            Val::I16(-2),
            Val::I128(-5 << 70),
            Val::F64(1.5f64.to_bits()),
        ] {
            for be in [false, true] {
                let back = Val::from_bytes(v.ty(), &v.to_bytes(be), be).unwrap();
                assert!(back.same(&v));
            }
        }
    }
}
