//! Known findings hide only themselves.
//!
//! For every entry of `corpus/known-bugs.toml` with a reproducer: the reproducer, run through
//! the engines, shows a finding the entry explains; and a *near miss* — the same module with
//! just the entry's cause taken away (the `sarg` call made plain, the narrow conversion made
//! wide, an unrelated function with the same convention added) — is not explained by it, judged
//! against the very same finding. A predicate that matched on text anywhere in the file would
//! pass the first check and fail the second.

use clif_diff::case::{TestCase, load};
use clif_diff::harness::{Overrides, Plan, check};
use clif_diff::known::KnownBuckets;
use clif_diff::sandbox::{Sandbox, WorkerCommand};
use std::path::Path;

/// How to take an entry's cause out of its reproducer: text replacements, then text appended.
struct NearMiss {
    id: &'static str,
    replace: &'static [(&'static str, &'static str)],
    append: &'static str,
}

/// An unrelated function for appending: the same convention as a cause, without the cause.
const PLAIN_PRESERVE_ALL: &str = "
function %unrelated(i64) -> i64 preserve_all {
block0(v0: i64):
    return v0
}
";

/// `srem v0, v1` with the divisor guarded as the generator guards it: zero and, with the
/// minimum dividend, -1 become 1.
const GUARDED_SREM_I8: &str = "block0(v0: i8, v1: i8):
    v10 = iconst.i8 1
    v11 = iconst.i8 0
    v12 = icmp eq v1, v11
    v13 = select v12, v10, v1
    v14 = iconst.i8 -1
    v15 = iconst.i8 -128
    v16 = icmp eq v13, v14
    v17 = icmp eq v0, v15
    v18 = band v16, v17
    v19 = select v18, v10, v13
    v2 = srem v0, v19";
const GUARDED_SREM_I64: &str = "block0(v0: i64, v1: i64):
    v10 = iconst.i64 1
    v11 = iconst.i64 0
    v12 = icmp eq v1, v11
    v13 = select v12, v10, v1
    v14 = iconst.i64 -1
    v15 = iconst.i64 0x8000000000000000
    v16 = icmp eq v13, v14
    v17 = icmp eq v0, v15
    v18 = band v16, v17
    v19 = select v18, v10, v13
    v2 = srem v0, v19";

