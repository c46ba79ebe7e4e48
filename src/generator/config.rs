//! The generator's knobs, in the style of `wasm-smith`: every size is bounded here, every feature
//! can be switched off, and [`Config::for_target`] cuts the domain down to what a backend accepts.
//!
//! A config is plain data, deserialisable from TOML (`clif-diff gen --config FILE`); fields left
//! out keep their defaults.

use crate::target::Arch;
use anyhow::{Result, anyhow, bail};
use cranelift_codegen::ir::{Type, types};
use cranelift_codegen::isa::CallConv;
use serde::{Deserialize, Serialize};
use std::str::FromStr;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
// Fields a TOML file leaves out take the unrestricted defaults; callers then apply
// `restricted_to(arch)`, so a file written for one target still works for another.
#[serde(default = "Config::unrestricted", deny_unknown_fields)]
pub struct Config {
    /// The architecture of the `target` line.
    pub target: String,

    /// Functions per case, the entry included.
    pub min_functions: usize,
    pub max_functions: usize,
    /// Parameters of a non-entry function (register and stack passing both need large lists).
    pub max_params: usize,
    /// Parameters of the entry; all scalars, since a run line supplies them.
    pub max_entry_params: usize,
    pub max_returns: usize,
    /// Value types of parameters, returns and instructions: `i8 i16 i32 i64 i128 f32 f64`.
    pub types: Vec<String>,
    /// Calling conventions to draw from; [`Config::for_target`] removes the illegal ones.
    pub conventions: Vec<String>,
    /// `uext`/`sext` attributes on narrow integer parameters and returns.
    pub extensions: bool,

    /// `sarg(N)` parameters (callee-copied structs).
    pub sarg: bool,
    pub max_sarg_params: usize,
    pub max_sarg_size: u32,
    /// Every `sarg` size is a multiple of this (the x86_64 backend asserts multiples of 8).
    pub sarg_size_multiple: u32,
    /// Give `sarg` parameters to `windows_fastcall` and `preserve_all` functions. Off by
    /// default: cranelift-codegen 0.135.8 (x86_64) calls the `memcpy` that copies the struct
    /// with the *callee's* convention instead of the platform's, so libc's `memcpy` gets its
    /// arguments in the wrong registers (fastcall: crash) or clobbers registers the caller
    /// believes preserved (preserve_all: wrong results). See
    /// `corpus/regressions/x64-sarg-memcpy-*.clif`.
    pub sarg_memcpy_conv_bug: bool,
    /// Plain pointer parameters into the caller's memory, which the callee reads and writes.
    pub pointer_params: bool,
    pub max_pointer_params: usize,

    pub calls: bool,
    /// Direct calls to callees not marked `colocated` (GOT/absolute relocations).
    pub non_colocated_calls: bool,
    /// `func_addr` + `call_indirect`.
    pub call_indirect: bool,
    /// `return_call`/`return_call_indirect` between `tail` functions.
    pub return_call: bool,
    pub max_calls_per_function: usize,

