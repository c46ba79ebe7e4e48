//! The persistent JIT runner gives every case the outcomes forked children give it: generated
//! cases of every feature, data objects, far memory, faults, crashes and hangs, with the runner
//! restarted after each death and never mistaken for the case.

use clif_diff::case::{TestCase, load};
use clif_diff::engine::{self, EngineKind, EngineSpec, JitMemory, JitRunner, RunOptions, runner};
use clif_diff::generator::{Config, from_seed};
use clif_diff::outcome::Outcome;
use clif_diff::target::Arch;
use std::path::Path;

/// Outcomes as text: `Outcome` has no `PartialEq` (its values hold floats, compared bitwise by the
/// oracle), and its `Debug` shows every bit that matters.
fn shown(outcomes: &[Outcome]) -> String {
    format!("{outcomes:?}")
}

fn jit(case: &TestCase, opts: &RunOptions) -> Vec<Outcome> {
    let mut row = vec![None; case.runs.len()];
    engine::execute(
        case,
        &EngineSpec::plain(EngineKind::Jit),
        opts,
        0,
        &mut |i, o| row[i] = Some(o),
    );
    row.into_iter()
        .map(|o| o.expect("an outcome per run line"))
        .collect()
}

fn opts(runner: JitRunner, memory: JitMemory) -> RunOptions {
    RunOptions {
        jit_runner: runner,
        jit_memory: memory,
        timeout_ms: 1500,
        ..RunOptions::default()
    }
}

fn case(rel: &str) -> TestCase {
    load(&Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)).unwrap()
}

