//! Signatures and the module plan: how many functions, what each takes and returns, in which
//! convention, and who calls whom.
//!
//! Function `i` may only call functions `j > i`, so the call graph is acyclic by construction and
//! no recursion needs a bound. Function 0 is the entry, `%main`; its parameters are scalars because
//! a run line has to supply them. Every other function is called by at least one earlier function
//! (a *required* edge), so that no function is dead.

use super::config::Config;
use super::weighted;
use arbitrary::{Result, Unstructured};
use cranelift_codegen::ir::{AbiParam, ArgumentExtension, ArgumentPurpose, Signature, Type, types};
use cranelift_codegen::isa::CallConv;

/// One parameter as the generator thinks of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Param {
    /// A scalar; the body uses it like any other value.
    Value { ty: Type, ext: ArgumentExtension },
    /// `i64 sarg(N)`: the callee's private copy of N bytes of the caller's memory.
    Sarg(u32),
    /// A plain `i64` pointing to N bytes of the caller's memory, read and written by the callee.
    /// Its value (an address) is never observed, only the memory behind it.
    Ptr(u32),
}

impl Param {
    pub fn abi(&self) -> AbiParam {
        match *self {
            Param::Value { ty, ext } => AbiParam {
                value_type: ty,
                purpose: ArgumentPurpose::Normal,
                extension: ext,
            },
            Param::Sarg(n) => AbiParam::special(types::I64, ArgumentPurpose::StructArgument(n)),
            Param::Ptr(_) => AbiParam::new(types::I64),
        }
    }

    pub fn is_value(&self) -> bool {
        matches!(self, Param::Value { .. })
    }

    /// Bytes of caller memory this parameter refers to.
    pub fn region_size(&self) -> Option<u32> {
        match *self {
            Param::Sarg(n) | Param::Ptr(n) => Some(n),
            Param::Value { .. } => None,
        }
    }
}

#[derive(Clone, Debug)]
pub struct FuncSig {
    /// Test-case name without `%`.
    pub name: String,
    pub conv: CallConv,
    pub params: Vec<Param>,
    pub returns: Vec<(Type, ArgumentExtension)>,
}

impl FuncSig {
    pub fn signature(&self) -> Signature {
        let mut sig = Signature::new(self.conv);
        sig.params = self.params.iter().map(Param::abi).collect();
        sig.returns = self
            .returns
            .iter()
            .map(|&(ty, ext)| AbiParam {
                value_type: ty,
                purpose: ArgumentPurpose::Normal,
                extension: ext,
            })
            .collect();
        sig
    }

    pub fn return_types(&self) -> Vec<Type> {
        self.returns.iter().map(|r| r.0).collect()
    }

    /// Whether a `return_call` may target this function: only scalars, since a tail call tears
    /// down the frame any pointer argument would point into.
    pub fn tail_callable(&self) -> bool {
        self.conv == CallConv::Tail && self.params.iter().all(Param::is_value)
    }
}

/// The shape of the whole module, decided before any body is generated.
#[derive(Clone, Debug)]
pub struct Plan {
    pub funcs: Vec<FuncSig>,
    /// `tail[i] = Some(j)`: function `i` ends in a `return_call` to `j`.
    pub tail: Vec<Option<usize>>,
    /// Callees each function must call at least once.
    pub required: Vec<Vec<usize>>,
    /// The module's data objects (planned after the functions, see `data`).
    pub data: Vec<crate::data::DataObject>,
    /// This case has traps as a feature (see `traps`).
    pub traps: bool,
}

pub fn func_name(i: usize) -> String {
    if i == 0 {
        "main".into()
    } else {
        format!("f{i}")
    }
}

pub fn plan(u: &mut Unstructured, cfg: &Config) -> Result<Plan> {
    let n = if cfg.calls {
        u.int_in_range(cfg.min_functions..=cfg.max_functions)?
    } else {
        1
    };
    let mut funcs: Vec<FuncSig> = Vec::with_capacity(n);
    let mut tail: Vec<Option<usize>> = vec![None; n];
    let mut required: Vec<Vec<usize>> = vec![Vec::new(); n];
    for j in 0..n {
        // A `tail` function without a tail callee yet may hand its frame to this one: copy its
        // returns so the `return_call` type-checks.
        let tail_caller = if cfg.return_call && cfg.max_params > 0 && j > 0 && u.ratio(1, 3)? {
            let open: Vec<usize> = (0..j)
                // The callee inherits the returns, and must have one to carry the checksum.
                .filter(|&i| {
                    funcs[i].conv == CallConv::Tail
                        && tail[i].is_none()
                        && !funcs[i].returns.is_empty()
                })
                .collect();
            if open.is_empty() {
                None
            } else {
                Some(*u.choose(&open)?)
            }
        } else {
            None
        };
        let sig = match tail_caller {
            Some(i) => {
                let s = tail_callee_sig(u, cfg, j, &funcs[i])?;
                tail[i] = Some(j);
                required[i].push(j);
                s
            }
            None => func_sig(u, cfg, j)?,
        };
        if j > 0 && tail_caller.is_none() {
            let caller = u.int_in_range(0..=j - 1)?;
            required[caller].push(j);
        }
        funcs.push(sig);
    }
    Ok(Plan {
        funcs,
        tail,
        required,
        data: Vec::new(),
        traps: false,
    })
}

