//! The C half of an interop test, as C source.
//!
//! Per case `k`: `abi_c_callee_k`, which the Cranelift caller calls and which checks every
//! argument it receives, and `run_k`, which calls the Cranelift callee with the expected
//! arguments, checks its results and the records it left, then runs the Cranelift caller and
//! checks the records of what came back from `abi_c_callee_k`. Every check that fails prints
//! one line naming the direction and the argument or result:
//!
//! ```text
//! M <case> <c->clif|clif->c> <item> <expected> <got>      (tab-separated)
//! ```
//!
//! Narrow integers with `uext`/`sext` (x86-64 only) are declared with their promoted 32-bit type
//! wherever C reads them from a register (callee parameters, results the caller receives), so
//! that the extension itself is checked, not only the low bits; x86-64 compilers extend such
//! values to 32 bits and rely on it.

use super::clif::{c_callee_symbol, callee_symbol, caller_symbol};
use super::record::{self, what};
use super::sig::{AbiCase, Ext, Param, Scalar, Value};
use crate::target::Arch;
use std::fmt::Write;

/// Test-only faults of the C side, to prove that mismatches are seen and named.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CFaults {
    /// The C callee expects argument `i` to differ in its lowest bit from what is passed.
    pub wrong_arg: Option<usize>,
    /// The worker aborts while compiling the case with this signature (as printed): a Cranelift
    /// crash no `catch_unwind` contains, to prove that a batch loses only that case.
    #[serde(default)]
    pub worker_dies_on: Option<String>,
}

const PRELUDE: &str = r#"#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef unsigned __int128 u128;
static int checks;
static int cur;
static struct { uint32_t what; u128 v; } recs[8192];
static int nrec;

void clif_record(uint32_t what, uint64_t lo, uint64_t hi) {
    if (nrec < (int)(sizeof recs / sizeof recs[0])) {
        recs[nrec].what = what;
        recs[nrec].v = (u128)hi << 64 | lo;
        nrec++;
    }
}

static float f32b(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }
static double f64b(uint64_t u) { double f; memcpy(&f, &u, 8); return f; }
static u128 bf32(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static u128 bf64(double f) { uint64_t u; memcpy(&u, &f, 8); return u; }

static void hex(char *buf, u128 v) {
    uint64_t hi = (uint64_t)(v >> 64), lo = (uint64_t)v;
    if (hi) sprintf(buf, "0x%llx%016llx", (unsigned long long)hi, (unsigned long long)lo);
    else sprintf(buf, "0x%llx", (unsigned long long)lo);
}

static void check(const char *dir, const char *item, u128 expected, u128 got) {
    checks++;
    if (expected != got) {
        char e[40], g[40];
        hex(e, expected);
        hex(g, got);
        printf("M\t%d\t%s\t%s\t%s\t%s\n", cur, dir, item, e, g);
    }
}

static void check_rec(const char *dir, const char *item, uint32_t what, u128 expected) {
    for (int i = 0; i < nrec; i++)
        if (recs[i].what == what) { check(dir, item, expected, recs[i].v); return; }
    checks++;
    char e[40];
    hex(e, expected);
    printf("M\t%d\t%s\t%s\t%s\tnothing recorded\n", cur, dir, item, e);
}
"#;

fn u128_lit(v: u128) -> String {
    let (hi, lo) = ((v >> 64) as u64, v as u64);
    if hi == 0 {
        format!("((u128)0x{lo:x}ULL)")
    } else {
        format!("((u128)0x{hi:x}ULL << 64 | (u128)0x{lo:x}ULL)")
    }
}

/// The C type of a scalar as a plain value (what a caller passes or a struct member holds).
fn plain_type(s: Scalar, e: Ext) -> &'static str {
    let signed = e == Ext::Sext;
    match (s, signed) {
        (Scalar::I8, true) => "int8_t",
        (Scalar::I8, false) => "uint8_t",
        (Scalar::I16, true) => "int16_t",
        (Scalar::I16, false) => "uint16_t",
        (Scalar::I32, true) => "int32_t",
        (Scalar::I32, false) => "uint32_t",
        (Scalar::I64, _) => "uint64_t",
        (Scalar::I128, _) => "u128",
        (Scalar::F32, _) => "float",
        (Scalar::F64, _) => "double",
    }
}

