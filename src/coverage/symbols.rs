//! PCs of the instrumented build → source locations, from its DWARF line tables.
//!
//! A PC keeps its whole inline chain: a block of an ISLE constructor inlined into `lower`
//! executes a rule of both, so every frame in a generated ISLE file counts.

use anyhow::{Result, anyhow};
use std::collections::HashMap;
use std::path::Path;

/// Where one PC is.
#[derive(Clone, Debug, Default)]
pub struct PcLoc {
    /// Innermost source location: index into [`Located::files`], and line.
    pub at: Option<(u32, u32)>,
    /// Every frame of the inline chain that lies in generated ISLE code (`isle_*.rs`).
    pub isle: Vec<(u32, u32)>,
}

pub struct Located {
    pub files: Vec<String>,
    pub pcs: Vec<PcLoc>,
}

/// Whether a source file is Cranelift's generated ISLE code.
pub fn is_generated_isle(path: &str) -> bool {
    path.contains("/out/isle_")
}

/// Locates every PC, on as many threads as the machine has cores.
pub fn locate(binary: &Path, pcs: &[u64]) -> Result<Located> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(8);
    let chunk = pcs.len().div_ceil(threads).max(1);
    let parts: Vec<Result<(Vec<String>, Vec<PcLoc>)>> = std::thread::scope(|s| {
        let handles: Vec<_> = pcs
            .chunks(chunk)
            .map(|part| s.spawn(move || locate_part(binary, part)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    // Merge the per-thread file tables into one.
    let mut files = Vec::new();
    let mut index: HashMap<String, u32> = HashMap::new();
    let mut out = Vec::with_capacity(pcs.len());
    for part in parts {
        let (names, locs) = part?;
        let remap: Vec<u32> = names
            .into_iter()
            .map(|n| {
                *index.entry(n.clone()).or_insert_with(|| {
                    files.push(n);
                    (files.len() - 1) as u32
                })
            })
            .collect();
        for mut l in locs {
            l.at = l.at.map(|(f, line)| (remap[f as usize], line));
            for fl in &mut l.isle {
                fl.0 = remap[fl.0 as usize];
            }
            out.push(l);
        }
    }
    Ok(Located { files, pcs: out })
}

fn locate_part(binary: &Path, pcs: &[u64]) -> Result<(Vec<String>, Vec<PcLoc>)> {
    let loader = addr2line::Loader::new(binary)
        .map_err(|e| anyhow!("reading debug info of {}: {e}", binary.display()))?;
    let mut files: Vec<String> = Vec::new();
    let mut index: HashMap<String, u32> = HashMap::new();
    let mut intern = |name: &str| -> u32 {
        if let Some(&i) = index.get(name) {
            return i;
        }
        files.push(name.to_string());
        index.insert(name.to_string(), (files.len() - 1) as u32);
        (files.len() - 1) as u32
    };
    let mut out = Vec::with_capacity(pcs.len());
    for &pc in pcs {
        let mut loc = PcLoc::default();
        if let Ok(mut frames) = loader.find_frames(pc) {
            while let Ok(Some(frame)) = frames.next() {
                let Some(l) = frame.location else { continue };
                let (Some(file), Some(line)) = (l.file, l.line) else {
                    continue;
                };
                let f = intern(file);
                if loc.at.is_none() {
                    loc.at = Some((f, line));
                }
                if is_generated_isle(file) {
                    loc.isle.push((f, line));
                }
            }
        }
        out.push(loc);
    }
    Ok((files, out))
}
