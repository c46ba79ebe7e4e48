//! Run-line values that cross process boundaries: scalars of every CLIF type and 128-bit vectors.
//!
//! `DataValue` is what Cranelift's reader and interpreter speak, but it is not serialisable and its
//! equality is not the one a differential oracle wants. [`Val`] is the wire form: integers by value,
//! floats by bit pattern, with an equality under which every NaN equals every other NaN (NaN
//! payloads are not specified by Cranelift) while `+0.0` and `-0.0` still differ.

use cranelift_codegen::data_value::DataValue;
use cranelift_codegen::ir::immediates::{Ieee16, Ieee32, Ieee64, Ieee128};
use cranelift_codegen::ir::{Type, types};
use serde::{Deserialize, Serialize};
use std::fmt;

/// One argument or result.
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
    /// Bit pattern of an `f16`.
    F16(u16),
    /// Bit pattern of an `f128` (a decimal string on the wire, as `I128`).
    F128(#[serde(with = "u128_text")] u128),
    /// A vector of up to 128 bits: its lanes, and its bytes as a little-endian number (lane 0 in
    /// the low bits, as `DataValue::V128` and its narrower kin lay them out).
    Vector(Lanes, #[serde(with = "u128_text")] u128),
}

/// The lane shape of a vector value: `count` lanes of `lane`, 128 bits at most.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lanes {
    pub lane: Lane,
    pub count: u8,
}

/// A vector lane type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Lane {
    I8,
    I16,
    I32,
    I64,
    F16,
    F32,
    F64,
}

impl Lanes {
    pub fn of(ty: Type) -> Option<Lanes> {
        if !ty.is_vector() || ty.bits() > 128 {
            return None;
        }
        let lane = match ty.lane_type() {
            types::I8 => Lane::I8,
            types::I16 => Lane::I16,
            types::I32 => Lane::I32,
            types::I64 => Lane::I64,
            types::F16 => Lane::F16,
            types::F32 => Lane::F32,
            types::F64 => Lane::F64,
            _ => return None,
        };
        Some(Lanes {
            lane,
            count: ty.lane_count() as u8,
        })
    }

    pub fn ty(self) -> Type {
        let lane = match self.lane {
            Lane::I8 => types::I8,
            Lane::I16 => types::I16,
            Lane::I32 => types::I32,
            Lane::I64 => types::I64,
            Lane::F16 => types::F16,
            Lane::F32 => types::F32,
            Lane::F64 => types::F64,
        };
        lane.by(self.count as u32)
            .expect("a vector of at most 128 bits")
    }

    /// Bytes per lane.
    fn width(self) -> usize {
        self.ty().lane_type().bytes() as usize
    }

