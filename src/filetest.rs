//! Upstream filetests with several `target` lines: one configuration per target.
//!
//! Cranelift's runtests list targets one per line (`target x86_64`, `target x86_64 has_avx`,
//! `target aarch64`, `target pulley64` …) with `set` lines between them. Upstream's reader keeps
//! one set of shared flags that each `set` line changes and each `target` line snapshots, so a
//! target runs with every `set` line above it. A [`TestCase`] is one such configuration; this
//! module splits a file into them, keeping line numbers so errors still point into the file.
//!
//! A configuration clif-diff cannot execute (a Pulley target, an architecture without a
//! backend here) is [`Configuration::skipped`] with the reason — never an error.

use crate::case::{CaseError, TestCase};
use crate::target::Arch;
use std::path::Path;
use std::str::FromStr;

/// One target line of a file, ready to run or skipped.
pub struct Configuration {
    /// The target line's text (`x86_64 has_avx`), or `host` for a file without one.
    pub label: String,
    pub run: Result<TestCase, Skip>,
}

/// Why a configuration is not executed.
#[derive(Clone, Debug, PartialEq)]
pub struct Skip {
    pub reason: String,
}

impl Configuration {
    pub fn skipped(&self) -> Option<&str> {
        self.run.as_ref().err().map(|s| s.reason.as_str())
    }
}

/// Splits `text` into its configurations, in file order.
///
/// A file with at most one `target` line is a single configuration. A file that does not parse
/// at all is an error; a configuration that clif-diff cannot run is a [`Skip`].
pub fn configurations(text: &str, file: &str) -> Result<Vec<Configuration>, CaseError> {
    let header: Vec<(usize, &str)> = text
        .lines()
        .enumerate()
        .take_while(|(_, l)| !l.trim_start().starts_with("function"))
        .collect();
    let targets: Vec<usize> = header
        .iter()
        .filter(|(_, l)| l.trim_start().starts_with("target "))
        .map(|(i, _)| *i)
        .collect();
    if targets.len() <= 1 {
        let label = targets
            .first()
            .map(|&i| target_spec(text.lines().nth(i).unwrap_or("")))
            .unwrap_or_else(|| "host".to_string());
        return Ok(vec![configure(text, file, label)?]);
    }
    if let Some(&(i, _)) = header
        .iter()
        .rev()
        .find(|(_, l)| l.trim_start().starts_with("set "))
        .filter(|(i, _)| *i > *targets.last().unwrap())
    {
        return Err(CaseError {
            file: file.to_string(),
            line: i + 1,
            message: "a `set` line after the last `target` applies to no target".into(),
        });
    }
    let mut out = Vec::new();
    for &t in &targets {
        // Blank (not delete) the lines that do not belong to this configuration, so that every
        // line number in an error is still the file's.
        let rewritten: Vec<&str> = text
            .lines()
            .enumerate()
            .map(|(i, line)| {
                let l = line.trim_start();
                let foreign_target = l.starts_with("target ") && i != t;
                let later_set = l.starts_with("set ") && i > t && i < header.len();
                if i < header.len() && (foreign_target || later_set) {
                    ""
                } else {
                    line
                }
            })
            .collect();
        let label = target_spec(text.lines().nth(t).unwrap_or(""));
        out.push(configure(&rewritten.join("\n"), file, label)?);
    }
    Ok(out)
}

/// Reads `path` and splits it (see [`configurations`]), with one-line errors naming the file.
pub fn load(path: &Path) -> anyhow::Result<Vec<Configuration>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("{}: cannot read: {e}", path.display()))?;
    Ok(configurations(&text, &path.display().to_string())?)
}

fn target_spec(line: &str) -> String {
    line.trim()
        .trim_start_matches("target")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_string()
}

