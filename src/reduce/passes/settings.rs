//! Settings: `set` options and ISA flags on the `target` line go back to their defaults.

use super::{Pass, edit};
use crate::case::TestCase;
use std::ops::Range;

pub struct DropSettings;

fn target_flags(case: &TestCase) -> Vec<&str> {
    case.target
        .as_deref()
        .map(|t| t.split_whitespace().skip(1).collect())
        .unwrap_or_default()
}

impl Pass for DropSettings {
    fn name(&self) -> &'static str {
        "drop-settings"
    }
    fn count(&self, case: &TestCase) -> usize {
        case.settings.len() + target_flags(case).len()
    }
    fn apply(&self, case: &TestCase, range: Range<usize>) -> Option<TestCase> {
        let ns = case.settings.len();
        edit(case, |c| {
            let flags: Vec<String> = target_flags(case)
                .into_iter()
                .enumerate()
                .filter(|(k, _)| !range.contains(&(ns + k)))
                .map(|(_, f)| f.to_string())
                .collect();
            c.settings = case
                .settings
                .iter()
                .enumerate()
                .filter(|(k, _)| !range.contains(k))
                .map(|(_, s)| s.clone())
                .collect();
            if let Some(t) = &case.target {
                let arch = t.split_whitespace().next().unwrap_or("");
                c.target = Some(
                    std::iter::once(arch.to_string())
                        .chain(flags)
                        .collect::<Vec<_>>()
                        .join(" "),
                );
            }
            Some(())
        })
    }
    fn chunked(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    #[test]
    fn settings_and_isa_flags_drop_unless_needed() {
        let c = case(
            "test run
set opt_level=speed
set enable_llvm_abi_extensions=true
target x86_64 has_avx has_sse41

function %f() -> i32 system_v {
block0:
    v0 = iconst.i32 1
    return v0
}
; print: %f()
",
        );
        let out = run_pass(&DropSettings, &c, |t| t.setting("opt_level").is_some());
        assert_eq!(
            out.settings,
            [("opt_level".to_string(), "speed".to_string())]
        );
        assert_eq!(out.target.as_deref(), Some("x86_64"));
    }
}
