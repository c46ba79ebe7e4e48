//! The batched object path: one link for many cases, with per-case isolation of crashes,
//! compile failures and link failures.

use clif_diff::case::TestCase;
use clif_diff::engine::batch::run_batch;
use clif_diff::engine::object::program_starts;
use clif_diff::engine::{EngineKind, EngineSpec, RunOptions};
use clif_diff::oracle::same_outcome;
use clif_diff::outcome::{Outcome, Phase};
use clif_diff::sandbox::{Sandbox, WorkerCommand};
use clif_diff::toolchain::link_count;
use clif_diff::value::Val;

fn object() -> EngineSpec {
    EngineSpec::plain(EngineKind::Object)
}

fn sandbox() -> Sandbox {
    Sandbox::new(WorkerCommand {
        exe: env!("CARGO_BIN_EXE_clif-diff").into(),
    })
}

/// `%f(x) = x * k` on `target`, with two run lines.
fn mul(target: &str, k: i64) -> TestCase {
    TestCase::parse(&format!(
        "test run\ntarget {target}\n\nfunction %f(i64) -> i64 {{\nblock0(v0: i64):\n    \
         v1 = iconst.i64 {k}\n    v2 = imul v0, v1\n    return v2\n}}\n\
         ; run: %f(3) == {}\n; run: %f(-1) == {}\n",
        3 * k,
        -k
    ))
    .unwrap()
}

/// Calls a function no object defines: compiles, fails to link.
fn unlinkable(target: &str) -> TestCase {
    TestCase::parse(&format!(
        "test run\ntarget {target}\n\nfunction %g(i64) -> i64 {{\n    \
         fn0 = %clif_diff_nowhere(i64) -> i64\nblock0(v0: i64):\n    \
         v1 = call fn0(v0)\n    return v1\n}}\n; run: %g(1) == 1\n"
    ))
    .unwrap()
}

/// Needs implicit sret on s390x: fails to compile there.
fn uncompilable_on_s390x() -> TestCase {
    TestCase::parse(
        "test run\ntarget s390x\n\nfunction %w(i128) -> i128 {\nblock0(v0: i128):\n    \
         return v0\n}\n; run: %w(1) == 1\n",
    )
    .unwrap()
}

/// A notrap load from 0, then a line that must still run.
fn segfault(target: &str) -> TestCase {
    TestCase::parse(&format!(
        "test run\ntarget {target}\n\nfunction %s(i64) -> i32 {{\nblock0(v0: i64):\n    \
         v1 = load.i32 notrap aligned v0\n    return v1\n}}\n; run: %s(0) == 0\n; run: %s(0) == 0\n"
    ))
    .unwrap()
}

fn returned(o: &Outcome) -> Option<i64> {
    match o {
        Outcome::Returned { values } => match values.as_slice() {
            [Val::I64(v)] => Some(*v),
            _ => None,
        },
        _ => None,
    }
}