fn configure(text: &str, file: &str, label: String) -> Result<Configuration, CaseError> {
    let arch = label.split_whitespace().next().unwrap_or("");
    if label != "host" {
        if arch.starts_with("pulley") {
            return Ok(skip(
                label,
                "pulley: clif-diff has no Pulley engine (upstream runs it in its interpreter)",
            ));
        }
        if Arch::from_str(arch).is_err() {
            let reason = format!("target `{arch}`: no clif-diff engine for this architecture");
            return Ok(skip(label, &reason));
        }
    }
    match TestCase::parse_named(text, file) {
        Ok(case) if case.functions.is_empty() => Err(CaseError {
            file: file.to_string(),
            line: 1,
            message: "no functions in file".into(),
        }),
        // Cranelift's writer prints a dynamic vector type as `types::I8x16xN` and drops its
        // `dt` declaration, so such a function cannot reach a worker as text.
        Ok(case)
            if case
                .functions
                .iter()
                .any(|f| !f.dfg.dynamic_types.is_empty()) =>
        {
            Ok(skip(
                label,
                "dynamic vector types: Cranelift's writer cannot print them back (`types::I8x16xN`)",
            ))
        }
        Ok(case) => Ok(Configuration {
            label,
            run: Ok(case),
        }),
        // A value form clif-diff's engines cannot carry yet is a limit of this tool, reported
        // as a skip with the reason; anything else is a malformed file.
        Err(e) if e.message.starts_with("unsupported value") => {
            let reason = format!(
                "clif-diff cannot carry this run-line value yet: {}",
                e.message
            );
            Ok(skip(label, &reason))
        }
        Err(e) => Err(e),
    }
}

fn skip(label: String, reason: &str) -> Configuration {
    Configuration {
        label,
        run: Err(Skip {
            reason: reason.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "\
test interpret
test run
set opt_level=speed
target x86_64
target x86_64 has_avx
set opt_level=none
target aarch64
target pulley64
target riscv64 has_v

function %f(i32) -> i32 {
block0(v0: i32):
    return v0
}
; run: %f(1) == 1
";

    #[test]
    fn each_target_runs_with_the_set_lines_above_it() {
        let configs = configurations(FILE, "f.clif").unwrap();
        let labels: Vec<&str> = configs.iter().map(|c| c.label.as_str()).collect();
        assert_eq!(
            labels,
            [
                "x86_64",
                "x86_64 has_avx",
                "aarch64",
                "pulley64",
                "riscv64 has_v"
            ]
        );
        let opt = |i: usize| {
            configs[i]
                .run
                .as_ref()
                .unwrap()
                .setting("opt_level")
                .map(str::to_string)
        };
        assert_eq!(opt(0).as_deref(), Some("speed"));
        assert_eq!(opt(1).as_deref(), Some("speed"));
        assert_eq!(opt(2).as_deref(), Some("none"));
        assert_eq!(opt(4).as_deref(), Some("none"));
        let avx = configs[1].run.as_ref().unwrap();
        assert_eq!(avx.target.as_deref(), Some("x86_64 has_avx"));
        assert_eq!(avx.runs.len(), 1);
        assert!(configs[3].skipped().unwrap().contains("Pulley"));
    }

    #[test]
    fn a_dangling_set_line_is_an_error_at_its_line() {
        let text = FILE.replace(
            "target riscv64 has_v",
            "target riscv64\nset opt_level=speed",
        );
        let e = configurations(&text, "f.clif").err().unwrap();
        assert_eq!(e.line, 10, "{e}");
    }

    #[test]
    fn errors_keep_the_files_line_numbers() {
        let text = FILE.replace("return v0", "return v9");
        let e = configurations(&text, "f.clif").err().unwrap();
        assert_eq!(e.line, 13, "{e}");
    }

    #[test]
    fn a_single_target_file_is_one_configuration() {
        let text = FILE
            .lines()
            .filter(|l| !l.starts_with("target ") || *l == "target aarch64")
            .collect::<Vec<_>>()
            .join("\n");
        let configs = configurations(&text, "f.clif").unwrap();
        assert_eq!(configs.len(), 1);
        assert_eq!(configs[0].label, "aarch64");
    }
}
