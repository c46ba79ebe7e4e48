//! The test case: one `.clif` file in Cranelift's filetest format.
//!
//! A case is what every other module exchanges: the generator produces one, the engines run one,
//! the reducer shrinks one, findings are stored as one. Its text form is upstream's filetest
//! format, so a reproducer can be handed to `clif-util test` unchanged:
//!
//! ```text
//! ; clif-diff: expect = agree          <- our directives, plain comments to upstream
//! test interpret
//! test run
//! set enable_llvm_abi_extensions=true
//! target x86_64
//!
//! function %foo(i64 sarg(16)) -> i32 system_v { ... }
//! function %main() -> i32 system_v { ... fn0 = colocated %foo(...) ... }
//! ; run: %main() == 42
//! ```

use crate::data::DataObject;
use crate::value::{Val, display_list};
use anyhow::{Context, Result, anyhow, bail};
use cranelift_codegen::data_value::DataValue;
use cranelift_codegen::ir::{Function, Signature, UserFuncName, types};
use cranelift_reader::{Comparison, ParseOptions, RunCommand, parse_run_command, parse_test};
use std::borrow::Cow;
use std::fmt::{self, Write as _};
use std::path::Path;

/// Prefix of the comment lines that carry clif-diff's own metadata.
pub const DIRECTIVE: &str = "; clif-diff:";

/// The directive defining a data object.
pub const DATA: &str = "data";

#[derive(Clone)]
pub struct TestCase {
    /// `test` commands, e.g. `interpret`, `run`.
    pub commands: Vec<String>,
    /// `set` lines in file order: (name, value), or (name, "") for a bare boolean flag.
    pub settings: Vec<(String, String)>,
    /// The text after `target`, e.g. `x86_64 has_avx`; `None` means the host.
    pub target: Option<String>,
    /// `; clif-diff: key = value` lines (other than `data`).
    pub directives: Vec<(String, String)>,
    /// Data objects (`; clif-diff: data = …` lines), see [`crate::data`].
    pub data: Vec<DataObject>,
    pub functions: Vec<Function>,
    pub runs: Vec<RunLine>,
}

/// One `; run:` or `; print:` line.
#[derive(Clone, Debug)]
pub struct RunLine {
    /// The invoked function's test-case name, without `%`.
    pub func: String,
    pub args: Vec<Val>,
    pub expect: Expect,
}

#[derive(Clone, Debug)]
pub enum Expect {
    /// `; print:` — no expected value is known.
    Print,
    /// `; run: %f(..) == v`
    Eq(Vec<Val>),
    /// `; run: %f(..) != v`
    Ne(Vec<Val>),
    /// Upstream's bare `; run` under a `() -> iN` function: it returns true (non-zero).
    True,
    /// The line traps with this code: `; clif-diff: expect-trap = %f(..): code` in place of a
    /// run line (upstream's runners fail on any run or print line that traps).
    Trap(String),
}

/// Directive naming the trap a `; print:` line is expected to end in.
pub const EXPECT_TRAP: &str = "expect-trap";

/// A parse failure pinned to a line of the file, printed as `file:line: message`.
#[derive(Debug, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct CaseError {
    pub file: String,
    pub line: usize,
    pub message: String,
}

