//! Signatures whose C counterpart is known, and the values a test passes through them.
//!
//! Not every Cranelift signature has a C twin under the x86-64 System V ABI. The ones kept here
//! do: scalars map to C scalars (`__int128` for `i128`), `sarg(N)` maps to a struct of N/8
//! `uint64_t` passed by value *only when N > 16*, because that is when the ABI passes the struct
//! in memory, which is what `sarg` means. Two results map to a two-member struct whose members
//! sit in separate eightbytes (each is then returned in its own register, as Cranelift returns
//! multiple values); more results have no C equivalent.

use crate::target::Arch;
use cranelift_codegen::ir::{self, AbiParam, ArgumentPurpose, types};
use cranelift_codegen::isa::CallConv;
use rand::Rng;
use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Scalar {
    I8,
    I16,
    I32,
    I64,
    I128,
    F32,
    F64,
}

impl Scalar {
    pub fn bits(self) -> u32 {
        match self {
            Scalar::I8 => 8,
            Scalar::I16 => 16,
            Scalar::I32 | Scalar::F32 => 32,
            Scalar::I64 | Scalar::F64 => 64,
            Scalar::I128 => 128,
        }
    }

    pub fn clif(self) -> ir::Type {
        match self {
            Scalar::I8 => types::I8,
            Scalar::I16 => types::I16,
            Scalar::I32 => types::I32,
            Scalar::I64 => types::I64,
            Scalar::I128 => types::I128,
            Scalar::F32 => types::F32,
            Scalar::F64 => types::F64,
        }
    }

    pub fn is_float(self) -> bool {
        matches!(self, Scalar::F32 | Scalar::F64)
    }

    /// Narrow enough for `uext`/`sext` to mean something.
    pub fn extendable(self) -> bool {
        matches!(self, Scalar::I8 | Scalar::I16 | Scalar::I32)
    }