    /// Instructions per function, calls and control flow included.
    pub max_instructions: usize,
    /// Nesting of if/switch/loop regions.
    pub max_depth: usize,
    pub max_blocks: usize,
    pub br_table: bool,
    pub loops: bool,
    pub max_loop_iterations: u32,
    pub max_stack_slots: usize,
    pub max_slot_size: u32,
    pub floats: bool,
    /// `ceil floor trunc nearest`.
    pub float_rounding: bool,
    pub fma: bool,
    /// Allow the float operations above where the backend lowers them to libm calls (x86_64
    /// without `has_sse41`/`has_fma`): the JIT resolves them among the process's symbols, the
    /// object program links libm, and the interpreter computes the opcode itself.
    pub float_libcalls: bool,
    /// Explicit calls of the math libcalls (`call %CeilF32` …, see `libcalls`): imported,
    /// non-colocated functions that the JIT and the linker resolve in libm.
    pub explicit_libcalls: bool,
    /// Calls of the memory libcalls `Memcpy`, `Memmove`, `Memset` and `Memcmp` on in-bounds
    /// ranges of the function's regions (see `libcalls`): the JIT and the linker resolve libc's,
    /// the interpreter models them on its own memory.
    pub memory_libcalls: bool,
    /// `f16` and `f128` parameters and returns of non-entry functions, and values made from
    /// integer bits (`bitcast`) that move through `select`, stack memory and calls (see
    /// `f16_f128`). No arithmetic: x86_64 and riscv64 refuse it, aarch64 and s390x panic.
    pub f16_f128: bool,
    /// ISA flag sets for the `target` line, one drawn per case (`""` is the baseline). Every
    /// set must be supported by the host that runs the cases natively. Empty: the target's
    /// defaults (on x86_64 the baseline, v2 and v3 levels).
    pub isa_flag_sets: Vec<String>,
    /// Guarded `udiv sdiv urem srem`.
    pub int_division: bool,
    /// `atomic_rmw` (every operation), `atomic_cas`, `atomic_load`, `atomic_store` and `fence`
    /// on naturally aligned places of stack slots.
    pub atomics: bool,
    /// Memory flags where they hold in every engine (see `memory`): alias regions on stack
    /// slots, `readonly` and `can_move` on loads from read-only data, `aligned` in data.
    pub memory_flags: bool,
    /// Data objects in the module (writable and read-only, aligned 1 to 16 bytes, random
    /// initial bytes), addressed by `symbol_value` (colocated or not, with offsets), read,
    /// written, and lent to callees as `sarg` sources and pointer arguments.
    pub data: bool,
    pub max_data_objects: usize,
    /// Cases (per thousand) with a thread-local writable object (`tls_value`,
    /// `tls_model=elf_gd`): compared between the interpreter and the object program only, since
    /// `cranelift-jit` has no TLS, hence a small share.
    pub tls_cases_per_mille: u32,
    pub max_data_size: u32,
    /// A table of relocated pointers in data: function pointers that `call_indirect` calls
    /// through, and pointers into other data objects that code follows.
    pub data_tables: bool,
    /// Traps as a feature, in `trap_cases_per_mille` of the cases: `trapz`/`trapnz` with user
    /// codes, `uadd_overflow_trap`, trapping float-to-int conversions, unguarded divisions
    /// (see `traps`). The other cases never trap.
    pub traps: bool,
    pub trap_cases_per_mille: u32,
    /// 128-bit vectors (`i8x16` … `f64x2`) inside function bodies: lane-wise arithmetic,
    /// compares, lane moves, shuffles, widening/narrowing, conversions, reductions, vector
    /// loads and stores (see `simd`). On riscv64 only in cases whose ISA flags have `has_v`.
    pub simd: bool,
    /// Estimated interpreted instructions per run line: bounds loops × calls.
    pub max_dynamic_cost: u64,

    /// Run lines per case.
    pub runs: usize,
    /// `opt_level` values to draw from.
    pub opt_levels: Vec<String>,
    /// `regalloc_algorithm` values to draw from (empty: leave the default).
    pub regalloc_algorithms: Vec<String>,
    /// Boolean settings each set to `true` or `false` at random (one `set` line each).
    pub bool_settings: Vec<String>,
    /// Cases with inline stack probes at a random probe interval (see `settings`).
    pub probestack_cases_per_mille: u32,
    /// Cases compiled with regalloc2's checker (`regalloc_checker`), which verifies every
    /// allocation (a panic there is a finding). It about doubles register allocation time, so
    /// a share of cases rather than half (3%: at 10% a campaign ran 12% slower).
    pub regalloc_checker_cases_per_mille: u32,
    /// Cases with padding between basic blocks, of up to 2^(max - 1) bytes (0: never).
    pub bb_padding_cases_per_mille: u32,
    pub max_bb_padding_log2_minus_one: u8,
}

/// aarch64's default flag sets. Atomics lower to LL/SC loops without LSE and to single
/// instructions with it; return-address signing (A and B keys) and BTI landing pads change
/// every prologue and epilogue.
const AARCH64_FLAG_SETS: &[&str] = &[
    "",
    "has_lse",
    "has_pauth sign_return_address",
    "has_lse has_pauth sign_return_address sign_return_address_all sign_return_address_with_bkey",
    "use_bti",
];

