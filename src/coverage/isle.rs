//! Generated ISLE code → the rules it implements.
//!
//! Cranelift's ISLE compiler writes `// Rule at src/isa/x64/lower.isle line 2773.` just before
//! the `return` of each rule's right-hand side. The statements above that comment in the same
//! block, up to the block's start or the end of a sibling block, run only when that rule fires:
//! they are the rule's *region*. Matching code shared by several rules (the trie's tests) is in
//! no region, so a rule counts as hit only when its own right-hand side ran. A rule whose region
//! holds no instrumented PC cannot be measured and is counted apart, never as unhit.

use std::collections::HashMap;

/// One rule: the ISLE file as the generated code names it, and the line of the rule.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RuleRef {
    pub source: String,
    pub line: u32,
}

impl std::fmt::Display for RuleRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.source, self.line)
    }
}

/// A generated file's rules and which line belongs to which rule's region.
pub struct Generated {
    pub rules: Vec<RuleRef>,
    /// Indexed by 1-based line number.
    line_rule: Vec<Option<u32>>,
}

impl Generated {
    pub fn parse(text: &str) -> Generated {
        let lines: Vec<&str> = text.lines().collect();
        let mut line_rule = vec![None; lines.len() + 2];
        let mut rules = Vec::new();
        let mut ids: HashMap<RuleRef, u32> = HashMap::new();
        for (i, l) in lines.iter().enumerate() {
            let Some(rule) = rule_comment(l) else {
                continue;
            };
            let id = *ids.entry(rule.clone()).or_insert_with(|| {
                rules.push(rule);
                (rules.len() - 1) as u32
            });
            let indent = indentation(l);
            // The comment, the `return` after it, and the statements above it in its block.
            line_rule[i + 1] = Some(id);
            line_rule[i + 2] = Some(id);
            for j in (0..i).rev() {
                let above = lines[j];
                let t = above.trim_start();
                if t.is_empty() {
                    continue;
                }
                let ind = indentation(above);
                if ind < indent
                    || (ind == indent
                        && (t.starts_with('}') || t.starts_with("return") || t.starts_with("//")))
                {
                    break;
                }
                line_rule[j + 1] = Some(id);
            }
        }
        Generated { rules, line_rule }
    }

    /// The rule whose region holds `line`.
    pub fn rule_at(&self, line: u32) -> Option<u32> {
        self.line_rule.get(line as usize).copied().flatten()
    }
}

fn indentation(l: &str) -> usize {
    l.len() - l.trim_start().len()
}

fn rule_comment(l: &str) -> Option<RuleRef> {
    let rest = l.trim_start().strip_prefix("// Rule at ")?;
    let (source, line) = rest.rsplit_once(" line ")?;
    Some(RuleRef {
        source: source.to_string(),
        line: line.trim_end_matches('.').parse().ok()?,
    })
}

/// The backend a generated file belongs to: `isle_x64.rs` → `x64`, `isle_opt.rs` → `mid-end`.
pub fn backend_of(generated_path: &str) -> Option<String> {
    let name = generated_path.rsplit('/').next()?;
    let stem = name.strip_prefix("isle_")?.strip_suffix(".rs")?;
    Some(match stem {
        "opt" => "mid-end".to_string(),
        s => s.to_string(),
    })
}

/// Section headers of an ISLE file (`;;;; Rules for `iadd` ;;;;`), for grouping its rules.
pub struct Sections(Vec<(u32, String)>);

impl Sections {
    pub fn parse(text: &str) -> Sections {
        let mut v = Vec::new();
        for (i, l) in text.lines().enumerate() {
            // A banner: `;; Rules for `iadd` ;;;;;;` (two to five leading semicolons).
            if l.starts_with(";;") && l.trim_end().ends_with(";;;") {
                let h = l.trim_matches(|c: char| c == ';' || c.is_whitespace());
                if !h.is_empty() {
                    v.push((i as u32 + 1, h.to_string()));
                }
            }
        }
        Sections(v)
    }

    /// The header above `line`, if any.
    pub fn at(&self, line: u32) -> Option<&str> {
        let k = self.0.partition_point(|(l, _)| *l <= line);
        k.checked_sub(1).map(|k| self.0[k].1.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GEN: &str = "\
pub fn constructor_lower<C: Context>(ctx: &mut C, arg0: Inst) -> Option<InstOutput> {
    let v1 = C::inst_data(ctx, arg0);
    match v1 {
        A => {
            if let Some(v2) = C::test(ctx) {
                let v3 = C::emit_a(ctx, v2);
                // Rule at src/isa/x64/lower.isle line 10.
                return Some(v3);
            }
            let v4 = C::emit_b(ctx);
            let v5 = C::more(
                ctx,
                v4,
            );
            // Rule at src/isa/x64/lower.isle line 20.
            return Some(v5);
        }
        _ => {}
    }
    None
}
";

    #[test]
    fn regions_hold_only_a_rules_own_statements() {
        let g = Generated::parse(GEN);
        assert_eq!(g.rules.len(), 2);
        let r = |line| g.rule_at(line).map(|i| g.rules[i as usize].line);
        assert_eq!(r(2), None, "shared matching code");
        assert_eq!(
            r(5),
            None,
            "the test of rule 10 is shared with rule 20's fallthrough"
        );
        assert_eq!(r(6), Some(10));
        assert_eq!(r(8), Some(10));
        assert_eq!(r(9), None, "the closing brace of rule 10's block");
        for line in 10..=16 {
            assert_eq!(r(line), Some(20), "line {line}");
        }
        assert_eq!(r(17), None);
    }

    #[test]
    fn sections_and_backends() {
        let s = Sections::parse(
            ";; intro\n;;;; Rules for `iadd` ;;;;;\n(rule 1)\n;; Rules for `isub` ;;;;\n(rule 2)\n;;;;;;;;\n",
        );
        assert_eq!(s.at(1), None);
        assert_eq!(s.at(3), Some("Rules for `iadd`"));
        assert_eq!(s.at(5), Some("Rules for `isub`"));
        assert_eq!(backend_of("/x/out/isle_x64.rs").as_deref(), Some("x64"));
        assert_eq!(backend_of("/x/out/isle_opt.rs").as_deref(), Some("mid-end"));
        assert_eq!(backend_of("/x/src/lower.rs"), None);
    }
}
