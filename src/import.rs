//! Importing reproducers written for older Cranelift versions.
//!
//! Old issues carry `.clif` text that today's reader rejects. The rewrites are textual because
//! the old text does not parse; each one is small and local:
//!
//! * `stack_store X, ssN+off` → `vT = stack_addr.<ptr> ssN+off` + `store notrap X, vT`;
//! * `vR = stack_load.T ssN+off` → `vT = stack_addr.<ptr> ssN+off` + `vR = load.T notrap vT`;
//! * `fnK = [colocated] u0:N sigM` → `%<N-th function>`: module-built reproducers name callees by
//!   `FuncId`, which is the declaration order of the functions in the file;
//! * optionally, calling conventions are mapped (`apple_aarch64=system_v`) to retarget a case;
//! * a filetest header (`test`, `target`) and `; print:` lines for parameterless functions are
//!   added when missing, so the result runs as is.
//!
//! The output is checked by parsing it with today's reader.

use crate::case::{DIRECTIVE, TestCase};
use anyhow::{Result, anyhow};

#[derive(Clone, Debug, Default)]
pub struct ImportOptions {
    /// `target` line to use when the file has none (default: `x86_64`).
    pub target: Option<String>,
    /// Calling-convention renames, e.g. `("apple_aarch64", "system_v")`.
    pub call_conv_map: Vec<(String, String)>,
    /// Where the text came from, recorded in a comment.
    pub origin: Option<String>,
}

/// Rewrites legacy CLIF text into a case today's tools accept.
pub fn import(old: &str, opts: &ImportOptions) -> Result<TestCase> {
    let text = rewrite(old, opts)?;
    TestCase::parse_named(&text, opts.origin.as_deref().unwrap_or("<import>"))
        .map_err(|e| anyhow!("after import, {e}"))
}

/// The rewritten text (before parsing), exposed for tests and `--dry-run`-style inspection.
pub fn rewrite(old: &str, opts: &ImportOptions) -> Result<String> {
    let func_names = function_names(old);
    let has_test = old.lines().any(|l| l.trim_start().starts_with("test "));
    let has_target = old.lines().any(|l| {
        let t = l.trim_start();
        t.starts_with("target ") || t.starts_with("isa ")
    });
    let mut out = String::new();
    if let Some(o) = &opts.origin {
        out += &format!("{DIRECTIVE} imported-from = {o}\n");
    }
    if !has_test {
        out += "test interpret\ntest run\n";
    }
    if !has_target {
        out += &format!("target {}\n", opts.target.as_deref().unwrap_or("x86_64"));
    }
    if !has_test || !has_target {
        out += "\n";
    }
    let mut next_value = 0u32;
    let mut body = String::new();
    for line in old.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("function ") {
            next_value = max_value_in_function(old, line) + 1;
        }
        let (code, comment) = split_comment(line);
        let indent = &line[..line.len() - line.trim_start().len()];
        let code_t = code.trim();
        let rewritten = if let Some(rest) = code_t.strip_prefix("stack_store") {
            let rest = rest.trim_start_matches(|c: char| c == '.' || c.is_alphanumeric());
            let (value, slot) = rest
                .split_once(',')
                .ok_or_else(|| anyhow!("cannot read `{code_t}`"))?;
            let t = next_value;
            next_value += 1;
            format!(
                "{indent}v{t} = stack_addr.i64 {}\n{indent}store notrap {}, v{t}",
                slot.trim(),
                value.trim()
            )
        } else if let Some((lhs, rhs)) = code_t.split_once('=')
            && let Some(rest) = rhs.trim().strip_prefix("stack_load.")
        {
            let (ty, slot) = rest
                .split_once(char::is_whitespace)
                .ok_or_else(|| anyhow!("cannot read `{code_t}`"))?;
            let t = next_value;
            next_value += 1;
            format!(
                "{indent}v{t} = stack_addr.i64 {}\n{indent}{} = load.{ty} notrap v{t}",
                slot.trim(),
                lhs.trim()
            )
        } else if code_t.starts_with("fn") && code_t.contains('=') {
            rewrite_func_ref(code, &func_names)
        } else {
            code.to_string()
        };
        let mut rewritten = rewritten;
        for (from, to) in &opts.call_conv_map {
            rewritten = replace_word(&rewritten, from, to);
        }
        body += &rewritten;
        if let Some(c) = comment {
            body += " ";
            body += c;
        }
        body += "\n";
    }
    out += &body;
    if !old.contains("; run") && !old.contains("; print") {
        for (name, params_empty) in entry_candidates(old) {
            if params_empty {
                out += &format!("; print: %{name}()\n");
            }
        }
    }
    Ok(out)
}