/// riscv64's default flag sets. Vectors lower only with the V extension (qemu runs it); the
/// bit-manipulation extensions replace whole lowering rules; `has_zca` emits compressed
/// instructions. Extensions this qemu cannot run (`emulator::MISSING`) are left out.
const RISCV64_FLAG_SETS: &[&str] = &[
    "",
    "has_v",
    "has_zba has_zbb has_zbs has_zbkb",
    "has_v has_zba has_zbb has_zbs has_zca",
];

/// s390x's default flag sets: the baseline (z14) and the z15 facilities. z17's are beyond qemu.
const S390X_FLAG_SETS: &[&str] = &["", "has_mie3 has_vxrs_ext2"];

impl Default for Config {
    /// The knobs for x86_64, the host clif-diff is developed on.
    fn default() -> Self {
        Config::for_target(Arch::X86_64)
    }
}

impl Config {
    /// Every feature on, every convention listed: not yet cut down to a target.
    pub fn unrestricted() -> Config {
        Config {
            target: "x86_64".into(),
            min_functions: 1,
            max_functions: 6,
            max_params: 24,
            max_entry_params: 10,
            max_returns: 8,
            types: ["i8", "i16", "i32", "i64", "i128", "f32", "f64"]
                .map(String::from)
                .to_vec(),
            conventions: [
                "system_v",
                "fast",
                "tail",
                "windows_fastcall",
                "winch",
                "preserve_all",
                "apple_aarch64",
            ]
            .map(String::from)
            .to_vec(),
            extensions: true,
            sarg: true,
            max_sarg_params: 3,
            max_sarg_size: 64,
            sarg_size_multiple: 8,
            sarg_memcpy_conv_bug: false,
            pointer_params: true,
            max_pointer_params: 2,
            calls: true,
            non_colocated_calls: true,
            call_indirect: true,
            return_call: true,
            max_calls_per_function: 5,
            max_instructions: 80,
            max_depth: 3,
            max_blocks: 16,
            br_table: true,
            loops: true,
            max_loop_iterations: 6,
            max_stack_slots: 3,
            max_slot_size: 64,
            floats: true,
            float_rounding: true,
            fma: true,
            float_libcalls: true,
            explicit_libcalls: true,
            memory_libcalls: true,
            f16_f128: true,
            tls_cases_per_mille: 80,
            isa_flag_sets: Vec::new(),
            int_division: true,
            atomics: true,
            data: true,
            max_data_objects: 3,
            max_data_size: 64,
            data_tables: true,
            simd: true,
            memory_flags: true,
            traps: true,
            trap_cases_per_mille: 150,
            max_dynamic_cost: 200_000,
            runs: 4,
            opt_levels: ["none", "speed", "speed_and_size"]
                .map(String::from)
                .to_vec(),
            regalloc_algorithms: ["backtracking", "single_pass"].map(String::from).to_vec(),
            bool_settings: [
                "enable_alias_analysis",
                "enable_nan_canonicalization",
                "preserve_frame_pointers",
                // Object files without it carry absolute relocations in code, linked non-PIE
                // (the JIT always compiles with `is_pic=false`).
                "is_pic",
            ]
            .map(String::from)
            .to_vec(),
            probestack_cases_per_mille: 80,
            regalloc_checker_cases_per_mille: 30,
            bb_padding_cases_per_mille: 100,
            max_bb_padding_log2_minus_one: 18,
        }
    }

    /// The default knobs, restricted to what `arch`'s backend accepts.
    pub fn for_target(arch: Arch) -> Config {
        Config::unrestricted().restricted_to(arch)
    }

    /// The cargo-fuzz targets' knobs: every feature of [`Config::for_target`], at a third of its
    /// sizes. libFuzzer's guidance is worth what its executions per second are, and it grows
    /// cases by mutation where a campaign draws big ones at once.
    pub fn for_libfuzzer(arch: Arch) -> Config {
        Config {
            max_functions: 3,
            max_params: 12,
            max_entry_params: 6,
            max_returns: 4,
            max_calls_per_function: 3,
            max_instructions: 30,
            max_blocks: 8,
            max_loop_iterations: 4,
            max_dynamic_cost: 20_000,
            runs: 2,
            ..Config::unrestricted()
        }
        .restricted_to(arch)
    }

