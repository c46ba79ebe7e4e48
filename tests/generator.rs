//! The generator, end to end: each feature it promises appears in some generated case, and that
//! case runs to `agree` on all three engines; consecutive seeds verify and agree; generation is
//! deterministic; a leaked `sarg` write in a generated case reaches the verdict.

use clif_diff::case::TestCase;
use clif_diff::generator::features::{Features, features, passes_on_stack};
use clif_diff::generator::{self, Config, stats};
use clif_diff::harness::{Plan, check};
use clif_diff::known::KnownBuckets;
use clif_diff::oracle::{Report, Verdict};
use clif_diff::outcome::Outcome;
use clif_diff::sandbox::{Sandbox, WorkerCommand};
use clif_diff::target::Arch;
use cranelift_codegen::ir::{ArgumentPurpose, types};
use cranelift_codegen::isa::CallConv;

const SEARCH: u64 = 400;

fn sandbox() -> Sandbox {
    Sandbox::new(WorkerCommand {
        exe: env!("CARGO_BIN_EXE_clif-diff").into(),
    })
}

/// The first seed whose case satisfies `pred`.
fn seed_with(what: &str, pred: impl Fn(&TestCase, &Features) -> bool) -> (u64, TestCase) {
    let cfg = Config::default();
    for seed in 0..SEARCH {
        let case = generator::from_seed(seed, &cfg);
        if pred(&case, &features(&case)) {
            return (seed, case);
        }
    }
    panic!("no seed below {SEARCH} generates a case with {what}");
}

fn run(case: &TestCase, plan: &Plan) -> Report {
    check(&mut sandbox(), case, plan).expect("sandbox runs the case")
}

/// Whether every finding of `report` is a known Cranelift bug (`corpus/known-bugs.toml`) that
/// explains it: such a case says nothing about the generator, and a test looks further.
fn only_known_bugs(case: &TestCase, report: &Report) -> bool {
    static KNOWN: std::sync::OnceLock<KnownBuckets> = std::sync::OnceLock::new();
    let known = KNOWN.get_or_init(KnownBuckets::load_default);
    !report.findings.is_empty()
        && report
            .findings
            .iter()
            .all(|f| known.classify(case, report, f).is_some())
}

/// The first case for `arch` (seeds from 0) with `pred` and no trapping instruction that is
/// clear of known bugs; it must agree. Cases showing only known bugs are stepped over; any
/// other finding fails the test.
fn first_agreeing(
    arch: Arch,
    what: &str,
    pred: impl Fn(&TestCase, &Features) -> bool,
) -> (u64, TestCase, Report) {
    let cfg = Config::for_target(arch);
    let mut sb = sandbox();
    for seed in 0..SEARCH {
        let case = generator::from_seed(seed, &cfg);
        let ft = features(&case);
        // A case with traps as a feature may end a line with a trap (`traps_as_a_feature`).
        if !pred(&case, &ft) || !ft.trap_ops.is_empty() || ft.unguarded_division {
            continue;
        }
        let report = check(&mut sb, &case, &Plan::default()).expect("sandbox runs the case");
        if report.verdict == Verdict::Agree {
            return (seed, case, report);
        }
        assert!(
            only_known_bugs(&case, &report),
            "{}: {what}: seed {seed} gives {}\n{case}",
            arch.name(),
            report.bucket
        );
    }
    panic!(
        "{}: no seed below {SEARCH} gives an agreeing case with {what}",
        arch.name()
    );
}

/// Finds a case with the feature and checks that all three engines return the same values on
/// every run line.
fn feature_agrees(what: &str, pred: impl Fn(&TestCase, &Features) -> bool) {
    let (seed, _, report) = first_agreeing(Arch::X86_64, what, pred);
    for r in &report.runs {
        for o in &r.outcomes {
            assert!(
                matches!(o, Outcome::Returned { .. }),
                "{what}: seed {seed}: {} gave {o}",
                r.invocation
            );
        }
    }
}

fn has_conv(case: &TestCase, cc: CallConv) -> bool {
    case.functions.iter().any(|f| f.signature.call_conv == cc)
}

#[test]
fn stack_passed_arguments() {
    feature_agrees("stack-passed scalar arguments", |case, ft| {
        ft.stack_args
            && case.functions.iter().any(|f| {
                let mut s = f.signature.clone();
                s.params.retain(|p| p.purpose == ArgumentPurpose::Normal);
                passes_on_stack(Arch::X86_64, &s)
            })
    });
}