/// Whether C reads this value as its promoted 32-bit type to check the extension.
fn promoted(s: Scalar, e: Ext) -> bool {
    matches!(s, Scalar::I8 | Scalar::I16) && e != Ext::None
}

/// The type C uses where it reads the value from a register.
fn read_type(s: Scalar, e: Ext) -> &'static str {
    match (promoted(s, e), e) {
        (true, Ext::Sext) => "int32_t",
        (true, _) => "uint32_t",
        _ => plain_type(s, e),
    }
}

/// Bits C expects to read with [`read_type`].
fn read_bits(s: Scalar, e: Ext, bits: u128) -> u128 {
    if promoted(s, e) {
        e.extend(bits, s.bits(), 32)
    } else {
        bits
    }
}

/// A C expression of type `ty` for the given bits.
fn value_expr(s: Scalar, ty: &str, bits: u128) -> String {
    match s {
        Scalar::F32 => format!("f32b(0x{:x}u)", bits as u32),
        Scalar::F64 => format!("f64b(0x{:x}ULL)", bits as u64),
        _ => format!("({ty}){}", u128_lit(bits)),
    }
}

/// A C expression of type u128 holding the bits of `x`, read as `ty`.
fn bits_expr(s: Scalar, ty: &str, x: &str) -> String {
    match s {
        Scalar::F32 => format!("bf32({x})"),
        Scalar::F64 => format!("bf64({x})"),
        Scalar::I128 => format!("(u128)({x})"),
        _ => {
            let unsigned = match ty {
                "int8_t" | "uint8_t" => "uint8_t",
                "int16_t" | "uint16_t" => "uint16_t",
                "int32_t" | "uint32_t" => "uint32_t",
                _ => "uint64_t",
            };
            format!("(u128)({unsigned})({x})")
        }
    }
}