    /// Cuts this config down to `arch`'s legal domain, keeping every other choice.
    pub fn restricted_to(mut self, arch: Arch) -> Config {
        self.conventions.retain(|c| match CallConv::from_str(c) {
            Ok(cc) => convention_legal(arch, cc),
            Err(_) => true, // reported by `validate`
        });
        self.target = arch.name().to_string();
        if self.isa_flag_sets.is_empty() {
            self.isa_flag_sets = match arch {
                Arch::X86_64 => X86_64_LEVELS.iter().map(|s| s.to_string()).collect(),
                Arch::Aarch64 => AARCH64_FLAG_SETS.iter().map(|s| s.to_string()).collect(),
                Arch::Riscv64 => RISCV64_FLAG_SETS.iter().map(|s| s.to_string()).collect(),
                Arch::S390x => S390X_FLAG_SETS.iter().map(|s| s.to_string()).collect(),
            };
            // Native runs only draw what this CPU has (a SIGILL is no Cranelift bug); a
            // config that asks for more explicitly gets it compiled, and reported as skipped.
            self.isa_flag_sets
                .retain(|set| crate::target::host_runs(arch, set));
        }
        match arch {
            Arch::X86_64 => {
                // The x64 ABI code asserts `size % 8 == 0` for struct arguments.
                self.sarg_size_multiple = lcm(self.sarg_size_multiple.max(1), 8);
                self.max_sarg_size = self.max_sarg_size.max(self.sarg_size_multiple);
            }
            // Only the x86_64 backend implements `sarg`.
            Arch::Aarch64 | Arch::Riscv64 | Arch::S390x => self.sarg = false,
        }
        self
    }

    pub fn arch(&self) -> Result<Arch> {
        self.target.parse()
    }

    /// Checks names and bounds; `generate` relies on a valid config.
    pub fn validate(&self) -> Result<()> {
        let arch = self.arch()?;
        if self.types().is_empty() {
            bail!("config: `types` must name at least one type");
        }
        if !self.types().iter().any(|t| t.is_int() && t.bits() <= 64) {
            bail!("config: `types` needs an integer type of at most 64 bits");
        }
        for t in &self.types {
            parse_type(t)?;
        }
        for c in &self.conventions {
            let cc =
                CallConv::from_str(c).map_err(|_| anyhow!("config: unknown convention `{c}`"))?;
            if !convention_legal(arch, cc) {
                bail!("config: convention `{c}` is not usable on {}", arch.name());
            }
        }
        if self
            .conventions()
            .iter()
            .all(|c| *c == CallConv::PreserveAll)
        {
            bail!("config: `conventions` needs one that can return values");
        }
        if self.min_functions == 0 || self.min_functions > self.max_functions {
            bail!("config: need 1 <= min_functions <= max_functions");
        }
        if self.sarg
            && (self.sarg_size_multiple == 0 || self.max_sarg_size < self.sarg_size_multiple)
        {
            bail!("config: need 0 < sarg_size_multiple <= max_sarg_size");
        }
        if self.sarg && arch == Arch::X86_64 && !self.sarg_size_multiple.is_multiple_of(8) {
            bail!("config: x86_64 needs sarg sizes that are multiples of 8");
        }
        if self.sarg && arch != Arch::X86_64 {
            bail!("config: `sarg` is only supported on x86_64");
        }
        if self.max_slot_size < 16 {
            bail!("config: max_slot_size must be at least 16 (an i128)");
        }
        if self.data && self.max_data_size == 0 {
            bail!("config: max_data_size must be at least 1 when `data` is on");
        }
        if self.isa_flag_sets.is_empty() {
            bail!("config: `isa_flag_sets` needs at least one set (\"\" for the baseline)");
        }
        if self.runs == 0 || self.max_returns == 0 {
            bail!("config: need at least one run line and one return value");
        }
        Ok(())
    }

