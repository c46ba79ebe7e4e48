//! `clif-diff abi`: random System V signatures, Cranelift against `cc`, both directions.

use super::EXIT_FINDING;
use clif_diff::cinterop::{
    AbiCase, AbiOptions, AbiOutcome, AbiSig, CFaults, Param, Scalar, Shape, random_case, random_sig,
};
use clif_diff::known::KnownBuckets;
use clif_diff::sandbox::{Sandbox, WorkerCommand};
use rand::SeedableRng;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

#[derive(clap::Args)]
pub struct Args {
    /// The ABI: x86_64 (native cc), or aarch64, riscv64 or s390x (cross gcc + qemu).
    #[arg(long, default_value = "x86_64")]
    pub target: clif_diff::target::Arch,
    /// Number of random signatures.
    #[arg(long, default_value_t = 1000)]
    pub cases: usize,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Signatures per program (one object, one C file, one link).
    #[arg(long, default_value_t = 100)]
    pub batch: usize,
    #[arg(long, default_value_t = 20)]
    pub max_params: usize,
    /// A Cranelift setting for the Cranelift side, e.g. `--set opt_level=none` (repeatable).
    #[arg(long = "set", value_name = "NAME=VALUE")]
    pub settings: Vec<String>,
    /// Write every case and its outcome as JSON.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Draw the signatures from the generator's module plans (seeds from `--seed` on) instead
    /// of the built-in random ones.
    #[arg(long)]
    pub from_generator: bool,
    /// Test these signatures (e.g. `--sig '(i64, i128) -> i64'`) instead of random ones.
    #[arg(long = "sig", value_name = "SIGNATURE")]
    pub sigs: Vec<String>,
    /// Check the signatures of a regression file (`<expected bucket> | <signature>` lines).
    #[arg(long, value_name = "FILE", conflicts_with = "sigs")]
    pub replay: Option<PathBuf>,
    /// Test-only: the C callee expects argument I to differ from what is passed.
    #[arg(long, hide = true)]
    pub fault_c_arg: Option<usize>,
    /// Test-only: the worker aborts while compiling the case with this signature.
    #[arg(long, hide = true, value_name = "SIGNATURE")]
    pub fault_worker_dies_on: Option<String>,
}

pub fn main(args: Args) -> anyhow::Result<i32> {
    let mut opts = AbiOptions {
        arch: args.target,
        faults: CFaults {
            wrong_arg: args.fault_c_arg,
            worker_dies_on: args.fault_worker_dies_on.clone(),
        },
        ..AbiOptions::default()
    };
    for s in &args.settings {
        let (k, v) = s.split_once('=').unwrap_or((s, "true"));
        opts.settings.push((k.to_string(), v.to_string()));
    }
    let mut rng = rand_pcg::Pcg64::seed_from_u64(args.seed);
    let shape = Shape {
        arch: args.target,
        max_params: args.max_params,
        ..Shape::default()
    };
    if let Some(file) = &args.replay {
        return replay(file, &opts, &mut rng);
    }
    let cases: Vec<AbiCase> = if args.from_generator {
        let mut sigs = Vec::new();
        let mut seed = args.seed;
        while sigs.len() < args.cases {
            sigs.extend(clif_diff::cinterop::from_gen::signatures(seed, args.target));
            seed += 1;
        }
        sigs.truncate(args.cases);
        sigs.into_iter().map(|s| random_case(&mut rng, s)).collect()
    } else if args.sigs.is_empty() {
        (0..args.cases)
            .map(|_| {
                let sig = random_sig(&mut rng, shape);
                random_case(&mut rng, sig)
            })
            .collect()
    } else {
        let mut cases = Vec::new();
        for text in &args.sigs {
            let sig: AbiSig = text.parse().map_err(|e: String| anyhow::anyhow!(e))?;
            cases.push(random_case(&mut rng, sig));
        }
        cases
    };
    let t0 = Instant::now();
    let mut sandbox = Sandbox::new(WorkerCommand::from_env()?);
    let mut outcomes = Vec::new();
    for chunk in cases.chunks(args.batch.max(1)) {
        outcomes.extend(sandbox.run_abi(chunk, &opts)?);
    }
    let secs = t0.elapsed().as_secs_f64();

    let mut buckets: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (k, o) in outcomes.iter().enumerate() {
        buckets
            .entry(o.bucket(&cases[k].sig, opts.arch))
            .or_default()
            .push(k);
    }
    let checks: u64 = outcomes
        .iter()
        .map(|o| match o {
            AbiOutcome::Agree { checks } => *checks as u64,
            _ => 0,
        })
        .sum();
    println!(
        "{} signatures ({}) in {secs:.1} s, {:.0}/s; {checks} checks passed",
        cases.len(),
        coverage(&cases),
        cases.len() as f64 / secs
    );
    let known = KnownBuckets::load_default();
    let mut finding = false;
    for (bucket, ks) in &buckets {
        print!("{:>6}  {bucket}", ks.len());
        if bucket == "agree" {
            // A known divergence that no longer shows is news too.
            let gone = ks
                .iter()
                .filter(|&&k| {
                    clif_diff::cinterop::known::divergence(&cases[k].sig, opts.arch).is_some()
                })
                .count();
            if gone > 0 {
                print!("  ({gone} of a known divergent shape: FIXED?)");
            }
            println!();
            continue;
        }
        match known.by_abi_bucket(bucket) {
            Some(k) => print!("  (known {:?} `{}`)", k.kind, k.id),
            None => finding |= !bucket.starts_with("abi-refused:") || bucket.contains("panic"),
        }
        println!();
        let k = ks[0];
        println!("        e.g. case {k}: {}", cases[k].sig.text());
        match &outcomes[k] {
            AbiOutcome::Mismatch { mismatches } => {
                for m in mismatches.iter().take(4) {
                    println!(
                        "          {} {}: expected {}, got {}",
                        m.direction, m.item, m.expected, m.got
                    );
                }
            }
            AbiOutcome::Refused { message } => println!("          {message}"),
            AbiOutcome::Crash { detail } => println!("          crash: {detail}"),
            _ => {}
        }
    }
    if let Some(path) = &args.json {
        let rows: Vec<_> = cases
            .iter()
            .zip(&outcomes)
            .map(|(c, o)| serde_json::json!({ "signature": c.sig.text(), "case": c, "outcome": o }))
            .collect();
        std::fs::write(path, serde_json::to_string_pretty(&rows)?)?;
    }
    Ok(if finding { EXIT_FINDING } else { 0 })
}