const NEAR_MISSES: &[NearMiss] = &[
    NearMiss {
        id: "jit-x64-far-colocated-reloc",
        // A far call through the GOT/PLT, not a PC-relative near call.
        replace: &[("colocated ", "")],
        append: "",
    },
    NearMiss {
        id: "jit-x64-far-colocated-data-reloc",
        // The data object's address from an absolute (Abs8) relocation instead.
        replace: &[("symbol colocated", "symbol")],
        append: "",
    },
    NearMiss {
        id: "riscv64-swizzle-splat-index-high-bits",
        // The same lanes, but the index vector is not a `splat` (vrgather.vv).
        replace: &[("v2 = splat.i8x16 v1", "v2 = scalar_to_vector.i8x16 v1")],
        append: "",
    },
    NearMiss {
        id: "interp-srem-min-by-minus-one-traps",
        // A signed division instead of a remainder.
        replace: &[("srem", "sdiv")],
        append: "",
    },
    NearMiss {
        id: "interp-srem-min-by-minus-one-traps",
        // The same remainders, with the generator's guard against a zero and a -1 divisor.
        replace: &[
            (
                "block0(v0: i8, v1: i8):\n    v2 = srem v0, v1",
                GUARDED_SREM_I8,
            ),
            (
                "block0(v0: i64, v1: i64):\n    v2 = srem v0, v1",
                GUARDED_SREM_I64,
            ),
        ],
        append: "",
    },
    NearMiss {
        id: "interp-notrap-oob-panics",
        // The same `notrap` load, in bounds.
        replace: &[("v2 = load.i64 notrap v1+8", "v2 = load.i64 notrap v1")],
        append: "",
    },
    NearMiss {
        id: "x64-sarg-memcpy-callee-conv-fastcall",
        // The `sarg` call in the default convention, plus an unrelated fastcall function.
        replace: &[("windows_fastcall", "system_v")],
        append: "
function %other(i64) -> i64 windows_fastcall {
block0(v0: i64):
    return v0
}
",
    },
    NearMiss {
        id: "x64-sarg-memcpy-callee-conv-preserve-all",
        // The module still says `sarg(` and `preserve_all`, but no call passes a `sarg` to a
        // `preserve_all` callee.
        replace: &[("sarg(8)) preserve_all", "sarg(8)) system_v")],
        append: PLAIN_PRESERVE_ALL,
    },
    NearMiss {
        id: "x64-fcvt-sat-narrow",
        replace: &[("fcvt_to_sint_sat.i8 v0", "fcvt_to_sint_sat.i32 v0")],
        append: "",
    },
    NearMiss {
        id: "jit-far-aarch64-adrp",
        replace: &[("colocated ", "")],
        append: "",
    },
    NearMiss {
        id: "jit-far-riscv64-call",
        replace: &[("colocated ", "")],
        append: "",
    },
    NearMiss {
        id: "jit-far-riscv64-pcrel-hi20",
        replace: &[("colocated ", "")],
        append: "",
    },
    NearMiss {
        id: "jit-far-s390x-pcrel32dbl",
        replace: &[("colocated ", "")],
        append: "",
    },
    NearMiss {
        id: "sarg-unsupported-aarch64",
        replace: &[(" sarg(16)", ""), (" sarg(8)", ""), (" sarg(24)", "")],
        append: "",
    },
    NearMiss {
        id: "sarg-unsupported-riscv64",
        replace: &[(" sarg(16)", ""), (" sarg(8)", ""), (" sarg(24)", "")],
        append: "",
    },
    NearMiss {
        id: "sarg-unsupported-s390x",
        replace: &[(" sarg(16)", ""), (" sarg(8)", ""), (" sarg(24)", "")],
        append: "",
    },
    NearMiss {
        id: "multi-ret-needs-implicit-sret",
        // Told to return through memory, the signature is fine.
        replace: &[(
            "target s390x",
            "set enable_multi_ret_implicit_sret=true\ntarget s390x",
        )],
        append: "",
    },
    NearMiss {
        id: "riscv64-bmask-uextend-i128-icmp-panic",
        // The same compare, extended to i64: lowers fine.
        replace: &[("uextend.i128", "uextend.i64")],
        append: "",
    },
    NearMiss {
        id: "riscv64-bmask-uextend-i128-icmp-panic",
        // An i128 zero-extended from something other than a comparison: `gen_bmask`'s i128
        // rule (two registers) takes it, not the rule the entry blames.
        replace: &[("v2 = uextend.i128 v1", "v2 = uextend.i128 v0")],
        append: "",
    },
    NearMiss {
        id: "riscv64-select-spectre-guard-float",
        replace: &[("select_spectre_guard", "select")],
        append: "",
    },
    NearMiss {
        id: "aarch64-apple-stack-arg-ext-clobbers-caller",
        // The stack argument without an extension: packed, but nothing to extend.
        replace: &[("i8, i8 sext)", "i8, i8)")],
        append: "",
    },
    NearMiss {
        id: "aarch64-apple-stack-arg-ext-clobbers-caller-crash",
        // The same call with no argument extended.
        replace: &[(" sext", ""), (" uext", "")],
        append: "",
    },
    NearMiss {
        id: "aarch64-atomic-umin-umax-subword-no-lse",
        // The same atomic with LSE.
        replace: &[("target aarch64", "target aarch64 has_lse")],
        append: "",
    },
    NearMiss {
        id: "aarch64-atomic-cas-i32-high-bits-no-lse",
        replace: &[("target aarch64", "target aarch64 has_lse")],
        append: "",
    },
    NearMiss {
        id: "aarch64-atomic-cas-i32-high-bits-no-lse",
        // An expected value whose high half is zero: a case that merely contains a CAS.
        replace: &[("v2 = sload16.i32 notrap v1", "v2 = iconst.i32 -1")],
        append: "",
    },
    NearMiss {
        id: "riscv64-single-pass-implicit-sret-f32",
        replace: &[(
            "set regalloc_algorithm=single_pass",
            "set regalloc_algorithm=backtracking",
        )],
        append: "",
    },
    NearMiss {
        id: "aarch64-f16-lowering-panic",
        // The same negation on f32.
        replace: &[("(f16) -> f16", "(f32) -> f32"), ("v0: f16", "v0: f32")],
        append: "",
    },
    NearMiss {
        id: "s390x-f16-fneg-panic",
        replace: &[("(f16) -> f16", "(f32) -> f32"), ("v0: f16", "v0: f32")],
        append: "",
    },
    NearMiss {
        id: "aarch64-vector-fcmp-unordered-panic",
        // The same unordered compare on scalars.
        replace: &[
            ("(f32x4, f32x4) -> i32x4", "(f32, f32) -> i8"),
            ("v0: f32x4, v1: f32x4", "v0: f32, v1: f32"),
            (
                "%ueq([0x1.0 NaN 0x2.0 0x0.0], [0x1.0 0x1.0 0x3.0 -0x0.0]) == [-1 -1 0 -1]",
                "%ueq(NaN, 0x1.0) == 1",
            ),
        ],
        append: "",
    },
    NearMiss {
        id: "x64-probestack-loop-clobbers-r11-preserve-all",
        // The same callee in `system_v`, which r11 is not preserved in.
        replace: &[("preserve_all", "system_v")],
        append: "",
    },
    NearMiss {
        id: "x64-probestack-loop-clobbers-r11-preserve-all",
        // The same module without stack probes.
        replace: &[("set enable_probestack=true", "set enable_probestack=false")],
        append: "",
    },
    NearMiss {
        id: "x64-probestack-loop-clobbers-r11-preserve-all",
        // Probes every 4 KiB: the callee's frame takes no loop.
        replace: &[("set probestack_size_log2=7", "set probestack_size_log2=12")],
        append: "",
    },
    NearMiss {
        id: "qemu-riscv64-ctzw-upper-bits",
        // Without Zbb (`ctz.i32` is a shift-and-count sequence, no `ctzw`).
        replace: &[("target riscv64 has_zbb", "target riscv64")],
        append: "",
    },
    NearMiss {
        id: "qemu-riscv64-ctzw-upper-bits",
        // The 64-bit count (`ctz`, not `ctzw`).
        replace: &[
            (
                "v1 = ireduce.i32 v0\n    v2 = ctz v1",
                "v1 = iadd v0, v0\n    v2 = ctz v1",
            ),
            ("== 32", "== 41"),
        ],
        append: "",
    },
    NearMiss {
        id: "x64-egraph-smax-i128",
        replace: &[("set opt_level=speed", "set opt_level=none")],
        append: "",
    },
    // Offset 0 (the word it should read moved there): `tls_value` is right.
    NearMiss {
        id: "tls-value-symbol-offset-dropped",
        replace: &[
            (
                "bytes=01000000000000000200000000000000",
                "bytes=02000000000000000100000000000000",
            ),
            ("symbol tls %d0+8", "symbol tls %d0"),
        ],
        append: "",
    },
    // The same offset on an ordinary object through `symbol_value`: it is honoured.
    NearMiss {
        id: "tls-value-symbol-offset-dropped",
        replace: &[
            ("writable tls", "writable"),
            ("symbol tls %d0+8", "symbol %d0+8"),
            ("tls_value.i64", "symbol_value.i64"),
        ],
        append: "",
    },
    // Offset 0 on s390x lowers, links and runs under qemu.
    NearMiss {
        id: "s390x-tls-value-symbol-offset",
        replace: &[
            (
                "bytes=00000000000000010000000000000002",
                "bytes=00000000000000020000000000000001",
            ),
            ("symbol tls %d0+8", "symbol tls %d0"),
        ],
        append: "",
    },
    // A `sextend.i128` of the comparison, unoptimised: no `uextend` for the rule to match.
    NearMiss {
        id: "riscv64-bmask-uextend-i128-icmp-panic",
        replace: &[("    v2 = uextend.i128 v1\n", "    v2 = sextend.i128 v1\n")],
        append: "",
    },
    // Without Zbs there is no `bext` rule: the shift by an i128 amount lowers.
    NearMiss {
        id: "riscv64-zbs-i128-bit-index-panic",
        replace: &[("target riscv64 has_zbs", "target riscv64")],
        append: "",
    },
    // With Zbs and an i64 shift amount, `bext` takes it in its one register.
    NearMiss {
        id: "riscv64-zbs-i128-bit-index-panic",
        replace: &[
            ("function %f(i32, i128)", "function %f(i32, i64)"),
            ("block0(v0: i32, v1: i128):", "block0(v0: i32, v1: i64):"),
        ],
        append: "",
    },
    // Unoptimised, the i128 `select` stays a `select`.
    NearMiss {
        id: "aarch64-i128-minmax-vector-rule-panic",
        replace: &[("set opt_level=speed", "set opt_level=none")],
        append: "",
    },
    // Optimised, but the `select` is of i64 values: the scalar rules lower that min/max.
    NearMiss {
        id: "aarch64-i128-minmax-vector-rule-panic",
        replace: &[
            ("function %main(i128) -> i128", "function %main(i64) -> i64"),
            ("block0(v0: i128):", "block0(v0: i64):"),
            ("    v2 = uextend.i128 v1\n", "    v2 = bor v1, v1\n"),
        ],
        append: "",
    },
    // Optimised and i128, but the `select`'s condition is no comparison, so the mid-end has no
    // min/max to make of it: the same panic in such a case would be another bug.
    NearMiss {
        id: "aarch64-i128-minmax-vector-rule-panic",
        replace: &[("    v3 = icmp sge v0, v2\n", "    v3 = iconst.i8 1\n")],
        append: "",
    },
];

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn every_known_entry_explains_its_reproducer_and_not_its_near_miss() {
    let known = KnownBuckets::load(&root().join("corpus/known-bugs.toml")).unwrap();
    let mut sandbox = Sandbox::new(WorkerCommand {
        exe: env!("CARGO_BIN_EXE_clif-diff").into(),
    });
    let mut checked = 0;
    for entry in &known.entries {
        let Some(rel) = &entry.reproducer else {
            // Only the C-interop entries have none: their bucket comes from a shape
            // recogniser with tests of its own (`cinterop::known`).
            assert!(
                entry.when.abi_shape.is_some(),
                "{} has no reproducer",
                entry.id
            );
            continue;
        };
        let nears: Vec<&NearMiss> = NEAR_MISSES.iter().filter(|n| n.id == entry.id).collect();
        assert!(
            !nears.is_empty(),
            "{}: add a near miss for this entry",
            entry.id
        );
        let file = root().join(rel);
        let case = load(&file).unwrap();
        let plan = Plan::for_case(&case, &Overrides::default()).unwrap();
        let report = check(&mut sandbox, &case, &plan).unwrap();
        // The reproducer shows a finding this entry explains.
        let finding = report
            .findings
            .iter()
            .find(|f| {
                known
                    .classify(&case, &report, f)
                    .is_some_and(|k| k.id == entry.id)
            })
            .unwrap_or_else(|| {
                panic!(
                    "{}: {} is not classified as this entry (findings: {:?})",
                    entry.id, rel, report.findings
                )
            });
        // Each near miss, judged against the same finding, is not.
        let text = std::fs::read_to_string(&file).unwrap();
        for near in nears {
            let mut edited = text.clone();
            for (from, to) in near.replace {
                edited = edited.replace(from, to);
            }
            edited.push_str(near.append);
            assert_ne!(edited, text, "{}: the near miss changes nothing", entry.id);
            let variant = TestCase::parse(&edited).unwrap_or_else(|e| {
                panic!("{}: near miss does not parse: {e}\n{edited}", entry.id)
            });
            let explained = known
                .classify(&variant, &report, finding)
                .map(|k| k.id.clone());
            assert_ne!(
                explained.as_deref(),
                Some(entry.id.as_str()),
                "{}: its near miss is still explained by it:\n{edited}",
                entry.id
            );
        }
        checked += 1;
    }
    assert!(checked >= 15, "{checked}");
}

