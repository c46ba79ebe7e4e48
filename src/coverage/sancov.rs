//! The worker side of coverage: SanitizerCoverage counters of an instrumented build.
//!
//! A cargo-fuzz build of clif-diff carries `-sanitizer-coverage-inline-8bit-counters` and
//! `-sanitizer-coverage-pc-table`: one byte counter per instrumented edge in `__sancov_cntrs` and
//! the matching PC in `__sancov_pcs`. When that binary serves as a sandbox worker, this module
//! folds the counters into "requests that reached this PC" after every request and clears them:
//! an 8-bit counter wraps to zero after 256 hits, and a per-request "reached" is what a map of
//! what the fuzzer exercises needs anyway.
//!
//! The sections are found through the executable's own section headers, not through linker
//! symbols, so the same library links into uninstrumented builds (where attaching fails with a
//! clear error).

use anyhow::{Context, Result, anyhow, bail};
use object::{Object, ObjectSection};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, Ordering};

/// File name of the PC table in a coverage directory: little-endian u64 file addresses, one per
/// counter.
pub const PCS_FILE: &str = "pcs.bin";
/// File name of the build id of the binary that wrote a coverage directory's PC table.
pub const BUILD_ID_FILE: &str = "build-id";
/// Prefix of a worker's hit file: (counter index u32, requests u32) pairs, little-endian.
pub const HITS_PREFIX: &str = "hits-";

pub struct Counters {
    counters: &'static [AtomicU8],
    requests: Vec<u32>,
}

impl Counters {
    /// Finds this process's counters and writes the PC table to `dir` unless it is there.
    pub fn attach(dir: &Path) -> Result<Counters> {
        let (cntrs, pcs) = sections(Path::new("/proc/self/exe"))?;
        let bias = load_bias();
        if pcs.1 != cntrs.1 * 16 {
            bail!(
                "sancov tables disagree: {} counters, {} PC entries",
                cntrs.1,
                pcs.1 / 16
            );
        }
        let n = cntrs.1 as usize;
        // SAFETY: the section is mapped read-write for the life of the process (the instrumented
        // code increments it); the PC table is read-only after relocation.
        let counters =
            unsafe { std::slice::from_raw_parts((bias + cntrs.0 as usize) as *const AtomicU8, n) };
        let table = pcs_path(dir);
        if let Ok(meta) = std::fs::metadata(&table)
            && meta.len() != 8 * n as u64
        {
            // Another build wrote the table: its PCs would be misread as this one's.
            bail!(
                "{} was written by a different build ({} PCs, this one has {n})",
                table.display(),
                meta.len() / 8
            );
        }
        if !table.exists() {
            write_atomic(
                &dir.join(BUILD_ID_FILE),
                build_id(Path::new("/proc/self/exe"))?.as_bytes(),
            )?;
            // SAFETY: as above; entries are (pc, flags) pairs of usize.
            let entries = unsafe {
                std::slice::from_raw_parts((bias + pcs.0 as usize) as *const usize, 2 * n)
            };
            let mut bytes = Vec::with_capacity(8 * n);
            for e in entries.chunks(2) {
                bytes.extend_from_slice(&((e[0] - bias) as u64).to_le_bytes());
            }
            write_atomic(&table, &bytes)?;
        }
        Ok(Counters {
            counters,
            requests: vec![0; n],
        })
    }

    /// Counts every edge reached since the last call once, and clears the counters.
    pub fn fold(&mut self) {
        for (c, r) in self.counters.iter().zip(self.requests.iter_mut()) {
            if c.load(Ordering::Relaxed) != 0 {
                c.store(0, Ordering::Relaxed);
                *r = r.saturating_add(1);
            }
        }
    }

    /// Writes this process's totals to `dir/hits-<pid>.bin`.
    pub fn dump(&self, dir: &Path) -> Result<()> {
        let mut bytes = Vec::new();
        for (i, &r) in self.requests.iter().enumerate() {
            if r != 0 {
                bytes.extend_from_slice(&(i as u32).to_le_bytes());
                bytes.extend_from_slice(&r.to_le_bytes());
            }
        }
        write_atomic(
            &dir.join(format!("{HITS_PREFIX}{}.bin", std::process::id())),
            &bytes,
        )
    }
}

pub fn pcs_path(dir: &Path) -> PathBuf {
    dir.join(PCS_FILE)
}

/// (address, size) of `__sancov_cntrs` and `__sancov_pcs` in an executable, or why not.
pub fn sections(exe: &Path) -> Result<((u64, u64), (u64, u64))> {
    let file = std::fs::File::open(exe).with_context(|| format!("opening {}", exe.display()))?;
    let cache = object::ReadCache::new(file);
    let obj = object::File::parse(&cache).with_context(|| format!("reading {}", exe.display()))?;
    let find = |name: &str| {
        obj.section_by_name(name)
            .map(|s| (s.address(), s.size()))
            .ok_or_else(|| {
                anyhow!(
                    "{} has no {name} section: not a SanitizerCoverage build (build it with \
                     `cargo +nightly fuzz build -O` in fuzz/)",
                    exe.display()
                )
            })
    };
    Ok((find("__sancov_cntrs")?, find("__sancov_pcs")?))
}

/// The GNU build id of an executable, in hex: which build a directory of dumps belongs to.
pub fn build_id(exe: &Path) -> Result<String> {
    let file = std::fs::File::open(exe).with_context(|| format!("opening {}", exe.display()))?;
    let cache = object::ReadCache::new(file);
    let obj = object::File::parse(&cache).with_context(|| format!("reading {}", exe.display()))?;
    let id = obj
        .build_id()
        .ok()
        .flatten()
        .ok_or_else(|| anyhow!("{} has no build id", exe.display()))?;
    Ok(id.iter().map(|b| format!("{b:02x}")).collect())
}

/// Where the executable is mapped relative to its file addresses (PIE).
fn load_bias() -> usize {
    unsafe extern "C" fn first(
        info: *mut libc::dl_phdr_info,
        _size: libc::size_t,
        data: *mut libc::c_void,
    ) -> libc::c_int {
        // SAFETY: the loader passes a valid info; data is the usize below.
        unsafe { *(data as *mut usize) = (*info).dlpi_addr as usize };
        1
    }
    let mut bias = 0usize;
    // SAFETY: the callback only writes through the pointer it is given; the first object the
    // loader reports is the executable itself.
    unsafe { libc::dl_iterate_phdr(Some(first), &mut bias as *mut usize as *mut libc::c_void) };
    bias
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming to {}", path.display()))
}