#[test]
fn i128_parameters() {
    feature_agrees("i128 parameters", |case, _| {
        case.functions.iter().skip(1).any(|f| {
            f.signature
                .params
                .iter()
                .any(|p| p.value_type == types::I128)
        })
    });
}

#[test]
fn float_parameters_and_arithmetic() {
    feature_agrees("float parameters and arithmetic", |case, ft| {
        let text = case.to_text();
        ft.floats
            && text.contains("fadd")
            && case
                .functions
                .iter()
                .any(|f| f.signature.params.iter().any(|p| p.value_type.is_float()))
    });
}

#[test]
fn returns_beyond_registers() {
    feature_agrees("more returns than registers", |_, ft| ft.stack_returns);
}

#[test]
fn sarg_read_and_written_by_callee() {
    feature_agrees("a callee reading and writing its sarg copy", |_, ft| {
        ft.sarg_read_write
    });
}

#[test]
fn pointer_parameters() {
    feature_agrees("pointer parameters", |_, ft| ft.pointer_params);
}

#[test]
fn colocated_calls() {
    feature_agrees("colocated calls", |_, ft| {
        ft.call_kinds.contains(&"call colocated")
    });
}

#[test]
fn non_colocated_calls() {
    feature_agrees("non-colocated calls", |_, ft| {
        ft.call_kinds.contains(&"call non-colocated")
    });
}

#[test]
fn call_indirect_via_func_addr() {
    feature_agrees("call_indirect through func_addr", |case, ft| {
        ft.call_kinds.contains(&"call_indirect") && case.to_text().contains("func_addr")
    });
}

#[test]
fn return_call_in_tail_functions() {
    feature_agrees("return_call from a tail function", |_, ft| {
        ft.tail_calls_from_tail && ft.call_kinds.contains(&"return_call")
    });
}

#[test]
fn return_call_indirect() {
    feature_agrees("return_call_indirect", |_, ft| {
        ft.call_kinds.contains(&"return_call_indirect")
    });
}

#[test]
fn br_table() {
    feature_agrees("br_table", |_, ft| ft.br_table);
}

#[test]
fn loops() {
    feature_agrees("loops", |_, ft| ft.loops);
}

#[test]
fn convention_system_v() {
    feature_agrees("system_v", |c, _| has_conv(c, CallConv::SystemV));
}

#[test]
fn convention_fast() {
    feature_agrees("fast", |c, _| has_conv(c, CallConv::Fast));
}

#[test]
fn convention_tail() {
    feature_agrees("tail", |c, _| has_conv(c, CallConv::Tail));
}

#[test]
fn convention_windows_fastcall() {
    feature_agrees("windows_fastcall", |c, _| {
        has_conv(c, CallConv::WindowsFastcall)
    });
}

#[test]
fn convention_winch() {
    feature_agrees("winch", |c, _| has_conv(c, CallConv::Winch));
}

#[test]
fn convention_preserve_all() {
    feature_agrees("preserve_all", |c, _| has_conv(c, CallConv::PreserveAll));
}

/// Consecutive seeds: every case passes the verifier, and the engines agree (or fewer than two
/// could run it, or what they disagree on is a known Cranelift bug). Anything else is a
/// generator bug or a new Cranelift bug, to be looked at.
#[test]
fn consecutive_seeds_verify_and_agree() {
    let cfg = Config::default();
    let mut sb = sandbox();
    let mut bad = Vec::new();
    for seed in 1000..1300 {
        let case = generator::from_seed(seed, &cfg);
        if let Err(e) = stats::verify(&case) {
            bad.push(format!("seed {seed}: verifier: {e}"));
            continue;
        }
        let report = check(&mut sb, &case, &Plan::default()).unwrap();
        if !matches!(report.verdict, Verdict::Agree | Verdict::Unsupported)
            && !only_known_bugs(&case, &report)
        {
            bad.push(format!("seed {seed}: {}", report.bucket));
        }
        // Only a case with traps as a feature may trap (and then every engine agreed on it).
        let ft = features(&case);
        let may_trap = !ft.trap_ops.is_empty() || ft.unguarded_division;
        let traps = report.runs.iter().flat_map(|r| &r.outcomes);
        if let Some(o) = traps
            .into_iter()
            .find(|o| matches!(o, Outcome::Trap { .. }))
            .filter(|_| !may_trap)
        {
            bad.push(format!("seed {seed}: {o}"));
        }
    }
    assert!(bad.is_empty(), "{bad:#?}");
}