impl TestCase {
    pub fn from_file(path: &Path) -> Result<TestCase> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("{}: cannot read", path.display()))?;
        TestCase::parse_named(&text, &path.display().to_string()).map_err(Into::into)
    }

    pub fn parse(text: &str) -> Result<TestCase, CaseError> {
        TestCase::parse_named(text, "<input>")
    }

    pub fn parse_named(text: &str, file: &str) -> Result<TestCase, CaseError> {
        let err = |line: usize, message: String| CaseError {
            file: file.to_string(),
            line,
            message,
        };
        let mut commands = Vec::new();
        let mut settings = Vec::new();
        let mut target = None;
        let mut directives = Vec::new();
        let mut data = Vec::new();
        let mut data_lines = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.starts_with("function") {
                break;
            }
            if let Some(rest) = line.strip_prefix(DIRECTIVE) {
                let (k, v) = rest.split_once('=').unwrap_or((rest, ""));
                if k.trim() == DATA {
                    data.push(DataObject::parse(v).map_err(|m| err(i + 1, m))?);
                    data_lines.push(i + 1);
                    continue;
                }
                directives.push((k.trim().to_string(), v.trim().to_string()));
            } else if let Some(rest) = line.strip_prefix("test ") {
                commands.push(rest.trim().to_string());
            } else if let Some(rest) = line.strip_prefix("set ") {
                for opt in rest.split_whitespace() {
                    let (k, v) = opt.split_once('=').unwrap_or((opt, ""));
                    settings.push((k.to_string(), v.to_string()));
                }
            } else if let Some(rest) = line.strip_prefix("target ") {
                if target.is_some() {
                    return Err(err(
                        i + 1,
                        "several `target` lines: this command takes one \
                         (`clif-diff run` and `replay` execute each)"
                            .into(),
                    ));
                }
                target = Some(rest.trim().to_string());
            }
        }

        if let Some((k, m)) = crate::data::pointer_at_thread_local(&data) {
            return Err(err(data_lines[k], m));
        }
        let run_only =
            commands.iter().any(|c| c == "run") && !commands.iter().any(|c| c == "interpret");
        let parsed = parse_test(text, ParseOptions::default())
            .map_err(|e| err(e.location.line_number, e.message.clone()))?;
        let mut functions = Vec::new();
        let mut runs = Vec::new();
        for (func, details) in &parsed.functions {
            for comment in &details.comments {
                let line = details.location.line_number;
                // A trap is said in place by a directive upstream ignores (`; print:` of a
                // trapping call would fail upstream's runners): parse it as that print line.
                let (text, trap) = match trap_directive(comment.text) {
                    Some(Ok((inv, code))) => (Cow::Owned(format!("; print: {inv}")), Some(code)),
                    Some(Err(m)) => return Err(err(line, m)),
                    None => (Cow::Borrowed(comment.text), None),
                };
                let t = text.trim_start_matches([';', ' ']);
                if !(t.starts_with("run") || t.starts_with("print")) {
                    continue;
                }
                let cmd = if run_only {
                    parse_run_command(&text, &func.signature)
                        .map(|c| c.map(|c| (c, func.signature.clone())))
                        .map_err(|e| e.message)
                } else {
                    parse_run_with_callee(&text, func, &parsed.functions)
                }
                .map_err(|m| err(line, m))?;
                if let Some((cmd, sig)) = cmd {
                    let mut run = run_line_from(cmd, &sig, func).map_err(|m| err(line, m))?;
                    if let Some(code) = trap {
                        run.expect = Expect::Trap(code);
                    }
                    if run_only {
                        // Upstream's `test run` calls the function a run line is attached to,
                        // whatever name the line gives; a `test run` file means exactly that.
                        run.func = testcase_name(func);
                    }
                    runs.push(run);
                }
            }
            functions.push(func.clone());
        }
        // The printed form lists each function's run lines after it (see `Display`), and workers
        // receive the printed form: order the run lines the same way here, or outcomes (indexed
        // by run line) would be matched to the wrong lines.
        runs.sort_by_key(|r: &RunLine| {
            functions
                .iter()
                .position(|f| testcase_name(f) == r.func)
                .unwrap_or(usize::MAX)
        });
        // The older form: a header directive naming a `; print:` line.
        let mut kept = Vec::new();
        for (k, v) in directives {
            if k != EXPECT_TRAP {
                kept.push((k, v));
                continue;
            }
            let (inv, code) = v.rsplit_once(':').ok_or_else(|| {
                err(
                    1,
                    format!("`{EXPECT_TRAP}` needs `%f(args): code`, got `{v}`"),
                )
            })?;
            let key = squash(inv);
            let run = runs
                .iter_mut()
                .find(|r| squash(&r.invocation()) == key && matches!(r.expect, Expect::Print))
                .ok_or_else(|| err(1, format!("`{EXPECT_TRAP}`: no `; print:` line for {inv}")))?;
            run.expect = Expect::Trap(code.trim().to_string());
        }
        let directives = kept;
        Ok(TestCase {
            commands,
            settings,
            target,
            directives,
            data,
            functions,
            runs,
        })
    }

    /// A case with no header, functions or run lines.
    pub fn empty() -> TestCase {
        TestCase {
            commands: Vec::new(),
            settings: Vec::new(),
            target: None,
            directives: Vec::new(),
            data: Vec::new(),
            functions: Vec::new(),
            runs: Vec::new(),
        }
    }

    pub fn directive(&self, key: &str) -> Option<&str> {
        self.directives
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Replaces every directive named `key` by one with `value`.
    pub fn set_directive(&mut self, key: &str, value: impl Into<String>) {
        self.directives.retain(|(k, _)| k != key);
        self.directives.push((key.to_string(), value.into()));
    }

    pub fn setting(&self, name: &str) -> Option<&str> {
        self.settings
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn set_setting(&mut self, name: &str, value: &str) {
        self.settings.retain(|(k, _)| k != name);
        self.settings.push((name.to_string(), value.to_string()));
    }

    /// The data object named `name` (without `%`).
    pub fn data_object(&self, name: &str) -> Option<&DataObject> {
        self.data.iter().find(|d| d.name == name)
    }

    /// The function a run line names, by its test-case name (`foo` for `%foo`).
    pub fn function(&self, name: &str) -> Option<&Function> {
        self.functions.iter().find(|f| testcase_name(f) == name)
    }

    /// Renders the case as a filetest.
    pub fn to_text(&self) -> String {
        self.to_string()
    }
}

/// The name a function is invoked by from a run line (`foo` for `%foo`, `u0:1` for `u0:1`).
pub fn testcase_name(f: &Function) -> String {
    match &f.name {
        UserFuncName::Testcase(t) => t.to_string().trim_start_matches('%').to_string(),
        other => other.to_string(),
    }
}

/// Parses a run line with the signature of the function it invokes (which need not be the
/// function it is attached to), returning that signature with it.
fn parse_run_with_callee(
    text: &str,
    attached: &Function,
    all: &[(Function, cranelift_reader::Details)],
) -> Result<Option<(RunCommand, Signature)>, String> {
    // Parse once to learn the name, then again with the invoked function's signature.
    let first = parse_run_command(text, &attached.signature);
    let name = match &first {
        Ok(Some(RunCommand::Run(inv, ..))) | Ok(Some(RunCommand::Print(inv))) => inv.func.clone(),
        Ok(None) => return Ok(None),
        Err(_) => {
            let t = text.trim_start_matches([';', ' ']);
            let after = t.split_once('%').map(|(_, r)| r).unwrap_or("");
            after.split('(').next().unwrap_or("").to_string()
        }
    };
    if name == "default" || name == testcase_name(attached) {
        return first
            .map(|c| c.map(|c| (c, attached.signature.clone())))
            .map_err(|e| e.message);
    }
    let sig: &Signature = all
        .iter()
        .find(|(f, _)| testcase_name(f) == name)
        .map(|(f, _)| &f.signature)
        .ok_or_else(|| format!("run line invokes unknown function %{name}"))?;
    parse_run_command(text, sig)
        .map(|c| c.map(|c| (c, sig.clone())))
        .map_err(|e| e.message)
}

/// `; clif-diff: expect-trap = %f(args): code` → (`%f(args)`, `code`).
fn trap_directive(comment: &str) -> Option<Result<(String, String), String>> {
    let rest = comment.trim().strip_prefix(DIRECTIVE)?;
    let (k, v) = rest.split_once('=')?;
    if k.trim() != EXPECT_TRAP {
        return None;
    }
    Some(match v.rsplit_once(':') {
        Some((inv, code)) if inv.contains('(') => {
            Ok((inv.trim().to_string(), code.trim().to_string()))
        }
        _ => Err(format!(
            "`{EXPECT_TRAP}` needs `%f(args): code`, got `{}`",
            v.trim()
        )),
    })
}

/// An invocation without whitespace, for matching directives to run lines.
fn squash(s: &str) -> String {
    s.chars().filter(|c| !c.is_whitespace()).collect()
}

fn run_line_from(cmd: RunCommand, sig: &Signature, attached: &Function) -> Result<RunLine, String> {
    let vals = |v: &[DataValue],
                tys: &[cranelift_codegen::ir::AbiParam]|
     -> Result<Vec<Val>, String> {
        v.iter()
            .zip(
                tys.iter()
                    .map(|p| p.value_type)
                    .chain(std::iter::repeat(types::INVALID)),
            )
            .map(|(d, ty)| {
                Val::from_data_value_typed(d, ty).ok_or_else(|| format!("unsupported value {d}"))
            })
            .collect()
    };
    Ok(match cmd {
        RunCommand::Print(inv) => RunLine {
            func: inv.func,
            args: vals(&inv.args, &sig.params)?,
            expect: Expect::Print,
        },
        // The reader's form of a bare `; run`: the attached function, `!= 0`.
        RunCommand::Run(inv, Comparison::NotEquals, _) if inv.func == "default" => RunLine {
            func: testcase_name(attached),
            args: Vec::new(),
            expect: Expect::True,
        },
        RunCommand::Run(inv, cmp, expected) => RunLine {
            func: inv.func,
            args: vals(&inv.args, &sig.params)?,
            expect: match cmp {
                Comparison::Equals => Expect::Eq(vals(&expected, &sig.returns)?),
                Comparison::NotEquals => Expect::Ne(vals(&expected, &sig.returns)?),
            },
        },
    })
}

impl RunLine {
    pub fn invocation(&self) -> String {
        let args: Vec<String> = self.args.iter().map(|a| a.to_string()).collect();
        format!("%{}({})", self.func, args.join(", "))
    }
}

impl fmt::Display for RunLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.expect {
            Expect::Print => write!(f, "; print: {}", self.invocation()),
            Expect::Trap(code) => write!(
                f,
                "{DIRECTIVE} {EXPECT_TRAP} = {}: {code}",
                self.invocation()
            ),
            // Printed after its own function (see `TestCase`'s `Display`), as upstream needs.
            Expect::True => write!(f, "; run"),
            Expect::Eq(v) => write!(f, "; run: {} == {}", self.invocation(), display_list(v)),
            Expect::Ne(v) => write!(f, "; run: {} != {}", self.invocation(), display_list(v)),
        }
    }
}

