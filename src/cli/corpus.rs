//! `clif-diff corpus add FILE`: promote a case into the regression corpus.

use super::EngineArgs;
use clif_diff::case::load;
use clif_diff::harness::Plan;
use clif_diff::known::KnownBuckets;
use clif_diff::sandbox::{Sandbox, WorkerCommand};
use std::path::PathBuf;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Run FILE, record the bucket it shows as its expectation, and add it to the corpus.
    Add(AddArgs),
    /// Write one libFuzzer seed input per generator feature (for `cargo fuzz` and ClusterFuzzLite).
    FuzzSeeds(SeedArgs),
}

#[derive(clap::Args)]
pub struct SeedArgs {
    /// Output directory.
    #[arg(long, default_value = "corpus/fuzz-seeds")]
    pub dir: PathBuf,
    /// Seeds to scan for features.
    #[arg(long, default_value_t = 500)]
    pub scan: u64,
}

#[derive(clap::Args)]
pub struct AddArgs {
    /// A case: typically a finding's `reduced.clif` or `case.clif`.
    pub file: PathBuf,
    /// Name of the corpus file (default: the bucket's slug).
    #[arg(long)]
    pub name: Option<String>,
    /// Corpus directory.
    #[arg(long, default_value = "corpus/regressions")]
    pub dir: PathBuf,
    #[command(flatten)]
    pub engine: EngineArgs,
}

pub fn main(cmd: Command) -> anyhow::Result<i32> {
    match cmd {
        Command::Add(a) => add(a),
        Command::FuzzSeeds(a) => fuzz_seeds(a),
    }
}

fn fuzz_seeds(args: SeedArgs) -> anyhow::Result<i32> {
    // The fuzz targets' own configuration, so each seed input yields the case it was chosen for.
    let cfg = clif_diff::generator::Config::for_libfuzzer(clif_diff::target::Arch::host());
    for (feature, seed) in clif_diff::corpus::write_fuzz_seeds(&args.dir, &cfg, args.scan)? {
        println!("{feature:<28} seed {seed}");
    }
    Ok(0)
}

fn add(args: AddArgs) -> anyhow::Result<i32> {
    let case = load(&args.file)?;
    let plan = Plan::for_case(&case, &args.engine.overrides()?)?;
    super::run::preflight(&case, &plan)?;
    let mut sandbox = Sandbox::new(WorkerCommand::from_env()?);
    let known = KnownBuckets::load_default();
    let name = match &args.name {
        Some(n) => n.clone(),
        None => {
            let r = clif_diff::harness::check(&mut sandbox, &case, &plan)?;
            clif_diff::campaign::findings::bucket_slug(&r.bucket)
        }
    };
    let (path, report) =
        clif_diff::corpus::promote(&mut sandbox, &case, &plan, &known, &args.dir, &name)?;
    println!("{} (expect = {})", path.display(), report.bucket);
    Ok(0)
}