/// With the interpreter made to skip the `sarg` copy, a callee's writes to its copy leak into
/// the caller's struct; the caller re-reads it after the call, so the verdict changes. Cases
/// with traps as a feature are left out: a line that traps before the leak shows nothing (seed
/// 11 traps `int_divz` on every line).
#[test]
fn leaked_sarg_writes_reach_the_verdict() {
    // Without data objects: a leaked write into a read-only object would be the interpreter's
    // refusal, not a mismatch.
    let cfg = Config {
        data: false,
        ..Config::default()
    };
    let mut faulty = Plan::default();
    faulty.opts.faults.interp_skip_sarg_copy = true;
    let mut sb = sandbox();
    let mut checked = 0;
    for seed in 0..SEARCH {
        let case = generator::from_seed(seed, &cfg);
        let ft = features(&case);
        if !ft.sarg_read_write || !ft.trap_ops.is_empty() || ft.unguarded_division {
            continue;
        }
        let clean = check(&mut sb, &case, &Plan::default()).unwrap();
        assert_eq!(
            clean.verdict,
            Verdict::Agree,
            "seed {seed}: {}",
            clean.bucket
        );
        let leaky = check(&mut sb, &case, &faulty).unwrap();
        assert_eq!(
            leaky.bucket, "mismatch:interp!=jit=object",
            "seed {seed}: a leaked sarg write went unnoticed"
        );
        checked += 1;
        if checked == 10 {
            return;
        }
    }
    panic!("fewer than 10 sarg cases below seed {SEARCH}");
}

/// Cases for the other backends pass the verifier with those backends' flags (running them is
/// the cross-ISA engines' business).
#[test]
fn other_targets_verify() {
    for arch in [Arch::Aarch64, Arch::Riscv64, Arch::S390x] {
        let cfg = Config::for_target(arch);
        for seed in 0..30 {
            let case = generator::from_seed(seed, &cfg);
            assert!(case.target.as_deref().unwrap().starts_with(arch.name()));
            assert!(!case.to_text().contains("sarg"), "{arch:?} has no sarg");
            stats::verify(&case).unwrap_or_else(|e| panic!("{arch:?} seed {seed}: {e}"));
        }
    }
}