/// One test, so that the runner's counters belong to it alone.
#[test]
fn the_persistent_runner_agrees_with_forked_children() {
    let host = Arch::host();
    // Generated cases, near and far: the same outcome on every run line.
    let mut returned = 0;
    // Modules that ran natively, in a forked child or the runner.
    let mut ran = 0;
    for memory in [JitMemory::System, JitMemory::Far] {
        for seed in 0..40 {
            let cfg = if seed % 2 == 0 {
                Config::for_libfuzzer(host)
            } else {
                Config::for_target(host)
            };
            let c = from_seed(9000 + seed, &cfg);
            let forked = jit(&c, &opts(JitRunner::Fork, memory));
            let persistent = jit(&c, &opts(JitRunner::Persistent, memory));
            assert_eq!(
                shown(&forked),
                shown(&persistent),
                "seed {} ({memory}):\n{}",
                9000 + seed,
                c.to_text()
            );
            ran += persistent.iter().any(|o| {
                matches!(
                    o,
                    Outcome::Returned { .. } | Outcome::Trap { .. } | Outcome::Crash { .. }
                )
            }) as u64;
            returned += persistent
                .iter()
                .filter(|o| matches!(o, Outcome::Returned { .. }))
                .count();
        }
    }
    assert!(returned > 50, "only {returned} run lines returned");

    // Data objects restored per run line, and read through relocated pointers.
    let data = case("tests/cases/data-run-lines-start-afresh.clif");
    assert_eq!(
        shown(&jit(&data, &opts(JitRunner::Persistent, JitMemory::System))),
        shown(&jit(&data, &opts(JitRunner::Fork, JitMemory::System)))
    );

    // A hang: the runner is killed at the deadline, and the next case gets a new one.
    let hang = case("tests/cases/loop-forever.clif");
    let out = jit(&hang, &opts(JitRunner::Persistent, JitMemory::System));
    assert!(matches!(out[0], Outcome::Timeout { .. }), "{out:?}");
    assert_eq!(
        shown(&jit(&data, &opts(JitRunner::Persistent, JitMemory::System))),
        shown(&jit(&data, &opts(JitRunner::Fork, JitMemory::System)))
    );

    // A crash in every run line (the planted `jit-crash-on` fault): each line is a crash of its
    // own, each in a new runner, and never a crash of the next case.
    let mut crash_opts = opts(JitRunner::Persistent, JitMemory::System);
    crash_opts.faults.jit_crash_on = Some("iadd".into());
    let crashed = jit(&data, &crash_opts);
    assert!(crashed.len() >= 2);
    assert!(
        crashed
            .iter()
            .all(|o| matches!(o, Outcome::Crash { signal, .. } if signal == "SIGSEGV")),
        "{crashed:?}"
    );
    crash_opts.jit_runner = JitRunner::Fork;
    assert_eq!(shown(&crashed), shown(&jit(&data, &crash_opts)));
    let after = jit(&data, &opts(JitRunner::Persistent, JitMemory::System));
    assert!(
        after.iter().all(|o| matches!(o, Outcome::Returned { .. })),
        "{after:?}"
    );

    // Every reproducer and test case of the repository (vectors and i128 through the trampoline's
    // aligned argument and result buffers, data, far calls, traps), with a short deadline.
    let mut files = 0;
    for dir in ["corpus/regressions", "tests/cases"] {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_none_or(|x| x != "clif") {
                continue;
            }
            let c = load(&p).unwrap();
            if c.directive("known").is_some() {
                // A known bug's outcome may be whatever a clobbered register held.
                continue;
            }
            let short = |runner| RunOptions {
                timeout_ms: 300,
                ..opts(runner, JitMemory::System)
            };
            assert_eq!(
                shown(&jit(&c, &short(JitRunner::Fork))),
                shown(&jit(&c, &short(JitRunner::Persistent))),
                "{}",
                p.display()
            );
            files += 1;
        }
    }
    assert!(files >= 20, "{files} files");

    // Traps between returns: each trap is unwound in the runner, which answers the lines after
    // it; no new runner is started for them.
    let traps = case("tests/cases/traps-between-returns.clif");
    jit(&data, &opts(JitRunner::Persistent, JitMemory::System)); // a live runner
    let before = runner::stats().started;
    let trapped = jit(&traps, &opts(JitRunner::Persistent, JitMemory::System));
    assert_eq!(
        shown(&trapped),
        shown(&jit(&traps, &opts(JitRunner::Fork, JitMemory::System)))
    );
    let codes: Vec<&str> = trapped
        .iter()
        .filter_map(|o| match o {
            Outcome::Trap { code } => Some(code.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(codes, ["user42", "int_divz", "user7"], "{trapped:?}");
    assert!(before > 0, "a runner was running before the traps");
    assert_eq!(
        runner::stats().started,
        before,
        "a trap restarted the runner"
    );

    // Every module above ran in the runner; none fell back to forks.
    let stats = runner::stats();
    assert_eq!(stats.fell_back, 0);
    assert!(
        stats.served >= ran + 7,
        "the runner served {} modules of {ran} + 7",
        stats.served
    );
}

/// The libFuzzer targets run cases straight from the generator, without the round trip through
/// their text that campaigns make: each engine gives such a case the outcomes its text gives.
#[test]
fn unprinted_cases_run_as_their_text_does() {
    use arbitrary::Unstructured;
    use clif_diff::generator::{generate, generate_unprinted, seed_bytes};
    let cfg = Config::for_libfuzzer(Arch::host());
    let interp = EngineSpec::plain(EngineKind::Interp);
    let run = |case: &TestCase, spec: &EngineSpec| {
        let mut row = vec![None; case.runs.len()];
        engine::execute(
            case,
            spec,
            &opts(JitRunner::Fork, JitMemory::System),
            0,
            &mut |i, o| row[i] = Some(o),
        );
        format!("{row:?}")
    };
    let mut compared = 0;
    for seed in 0..60 {
        let bytes = seed_bytes(7000 + seed);
        let Ok(raw) = generate_unprinted(&mut Unstructured::new(&bytes), &cfg) else {
            continue;
        };
        let printed = generate(&mut Unstructured::new(&bytes), &cfg).unwrap();
        assert_eq!(raw.to_text(), printed.to_text());
        for spec in [&interp, &EngineSpec::plain(EngineKind::Jit)] {
            assert_eq!(
                run(&raw, spec),
                run(&printed, spec),
                "seed {} on {spec}",
                7000 + seed
            );
        }
        compared += 1;
    }
    assert!(compared >= 50, "{compared} cases compared");
}