fn func_sig(u: &mut Unstructured, cfg: &Config, index: usize) -> Result<FuncSig> {
    let entry = index == 0;
    let convs: Vec<CallConv> = cfg
        .conventions()
        .into_iter()
        // The entry must return what it observed; `preserve_all` functions return nothing and
        // are only worth calling when they can write through a pointer.
        .filter(|c| *c != CallConv::PreserveAll || (!entry && cfg.pointer_params))
        .collect();
    let conv = *u.choose(&convs)?;
    let max = if entry {
        cfg.max_entry_params
    } else {
        cfg.max_params
    };
    // Small, medium and large lists, so that both register and stack passing are common.
    let count = match weighted(u, &[3, 3, 4])? {
        0 => u.int_in_range(0..=max.min(4))?,
        1 => u.int_in_range(max.min(5)..=max.min(10))?,
        _ => u.int_in_range(max.min(9)..=max)?,
    };
    let mut params = Vec::with_capacity(count);
    for _ in 0..count {
        params.push(value_param(u, cfg)?);
    }
    if !entry {
        let memcpy_bug = matches!(conv, CallConv::WindowsFastcall | CallConv::PreserveAll);
        let sarg_ok = cfg.sarg && (!memcpy_bug || cfg.sarg_memcpy_conv_bug);
        if sarg_ok && u.ratio(1, 2)? {
            for _ in 0..u.int_in_range(1..=cfg.max_sarg_params.max(1))? {
                let k = u.int_in_range(1..=cfg.max_sarg_size / cfg.sarg_size_multiple)?;
                insert_anywhere(u, &mut params, Param::Sarg(k * cfg.sarg_size_multiple))?;
            }
        }
        let want_ptr = conv == CallConv::PreserveAll || u.ratio(1, 3)?;
        if cfg.pointer_params && want_ptr {
            for _ in 0..u.int_in_range(1..=cfg.max_pointer_params.max(1))? {
                let n = u.int_in_range(1..=cfg.max_slot_size.min(32))?;
                insert_anywhere(u, &mut params, Param::Ptr(n))?;
            }
        }
    }
    let vector_types = super::simd::vector_types(cfg);
    let vectors = !entry && vector_abi(cfg, conv) && !vector_types.is_empty();
    let room = max.saturating_sub(params.len());
    if vectors && room > 0 && u.ratio(1, 3)? {
        for _ in 0..u.int_in_range(1..=room.min(3))? {
            let ty = *u.choose(&vector_types)?;
            let p = Param::Value {
                ty,
                ext: ArgumentExtension::None,
            };
            insert_anywhere(u, &mut params, p)?;
        }
    }
    // Every convention the generator draws passes them (entry functions take scalars only).
    let f16_f128 = !entry && cfg.f16_f128;
    let room = max.saturating_sub(params.len());
    if f16_f128 && room > 0 && u.ratio(1, 8)? {
        for _ in 0..u.int_in_range(1..=room.min(4))? {
            let ty = *u.choose(&super::f16_f128::TYPES)?;
            let p = Param::Value {
                ty,
                ext: ArgumentExtension::None,
            };
            insert_anywhere(u, &mut params, p)?;
        }
    }
    let has_ptr = params.iter().any(|p| matches!(p, Param::Ptr(_)));
    let mut returns = if conv == CallConv::PreserveAll || (has_ptr && u.ratio(1, 6)?) {
        // Nothing returned: the callee is observed through the memory it writes.
        Vec::new()
    } else {
        return_list(u, cfg)?
    };
    if vectors && !returns.is_empty() && returns.len() < cfg.max_returns && u.ratio(1, 4)? {
        let ty = *u.choose(&vector_types)?;
        returns.push((ty, ArgumentExtension::None));
    }
    if f16_f128 && !returns.is_empty() && returns.len() < cfg.max_returns && u.ratio(1, 8)? {
        let ty = *u.choose(&super::f16_f128::TYPES)?;
        let at = u.int_in_range(0..=returns.len())?;
        returns.insert(at, (ty, ArgumentExtension::None));
    }
    Ok(FuncSig {
        name: func_name(index),
        conv,
        params,
        returns,
    })
}