    /// Bytes of the whole vector.
    fn bytes(self) -> usize {
        self.ty().bytes() as usize
    }
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
            Val::F16(_) => types::F16,
            Val::F128(_) => types::F128,
            Val::Vector(l, _) => l.ty(),
        }
    }

    /// Oracle equality: bitwise, except that all NaNs are equal (lane by lane in a vector).
    pub fn same(&self, other: &Val) -> bool {
        match (self, other) {
            (Val::F32(a), Val::F32(b)) => {
                a == b || (f32::from_bits(*a).is_nan() && f32::from_bits(*b).is_nan())
            }
            (Val::F64(a), Val::F64(b)) => {
                a == b || (f64::from_bits(*a).is_nan() && f64::from_bits(*b).is_nan())
            }
            (Val::F16(a), Val::F16(b)) => a == b || (is_nan16(*a) && is_nan16(*b)),
            (Val::F128(a), Val::F128(b)) => a == b || (is_nan128(*a) && is_nan128(*b)),
            (Val::Vector(la, a), Val::Vector(lb, b)) if la == lb => {
                let w = la.width();
                let (a, b) = (a.to_le_bytes(), b.to_le_bytes());
                let n = la.bytes();
                a[..n].chunks(w).zip(b[..n].chunks(w)).all(|(x, y)| {
                    let lane = |c: &[u8]| {
                        Val::from_bytes(la.ty().lane_type(), c, false).expect("lane of a vector")
                    };
                    lane(x).same(&lane(y))
                })
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
            Val::F16(v) => v.to_le_bytes().to_vec(),
            Val::F128(v) => v.to_le_bytes().to_vec(),
            Val::Vector(l, v) => v.to_le_bytes()[..l.bytes()].to_vec(),
        }
    }

    /// Encodes the value in a target's byte order. A vector keeps its lane order and swaps the
    /// bytes within each lane: lane `i` is the `i`-th element in memory on either endianness.
    pub fn to_bytes(&self, big_endian: bool) -> Vec<u8> {
        let mut b = self.to_bytes_le();
        if big_endian {
            match self {
                Val::Vector(l, _) => b.chunks_mut(l.width()).for_each(|c| c.reverse()),
                _ => b.reverse(),
            }
        }
        b
    }

    /// Decodes a value of type `ty` from `bytes` (at least `ty.bytes()` long).
    pub fn from_bytes(ty: Type, bytes: &[u8], big_endian: bool) -> Option<Val> {
        let n = ty.bytes() as usize;
        let mut b = bytes.get(..n)?.to_vec();
        if big_endian {
            match Lanes::of(ty) {
                Some(l) => b.chunks_mut(l.width()).for_each(|c| c.reverse()),
                None => b.reverse(),
            }
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
            types::F16 => Val::F16(u16::from_le_bytes(buf[..2].try_into().ok()?)),
            types::F128 => Val::F128(u128::from_le_bytes(buf)),
            ty => Val::Vector(Lanes::of(ty)?, u128::from_le_bytes(buf)),
        })
    }

    /// A value of type `ty`; vectors need the type, which a `DataValue` does not carry.
    pub fn from_data_value_typed(v: &DataValue, ty: Type) -> Option<Val> {
        match v {
            DataValue::V128(b) => Val::vector(ty, b),
            DataValue::V64(b) => Val::vector(ty, b),
            DataValue::V32(b) => Val::vector(ty, b),
            DataValue::V16(b) => Val::vector(ty, b),
            other => Val::from_data_value(other).filter(|v| v.ty() == ty),
        }
    }

    fn vector(ty: Type, bytes: &[u8]) -> Option<Val> {
        let lanes = Lanes::of(ty).filter(|l| l.bytes() == bytes.len())?;
        let mut buf = [0u8; 16];
        buf[..bytes.len()].copy_from_slice(bytes);
        Some(Val::Vector(lanes, u128::from_le_bytes(buf)))
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
            DataValue::F16(x) => Val::F16(x.bits()),
            DataValue::F128(x) => Val::F128(x.bits()),
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
            Val::F16(x) => DataValue::F16(Ieee16::with_bits(x)),
            Val::F128(x) => DataValue::F128(Ieee128::with_bits(x)),
            Val::Vector(l, x) => {
                let b = x.to_le_bytes();
                match l.bytes() {
                    16 => DataValue::V128(b),
                    8 => DataValue::V64(b[..8].try_into().unwrap()),
                    4 => DataValue::V32(b[..4].try_into().unwrap()),
                    _ => DataValue::V16(b[..2].try_into().unwrap()),
                }
            }
        }
    }
}

fn is_nan16(bits: u16) -> bool {
    bits & 0x7c00 == 0x7c00 && bits & 0x03ff != 0
}

fn is_nan128(bits: u128) -> bool {
    let exp = (bits >> 112) & 0x7fff;
    exp == 0x7fff && bits & ((1u128 << 112) - 1) != 0
}

/// Prints in CLIF run-line syntax, so values can be pasted into `; run:` lines (a vector as its
/// lanes, `[1 2 3 4]`).
impl fmt::Display for Val {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Val::Vector(l, bits) => {
                let lane_ty = l.ty().lane_type();
                let bytes = bits.to_le_bytes();
                let lanes: Vec<String> = bytes[..l.bytes()]
                    .chunks(l.width())
                    .map(|c| {
                        Val::from_bytes(lane_ty, c, false)
                            .expect("lane of a vector")
                            .to_string()
                    })
                    .collect();
                write!(f, "[{}]", lanes.join(" "))
            }
            v => write!(f, "{}", v.to_data_value()),
        }
    }
}