#[test]
fn one_link_serves_a_batch_and_failures_are_bisected_out() {
    // In-process: the only test of this file that links here, so the link counter is ours.
    let opts = RunOptions::default();
    let good: Vec<TestCase> = (1..=8).map(|k| mul("x86_64", k)).collect();
    let refs: Vec<&TestCase> = good.iter().collect();
    let before = link_count();
    let out = run_batch(&refs, &object(), &opts);
    assert_eq!(link_count() - before, 1, "eight cases, one link");
    for (k, runs) in out.iter().enumerate() {
        let k = k as i64 + 1;
        assert_eq!(returned(&runs[0]), Some(3 * k));
        assert_eq!(returned(&runs[1]), Some(-k));
    }

    // Different settings share the program (one object file per settings group), and a trap in
    // a later group still maps to its code.
    let mut mixed: Vec<TestCase> = Vec::new();
    for (k, (name, value)) in [
        ("opt_level", "none"),
        ("opt_level", "speed_and_size"),
        ("regalloc_algorithm", "single_pass"),
        ("enable_llvm_abi_extensions", "true"),
    ]
    .into_iter()
    .enumerate()
    {
        let mut c = mul("x86_64", k as i64 + 2);
        c.set_setting(name, value);
        mixed.push(c);
    }
    let mut divz = TestCase::parse(
        "test run\ntarget x86_64\n\nfunction %d(i64, i64) -> i64 {\nblock0(v0: i64, v1: i64):\n    \
         v2 = udiv v0, v1\n    return v2\n}\n; run: %d(6, 0) == 0\n; run: %d(6, 2) == 3\n",
    )
    .unwrap();
    divz.set_setting("opt_level", "none");
    mixed.push(divz);
    let refs: Vec<&TestCase> = mixed.iter().collect();
    let before = link_count();
    let out = run_batch(&refs, &object(), &opts);
    assert_eq!(
        link_count() - before,
        1,
        "five cases, four settings groups, one link"
    );
    for (k, runs) in out[..4].iter().enumerate() {
        assert_eq!(returned(&runs[0]), Some(3 * (k as i64 + 2)), "{}", runs[0]);
    }
    assert!(
        matches!(&out[4][0], Outcome::Trap { code } if code == "int_divz"),
        "{}",
        out[4][0]
    );
    assert_eq!(returned(&out[4][1]), Some(3));

    // Traps are answered by the running program; only a crash costs a new process.
    let traps = TestCase::parse(
        "test run\ntarget x86_64\n\nfunction %d(i64, i64) -> i64 {\nblock0(v0: i64, v1: i64):\n    \
         v2 = sdiv v0, v1\n    return v2\n}\n; run: %d(6, 0) == 0\n; run: %d(6, 3) == 2\n\
         ; run: %d(0x8000000000000000, -1) == 0\n; run: %d(-6, 3) == -2\n",
    )
    .unwrap();
    let crash = segfault("x86_64");
    let before = program_starts();
    let out = run_batch(&[&traps, &crash, &good[0]], &object(), &opts);
    let trap = |o: &Outcome| match o {
        Outcome::Trap { code } => code.clone(),
        other => panic!("expected a trap, got {other}"),
    };
    assert_eq!(trap(&out[0][0]), "int_divz");
    assert_eq!(returned(&out[0][1]), Some(2));
    assert_eq!(trap(&out[0][2]), "int_ovf");
    assert_eq!(returned(&out[0][3]), Some(-2));
    assert!(matches!(out[1][0], Outcome::Crash { .. }));
    assert!(matches!(out[1][1], Outcome::Crash { .. }));
    assert_eq!(returned(&out[2][0]), Some(3));
    assert_eq!(
        program_starts() - before,
        3,
        "one start, plus one after each crash"
    );

    // A case Cranelift refuses (x64 panics on i128 without LLVM ABI extensions) stays out of
    // the program with its own outcome; the rest still share one link.
    let mut with_panic: Vec<TestCase> = (1..=5).map(|k| mul("x86_64", k)).collect();
    with_panic.insert(
        2,
        TestCase::parse(
            "test run\ntarget x86_64\n\nfunction %w(i128) -> i128 {\nblock0(v0: i128):\n    \
             return v0\n}\n; run: %w(1) == 1\n",
        )
        .unwrap(),
    );
    let refs: Vec<&TestCase> = with_panic.iter().collect();
    let before = link_count();
    let out = run_batch(&refs, &object(), &opts);
    assert_eq!(link_count() - before, 1);
    assert!(
        matches!(&out[2][0], Outcome::Panic { phase: Phase::Compile, location, .. } if location.contains("x64/abi.rs")),
        "{}",
        out[2][0]
    );
    assert_eq!(returned(&out[3][0]), Some(9));

    // One unlinkable case among eight: it gets its link error, the others their values, and
    // bisection needs far fewer links than one per case.
    let mut mixed: Vec<TestCase> = (1..=7).map(|k| mul("x86_64", k)).collect();
    mixed.insert(5, unlinkable("x86_64"));
    let refs: Vec<&TestCase> = mixed.iter().collect();
    let before = link_count();
    let out = run_batch(&refs, &object(), &opts);
    let links = link_count() - before;
    assert!(links < 8, "bisection used {links} links");
    for (i, runs) in out.iter().enumerate() {
        if i == 5 {
            assert!(
                matches!(&runs[0], Outcome::Error { phase: Phase::Link, message } if message.contains("clif_diff_nowhere")),
                "{}",
                runs[0]
            );
        } else {
            let k = if i < 5 { i } else { i - 1 } as i64 + 1;
            assert_eq!(returned(&runs[0]), Some(3 * k), "case {i}: {}", runs[0]);
        }
    }
}

#[test]
fn batches_through_the_sandbox_match_single_case_runs() {
    // Mixed targets (grouped), a crash, a compile failure and a link failure in one call.
    let cases = vec![
        mul("x86_64", 2),
        mul("aarch64", 3),
        segfault("aarch64"),
        mul("aarch64", 4),
        uncompilable_on_s390x(),
        mul("s390x", 5),
        unlinkable("riscv64"),
        mul("riscv64", 6),
        segfault("x86_64"),
        mul("x86_64", 7),
    ];
    let refs: Vec<&TestCase> = cases.iter().collect();
    let opts = RunOptions::default();
    let mut sb = sandbox();
    let batched = sb.run_batch(&refs, &object(), &opts).unwrap();
    for (case, got) in cases.iter().zip(&batched) {
        let single = sb.run(case, &[object()], &opts).unwrap().outcomes.remove(0);
        assert_eq!(got.len(), case.runs.len());
        for (b, s) in got.iter().zip(&single) {
            let same = same_outcome(b, s)
                || (b.kind() == s.kind()
                    && match (b, s) {
                        (Outcome::Crash { signal: x, .. }, Outcome::Crash { signal: y, .. }) => {
                            x == y
                        }
                        (Outcome::Error { phase: x, .. }, Outcome::Error { phase: y, .. }) => {
                            x == y
                        }
                        _ => false,
                    });
            assert!(same, "{}: batched {b} vs single {s}", case.to_text());
        }
    }
    assert_eq!(returned(&batched[3][0]), Some(12), "after the crash");
    assert_eq!(
        returned(&batched[5][0]),
        Some(15),
        "beside the compile failure"
    );
    assert_eq!(
        returned(&batched[7][0]),
        Some(18),
        "beside the link failure"
    );
    assert!(
        matches!(batched[2][1], Outcome::Crash { .. }),
        "each line runs"
    );
    assert!(matches!(
        batched[4][0],
        Outcome::Error {
            phase: Phase::Compile,
            ..
        }
    ));
}