#[test]
fn same_bytes_same_case() {
    let cfg = Config::default();
    for seed in 0..20 {
        let a = generator::from_seed(seed, &cfg).to_text();
        let b = generator::from_seed(seed, &cfg).to_text();
        assert_eq!(a, b, "seed {seed}");
        // What is handed out is exactly what its text reads back as.
        assert_eq!(TestCase::parse(&a).unwrap().to_text(), a);
    }
    assert_ne!(
        generator::from_seed(1, &cfg).to_text(),
        generator::from_seed(2, &cfg).to_text()
    );
    let bytes: Vec<u8> = (0..5000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let gen_text = |b: &[u8]| {
        generator::generate(&mut arbitrary::Unstructured::new(b), &cfg)
            .unwrap()
            .to_text()
    };
    assert_eq!(gen_text(&bytes), gen_text(&bytes));
}

#[test]
fn running_out_of_bytes_still_gives_a_valid_case() {
    let cfg = Config::default();
    for len in [0usize, 1, 7, 64, 300] {
        let bytes: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
        let case = generator::generate(&mut arbitrary::Unstructured::new(&bytes), &cfg).unwrap();
        stats::verify(&case).unwrap_or_else(|e| panic!("{len} bytes: {e}\n{case}"));
        assert!(case.function("main").is_some());
        assert_eq!(case.runs.len(), cfg.runs);
    }
    // Exhausted bytes turn every feature on; the result must still run.
    let case = generator::generate(&mut arbitrary::Unstructured::new(&[]), &cfg).unwrap();
    let report = run(&case, &Plan::default());
    assert_eq!(report.verdict, Verdict::Agree, "{}\n{case}", report.bucket);
}

/// Small bounds are respected, and switched-off features do not appear.
#[test]
fn knobs_bound_the_output() {
    let cfg = Config {
        max_functions: 2,
        max_params: 3,
        max_entry_params: 0,
        max_returns: 1,
        types: vec!["i32".into(), "i64".into()],
        sarg: false,
        pointer_params: false,
        br_table: false,
        loops: false,
        call_indirect: false,
        non_colocated_calls: false,
        return_call: false,
        int_division: false,
        max_stack_slots: 0,
        ..Config::default()
    };
    for seed in 0..60 {
        let case = generator::from_seed(seed, &cfg);
        stats::verify(&case).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        let ft = features(&case);
        assert!(case.functions.len() <= 2, "seed {seed}");
        for f in &case.functions {
            assert!(f.signature.params.len() <= 3 && f.signature.returns.len() <= 1);
        }
        assert!(case.function("main").unwrap().signature.params.is_empty());
        assert!(!ft.sarg && !ft.pointer_params && !ft.br_table && !ft.loops && !ft.floats);
        assert!(!ft.i128, "seed {seed}");
        assert!(
            ft.call_kinds.iter().all(|k| *k == "call colocated"),
            "seed {seed}"
        );
        let text = case.to_text();
        assert!(!text.contains("div") && !text.contains("rem") && !text.contains("explicit_slot"));
    }
    let solo = Config {
        calls: false,
        ..Config::default()
    };
    for seed in 0..20 {
        assert_eq!(generator::from_seed(seed, &solo).functions.len(), 1);
    }
}

#[test]
fn entry_takes_scalars_only() {
    let cfg = Config::default();
    for seed in 0..100 {
        let case = generator::from_seed(seed, &cfg);
        let main = case.function("main").unwrap();
        assert!(
            main.signature
                .params
                .iter()
                .all(|p| p.purpose == ArgumentPurpose::Normal),
            "seed {seed}"
        );
        assert!(case.runs.iter().all(|r| r.func == "main"));
    }
}

#[test]
fn cli_prints_cases_and_stats() {
    let exe = env!("CARGO_BIN_EXE_clif-diff");
    let gen_out = |args: &[&str]| {
        let out = std::process::Command::new(exe)
            .arg("gen")
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let a = gen_out(&["--seed", "5", "--target", "x86_64"]);
    assert_eq!(a, gen_out(&["--seed", "5", "--target", "x86_64"]));
    assert_eq!(
        a,
        generator::from_seed(5, &Config::default()).to_text(),
        "the CLI and the library agree"
    );
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("gen.toml");
    std::fs::write(&cfg, "max_functions = 1\nfloats = false\n").unwrap();
    let one = gen_out(&[
        "--seed",
        "5",
        "--config",
        cfg.to_str().unwrap(),
        "--target",
        "x86_64",
    ]);
    let case = TestCase::parse(&one).unwrap();
    assert_eq!(case.functions.len(), 1);
    // (Text search would not do: hex constants and data bytes may spell `f32`.)
    assert!(!features(&case).floats, "{one}");
    let bytes = dir.path().join("bytes");
    std::fs::write(
        &bytes,
        (0..4000u32)
            .map(|i| (i * 7 + i / 3) as u8)
            .collect::<Vec<_>>(),
    )
    .unwrap();
    let from_file = gen_out(&["--bytes", bytes.to_str().unwrap(), "--target", "x86_64"]);
    assert_eq!(
        from_file,
        gen_out(&["--bytes", bytes.to_str().unwrap(), "--target", "x86_64"])
    );
    assert!(TestCase::parse(&from_file).is_ok());
    let table = gen_out(&["--stats", "20", "--seed", "7", "--target", "x86_64"]);
    assert!(table.contains("verifier-valid: 20 / 20"), "{table}");
    assert!(table.contains("stack-passed arguments"), "{table}");
}

/// Generated cases write every stack slot before reading it, which is what lets the reducer
/// reject candidates that read uninitialised stack memory (an engine-dependent artefact).
#[test]
fn generated_cases_initialise_their_stack_slots() {
    for arch in [Arch::X86_64, Arch::Aarch64, Arch::Riscv64, Arch::S390x] {
        let cfg = Config::for_target(arch);
        for seed in 0..60 {
            let case = generator::from_seed(seed, &cfg);
            assert!(
                clif_diff::facts::memory::slots_initialized(&case.functions),
                "{arch:?} seed {seed}"
            );
        }
    }
}

/// Generated cases have every safety property the reducer holds candidates to (see
/// `clif_diff::facts`): if the analyses could not prove them on the generator's own output, the
/// reducer would not enforce them and could drift into undefined behaviour.
#[test]
fn generated_cases_have_every_property_the_reducer_keeps() {
    use clif_diff::facts;
    for arch in [Arch::X86_64, Arch::Aarch64, Arch::Riscv64, Arch::S390x] {
        // Traps as a feature leave divisions unguarded on purpose (`traps_as_a_feature`).
        let cfg = Config {
            traps: false,
            ..Config::for_target(arch)
        };
        for seed in 0..60 {
            let case = generator::from_seed(seed, &cfg);
            assert_eq!(
                facts::memory::first_out_of_bounds(&case),
                None,
                "{arch:?} seed {seed}"
            );
            assert_eq!(
                facts::first_unresolved_indirect_call(&case),
                None,
                "{arch:?} seed {seed}"
            );
            assert!(facts::calls_match(&case), "{arch:?} seed {seed}");
            assert!(
                facts::guards::divisions_guarded(&case),
                "{arch:?} seed {seed}"
            );
            assert!(
                facts::addresses::addresses_unobserved(&case),
                "{arch:?} seed {seed}"
            );
        }
    }
}

/// On a big-endian target the generator accesses memory in every byte order — native, explicit
/// `big`, explicit `little` — and the interpreter (which lays memory out in the target's order)
/// agrees with the s390x object code run under qemu.
#[test]
fn big_endian_memory_in_every_byte_order() {
    use cranelift_codegen::ir::Endianness;
    let orders = |case: &TestCase| {
        let mut seen = [false; 3];
        for f in &case.functions {
            for i in clif_diff::facts::insts(f) {
                if let Some(m) = f.dfg.insts[i].memflags() {
                    let k = match f.dfg.mem_flags[m].explicit_endianness() {
                        None => 0,
                        Some(Endianness::Big) => 1,
                        Some(Endianness::Little) => 2,
                    };
                    seen[k] = true;
                }
            }
        }
        seen
    };
    let (seed, _, report) =
        first_agreeing(Arch::S390x, "native, big and little accesses", |c, _| {
            orders(c) == [true; 3] && !c.runs.is_empty()
        });
    object_returned(&report, &format!("s390x byte orders, seed {seed}"));
}

/// Every atomic opcode the generator emits appears in some case, and the engines agree on it.
#[test]
fn atomics() {
    for op in clif_diff::generator::features::ATOMICS {
        feature_agrees(&op.to_string(), |_, ft| ft.atomics.contains(&op));
    }
}

/// aarch64 atomics both ways: LL/SC loops (baseline) and LSE instructions (`has_lse`), under
/// qemu, agree with the interpreter.
#[test]
fn aarch64_atomics_with_and_without_lse() {
    use cranelift_codegen::ir::Opcode;
    let cfg = Config::for_target(Arch::Aarch64);
    for lse in [false, true] {
        let (seed, case) = (0..SEARCH)
            .map(|s| (s, generator::from_seed(s, &cfg)))
            .find(|(_, c)| {
                features(c).atomics.contains(&Opcode::AtomicRmw)
                    && c.target.as_deref().unwrap().contains("has_lse") == lse
                    && !c.runs.is_empty()
            })
            .expect("an aarch64 case with atomic_rmw");
        let report = run(&case, &Plan::default());
        assert_eq!(
            report.verdict,
            Verdict::Agree,
            "lse={lse} seed {seed}: {}\n{case}",
            report.bucket
        );
    }
}

/// Float rounding and `fma` on x86_64 without SSE4.1/FMA are lowered to libm calls: the JIT and
/// the object program call libm, the interpreter computes the opcode, and they agree.
#[test]
fn float_ops_lowered_to_libcalls() {
    use cranelift_codegen::ir::Opcode;
    feature_agrees("a libcall-lowered float op", |case, _| {
        let target = case.target.as_deref().unwrap_or("");
        !target.contains("has_sse41")
            && case.functions.iter().any(|f| {
                clif_diff::facts::insts(f).any(|i| {
                    matches!(
                        f.dfg.insts[i].opcode(),
                        Opcode::Ceil | Opcode::Floor | Opcode::Trunc | Opcode::Nearest
                    )
                })
            })
    });
}

/// Every use of data objects the generator makes (writable and read-only objects, colocated and
/// far symbols, offsets, loads and stores, calls through the pointer table, pointers followed,
/// data lent to callees) appears in some case, and the three engines agree on it.
#[test]
fn data_objects_and_symbols() {
    for u in clif_diff::generator::features::DATA_USES {
        feature_agrees(u, |_, ft| ft.data.contains(&u));
    }
}

/// On each foreign ISA, the first case with `what` agrees, and the object program (under qemu)
/// returned on every run line: it really ran.
fn foreign_case_agrees(what: &str, pred: impl Fn(&TestCase, &Features) -> bool) {
    for arch in [Arch::Aarch64, Arch::Riscv64, Arch::S390x] {
        let (seed, _, report) = first_agreeing(arch, what, &pred);
        object_returned(&report, &format!("{}: {what}: seed {seed}", arch.name()));
    }
}

/// Some function stores into a thread-local object.
fn writes_thread_local(case: &TestCase) -> bool {
    use clif_diff::facts::memory::{access_address, data_access};
    case.functions.iter().any(|f| {
        clif_diff::facts::insts(f).any(|i| {
            f.dfg.insts[i].opcode().can_store()
                && access_address(f, i)
                    .and_then(|a| data_access(case, f, a))
                    .is_some_and(|(d, _)| case.data[d].tls)
        })
    })
}

/// Where `kind`'s outcomes are in each run line of `report`.
fn engine_index(report: &Report, kind: clif_diff::engine::EngineKind) -> usize {
    report.engines.iter().position(|e| e.kind == kind).unwrap()
}

/// The object program (native or under qemu) returned on every run line of an agreeing
/// `report`: it really ran.
fn object_returned(report: &Report, what: &str) {
    let object = engine_index(report, clif_diff::engine::EngineKind::Object);
    for r in &report.runs {
        assert!(
            matches!(r.outcomes[object], Outcome::Returned { .. }),
            "{what}: object gave {}",
            r.outcomes[object]
        );
    }
}

/// A case using every kind of relocated data at once agrees on aarch64, riscv64 and s390x too
/// (big-endian pointers in data on s390x).
#[test]
fn data_objects_agree_on_foreign_isas() {
    let want = [
        "call through a data table",
        "pointer in data followed",
        "store to data",
    ];
    foreign_case_agrees("table calls, followed pointers and stores", |_, ft| {
        want.iter().all(|w| ft.data.contains(w))
    });
}

/// Thread-local data (`tls_value`, `tls_model=elf_gd`): on every ISA a case that reads or writes
/// a thread-local object agrees between the interpreter and the object program (through
/// `__tls_get_addr` and the linker's TLS relocations, under qemu abroad), and the JIT says it
/// cannot run it rather than agreeing.
#[test]
fn thread_local_data() {
    for arch in [Arch::X86_64, Arch::Aarch64, Arch::Riscv64, Arch::S390x] {
        // A store too: each run line must see the object's initial bytes again.
        let what = "a thread-local object written";
        let (seed, case, report) = first_agreeing(arch, what, |case, ft| {
            ft.thread_local && writes_thread_local(case)
        });
        assert_eq!(case.setting("tls_model"), Some("elf_gd"));
        object_returned(&report, &format!("{}: {what}: seed {seed}", arch.name()));
        let interp = engine_index(&report, clif_diff::engine::EngineKind::Interp);
        let jit = engine_index(&report, clif_diff::engine::EngineKind::Jit);
        for r in &report.runs {
            assert!(matches!(r.outcomes[interp], Outcome::Returned { .. }));
            assert!(
                matches!(&r.outcomes[jit], Outcome::Unsupported { reason } if reason.contains("TLS")),
                "{}: seed {seed}: jit gave {}",
                arch.name(),
                r.outcomes[jit]
            );
        }
    }
}

/// Every 128-bit vector type appears in some case (arithmetic, compares, lane moves, shuffles,
/// conversions, vector memory), and the three engines agree on it.
#[test]
fn vectors_of_every_lane_type() {
    for ty in clif_diff::generator::simd::VECTOR_TYPES {
        feature_agrees(&ty.to_string(), |_, ft| {
            ft.vector_types.contains(&ty) && ft.vector_ops.len() >= 8
        });
    }
}

/// Vectors on aarch64 (NEON), s390x (vector facility, big-endian; `tail` functions) and riscv64
/// (`has_v`, the only riscv64 cases with vectors): a case with every lane type agrees.
#[test]
fn vectors_agree_on_foreign_isas() {
    foreign_case_agrees("every vector type", |_, ft| ft.vector_types.len() == 6);
}

/// Traps as a feature: each trapping instruction the generator emits appears in some case, and
/// on a case where some run line traps, every engine traps there with the same code (the
/// interpreter, the JIT's signal handler, the object driver's PC-to-trap mapping).
#[test]
fn traps_as_a_feature() {
    use clif_diff::generator::features::TRAPPING;
    for op in TRAPPING {
        seed_with(&op.to_string(), |_, ft| ft.trap_ops.contains(&op));
    }
    seed_with("an unguarded division", |_, ft| ft.unguarded_division);
    let cfg = Config::default();
    let mut sb = sandbox();
    let mut trapped = 0;
    for seed in 0..SEARCH {
        let case = generator::from_seed(seed, &cfg);
        let ft = features(&case);
        if ft.trap_ops.is_empty() && !ft.unguarded_division {
            continue;
        }
        let report = check(&mut sb, &case, &Plan::default()).unwrap();
        assert_eq!(
            report.verdict,
            Verdict::Agree,
            "seed {seed}: {}\n{case}",
            report.bucket
        );
        for r in &report.runs {
            let codes: Vec<&str> = r
                .outcomes
                .iter()
                .filter_map(|o| match o {
                    Outcome::Trap { code } => Some(code.as_str()),
                    _ => None,
                })
                .collect();
            if codes.len() == r.outcomes.len() {
                assert!(
                    codes.windows(2).all(|w| w[0] == w[1]),
                    "seed {seed}: {codes:?}"
                );
                trapped += 1;
            }
        }
        if trapped >= 5 {
            return;
        }
    }
    panic!("fewer than 5 run lines trapped on every engine below seed {SEARCH}");
}

/// Every math libcall is called explicitly in some case (an imported, non-colocated function
/// the JIT resolves in libm, the linker links, the interpreter models), and the engines agree;
/// on each foreign ISA a case with libcalls of both float types agrees under qemu.
#[test]
fn explicit_libcalls() {
    use cranelift_codegen::ir::LibCall;
    for lc in [
        LibCall::CeilF32,
        LibCall::CeilF64,
        LibCall::FloorF32,
        LibCall::FloorF64,
        LibCall::TruncF32,
        LibCall::TruncF64,
        LibCall::NearestF32,
        LibCall::NearestF64,
        LibCall::FmaF32,
        LibCall::FmaF64,
    ] {
        feature_agrees(&lc.to_string(), |_, ft| ft.libcalls.contains(&lc));
    }
    foreign_case_agrees("libcalls on f32 and f64", |_, ft| {
        let on = |s: &str| ft.libcalls.iter().any(|l| l.to_string().ends_with(s));
        on("F32") && on("F64")
    });
}

/// Every memory libcall is called on in-bounds ranges of the function's memory in some case (an
/// imported libc function the JIT resolves and the linker links, which the interpreter runs on
/// its own memory), and the engines agree; on each foreign ISA a case with `memcpy` or
/// `memmove` and with `memcmp` agrees under qemu.
#[test]
fn memory_libcalls() {
    use cranelift_codegen::ir::LibCall;
    for lc in [
        LibCall::Memcpy,
        LibCall::Memmove,
        LibCall::Memset,
        LibCall::Memcmp,
    ] {
        feature_agrees(&lc.to_string(), |_, ft| ft.libcalls.contains(&lc));
    }
    foreign_case_agrees("memory libcalls that copy and compare", |_, ft| {
        let has = |l: LibCall| ft.libcalls.contains(&l);
        (has(LibCall::Memcpy) || has(LibCall::Memmove)) && has(LibCall::Memcmp)
    });
}

/// `f16` and `f128`, which the backends only move: each appears in some case (as parameters and
/// returns of calls, through `select` and memory) and the engines agree, bit for bit, NaN
/// payloads included; on each foreign ISA a case with both agrees under qemu.
#[test]
fn f16_and_f128_values() {
    for ty in clif_diff::generator::f16_f128::TYPES {
        feature_agrees(&ty.to_string(), |case, ft| {
            let funcs = &case.functions;
            ft.f16_f128.contains(&ty)
                && funcs
                    .iter()
                    .any(|f| f.signature.params.iter().any(|p| p.value_type == ty))
                && funcs.iter().any(|f| {
                    clif_diff::facts::insts(f).any(|i| {
                        f.dfg.insts[i].opcode() == cranelift_codegen::ir::Opcode::Load
                            && f.dfg.value_type(f.dfg.first_result(i)) == ty
                    })
                })
        });
    }
    foreign_case_agrees("f16 and f128 values", |_, ft| ft.f16_f128.len() == 2);
}

/// i128 `smin`/`smax`/`umin`/`umax` where backends lower them (riscv64, s390x: x86_64 and
/// aarch64 have known bugs there, so the generator leaves them out): a case with one agrees,
/// the object program run under qemu.
#[test]
fn i128_min_max_where_lowered() {
    use cranelift_codegen::ir::Opcode;
    for arch in [Arch::Riscv64, Arch::S390x] {
        let what = "an i128 min/max";
        let (seed, _, report) = first_agreeing(arch, what, |case, _| {
            case.functions.iter().any(|f| {
                clif_diff::facts::insts(f).any(|i| {
                    matches!(
                        f.dfg.insts[i].opcode(),
                        Opcode::Smin | Opcode::Smax | Opcode::Umin | Opcode::Umax
                    ) && f.dfg.ctrl_typevar(i) == types::I128
                })
            })
        });
        object_returned(&report, &format!("{}: {what}: seed {seed}", arch.name()));
    }
}

/// The settings axis: a case with each drawn layout setting (inline stack probes at the
/// smallest intervals, big block padding, a non-PIC object, the register allocation checker)
/// agrees on every engine, on the host and on each foreign ISA under qemu.
#[test]
fn settings_axis() {
    let with = |k: &'static str, v: fn(&str) -> bool| {
        move |c: &TestCase, _: &Features| c.setting(k).is_some_and(v)
    };
    type Setting = (&'static str, &'static str, fn(&str) -> bool);
    let axis: [Setting; 4] = [
        (
            "probestack_size_log2",
            "probes every 128 bytes or less",
            |v| v.parse::<u32>().unwrap() <= 7,
        ),
        (
            "bb_padding_log2_minus_one",
            "padding of 32 KiB or more",
            |v| v.parse::<u32>().unwrap() >= 16,
        ),
        ("is_pic", "a non-PIC object", |v| v == "false"),
        ("regalloc_checker", "the allocation checker", |v| {
            v == "true"
        }),
    ];
    for (k, what, v) in axis {
        feature_agrees(what, with(k, v));
        foreign_case_agrees(what, with(k, v));
    }
}

/// Each default ISA flag set of each foreign target (return-address signing and BTI on
/// aarch64, the bit-manipulation and compressed extensions on riscv64, z15 on s390x) gives a
/// case that agrees, with the object program run under qemu.
#[test]
fn isa_flag_sets_of_foreign_targets() {
    for arch in [Arch::Aarch64, Arch::Riscv64, Arch::S390x] {
        let cfg = Config::for_target(arch);
        for set in &cfg.isa_flag_sets {
            let target = format!("{} {set}", arch.name()).trim_end().to_string();
            let (seed, _, report) = first_agreeing(arch, &format!("`target {target}`"), |c, _| {
                c.target.as_deref() == Some(target.as_str())
            });
            object_returned(&report, &format!("`target {target}`: seed {seed}"));
        }
    }
}

/// Memory flags where they hold: an alias region on stack slots, `readonly` and `can_move` on
/// loads from read-only data, `aligned` in data objects. Each appears in some case and the
/// engines agree on it; on each foreign ISA, a case with all four agrees under qemu.
#[test]
fn memory_flags() {
    for m in clif_diff::generator::features::MEMORY_FLAGS {
        feature_agrees(m, |_, ft| ft.memory_flags.contains(&m));
    }
    foreign_case_agrees("every memory flag", |_, ft| ft.memory_flags.len() == 4);
}