fn split_comment(line: &str) -> (&str, Option<&str>) {
    match line.find(';') {
        Some(i) => (&line[..i], Some(&line[i..])),
        None => (line, None),
    }
}

/// Names of `function %name(...)` in file order.
fn function_names(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.trim_start().strip_prefix("function "))
        .filter_map(|rest| {
            let name = rest.trim_start().strip_prefix('%')?;
            Some(name.split(['(', ' ']).next()?.to_string())
        })
        .collect()
}

/// Functions with their "takes no parameters" flag.
fn entry_candidates(text: &str) -> Vec<(String, bool)> {
    text.lines()
        .filter_map(|l| l.trim_start().strip_prefix("function %"))
        .filter_map(|rest| {
            let (name, after) = rest.split_once('(')?;
            Some((name.to_string(), after.starts_with(')')))
        })
        .collect()
}

/// `fn0 = colocated u0:1 sig0` → `fn0 = colocated %<function 1> sig0`.
fn rewrite_func_ref(code: &str, names: &[String]) -> String {
    let mut out = Vec::new();
    for word in code.split(' ') {
        if let Some(idx) = word
            .strip_prefix("u0:")
            .and_then(|n| n.parse::<usize>().ok())
            && let Some(name) = names.get(idx)
        {
            out.push(format!("%{name}"));
        } else {
            out.push(word.to_string());
        }
    }
    out.join(" ")
}

fn replace_word(s: &str, from: &str, to: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find(from) {
        let before_ok = rest[..i]
            .chars()
            .last()
            .is_none_or(|c| !(c.is_alphanumeric() || c == '_'));
        let after = &rest[i + from.len()..];
        let after_ok = after
            .chars()
            .next()
            .is_none_or(|c| !(c.is_alphanumeric() || c == '_'));
        out += &rest[..i];
        out += if before_ok && after_ok { to } else { from };
        rest = after;
    }
    out + rest
}

/// The largest `vN` mentioned in the function starting at `header` (to allocate fresh values).
fn max_value_in_function(text: &str, header: &str) -> u32 {
    let start = text.find(header).unwrap_or(0);
    let end = text[start..]
        .find("\n}")
        .map(|e| start + e)
        .unwrap_or(text.len());
    let body = &text[start..end];
    let bytes = body.as_bytes();
    let mut max = 0;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'v' && (i == 0 || !bytes[i - 1].is_ascii_alphanumeric()) {
            let digits: String = body[i + 1..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            if let Ok(n) = digits.parse::<u32>() {
                max = max.max(n);
            }
        }
        i += 1;
    }
    max
}

#[cfg(test)]
mod tests {
    use super::*;

    const OLD: &str = "function %foo(i64 sarg(16)) -> i32 apple_aarch64 {
block0(v0: i64):
    v1 = load.i32 notrap aligned v0
    return v1
}

function %main() -> i32 apple_aarch64 {
    ss0 = explicit_slot 4, align = 16
    sig0 = (i64 sarg(16)) -> i32 apple_aarch64
    fn0 = colocated u0:0 sig0

block0:
    v0 = iconst.i32 42
    stack_store v0, ss0  ; v0 = 42
    v7 = stack_load.i32 ss0+0
    v1 = stack_addr.i64 ss0
    v2 = call fn0(v1)
    return v2
}
";

    #[test]
    fn rewrites_stack_ops_func_refs_and_conventions() {
        let opts = ImportOptions {
            target: Some("x86_64".into()),
            call_conv_map: vec![("apple_aarch64".into(), "system_v".into())],
            origin: None,
        };
        let text = rewrite(OLD, &opts).unwrap();
        assert!(
            text.contains("v8 = stack_addr.i64 ss0\n    store notrap v0, v8 ; v0 = 42"),
            "{text}"
        );
        assert!(
            text.contains("v9 = stack_addr.i64 ss0+0\n    v7 = load.i32 notrap v9"),
            "{text}"
        );
        assert!(text.contains("fn0 = colocated %foo sig0"), "{text}");
        assert!(!text.contains("apple_aarch64"));
        assert!(text.contains("; print: %main()"));
        let case = import(OLD, &opts).unwrap();
        assert_eq!(case.functions.len(), 2);
        assert_eq!(case.runs.len(), 1);
    }

    #[test]
    fn words_are_replaced_whole() {
        assert_eq!(
            replace_word("fast fastcall fast", "fast", "cold"),
            "cold fastcall cold"
        );
    }
}