/// Whether vectors may be parameters and returns of a `conv` function. The conventions each
/// backend passes vectors in (x86_64 and aarch64; s390x numbers lanes by convention and riscv64
/// passes no vectors in registers: neither gets vector parameters).
fn vector_abi(cfg: &Config, conv: CallConv) -> bool {
    use crate::target::Arch;
    cfg.simd
        && match cfg.arch() {
            Ok(Arch::X86_64) => matches!(conv, CallConv::SystemV | CallConv::Fast | CallConv::Tail),
            Ok(Arch::Aarch64) => matches!(
                conv,
                CallConv::SystemV | CallConv::Fast | CallConv::Tail | CallConv::AppleAarch64
            ),
            _ => false,
        }
}

/// A `tail` callee of `caller`: same returns, scalar parameters only, at least one integer
/// parameter so the caller can pass on what it observed.
fn tail_callee_sig(
    u: &mut Unstructured,
    cfg: &Config,
    index: usize,
    caller: &FuncSig,
) -> Result<FuncSig> {
    let count = u.int_in_range(1..=cfg.max_params.max(1))?;
    let mut params = vec![Param::Value {
        ty: types::I64,
        ext: ArgumentExtension::None,
    }];
    for _ in 1..count {
        params.push(value_param(u, cfg)?);
    }
    let k = u.choose_index(params.len())?;
    params.swap(0, k);
    Ok(FuncSig {
        name: func_name(index),
        conv: CallConv::Tail,
        params,
        returns: caller.returns.clone(),
    })
}

fn value_param(u: &mut Unstructured, cfg: &Config) -> Result<Param> {
    let ty = value_type(u, cfg)?;
    Ok(Param::Value {
        ty,
        ext: extension(u, cfg, ty)?,
    })
}

/// At least one integer return (to carry the checksum of everything observed), at most
/// `max_returns`, sometimes more than the convention has return registers for.
fn return_list(u: &mut Unstructured, cfg: &Config) -> Result<Vec<(Type, ArgumentExtension)>> {
    let n = match weighted(u, &[5, 3, 2])? {
        0 => 1,
        1 => u.int_in_range(2..=cfg.max_returns.clamp(2, 3))?,
        _ => u.int_in_range(cfg.max_returns.min(3)..=cfg.max_returns)?,
    }
    .min(cfg.max_returns);
    let ints: Vec<Type> = cfg.types().into_iter().filter(|t| t.is_int()).collect();
    let mut out = Vec::with_capacity(n);
    // The checksum travels in the widest integer return: make that wide more often than not.
    let first = if ints.contains(&types::I64) && u.ratio(1, 2)? {
        types::I64
    } else {
        *u.choose(&ints)?
    };
    out.push((first, extension(u, cfg, first)?));
    for _ in 1..n {
        let ty = value_type(u, cfg)?;
        out.push((ty, extension(u, cfg, ty)?));
    }
    let k = u.choose_index(out.len())?;
    out.swap(0, k);
    Ok(out)
}

/// A type from the config, with the common integer widths more likely.
pub fn value_type(u: &mut Unstructured, cfg: &Config) -> Result<Type> {
    let all = cfg.types();
    let weights: Vec<u32> = all
        .iter()
        .map(|t| match *t {
            types::I32 | types::I64 => 4,
            types::I128 => 1,
            _ => 2,
        })
        .collect();
    Ok(all[weighted(u, &weights)?])
}

fn extension(u: &mut Unstructured, cfg: &Config, ty: Type) -> Result<ArgumentExtension> {
    if !cfg.extensions || !ty.is_int() || ty.bits() > 32 {
        return Ok(ArgumentExtension::None);
    }
    Ok(match weighted(u, &[2, 1, 1])? {
        0 => ArgumentExtension::None,
        1 => ArgumentExtension::Uext,
        _ => ArgumentExtension::Sext,
    })
}

fn insert_anywhere(u: &mut Unstructured, params: &mut Vec<Param>, p: Param) -> Result<()> {
    let at = u.int_in_range(0..=params.len())?;
    params.insert(at, p);
    Ok(())
}
