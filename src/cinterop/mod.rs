//! C interop, abi-cafe style: Cranelift against the system C compiler, across a call.
//!
//! A Cranelift caller and a Cranelift callee agree even when Cranelift's ABI is wrong, because
//! both are wrong the same way; the engines of [`crate::engine`] can never see that. Here the
//! other side of every call is C compiled by `cc`:
//!
//! * C calls a Cranelift function with known arguments; the Cranelift callee records what it
//!   received and returns known results, which C checks (`c->clif`);
//! * a Cranelift function calls a C function with known arguments; the C callee checks them and
//!   returns known results, which the Cranelift caller records for C to check (`clif->c`).
//!
//! Every argument and result is checked, by name (`arg 3 (i16 sext)`), including the extension
//! of narrow integers marked `uext`/`sext`, every word of `sarg` structs (passed as C structs by
//! value, which the ABI puts in memory), and that the caller's struct survives the callee
//! writing to its copy.
//!
//! * [`sig`]: the C-expressible signatures ([`sig::AbiSig`]) and random ones; [`from_gen`]: the
//!   generator's signatures brought into C's domain;
//! * [`clif`] and [`csrc`]: the two halves; [`record`]: how Cranelift reports to C;
//! * [`known`]: known divergences, by signature shape;
//! * [`run`]: one object, one C file, one link, one process for a whole batch of signatures.
//!   It runs in a sandbox worker ([`crate::sandbox::Sandbox::run_abi`]), like every engine.
//!
//! x86-64 System V natively; aarch64, riscv64 and s390x (Linux C ABIs) through the cross gcc and
//! `qemu-user`.

pub mod clif;
pub mod csrc;
pub mod from_gen;
pub mod known;
pub mod record;
pub mod run;
pub mod sig;

pub use csrc::CFaults;
pub use run::{AbiOptions, AbiOutcome, Mismatch};
pub use sig::{AbiCase, AbiSig, Ext, Param, Scalar, Shape, Value, random_case, random_sig};