mod u128_text {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(v: &u128, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(v)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u128, D::Error> {
        String::deserialize(d)?.parse().map_err(D::Error::custom)
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

/// The widest integer type of at most 64 bits that fits in `bytes` bytes: the step of the
/// word-by-word copies, fills and reads of memory regions (generator, `sarg` copies, data resets).
pub fn word_within(bytes: u32) -> cranelift_codegen::ir::Type {
    use cranelift_codegen::ir::types;
    match bytes {
        n if n >= 8 => types::I64,
        n if n >= 4 => types::I32,
        n if n >= 2 => types::I16,
        _ => types::I8,
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

    fn lanes(ty: Type) -> Lanes {
        Lanes::of(ty).unwrap()
    }

    #[test]
    fn narrow_vectors_are_values_of_their_own_width() {
        let i16x4 = Lanes::of(types::I16X4).unwrap();
        let v = Val::from_data_value_typed(&DataValue::V64([1, 0, 2, 0, 3, 0, 4, 0]), types::I16X4)
            .unwrap();
        assert_eq!(v.to_string(), "[1 2 3 4]");
        assert_eq!(v.to_bytes(true), [0, 1, 0, 2, 0, 3, 0, 4]);
        assert!(matches!(v.to_data_value(), DataValue::V64(_)));
        assert_eq!(v.ty(), types::I16X4);
        assert!(matches!(v, Val::Vector(l, _) if l == i16x4));
        // A 64-bit vector is not the 128-bit one with the same low bits.
        assert!(!v.same(&Val::Vector(
            Lanes::of(types::I16X8).unwrap(),
            0x0004_0003_0002_0001
        )));
    }

    #[test]
    fn vectors_keep_lane_order_and_swap_within_lanes_on_big_endian() {
        // Lanes [1 2 3 4] of an i32x4: lane 0 in the low bits.
        let v = Val::Vector(lanes(types::I32X4), 0x00000004_00000003_00000002_00000001);
        assert_eq!(&v.to_bytes(false)[..8], &[1, 0, 0, 0, 2, 0, 0, 0]);
        assert_eq!(&v.to_bytes(true)[..8], &[0, 0, 0, 1, 0, 0, 0, 2]);
        for be in [false, true] {
            let back = Val::from_bytes(types::I32X4, &v.to_bytes(be), be).unwrap();
            assert!(back.same(&v));
        }
        assert_eq!(v.to_string(), "[1 2 3 4]");
    }

    #[test]
    fn vector_equality_is_per_lane_for_floats_and_typed() {
        let nan = f32::NAN.to_bits() as u128;
        let other_nan = 0x7fc0_0001u128;
        let a = Val::Vector(lanes(types::F32X4), nan | (1.0f32.to_bits() as u128) << 32);
        let b = Val::Vector(
            lanes(types::F32X4),
            other_nan | (1.0f32.to_bits() as u128) << 32,
        );
        assert!(a.same(&b));
        let c = Val::Vector(lanes(types::F32X4), nan | (2.0f32.to_bits() as u128) << 32);
        assert!(!a.same(&c));
        // The same bits under another lane type are another value.
        assert!(!Val::Vector(lanes(types::I32X4), 5).same(&Val::Vector(lanes(types::I64X2), 5)));
        // Half and quad floats: NaNs equal, zero signs differ.
        assert!(Val::F16(0x7e00).same(&Val::F16(0x7c01)));
        assert!(!Val::F16(0).same(&Val::F16(0x8000)));
        assert!(Val::F128(0x7fff_8000u128 << 96).same(&Val::F128((0x7fffu128 << 112) | 1)));
    }

    #[test]
    fn vectors_round_trip_through_run_lines() {
        let text = "test interpret\ntest run\ntarget x86_64\n\nfunction %f(f64x2, i8x16) -> f64x2 {\nblock0(v0: f64x2, v1: i8x16):\n    return v0\n}\n; run: %f([0x1.0 -0x0.0], 0x0102030405060708090a0b0c0d0e0f10) == [0x1.0 -0x0.0]\n";
        let case = crate::case::TestCase::parse(text).unwrap();
        let again = crate::case::TestCase::parse(&case.to_text()).unwrap();
        assert!(same_list(&case.runs[0].args, &again.runs[0].args));
        assert!(
            matches!(case.runs[0].args[1], Val::Vector(l, b) if l == lanes(types::I8X16) && b & 0xff == 0x10)
        );
        assert!(
            again.to_text().contains("[0x1.0000000000000p0 -0.0]"),
            "{}",
            again.to_text()
        );
    }
}