fn coverage(cases: &[AbiCase]) -> String {
    let mut params = 0;
    let mut structs = 0;
    let mut wide = 0;
    let mut ext = 0;
    let mut floats = 0;
    let mut over_regs = 0;
    let mut two_rets = 0;
    for c in cases {
        params += c.sig.params.len();
        let (mut ints, mut fps) = (0, 0);
        for p in &c.sig.params {
            match p {
                Param::Struct(_) => structs += 1,
                Param::Scalar(s, e) => {
                    wide += (*s == Scalar::I128) as usize;
                    floats += s.is_float() as usize;
                    ext += (*e != clif_diff::cinterop::Ext::None) as usize;
                    if s.is_float() {
                        fps += 1
                    } else {
                        ints += 1 + (*s == Scalar::I128) as usize
                    }
                }
            }
        }
        over_regs += (ints > 6 || fps > 8) as usize;
        two_rets += (c.sig.returns.len() == 2) as usize;
    }
    format!(
        "{params} params: {ext} uext/sext, {wide} i128, {floats} float, {structs} sarg structs; \
         {over_regs} with stack arguments, {two_rets} with two results"
    )
}

/// `--replay FILE`: each signature must land in its recorded bucket. A `target <arch>` line
/// switches the ABI for the lines after it (x86_64 until then).
fn replay(
    file: &std::path::Path,
    opts: &AbiOptions,
    rng: &mut rand_pcg::Pcg64,
) -> anyhow::Result<i32> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| anyhow::anyhow!("{}: cannot read: {e}", file.display()))?;
    let at =
        |n: usize, e: &dyn std::fmt::Display| anyhow::anyhow!("{}:{}: {e}", file.display(), n + 1);
    // (arch, expected bucket, case), in file order.
    let mut entries = Vec::new();
    let mut arch = clif_diff::target::Arch::X86_64;
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(t) = line.strip_prefix("target ") {
            arch = t.trim().parse().map_err(|e: anyhow::Error| at(n, &e))?;
            continue;
        }
        let (bucket, sig) = line
            .split_once('|')
            .ok_or_else(|| at(n, &"expected `bucket | signature`"))?;
        let sig: AbiSig = sig.parse().map_err(|e: String| at(n, &e))?;
        sig.c_expressible(arch).map_err(|e| at(n, &e))?;
        entries.push((arch, bucket.trim().to_string(), random_case(rng, sig)));
    }
    let mut bad = 0;
    let mut sandbox = Sandbox::new(WorkerCommand::from_env()?);
    let mut archs: Vec<clif_diff::target::Arch> = entries.iter().map(|e| e.0).collect();
    archs.dedup();
    archs.sort_by_key(|a| a.name());
    archs.dedup();
    for arch in archs {
        let group: Vec<&(clif_diff::target::Arch, String, AbiCase)> =
            entries.iter().filter(|e| e.0 == arch).collect();
        let cases: Vec<AbiCase> = group.iter().map(|e| e.2.clone()).collect();
        let outcomes = sandbox.run_abi(
            &cases,
            &AbiOptions {
                arch,
                ..opts.clone()
            },
        )?;
        for ((_, want, case), got) in group.iter().zip(&outcomes) {
            let got = got.bucket(&case.sig, arch);
            let status = if &got == want {
                "pass".to_string()
            } else {
                bad += 1;
                if got == "agree" {
                    format!("FIXED (expected {want}, now agrees)")
                } else {
                    format!("REGRESSION (expected {want}, got {got})")
                }
            };
            println!("{:<8} {:<70} {status}", arch.name(), case.sig.text());
        }
    }
    println!(
        "{} signatures: {} pass, {bad} changed",
        entries.len(),
        entries.len() - bad
    );
    Ok(if bad == 0 { 0 } else { EXIT_FINDING })
}