impl fmt::Display for TestCase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::new();
        for (k, v) in &self.directives {
            if v.is_empty() {
                writeln!(out, "{DIRECTIVE} {k}")?;
            } else {
                writeln!(out, "{DIRECTIVE} {k} = {v}")?;
            }
        }
        for d in &self.data {
            writeln!(out, "{DIRECTIVE} {DATA} = {d}")?;
        }
        for c in &self.commands {
            writeln!(out, "test {c}")?;
        }
        for (k, v) in &self.settings {
            if v.is_empty() {
                writeln!(out, "set {k}")?;
            } else {
                writeln!(out, "set {k}={v}")?;
            }
        }
        if let Some(t) = &self.target {
            writeln!(out, "target {t}")?;
        }
        for func in &self.functions {
            writeln!(out)?;
            out.push_str(&crate::printer::function_text(func));
            let name = testcase_name(func);
            for run in self.runs.iter().filter(|r| r.func == name) {
                writeln!(out, "{run}")?;
            }
        }
        // Run lines that name no function of the file still belong to the case.
        for run in &self.runs {
            if self.function(&run.func).is_none() {
                writeln!(out, "{run}")?;
            }
        }
        f.write_str(&out)
    }
}

/// Reads a case, mapping every failure to a one-line error that names file and line.
pub fn load(path: &Path) -> Result<TestCase> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow!("{}: cannot read: {e}", path.display()))?;
    let case = TestCase::parse_named(&text, &path.display().to_string())?;
    if case.functions.is_empty() {
        bail!("{}:1: no functions in file", path.display());
    }
    Ok(case)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWO: &str = "
