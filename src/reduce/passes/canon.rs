//! Canonical names: functions become `%main` / `%f0`, `%f1`…; unused declarations go; values,
//! blocks and entities are renumbered densely in order of first appearance.
//!
//! Renaming works on the printed text, where a name is a token, and the result is parsed back:
//! the parser is the authority on what the text means. Renumbering keeps relative order, so a
//! stack frame's layout does not change by it; dropping an unused stack slot does, which is why
//! that is a candidate of its own.

use super::{Pass, edit};
use crate::case::{TestCase, testcase_name};
use crate::reduce::ir::ext_name;
use std::collections::{HashMap, HashSet};
use std::ops::Range;

pub struct Canonicalize;

const ENTITY_PREFIXES: [&str; 11] = [
    "v", "block", "ss", "dss", "gv", "sig", "fn", "jt", "const", "dt", "mt",
];

/// `(prefix, number)` if `tok` names an entity, like `v12` or `block3`.
fn entity(tok: &str) -> Option<(&'static str, u32)> {
    let digits = tok.find(|c: char| c.is_ascii_digit())?;
    let (prefix, num) = tok.split_at(digits);
    let p = ENTITY_PREFIXES.iter().find(|p| **p == prefix)?;
    if num.is_empty() || !num.bytes().all(|b| b.is_ascii_digit()) || num.len() > 9 {
        return None;
    }
    Some((p, num.parse().ok()?))
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Calls `f(token, preceded_by_percent)` for every identifier token of `line` and rebuilds the
/// line from its answers.
fn map_tokens(line: &str, mut f: impl FnMut(&str, bool) -> Option<String>) -> String {
    let mut out = String::with_capacity(line.len());
    let chars: Vec<(usize, char)> = line.char_indices().collect();
    let mut k = 0;
    while k < chars.len() {
        let (start, c) = chars[k];
        if !is_ident(c) {
            out.push(c);
            k += 1;
            continue;
        }
        let mut e = k;
        while e < chars.len() && is_ident(chars[e].1) {
            e += 1;
        }
        let end = chars.get(e).map_or(line.len(), |(i, _)| *i);
        let tok = &line[start..end];
        let percent = start > 0 && line[..start].ends_with('%');
        match f(tok, percent) {
            Some(new) => out.push_str(&new),
            None => out.push_str(tok),
        }
        k = e;
    }
    out
}

fn tokens(line: &str) -> Vec<String> {
    let mut v = Vec::new();
    map_tokens(line, |t, pct| {
        if !pct {
            v.push(t.to_string());
        }
        None
    });
    v
}

/// Renames the case's functions to canonical names: `%main` for the one run lines invoke (or
/// `%main`, `%main1`… for several), `%f0`, `%f1`… for the others, in file order.
pub fn rename_functions(case: &TestCase) -> Option<TestCase> {
    let mut entries: Vec<&str> = Vec::new();
    for r in &case.runs {
        if !entries.contains(&r.func.as_str()) {
            entries.push(&r.func);
        }
    }
    let mut map: HashMap<String, String> = HashMap::new();
    let mut others = 0;
    for f in &case.functions {
        if !matches!(f.name, cranelift_codegen::ir::UserFuncName::Testcase(_)) {
            continue;
        }
        let old = testcase_name(f);
        let new = match entries.iter().position(|e| *e == old) {
            Some(0) => "main".to_string(),
            Some(k) => format!("main{k}"),
            None => {
                others += 1;
                format!("f{}", others - 1)
            }
        };
        map.insert(old, new);
    }
    // External functions the case does not define keep their names; none may be taken.
    let external: HashSet<String> = case
        .functions
        .iter()
        .flat_map(|g| g.dfg.ext_funcs.keys().filter_map(move |fr| ext_name(g, fr)))
        .filter(|n| !map.contains_key(n))
        .collect();
    if map.values().any(|n| external.contains(n)) || map.iter().all(|(a, b)| a == b) {
        return None;
    }
    let text = case.to_text();
    let renamed: Vec<String> = text
        .lines()
        .map(|l| map_tokens(l, |t, pct| if pct { map.get(t).cloned() } else { None }))
        .collect();
    TestCase::parse(&(renamed.join("\n") + "\n")).ok()
}

/// Renumbers every function's entities densely by first appearance; with `drop_unused`, first
/// removes preamble declarations (`ss0 = …`, `fn1 = …`) nothing refers to.
pub fn renumber(case: &TestCase, drop_unused: bool) -> Option<TestCase> {
    let text = case.to_text();
    let lines: Vec<&str> = text.lines().collect();
    let mut out: Vec<String> = Vec::new();
    let mut k = 0;
    while k < lines.len() {
        if !lines[k].starts_with("function ") {
            out.push(lines[k].to_string());
            k += 1;
            continue;
        }
        let end = (k..lines.len()).find(|&j| lines[j] == "}")?;
        let mut body: Vec<String> = lines[k..=end].iter().map(|s| s.to_string()).collect();
        if drop_unused {
            drop_unused_decls(&mut body);
        }
        out.extend(renumber_body(&body));
        k = end + 1;
    }
    TestCase::parse(&(out.join("\n") + "\n")).ok()
}

/// The declared entity of a preamble line like `    ss0 = explicit_slot 4`.
fn declared(line: &str) -> Option<String> {
    let (lhs, _) = line.split_once('=')?;
    let lhs = lhs.trim();
    let (p, _) = entity(lhs)?;
    (p != "v" && p != "block").then(|| lhs.to_string())
}

fn drop_unused_decls(body: &mut Vec<String>) {
    loop {
        let first_block = body
            .iter()
            .position(|l| l.trim_start().starts_with("block"))
            .unwrap_or(body.len());
        let mut uses: HashMap<String, usize> = HashMap::new();
        for l in body.iter() {
            for t in tokens(l) {
                *uses.entry(t).or_default() += 1;
            }
        }
        let dead = (1..first_block)
            .find(|&j| declared(&body[j]).is_some_and(|d| uses.get(&d).copied() == Some(1)));
        match dead {
            Some(j) => {
                body.remove(j);
            }
            None => return,
        }
    }
}

fn renumber_body(body: &[String]) -> Vec<String> {
    let mut next: HashMap<&'static str, u32> = HashMap::new();
    let mut map: HashMap<(&'static str, u32), u32> = HashMap::new();
    body.iter()
        .map(|l| {
            map_tokens(l, |t, pct| {
                if pct {
                    return None;
                }
                let (p, n) = entity(t)?;
                let new = *map.entry((p, n)).or_insert_with(|| {
                    let c = next.entry(p).or_default();
                    *c += 1;
                    *c - 1
                });
                Some(format!("{p}{new}"))
            })
        })
        .collect()
}

impl Pass for Canonicalize {
    fn name(&self) -> &'static str {
        "canonicalize"
    }
    fn count(&self, _: &TestCase) -> usize {
        3
    }
    fn apply(&self, case: &TestCase, range: Range<usize>) -> Option<TestCase> {
        let cand = match range.start {
            0 => rename_functions(case)?,
            1 => renumber(case, true)?,
            2 => renumber(case, false)?,
            _ => return None,
        };
        let same = cand.to_text() == case.to_text();
        edit(&cand, |_| (!same).then_some(()))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    const CASE: &str = "test run
target x86_64

function %callee_with_long_name(i32) -> i32 system_v {
block0(v7: i32):
    v9 = iadd v7, v7
    return v9
}

function %entry() -> i32 system_v {
    ss0 = explicit_slot 8
    ss1 = explicit_slot 4
    sig0 = (i32) -> i32 system_v
    sig1 = (i64) system_v
    fn0 = colocated %callee_with_long_name sig0
    fn1 = %memcpy sig1
block3:
    v10 = stack_addr.i64 ss1
    v11 = iconst.i32 5
    v12 = call fn0(v11)
    return v12
}
; print: %entry()
";

    #[test]
    fn functions_get_canonical_names_everywhere() {
        let out = rename_functions(&case(CASE)).unwrap();
        let text = out.to_text();
        assert!(text.contains("function %f0(i32)"), "{text}");
        assert!(text.contains("function %main()"), "{text}");
        assert!(text.contains("colocated %f0 sig0"), "{text}");
        assert!(text.contains("; print: %main()"), "{text}");
        // Names the case does not define stay.
        assert!(text.contains("%memcpy"), "{text}");
    }

    #[test]
    fn renumbering_is_dense_and_keeps_order() {
        let out = renumber(&case(CASE), false).unwrap();
        let text = out.to_text();
        assert!(
            text.contains("block0(v0: i32):\n    v1 = iadd v0, v0"),
            "{text}"
        );
        assert!(
            text.contains("block0:\n    v0 = stack_addr.i64 ss1"),
            "{text}"
        );
    }

    #[test]
    fn unused_declarations_go() {
        let out = renumber(&case(CASE), true).unwrap();
        let text = out.to_text();
        // ss0, sig1 and fn1 were unused; ss1 is now ss0.
        assert!(!text.contains("%memcpy"), "{text}");
        assert!(!text.contains("explicit_slot 8"), "{text}");
        assert!(text.contains("ss0 = explicit_slot 4"), "{text}");
        assert!(!text.contains("ss1"), "{text}");
        assert!(!text.contains("sig1"), "{text}");
    }
}