    pub fn mask(self) -> u128 {
        if self.bits() == 128 {
            u128::MAX
        } else {
            (1u128 << self.bits()) - 1
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Ext {
    None,
    Uext,
    Sext,
}

impl Ext {
    fn apply(self, p: AbiParam) -> AbiParam {
        match self {
            Ext::None => p,
            Ext::Uext => p.uext(),
            Ext::Sext => p.sext(),
        }
    }

    /// `bits` (a value of `width` bits) extended to `to` bits as this extension says; `None`
    /// leaves it as it is (zero above `width`).
    pub fn extend(self, bits: u128, width: u32, to: u32) -> u128 {
        let to_mask = if to == 128 {
            u128::MAX
        } else {
            (1u128 << to) - 1
        };
        match self {
            Ext::Sext if width < 128 && bits >> (width - 1) & 1 == 1 => {
                (bits | !((1u128 << width) - 1)) & to_mask
            }
            _ => bits & to_mask,
        }
    }
}

/// One parameter or result of a C-expressible signature.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Param {
    Scalar(Scalar, Ext),
    /// `i64 sarg(N)`: a C struct of N/8 `uint64_t`, N > 16 and a multiple of 8.
    Struct(u32),
}

impl fmt::Display for Param {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Param::Scalar(s, ext) => {
                write!(f, "{}", s.clif())?;
                match ext {
                    Ext::None => Ok(()),
                    Ext::Uext => write!(f, " uext"),
                    Ext::Sext => write!(f, " sext"),
                }
            }
            Param::Struct(n) => write!(f, "i64 sarg({n})"),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AbiSig {
    pub params: Vec<Param>,
    /// At most two, never `sarg`; an `i128` only alone.
    pub returns: Vec<(Scalar, Ext)>,
}

impl AbiSig {
    /// Why C cannot express this signature on `arch`'s System V ABI, if it cannot.
    ///
    /// x86-64: `sarg(N)` only for N > 16 (smaller structs travel in registers), two results of
    /// any non-`i128` scalars (a struct of two eightbytes). aarch64 (AAPCS64): no `sarg` (the
    /// backend refuses it), no `uext`/`sext` (C callers need not extend, so the attributes model
    /// no C type), and two results only as two integers or two floats of one type (a mixed
    /// struct is not returned in one register of each class). riscv64 (LP64D) and s390x: no
    /// `sarg`, every narrow integer extended (see `extension_expressible`); s390x returns one
    /// scalar, never an `i128` (C returns those through a hidden pointer).
    pub fn c_expressible(&self, arch: Arch) -> Result<(), String> {
        for p in &self.params {
            if let Param::Scalar(s, e) = p {
                extension_expressible(arch, *s, *e)?;
            }
            match (p, arch) {
                (Param::Struct(n), Arch::X86_64) if *n <= 16 || n % 8 != 0 => {
                    return Err(format!(
                        "sarg({n}): C passes structs of 16 bytes or less in registers, and \
                         Cranelift needs multiples of 8"
                    ));
                }
                (Param::Struct(_), Arch::X86_64) => {}
                (Param::Struct(_), _) => {
                    return Err(format!("sarg is not supported on {}", arch.name()));
                }
                (Param::Scalar(_, e), Arch::Aarch64) if *e != Ext::None => {
                    return Err("uext/sext have no C counterpart on aarch64 Linux".into());
                }
                (Param::Scalar(..), _) => {}
            }
        }
        if arch == Arch::Aarch64 && self.returns.iter().any(|r| r.1 != Ext::None) {
            return Err("uext/sext have no C counterpart on aarch64 Linux".into());
        }
        for (s, e) in &self.returns {
            extension_expressible(arch, *s, *e)?;
        }
        if arch == Arch::S390x {
            return match self.returns.as_slice() {
                [] | [_] if !self.returns.iter().any(|r| r.0 == Scalar::I128) => Ok(()),
                [_] => Err("s390x C returns an i128 through a hidden pointer".into()),
                _ => Err(
                    "s390x C returns one scalar (a struct goes through a hidden pointer)".into(),
                ),
            };
        }
        match self.returns.as_slice() {
            [] | [_] => Ok(()),
            [a, b] if a.0 == Scalar::I128 || b.0 == Scalar::I128 => {
                Err("two results including an i128 do not fit two registers".into())
            }
            [_, _] if arch == Arch::X86_64 => Ok(()),
            [a, b] if !a.0.is_float() && !b.0.is_float() => Ok(()),
            [a, b] if a.0 == b.0 => Ok(()),
            [_, _] => Err(format!(
                "{}: a mixed int/float pair of results is not modelled",
                arch.name()
            )),
            [..] => Err("C returns at most two registers' worth of results".into()),
        }
    }

    pub fn clif(&self, call_conv: CallConv) -> ir::Signature {
        let mut sig = ir::Signature::new(call_conv);
        for p in &self.params {
            sig.params.push(match p {
                Param::Scalar(s, e) => e.apply(AbiParam::new(s.clif())),
                Param::Struct(n) => {
                    AbiParam::special(types::I64, ArgumentPurpose::StructArgument(*n))
                }
            });
        }
        for (s, e) in &self.returns {
            sig.returns.push(e.apply(AbiParam::new(s.clif())));
        }
        sig
    }

    /// `(i8 sext, i64 sarg(24)) -> i32, f64`
    pub fn text(&self) -> String {
        let p: Vec<String> = self.params.iter().map(|p| p.to_string()).collect();
        let r: Vec<String> = self
            .returns
            .iter()
            .map(|(s, e)| Param::Scalar(*s, *e).to_string())
            .collect();
        if r.is_empty() {
            format!("({})", p.join(", "))
        } else {
            format!("({}) -> {}", p.join(", "), r.join(", "))
        }
    }
}

impl std::str::FromStr for AbiSig {
    type Err = String;

    /// Parses [`AbiSig::text`]'s form: `(i8 sext, i64 sarg(24)) -> i32, f64`.
    fn from_str(text: &str) -> Result<AbiSig, String> {
        let text = text.trim();
        let (params, rets) = match text.split_once("->") {
            Some((p, r)) => (p.trim(), r.trim()),
            None => (text, ""),
        };
        let params = params
            .strip_prefix('(')
            .and_then(|p| p.strip_suffix(')'))
            .ok_or_else(|| format!("`{text}`: expected `(params) -> results`"))?;
        let split = |list: &str| -> Vec<String> {
            list.split(',')
                .map(|x| x.trim().to_string())
                .filter(|x| !x.is_empty())
                .collect()
        };
        let params = split(params)
            .iter()
            .map(|p| parse_param(p))
            .collect::<Result<Vec<_>, _>>()?;
        let returns = split(rets)
            .iter()
            .map(|r| match parse_param(r)? {
                Param::Scalar(s, e) => Ok((s, e)),
                Param::Struct(_) => Err(format!("`{r}`: results cannot be sarg")),
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(AbiSig { params, returns })
    }
}

fn parse_param(p: &str) -> Result<Param, String> {
    let words: Vec<&str> = p.split_whitespace().collect();
    let scalar = |t: &str| {
        Ok(match t {
            "i8" => Scalar::I8,
            "i16" => Scalar::I16,
            "i32" => Scalar::I32,
            "i64" => Scalar::I64,
            "i128" => Scalar::I128,
            "f32" => Scalar::F32,
            "f64" => Scalar::F64,
            _ => return Err(format!("`{p}`: unknown type `{t}`")),
        })
    };
    match words.as_slice() {
        [t] => Ok(Param::Scalar(scalar(t)?, Ext::None)),
        [t, "uext"] => Ok(Param::Scalar(scalar(t)?, Ext::Uext)),
        [t, "sext"] => Ok(Param::Scalar(scalar(t)?, Ext::Sext)),
        ["i64", sarg] => sarg
            .strip_prefix("sarg(")
            .and_then(|n| n.strip_suffix(')'))
            .and_then(|n| n.parse().ok())
            .map(Param::Struct)
            .ok_or_else(|| format!("`{p}`: expected `i64 sarg(N)`")),
        _ => Err(format!(
            "`{p}`: expected `type [uext|sext]` or `i64 sarg(N)`"
        )),
    }
}

/// A value crossing the boundary: scalar bits (zero above the type's width), or struct words.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Value {
    /// Hex text on the wire: JSON numbers stop at 64 bits.
    Bits(#[serde(with = "hex_bits")] u128),
    Words(Vec<u64>),
}

mod hex_bits {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(v: &u128, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&format_args!("{v:#x}"))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u128, D::Error> {
        let t = String::deserialize(d)?;
        u128::from_str_radix(t.trim_start_matches("0x"), 16).map_err(D::Error::custom)
    }
}

/// A signature with the argument and result values one test passes.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AbiCase {
    pub sig: AbiSig,
    pub args: Vec<Value>,
    pub rets: Vec<Value>,
}

/// Why the extension `e` of a narrow integer `s` has no C type on `arch`, if it has none.
///
/// riscv64 (LP64D) and s390x callers extend every narrow integer to the register's width by its
/// C type's signedness (so a plain, unextended one is no C type there); riscv64 sign-extends
/// 32-bit values even when they are unsigned, so `uext` of an `i32` is none either. aarch64
/// callers need not extend at all (see [`AbiSig::c_expressible`]).
fn extension_expressible(arch: Arch, s: Scalar, e: Ext) -> Result<(), String> {
    if !s.extendable() {
        return Ok(());
    }
    match (arch, s, e) {
        (Arch::Riscv64 | Arch::S390x, _, Ext::None) => Err(format!(
            "{} C extends narrow integers: give `uext` or `sext`",
            arch.name()
        )),
        (Arch::Riscv64, Scalar::I32, Ext::Uext) => {
            Err("riscv64 C sign-extends 32-bit values, unsigned ones too: use `sext`".into())
        }
        _ => Ok(()),
    }
}

/// Limits of the random signatures.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    /// The ABI whose C-expressible domain the signatures stay in.
    pub arch: Arch,
    pub max_params: usize,
    /// Percent of parameters that are `sarg` structs.
    pub struct_percent: u32,
}

impl Default for Shape {
    fn default() -> Self {
        Shape {
            arch: Arch::X86_64,
            max_params: 20,
            struct_percent: 8,
        }
    }
}

fn scalar(rng: &mut impl Rng, allow_i128: bool) -> Scalar {
    loop {
        let s = match rng.random_range(0..13) {
            0 | 1 => Scalar::I8,
            2 | 3 => Scalar::I16,
            4 | 5 => Scalar::I32,
            6 | 7 => Scalar::I64,
            8 => Scalar::I128,
            9 | 10 => Scalar::F32,
            _ => Scalar::F64,
        };
        if allow_i128 || s != Scalar::I128 {
            return s;
        }
    }
}

fn ext(rng: &mut impl Rng, s: Scalar, arch: Arch) -> Ext {
    if !s.extendable() {
        return Ext::None;
    }
    match arch {
        Arch::X86_64 => match rng.random_range(0..3) {
            0 => Ext::None,
            1 => Ext::Uext,
            _ => Ext::Sext,
        },
        Arch::Aarch64 => Ext::None,
        // An unsigned 32-bit C value is sign-extended on riscv64 too.
        Arch::Riscv64 if s == Scalar::I32 => Ext::Sext,
        Arch::Riscv64 | Arch::S390x => {
            if rng.random_bool(0.5) {
                Ext::Uext
            } else {
                Ext::Sext
            }
        }
    }
}

/// A random C-expressible signature.
pub fn random_sig(rng: &mut impl Rng, shape: Shape) -> AbiSig {
    // Mostly short lists, but often enough past the 6 integer / 8 float registers.
    let n = match rng.random_range(0..4) {
        0 => rng.random_range(0..=4),
        1 | 2 => rng.random_range(0..=10),
        _ => rng.random_range(0..=shape.max_params),
    }
    .min(shape.max_params);
    let params = (0..n)
        .map(|_| {
            if shape.arch == Arch::X86_64 && rng.random_range(0..100) < shape.struct_percent {
                Param::Struct(8 * rng.random_range(3..=16))
            } else {
                let s = scalar(rng, true);
                Param::Scalar(s, ext(rng, s, shape.arch))
            }
        })
        .collect();
    // s390x C returns one scalar, never an i128 (both go through a hidden pointer).
    let one_scalar = shape.arch == Arch::S390x;
    let returns = match rng.random_range(0..20) {
        0..=2 => vec![],
        3..=12 => {
            let s = scalar(rng, !one_scalar);
            vec![(s, ext(rng, s, shape.arch))]
        }
        _ if one_scalar => {
            let s = scalar(rng, false);
            vec![(s, ext(rng, s, shape.arch))]
        }
        _ => loop {
            let two: Vec<(Scalar, Ext)> = (0..2)
                .map(|_| {
                    let s = scalar(rng, false);
                    (s, ext(rng, s, shape.arch))
                })
                .collect();
            let sig = AbiSig {
                params: vec![],
                returns: two.clone(),
            };
            if sig.c_expressible(shape.arch).is_ok() {
                break two;
            }
        },
    };
    AbiSig { params, returns }
}

/// Random bits of `s`'s width, biased to the patterns that expose ABI mistakes (sign bits,
/// all ones, a marker per byte so swapped or shifted halves are visible).
fn scalar_value(rng: &mut impl Rng, s: Scalar) -> u128 {
    let raw: u128 = match rng.random_range(0..6) {
        0 => u128::MAX,
        1 => 1u128 << (s.bits() - 1),
        2 => (0..16u128).fold(0, |acc, i| acc | ((0x11 * (i + 1)) & 0xff) << (8 * i)),
        _ => rng.random(),
    };
    let v = raw & s.mask();
    // A float whose bits are a signalling NaN would still pass through unchanged, but keep to
    // ordinary numbers so that a failure is never about NaN canonicalisation.
    match s {
        Scalar::F32 if f32::from_bits(v as u32).is_nan() => v & !(1 << 30),
        Scalar::F64 if f64::from_bits(v as u64).is_nan() => v & !(1 << 62),
        _ => v,
    }
}

pub fn random_case(rng: &mut impl Rng, sig: AbiSig) -> AbiCase {
    let args = sig
        .params
        .iter()
        .map(|p| match p {
            Param::Scalar(s, _) => Value::Bits(scalar_value(rng, *s)),
            Param::Struct(n) => Value::Words((0..n / 8).map(|_| rng.random()).collect()),
        })
        .collect();
    let rets = sig
        .returns
        .iter()
        .map(|(s, _)| Value::Bits(scalar_value(rng, *s)))
        .collect();
    AbiCase { sig, args, rets }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn extensions_extend() {
        assert_eq!(Ext::Sext.extend(0x80, 8, 32), 0xffff_ff80);
        assert_eq!(Ext::Uext.extend(0x80, 8, 32), 0x80);
        assert_eq!(Ext::Sext.extend(0x7f, 8, 64), 0x7f);
        assert_eq!(Ext::Sext.extend(0x8000, 16, 64), 0xffff_ffff_ffff_8000);
    }

    #[test]
    fn signatures_round_trip_through_text() {
        let mut rng = rand_pcg::Pcg64::seed_from_u64(3);
        for _ in 0..500 {
            let s = random_sig(&mut rng, Shape::default());
            assert_eq!(s.text().parse::<AbiSig>().unwrap(), s);
        }
        let x64 = |t: &str| t.parse::<AbiSig>().map(|s| s.c_expressible(Arch::X86_64));
        assert!(matches!(x64("(i64 sarg(16))"), Ok(Err(_))));
        assert!(matches!(x64("() -> i64, i64, i64"), Ok(Err(_))));
        assert!(x64("(i7)").is_err());
        let a64 = |t: &str| t.parse::<AbiSig>().unwrap().c_expressible(Arch::Aarch64);
        assert!(a64("(i8, i128, f32) -> f64, f64").is_ok());
        assert!(a64("(i8 sext)").is_err());
        assert!(a64("() -> i64, f64").is_err());
    }

    #[test]
    fn random_signatures_are_c_expressible() {
        let mut rng = rand_pcg::Pcg64::seed_from_u64(7);
        for arch in [Arch::X86_64, Arch::Aarch64] {
            let shape = Shape {
                arch,
                ..Shape::default()
            };
            for _ in 0..2000 {
                let s = random_sig(&mut rng, shape);
                s.c_expressible(arch).unwrap();
                let c = random_case(&mut rng, s);
                assert_eq!(c.args.len(), c.sig.params.len());
            }
        }
    }
}