function %double(i64) -> i64 {
block0(v0: i64):
    v1 = iadd v0, v0
    return v1
}

function %triple(i64) -> i64 {
block0(v0: i64):
    v2 = iconst.i64 3
    v1 = imul v0, v2
    return v1
}
; run: %double(2) == 6
";

    #[test]
    fn a_run_line_runs_the_function_upstreams_runner_would() {
        // `test run` calls the function the line is attached to; `test interpret` the one it names.
        let run = TestCase::parse(&format!("test run\ntarget x86_64\n{TWO}")).unwrap();
        assert_eq!(run.runs[0].func, "triple");
        let both = TestCase::parse(&format!("test interpret\ntest run\n{TWO}")).unwrap();
        assert_eq!(both.runs[0].func, "double");
    }

    const SEED: &str = "; clif-diff: expect = agree
test interpret
test run
target x86_64

function %foo(i64 sarg(16)) -> i32 system_v {
block0(v0: i64):
    v1 = load.i32 notrap aligned v0
    return v1
}

function %main() -> i32 system_v {
    ss0 = explicit_slot 4, align = 16
    sig0 = (i64 sarg(16)) -> i32 system_v
    fn0 = colocated %foo sig0

block0:
    v0 = iconst.i32 42
    v1 = stack_addr.i64 ss0
    store notrap v0, v1
    v2 = call fn0(v1)
    return v2
}
; run: %main() == 42
";

    #[test]
    fn round_trips_through_text() {
        let case = TestCase::parse(SEED).unwrap();
        assert_eq!(case.commands, ["interpret", "run"]);
        assert_eq!(case.target.as_deref(), Some("x86_64"));
        assert_eq!(case.directive("expect"), Some("agree"));
        assert_eq!(case.functions.len(), 2);
        assert_eq!(case.runs.len(), 1);
        assert_eq!(case.runs[0].func, "main");
        let again = TestCase::parse(&case.to_text()).unwrap();
        assert_eq!(again.to_text(), case.to_text());
    }

    #[test]
    fn run_line_typed_by_invoked_function() {
        // (Under `test interpret`, which calls the function a line names.)
        let text = "test interpret\ntest run\ntarget x86_64\n\nfunction %f(i8) -> i8 system_v {\nblock0(v0: i8):\n    return v0\n}\n\nfunction %g() system_v {\nblock0:\n    return\n}\n; run: %f(200) == -56\n";
        let case = TestCase::parse(text).unwrap();
        assert!(matches!(case.runs[0].args[0], Val::I8(-56)));
    }

    #[test]
    fn run_lines_keep_their_order_through_text() {
        let text = "test run\ntarget x86_64\n\nfunction %f() -> i8 system_v {\nblock0:\n    v0 = iconst.i8 1\n    return v0\n}\n\nfunction %g() -> i8 system_v {\nblock0:\n    v0 = iconst.i8 2\n    return v0\n}\n; run: %g() == 2\n; run: %f() == 1\n";
        let case = TestCase::parse(text).unwrap();
        let again = TestCase::parse(&case.to_text()).unwrap();
        let order = |c: &TestCase| c.runs.iter().map(|r| r.func.clone()).collect::<Vec<_>>();
        assert_eq!(order(&case), order(&again));
    }

    #[test]
    fn bare_run_and_trap_expectations_round_trip() {
        let text = "; clif-diff: expect-trap = %d(0): int_divz\ntest run\ntarget x86_64\n\nfunction %t() -> i8 system_v {\nblock0:\n    v0 = iconst.i8 1\n    return v0\n}\n; run\n\nfunction %d(i32) -> i32 system_v {\nblock0(v0: i32):\n    v1 = iconst.i32 7\n    v2 = udiv v1, v0\n    return v2\n}\n; print: %d(0)\n; run: %d(1) == 7\n";
        let case = TestCase::parse(text).unwrap();
        assert!(matches!(case.runs[0].expect, Expect::True));
        assert_eq!(case.runs[0].func, "t");
        assert!(matches!(&case.runs[1].expect, Expect::Trap(c) if c == "int_divz"));
        assert!(matches!(case.runs[2].expect, Expect::Eq(_)));
        assert!(case.directives.is_empty());
        let printed = case.to_text();
        assert!(printed.contains("\n; run\n"), "{printed}");
        assert!(
            printed.contains("expect-trap = %d(0): int_divz"),
            "{printed}"
        );
        assert_eq!(TestCase::parse(&printed).unwrap().to_text(), printed);
        // Written in place of the line, with no `; print:` upstream's runners would execute.
        assert!(!printed.contains("; print:"), "{printed}");
        assert!(
            printed.find("expect-trap").unwrap() > printed.find("function %d").unwrap(),
            "{printed}"
        );
        let again = TestCase::parse(&printed).unwrap();
        let order: Vec<String> = again.runs.iter().map(|r| r.to_string()).collect();
        let before: Vec<String> = case.runs.iter().map(|r| r.to_string()).collect();
        assert_eq!(order, before);
        // The older header form must name a `; print:` line.
        let orphan = text.replace("%d(0): int_divz", "%d(5): int_divz");
        assert!(TestCase::parse(&orphan).is_err());
    }

    #[test]
    fn malformed_input_names_the_line() {
        let e = TestCase::parse_named(
            "test run\n\nfunction %f() {\nblock0:\n  bogus\n}\n",
            "x.clif",
        )
        .err()
        .unwrap();
        assert_eq!(e.file, "x.clif");
        assert_eq!(e.line, 5);
    }
}
