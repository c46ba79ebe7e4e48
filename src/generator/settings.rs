//! The `set` lines of a case: the settings axis.
//!
//! Besides `opt_level`, `regalloc_algorithm` and the boolean settings of the config (each
//! drawn per case), regalloc2's checker is on in a share of cases (it verifies every allocation,
//! at about twice the allocation time), and two kinds of code layout are drawn in a share of
//! cases, because both move code and stack in ways the default settings never do:
//!
//! * inline stack probes (`enable_probestack`, `probestack_strategy=inline`) with a probe
//!   interval of 2^6 to 2^12 bytes, so that the generator's frames (a few hundred bytes) span
//!   one or several probe intervals: the unrolled probes and the probe loop both run;
//! * padding between basic blocks (`bb_padding_log2_minus_one`), up to 2^(N-1) bytes per block:
//!   at the top of the range a function's branches and calls stretch toward their encodings'
//!   ranges, as in functions far larger than the generator writes (branch islands, veneers,
//!   the relocation range checks of the seed bug's class).
//!
//! Some settings follow from the case rather than chance: `enable_llvm_abi_extensions` for
//! `i128` in signatures, `preserve_frame_pointers` for tail calls, and
//! `enable_multi_ret_implicit_sret` for returns beyond the registers.

use super::config::Config;
use super::signature::Plan;
use arbitrary::{Result, Unstructured};
use cranelift_codegen::ir::{Signature, types};
use cranelift_codegen::isa::CallConv;

/// The settings of a case with `plan`, in `set` line order.
pub fn draw(u: &mut Unstructured, cfg: &Config, plan: &Plan) -> Result<Vec<(String, String)>> {
    let mut settings = Vec::new();
    let mut set = |k: &str, v: String| settings.push((k.to_string(), v));
    if !cfg.opt_levels.is_empty() {
        set("opt_level", u.choose(&cfg.opt_levels)?.clone());
    }
    if !cfg.regalloc_algorithms.is_empty() {
        set(
            "regalloc_algorithm",
            u.choose(&cfg.regalloc_algorithms)?.clone(),
        );
    }
    for name in &cfg.bool_settings {
        let v = if u.ratio(1, 2)? { "true" } else { "false" };
        set(name, v.to_string());
    }
    if u.int_in_range(0..=999u32)? < cfg.regalloc_checker_cases_per_mille {
        set("regalloc_checker", "true".into());
    }
    if u.int_in_range(0..=999u32)? < cfg.probestack_cases_per_mille {
        set("enable_probestack", "true".into());
        set("probestack_strategy", "inline".into());
        set(
            "probestack_size_log2",
            u.int_in_range(6..=12u8)?.to_string(),
        );
    }
    if cfg.max_bb_padding_log2_minus_one > 0
        && u.int_in_range(0..=999u32)? < cfg.bb_padding_cases_per_mille
    {
        let n = u.int_in_range(1..=cfg.max_bb_padding_log2_minus_one)?;
        set("bb_padding_log2_minus_one", n.to_string());
    }

    let sigs: Vec<Signature> = plan.funcs.iter().map(|f| f.signature()).collect();
    let needs_llvm_abi = |s: &Signature| {
        s.params
            .iter()
            .chain(&s.returns)
            .any(|p| match p.value_type {
                types::I128 | types::F128 => true,
                types::F16 => s.call_conv == CallConv::WindowsFastcall,
                _ => false,
            })
    };
    let wide = sigs.iter().any(needs_llvm_abi);
    // Without it x86_64 panics on `i128` or `f128` in a System V signature and on `f16` in a
    // `windows_fastcall` one (documented limits); with it, a third integer return register is
    // used, so sometimes set it anyway.
    if wide || u.ratio(1, 4)? {
        set("enable_llvm_abi_extensions", "true".into());
    }
    // `tls_value` lowers only under a model; `elf_gd` is the one every ELF backend has.
    if plan.data.iter().any(|d| d.tls) {
        set("tls_model", "elf_gd".into());
    }
    // x86_64's tail calls assert that frame pointers are kept (a documented requirement).
    if plan.tail.iter().any(Option::is_some) {
        settings.retain(|(k, _)| k != "preserve_frame_pointers");
        settings.push(("preserve_frame_pointers".to_string(), "true".to_string()));
    }
    // Returns beyond the registers need an implicit return area (`winch` has one return
    // register, so a lone `i128` already needs it).
    let regs_needed = |s: &Signature| {
        s.returns
            .iter()
            .map(|r| r.value_type.bits().div_ceil(64))
            .sum::<u32>()
    };
    if sigs.iter().any(|s| regs_needed(s) > 1) {
        settings.push((
            "enable_multi_ret_implicit_sret".to_string(),
            "true".to_string(),
        ));
    }
    Ok(settings)
}