/// A planted interpreter bug in a case with an unguarded `srem` (the cause's instruction, on a
/// run line where it does not trap) stays a finding of its own: the srem entry asks for the
/// interpreter's `int_ovf` trap on the finding's line, not for any interpreter-side mismatch.
#[test]
fn the_srem_entry_does_not_hide_a_planted_interpreter_bug_beside_an_srem() {
    let known = KnownBuckets::load(&root().join("corpus/known-bugs.toml")).unwrap();
    let mut sandbox = Sandbox::new(WorkerCommand {
        exe: env!("CARGO_BIN_EXE_clif-diff").into(),
    });
    let case = TestCase::parse(
        "; clif-diff: fault = interp-swap:iadd>isub
test interpret
test run
target x86_64

function %f(i64, i64) -> i64 {
block0(v0: i64, v1: i64):
    v2 = srem v0, v1
    v3 = iadd v2, v0
    return v3
}
; run: %f(7, 3) == 8
",
    )
    .unwrap();
    let plan = Plan::for_case(&case, &Overrides::default()).unwrap();
    let report = check(&mut sandbox, &case, &plan).unwrap();
    let finding = report
        .findings
        .iter()
        .find(|f| f.bucket.starts_with("mismatch:interp!="))
        .unwrap_or_else(|| panic!("the planted bug is not a finding: {:?}", report.findings));
    assert_eq!(
        known
            .classify(&case, &report, finding)
            .map(|k| k.id.as_str()),
        None,
        "{finding:?}"
    );
}