    /// The enabled value types, in a fixed order.
    pub fn types(&self) -> Vec<Type> {
        let mut out: Vec<Type> = self
            .types
            .iter()
            .filter_map(|t| parse_type(t).ok())
            .filter(|t| self.floats || !t.is_float())
            .collect();
        out.sort_by_key(|t| (t.is_float(), t.bits()));
        out.dedup();
        out
    }

    pub fn conventions(&self) -> Vec<CallConv> {
        self.conventions
            .iter()
            .filter_map(|c| CallConv::from_str(c).ok())
            .collect()
    }
}

pub fn parse_type(name: &str) -> Result<Type> {
    Ok(match name {
        "i8" => types::I8,
        "i16" => types::I16,
        "i32" => types::I32,
        "i64" => types::I64,
        "i128" => types::I128,
        "f32" => types::F32,
        "f64" => types::F64,
        _ => bail!("config: unknown type `{name}` (i8 i16 i32 i64 i128 f32 f64)"),
    })
}

/// x86-64 baseline, v2 and v3 feature levels (v3: Haswell and later, 2013+).
pub const X86_64_LEVELS: [&str; 3] = [
    "",
    "has_sse3 has_ssse3 has_sse41 has_sse42 has_popcnt",
    "has_sse3 has_ssse3 has_sse41 has_sse42 has_popcnt has_avx has_avx2 has_fma has_bmi1 \
     has_bmi2 has_lzcnt",
];

/// Whether Cranelift's backend for `arch` accepts functions of convention `cc` (on Linux).
pub fn convention_legal(arch: Arch, cc: CallConv) -> bool {
    match cc {
        CallConv::SystemV | CallConv::Fast | CallConv::Tail => true,
        CallConv::WindowsFastcall | CallConv::Winch | CallConv::PreserveAll => arch == Arch::X86_64,
        CallConv::AppleAarch64 => arch == Arch::Aarch64,
        CallConv::Probestack => false,
    }
}

fn lcm(a: u32, b: u32) -> u32 {
    fn gcd(a: u32, b: u32) -> u32 {
        if b == 0 { a } else { gcd(b, a % b) }
    }
    a / gcd(a, b) * b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_libfuzzer_config_is_valid_everywhere() {
        for arch in [Arch::X86_64, Arch::Aarch64, Arch::Riscv64, Arch::S390x] {
            let c = Config::for_libfuzzer(arch);
            c.validate().unwrap();
            assert!(c.max_instructions < Config::for_target(arch).max_instructions);
        }
    }

    #[test]
    fn targets_restrict_the_domain() {
        let x = Config::for_target(Arch::X86_64);
        assert_eq!(x, Config::default());
        assert!(x.sarg && x.sarg_size_multiple.is_multiple_of(8));
        assert!(!x.conventions().contains(&CallConv::AppleAarch64));
        x.validate().unwrap();
        let a = Config::for_target(Arch::Aarch64);
        assert!(!a.sarg);
        assert!(a.conventions().contains(&CallConv::AppleAarch64));
        assert!(!a.conventions().contains(&CallConv::WindowsFastcall));
        a.validate().unwrap();
        for arch in [Arch::Riscv64, Arch::S390x] {
            let c = Config::for_target(arch);
            assert!(!c.sarg);
            c.validate().unwrap();
        }
    }

    #[test]
    fn toml_overrides_keep_other_defaults() {
        let c: Config =
            toml::from_str("max_functions = 2\ntypes = [\"i32\"]\nsarg = false\n").unwrap();
        let c = c.restricted_to(Arch::X86_64);
        assert_eq!(c.max_functions, 2);
        assert_eq!(c.types(), vec![types::I32]);
        assert_eq!(c.max_params, Config::default().max_params);
        c.validate().unwrap();
        assert!(toml::from_str::<Config>("no_such_knob = 1").is_err());
        let bad: Config = toml::from_str("sarg_size_multiple = 4").unwrap();
        assert!(bad.validate().is_err(), "x86_64 needs multiples of 8");
        assert_eq!(bad.restricted_to(Arch::X86_64).sarg_size_multiple, 8);
    }
}