fn c_str(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

fn arg_name(i: usize, p: &Param) -> String {
    format!("arg {i} ({p})")
}

fn ret_name(j: usize, s: Scalar, e: Ext) -> String {
    format!("ret {j} ({})", Param::Scalar(s, e))
}

/// The C source for a batch of cases, `k` being each case's index in `cases`.
pub fn source(cases: &[AbiCase], faults: &CFaults, arch: Arch) -> String {
    let mut out = String::from(PRELUDE);
    for (k, case) in cases.iter().enumerate() {
        case_source(&mut out, k, case, faults, arch);
    }
    let _ = writeln!(out, "\nstatic void (*const runs[])(void) = {{");
    for k in 0..cases.len() {
        let _ = writeln!(out, "    run_{k},");
    }
    out.push_str(
        r#"};

int main(int argc, char **argv) {
    int n = (int)(sizeof runs / sizeof runs[0]);
    int k = argc > 1 ? atoi(argv[1]) : 0;
    for (; k < n; k++) {
        printf("S\t%d\n", k);
        fflush(stdout);
        cur = k;
        checks = 0;
        runs[k]();
        printf("D\t%d\t%d\n", k, checks);
        fflush(stdout);
    }
    return 0;
}
"#,
    );
    out
}

fn case_source(out: &mut String, k: usize, case: &AbiCase, faults: &CFaults, arch: Arch) {
    let sig = &case.sig;
    let _ = writeln!(out, "\n/* case {k}: {} */", sig.text());
    for (i, p) in sig.params.iter().enumerate() {
        if let Param::Struct(n) = p {
            let _ = writeln!(out, "typedef struct {{ uint64_t w[{}]; }} s{k}_{i};", n / 8);
        }
    }
    // Results: none, one scalar, or a struct whose members sit in separate eightbytes.
    let ret_ty = match sig.returns.as_slice() {
        [] => "void".to_string(),
        [(s, e)] => read_type(*s, *e).to_string(),
        [(s0, e0), (s1, e1)] => {
            // x86-64 classifies each eightbyte on its own, so each member gets one; on aarch64 a
            // pair of equal floats is a homogeneous aggregate (one register per member), and
            // integers fill x0 and x1 only when each has its own 8 bytes.
            let hfa = arch == Arch::Aarch64 && s0.is_float();
            let align = if hfa { "" } else { "_Alignas(8) " };
            let _ = writeln!(
                out,
                "typedef struct {{ {} r0; {align}{} r1; }} r{k};",
                read_type(*s0, *e0),
                read_type(*s1, *e1)
            );
            format!("r{k}")
        }
        _ => unreachable!("c_expressible"),
    };
    let param_decl = |i: usize, p: &Param, read: bool| match p {
        Param::Scalar(s, e) if read => format!("{} a{i}", read_type(*s, *e)),
        Param::Scalar(s, e) => format!("{} a{i}", plain_type(*s, *e)),
        Param::Struct(_) => format!("s{k}_{i} a{i}"),
    };
    let list = |read: bool| -> String {
        if sig.params.is_empty() {
            "void".into()
        } else {
            sig.params
                .iter()
                .enumerate()
                .map(|(i, p)| param_decl(i, p, read))
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    let ret_values = |out: &mut String| match sig.returns.as_slice() {
        [] => {}
        [(s, e)] => {
            let Value::Bits(b) = case.rets[0] else {
                unreachable!()
            };
            let ty = read_type(*s, *e);
            let _ = writeln!(
                out,
                "    return {};",
                value_expr(*s, ty, read_bits(*s, *e, b))
            );
        }
        rets => {
            let fields: Vec<String> = rets
                .iter()
                .zip(&case.rets)
                .enumerate()
                .map(|(j, ((s, e), v))| {
                    let Value::Bits(b) = v else { unreachable!() };
                    let ty = read_type(*s, *e);
                    format!(".r{j} = {}", value_expr(*s, ty, read_bits(*s, *e, *b)))
                })
                .collect();
            let _ = writeln!(out, "    return (r{k}){{ {} }};", fields.join(", "));
        }
    };

    // The C callee: checks each argument as received, writes to its struct copies, returns the
    // expected results.
    let _ = writeln!(out, "{ret_ty} {}({}) {{", c_callee_symbol(k), list(true));
    for (i, (p, v)) in sig.params.iter().zip(&case.args).enumerate() {
        let flip = if faults.wrong_arg == Some(i) { 1 } else { 0 };
        let name = arg_name(i, p);
        match (p, v) {
            (Param::Scalar(s, e), Value::Bits(b)) => {
                let ty = read_type(*s, *e);
                let _ = writeln!(
                    out,
                    "    check(\"clif->c\", {}, {}, {});",
                    c_str(&name),
                    u128_lit(read_bits(*s, *e, *b) ^ flip),
                    bits_expr(*s, ty, &format!("a{i}"))
                );
            }
            (Param::Struct(_), Value::Words(words)) => {
                for (w, word) in words.iter().enumerate() {
                    let flip = if w == 0 { flip } else { 0 };
                    let _ = writeln!(
                        out,
                        "    check(\"clif->c\", {}, {}, (u128)a{i}.w[{w}]);",
                        c_str(&format!("{name} word {w}")),
                        u128_lit(*word as u128 ^ flip)
                    );
                }
                let _ = writeln!(out, "    a{i}.w[0] = ~a{i}.w[0];");
            }
            _ => unreachable!(),
        }
    }
    ret_values(out);
    let _ = writeln!(out, "}}");

    // The Cranelift functions, as C sees them.
    let _ = writeln!(out, "{ret_ty} {}({});", callee_symbol(k), list(false));
    let _ = writeln!(out, "void {}(void);", caller_symbol(k));

    // run_k: C calls Cranelift, then Cranelift calls C.
    let _ = writeln!(out, "static void run_{k}(void) {{");
    let _ = writeln!(out, "    nrec = 0;");
    let mut args = Vec::new();
    for (i, (p, v)) in sig.params.iter().zip(&case.args).enumerate() {
        match (p, v) {
            (Param::Scalar(s, e), Value::Bits(b)) => {
                args.push(value_expr(*s, plain_type(*s, *e), *b));
            }
            (Param::Struct(_), Value::Words(words)) => {
                let init: Vec<String> = words.iter().map(|w| format!("0x{w:x}ULL")).collect();
                let _ = writeln!(out, "    s{k}_{i} s{i} = {{{{ {} }}}};", init.join(", "));
                args.push(format!("s{i}"));
            }
            _ => unreachable!(),
        }
    }
    let call = format!("{}({})", callee_symbol(k), args.join(", "));
    match sig.returns.as_slice() {
        [] => {
            let _ = writeln!(out, "    {call};");
        }
        _ => {
            let _ = writeln!(out, "    {ret_ty} r = {call};");
        }
    }
    let rets = sig.returns.iter().zip(&case.rets).enumerate();
    for (j, ((s, e), v)) in rets.clone() {
        let Value::Bits(b) = v else { unreachable!() };
        let field = if sig.returns.len() == 1 {
            "r".to_string()
        } else {
            format!("r.r{j}")
        };
        let _ = writeln!(
            out,
            "    check(\"c->clif\", {}, {}, {});",
            c_str(&ret_name(j, *s, *e)),
            u128_lit(read_bits(*s, *e, *b)),
            bits_expr(*s, read_type(*s, *e), &field)
        );
    }
    for (i, (p, v)) in sig.params.iter().zip(&case.args).enumerate() {
        let name = arg_name(i, p);
        match (p, v) {
            (Param::Scalar(s, e), Value::Bits(b)) => {
                let _ = writeln!(
                    out,
                    "    check_rec(\"c->clif\", {}, {}u, {});",
                    c_str(&name),
                    what(record::PARAM, i, 0),
                    u128_lit(*b)
                );
                if s.extendable() && *e != Ext::None {
                    let _ = writeln!(
                        out,
                        "    check_rec(\"c->clif\", {}, {}u, {});",
                        c_str(&format!("{name} extended to i64 by the callee")),
                        what(record::PARAM_EXT64, i, 0),
                        u128_lit(e.extend(*b, s.bits(), 64))
                    );
                }
            }
            (Param::Struct(_), Value::Words(words)) => {
                for (w, word) in words.iter().enumerate() {
                    let _ = writeln!(
                        out,
                        "    check_rec(\"c->clif\", {}, {}u, {});",
                        c_str(&format!("{name} word {w}")),
                        what(record::WORD, i, w),
                        u128_lit(*word as u128)
                    );
                }
                let _ = writeln!(
                    out,
                    "    check(\"c->clif\", {}, {}, (u128)s{i}.w[0]);",
                    c_str(&format!("{name} caller's struct after the call")),
                    u128_lit(words[0] as u128)
                );
            }
            _ => unreachable!(),
        }
    }
    let _ = writeln!(out, "    nrec = 0;");
    let _ = writeln!(out, "    {}();", caller_symbol(k));
    for (j, ((s, e), v)) in rets {
        let Value::Bits(b) = v else { unreachable!() };
        let name = ret_name(j, *s, *e);
        let _ = writeln!(
            out,
            "    check_rec(\"clif->c\", {}, {}u, {});",
            c_str(&name),
            what(record::RET, j, 0),
            u128_lit(*b)
        );
        if s.extendable() && *e != Ext::None {
            let _ = writeln!(
                out,
                "    check_rec(\"clif->c\", {}, {}u, {});",
                c_str(&format!("{name} extended to i64 by the caller")),
                what(record::RET_EXT64, j, 0),
                u128_lit(e.extend(*b, s.bits(), 64))
            );
        }
    }
    for (i, (p, v)) in sig.params.iter().zip(&case.args).enumerate() {
        if let (Param::Struct(_), Value::Words(words)) = (p, v) {
            let _ = writeln!(
                out,
                "    check_rec(\"clif->c\", {}, {}u, {});",
                c_str(&format!(
                    "{} caller's struct after the call",
                    arg_name(i, p)
                )),
                what(record::CALLER_COPY, i, 0),
                u128_lit(words[0] as u128)
            );
        }
    }
    let _ = writeln!(out, "}}");
}