/// Every engine takes batches through the same worker request ([`clif_diff::engine::Engine::run_batch`]):
/// the interpreter and the JIT run them case by case, and give what single runs give.
#[test]
fn every_engine_takes_batches() {
    let cases = [
        mul("x86_64", 2),
        segfault("x86_64"),
        mul("x86_64", 7),
        mul("aarch64", 3),
    ];
    let refs: Vec<&TestCase> = cases.iter().collect();
    let opts = RunOptions::default();
    let mut sb = sandbox();
    for kind in [EngineKind::Interp, EngineKind::Jit] {
        let spec = EngineSpec::plain(kind);
        let batched = sb.run_batch(&refs, &spec, &opts).unwrap();
        for (case, got) in cases.iter().zip(&batched) {
            let single = sb
                .run(case, std::slice::from_ref(&spec), &opts)
                .unwrap()
                .outcomes
                .remove(0);
            assert_eq!(got.len(), case.runs.len());
            for (b, s) in got.iter().zip(&single) {
                assert_eq!(b.kind(), s.kind(), "{kind}: batched {b} vs single {s}");
                assert!(
                    same_outcome(b, s)
                        || b.to_string() == s.to_string()
                        || matches!(b, Outcome::Crash { .. }),
                    "{kind}: batched {b} vs single {s}"
                );
            }
        }
        assert_eq!(
            returned(&batched[2][1]),
            Some(-7),
            "{kind}: after the crash"
        );
    }
    // The JIT cannot run aarch64 code here, and says so; the interpreter can.
    let jit = sb
        .run_batch(&refs, &EngineSpec::plain(EngineKind::Jit), &opts)
        .unwrap();
    assert!(
        matches!(jit[3][0], Outcome::Unsupported { .. }),
        "{}",
        jit[3][0]
    );
    assert!(matches!(jit[1][0], Outcome::Crash { .. }), "{}", jit[1][0]);
}

#[test]
fn check_batch_gives_the_reports_check_gives() {
    use clif_diff::harness::{Plan, check, check_batch};
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/regressions");
    // Host and foreign cases, agreeing and not (a panic, a crash, a trap-heavy one).
    let names = [
        "seed-8852-sarg-call.clif",
        "aarch64-abi-traps.clif",
        "riscv64-segfault.clif",
        "s390x-abi-traps.clif",
        "s390x-i128-return-limit.clif",
        "trap-divide-by-zero.clif",
        "stack-args-many-params.clif",
    ];
    let cases: Vec<TestCase> = names
        .iter()
        .map(|n| clif_diff::case::load(&dir.join(n)).unwrap())
        .collect();
    let refs: Vec<&TestCase> = cases.iter().collect();
    let plan = Plan::default();
    let mut sb = sandbox();
    let batched = check_batch(&mut sb, &refs, &plan).unwrap();
    for ((name, case), b) in names.iter().zip(&cases).zip(&batched) {
        let single = check(&mut sb, case, &plan).unwrap();
        assert_eq!(b.bucket, single.bucket, "{name}");
        assert_eq!(b.verdict, single.verdict, "{name}");
        for (rb, rs) in b.runs.iter().zip(&single.runs) {
            assert_eq!(rb.bucket, rs.bucket, "{name} {}", rb.invocation);
        }
    }
}

#[test]
fn a_worker_that_dies_on_a_batch_costs_a_retry_not_an_outcome() {
    let cases = [
        mul("x86_64", 2),
        segfault("x86_64"),
        mul("aarch64", 3),
        unlinkable("x86_64"),
    ];
    let refs: Vec<&TestCase> = cases.iter().collect();
    let mut opts = RunOptions::default();
    let mut sb = sandbox();
    let healthy = sb.run_batch(&refs, &object(), &opts).unwrap();
    opts.faults.worker_dies_on_batch = true;
    let mut sb = sandbox();
    let recovered = sb.run_batch(&refs, &object(), &opts).unwrap();
    assert!(sb.spawns >= 2, "the batch worker died and was replaced");
    for (h, r) in healthy.iter().flatten().zip(recovered.iter().flatten()) {
        assert_eq!(h.kind(), r.kind(), "{h} vs {r}");
        assert!(same_outcome(h, r) || h.kind() != "returned", "{h} vs {r}");
    }
    assert_eq!(returned(&recovered[2][0]), Some(9));
}
