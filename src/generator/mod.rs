//! Random CLIF modules from bytes: the test cases campaigns feed to the engines.
//!
//! ```text
//!  bytes ──► plan (signatures, conventions, call graph)      signature.rs
//!        ──► data objects and the pointer table              data.rs
//!        ──► bodies, callees first (cost known to callers)   body.rs control.rs calls.rs
//!                                                            arith.rs values.rs memory.rs
//!                                                            observe.rs ops.rs simd.rs
//!                                                            f16_f128.rs libcalls.rs traps.rs
//!        ──► `set` lines: the settings axis                  settings.rs
//!        ──► run lines with edge-case inputs                 inputs.rs
//!        ──► TestCase (round-tripped through its text)
//! ```
//!
//! The generator never produces undefined behaviour, so any disagreement between engines is a
//! finding: divisions are guarded (traps, in the share of cases that has them, are defined
//! behaviour: every engine must trap alike), memory accesses are in bounds and initialised, loops are
//! bounded, the call graph is acyclic, addresses and NaN bits are never observed (except
//! those of `f16`/`f128`, which are only moved, never computed on). Everything
//! that could differ is folded into what the entry returns (see `observe`).
//!
//! The same bytes give the same case, byte for byte; when the bytes run out, `Unstructured`
//! answers with its defaults and the case is still complete and valid.

pub mod arith;
pub mod body;
pub mod calls;
pub mod config;
pub mod control;
pub mod data;
pub mod f16_f128;
pub mod features;
pub mod inputs;
pub mod libcalls;
pub mod memory;
pub mod observe;
pub mod ops;
pub mod settings;
pub mod signature;
pub mod simd;
pub mod stats;
pub mod traps;
pub mod values;

pub use config::Config;

use crate::case::TestCase;
use arbitrary::{Result, Unstructured};
use cranelift_codegen::ir::Function;
use rand::{RngCore, SeedableRng};
use signature::Param;

/// Bytes drawn from the seed's PRNG for [`from_seed`]: more than any case consumes.
const SEED_BYTES: usize = 1 << 16;

/// Directive recording the seed a case came from.
pub const SEED_DIRECTIVE: &str = "gen-seed";

/// Generates one case from `u`. Fails only for a config that [`Config::validate`] rejects.
pub fn generate(u: &mut Unstructured, cfg: &Config) -> Result<TestCase> {
    let case = generate_unprinted(u, cfg)?;
    // What the engines run is the text (the sandbox ships text to its workers), so the case
    // handed out is the one read back from its own text.
    let text = case.to_text();
    Ok(TestCase::parse(&text)
        .unwrap_or_else(|e| panic!("generator bug: generated case does not parse: {e}\n{text}")))
}

/// [`generate`] without the round trip through the case's text: for the libFuzzer targets,
/// where printing and parsing every input costs a sixth of the time. They read a finding back
/// from its text before reporting it (see `fuzzing::confirmed`), so what they report is what
/// replays.
pub fn generate_unprinted(u: &mut Unstructured, cfg: &Config) -> Result<TestCase> {
    if cfg.validate().is_err() {
        return Err(arbitrary::Error::IncorrectFormat);
    }
    let arch = cfg.arch().map_err(|_| arbitrary::Error::IncorrectFormat)?;
    let isa_flags = u.choose(&cfg.isa_flag_sets)?.clone();
    let mut plan = signature::plan(u, cfg)?;
    plan.data = data::plan(u, cfg, &plan)?;
    plan.traps = cfg.traps && u.int_in_range(0..=999u32)? < cfg.trap_cases_per_mille;
    let n = plan.funcs.len();
    let mut costs = vec![0u64; n];
    let mut funcs: Vec<Option<Function>> = vec![None; n];
    // Callees first: a caller budgets its calls with their costs.
    for i in (0..n).rev() {
        let g = body::FuncGen::new(u, cfg, &plan, arch, &isa_flags, i, &costs)?;
        let (f, cost) = g.generate()?;
        costs[i] = cost;
        funcs[i] = Some(f);
    }

    let settings = settings::draw(u, cfg, &plan)?;

    let entry_types: Vec<_> = plan.funcs[0]
        .params
        .iter()
        .map(|p| match *p {
            Param::Value { ty, .. } => ty,
            _ => unreachable!("the entry takes scalars only"),
        })
        .collect();
    let runs = inputs::run_lines(u, &plan.funcs[0].name, &entry_types, cfg.runs)?;

    // Callees first in the file, the entry and its run lines last.
    let functions: Vec<Function> = funcs.into_iter().rev().map(Option::unwrap).collect();
    Ok(TestCase {
        commands: vec!["interpret".into(), "run".into()],
        settings,
        target: Some(format!("{} {isa_flags}", cfg.target).trim_end().to_string()),
        directives: Vec::new(),
        data: plan.data.clone(),
        functions,
        runs,
    })
}

/// The case for `seed`: [`generate`] over bytes from `Pcg64` seeded with it.
///
/// Panics if `cfg` is invalid (check with [`Config::validate`] first).
pub fn from_seed(seed: u64, cfg: &Config) -> TestCase {
    let bytes = seed_bytes(seed);
    let mut u = Unstructured::new(&bytes);
    let mut case = generate(&mut u, cfg).expect("invalid generator config");
    case.set_directive(SEED_DIRECTIVE, seed.to_string());
    case
}

/// The shortest prefix of [`seed_bytes`] (found by doubling from what the generator read) that
/// still yields the same case under `cfg`: a libFuzzer seed input of a typical input's size
/// (one to four KiB) rather than 64 KiB, which would set libFuzzer's `-max_len` and make every
/// mutated input that large.
pub fn seed_input(seed: u64, cfg: &Config) -> Vec<u8> {
    let bytes = seed_bytes(seed);
    let mut u = Unstructured::new(&bytes);
    let want = generate(&mut u, cfg).map(|c| c.to_text()).ok();
    let mut n = (bytes.len() - u.len()).max(1);
    while n < bytes.len() {
        let mut u = Unstructured::new(&bytes[..n]);
        if generate(&mut u, cfg).map(|c| c.to_text()).ok() == want {
            break;
        }
        n = (n * 2).min(bytes.len());
    }
    bytes[..n].to_vec()
}

/// The bytes [`from_seed`] generates from: also a libFuzzer input that yields the same case.
pub fn seed_bytes(seed: u64) -> Vec<u8> {
    let mut rng = rand_pcg::Pcg64::seed_from_u64(seed);
    let mut bytes = vec![0u8; SEED_BYTES];
    rng.fill_bytes(&mut bytes);
    bytes
}

/// An index into `weights`, drawn with probability proportional to its weight.
pub fn weighted(u: &mut Unstructured, weights: &[u32]) -> Result<usize> {
    let total: u32 = weights.iter().sum();
    let mut x = u.int_in_range(0..=total.saturating_sub(1))?;
    for (i, &w) in weights.iter().enumerate() {
        if x < w {
            return Ok(i);
        }
        x -= w;
    }
    Ok(weights.len() - 1)
}
