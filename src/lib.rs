//! clif-diff: differential fuzzing of Cranelift's three execution paths.
//!
//! The pipeline, one module per stage:
//!
//! ```text
//!  generator ──► case (.clif) ──► sandbox ──► engines ──► oracle ──► reducer ──► findings/report
//!  (bytes →      (filetest       (worker     (interp,     (verdict,   (same
//!   module)       text)           processes)  jit, object) bucket)     bucket)
//! ```
//!
//! * [`generator`]: bytes → a valid, deterministic, UB-free module with run lines; its
//!   [`generator::Config`] bounds everything, in the style of `wasm-smith`.
//! * [`case`]: a test case *is* an upstream filetest (`test run`, `target`, functions, `; run:`);
//!   [`filetest`] splits an upstream file with several `target` lines into one case per target.
//! * [`engine`]: `cranelift-interpreter` (the reference, with `sarg` copies modelled),
//!   `cranelift-jit` (host; any memory provider), `cranelift-object` + `cc` (+ qemu for foreign
//!   targets). Each yields one [`outcome::Outcome`] per run line.
//! * [`sandbox`]: engines only run inside worker processes; crashes, hangs and OOMs become
//!   outcomes, never harness failures. [`validate`] runs there first: a case the verifier
//!   rejects as written is bad input, not a finding.
//! * [`oracle`]: judges every run line and every engine, and names each disagreement (a case
//!   can have several *findings*) by a stable *bucket*.
//! * [`identity`]: which findings are the same bug — a bucket refined by what the reduced case
//!   computes; [`known`]: findings that are understood, each with its cause as a predicate.
//! * [`reduce`]: shrinks a finding in a worker process of its own while it keeps the finding and
//!   every safety property of the original ([`facts`]), and writes the reproducer.
//! * [`replay`]: the regression corpus, each file carrying the findings it shows.
//!
//! Around the pipeline: [`harness`] (one case, all engines, one report, with options from the
//! case's directives), [`campaign`] (the fuzz loop, the findings store and triage), [`fuzzing`] (the
//! cargo-fuzz entry points), [`cinterop`] (Cranelift against the C compiler's ABI), [`report`]
//! (the nightly report), [`corpus`] and [`import`] (growing the corpus, old CLIF syntax),
//! [`bench`](mod@bench), and the plumbing: [`target`], [`toolchain`], [`emulator`], [`value`],
//! [`printer`], [`panics`].

pub mod bench;
pub mod campaign;
pub mod case;
pub mod cinterop;
pub mod corpus;
pub mod coverage;
pub mod data;
pub mod emulator;
pub mod engine;
pub mod facts;
pub mod filetest;
pub mod fuzzing;
pub mod generator;
pub mod harness;
pub mod identity;
pub mod import;
pub mod known;
pub mod localise;
pub mod oracle;
pub mod outcome;
pub mod panics;
pub mod printer;
pub mod reduce;
pub mod replay;
pub mod report;
pub mod sandbox;
pub mod target;
pub mod toolchain;
pub mod validate;
pub mod value;
