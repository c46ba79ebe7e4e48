//! The C toolchain and runner for each target: `cc` on the host, Debian's cross `gcc` and
//! `qemu-user` elsewhere.

use crate::target::Arch;
use anyhow::{Context, Result, bail};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

static LINKS: AtomicU64 = AtomicU64::new(0);

/// Links attempted by this process so far (how batching is observed and measured).
pub fn link_count() -> u64 {
    LINKS.load(Ordering::Relaxed)
}

#[derive(Clone, Debug)]
pub struct Toolchain {
    pub arch: Arch,
    /// C compiler and linker driver.
    pub cc: String,
    /// Emulator for foreign targets (`qemu-aarch64`), `None` on the host.
    pub runner: Option<String>,
    /// Foreign programs link statically so qemu needs no sysroot.
    pub static_link: bool,
}

impl Toolchain {
    /// The toolchain for `arch`, or an error naming the missing tool and its Debian package.
    ///
    /// Foreign tools can be renamed with `CLIF_DIFF_CC_<ARCH>` and `CLIF_DIFF_QEMU_<ARCH>`
    /// (e.g. `CLIF_DIFF_QEMU_S390X=qemu-s390x-static`); the host compiler follows `CC`.
    pub fn for_arch(arch: Arch) -> Result<Toolchain> {
        let tc = if arch == Arch::host() {
            Toolchain {
                arch,
                cc: std::env::var("CC").unwrap_or_else(|_| "cc".into()),
                runner: None,
                static_link: false,
            }
        } else {
            let (gcc, qemu) = match arch {
                Arch::X86_64 => ("x86_64-linux-gnu-gcc", "qemu-x86_64"),
                Arch::Aarch64 => ("aarch64-linux-gnu-gcc", "qemu-aarch64"),
                Arch::Riscv64 => ("riscv64-linux-gnu-gcc", "qemu-riscv64"),
                Arch::S390x => ("s390x-linux-gnu-gcc", "qemu-s390x"),
            };
            let env = |what: &str, default: &str| {
                let key = format!("CLIF_DIFF_{what}_{}", arch.name().to_uppercase());
                std::env::var(key).unwrap_or_else(|_| default.to_string())
            };
            Toolchain {
                arch,
                cc: env("CC", gcc),
                runner: Some(env("QEMU", qemu)),
                static_link: true,
            }
        };
        tc.check()?;
        Ok(tc)
    }

    fn check(&self) -> Result<()> {
        if find_in_path(&self.cc).is_none() {
            let pkg = match self.arch {
                a if a == Arch::host() => "gcc".to_string(),
                a => format!("gcc-{}-linux-gnu", a.name().replace('_', "-")),
            };
            bail!(
                "C compiler `{}` for {} not found (install Debian package `{pkg}`)",
                self.cc,
                self.arch.name()
            );
        }
        if let Some(r) = &self.runner
            && find_in_path(r).is_none()
        {
            bail!(
                "emulator `{r}` for {} not found (install Debian package `qemu-user`)",
                self.arch.name()
            );
        }
        Ok(())
    }

    /// The compiled driver object for this toolchain, built once per process.
    pub fn driver_object(&self) -> Result<PathBuf> {
        static CACHE: OnceLock<Mutex<HashMap<String, PathBuf>>> = OnceLock::new();
        let mut cache = CACHE.get_or_init(Default::default).lock().unwrap();
        if let Some(p) = cache.get(&self.cc) {
            return Ok(p.clone());
        }
        // Compiling the driver costs a fresh process (`clif-diff run`) most of its object-path
        // time, so the object is also kept on disk, keyed by the source and the compiler.
        let name = format!("driver-{}-{:016x}.o", self.arch.name(), self.driver_key());
        if let Some(dir) = disk_cache_dir() {
            let cached = dir.join(&name);
            if cached.is_file() {
                cache.insert(self.cc.clone(), cached.clone());
                return Ok(cached);
            }
        }
        let dir = scratch_dir()?;
        let src = dir.join("driver.c");
        std::fs::write(&src, DRIVER_SOURCE)?;
        let obj = dir.join(&name);
        let out = Command::new(&self.cc)
            .args(["-O1", "-c", "-o"])
            .arg(&obj)
            .arg(&src)
            .output()
            .with_context(|| format!("running {}", self.cc))?;
        if !out.status.success() {
            bail!(
                "compiling the driver with {}: {}",
                self.cc,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let obj = match disk_cache_dir() {
            // Copy then rename: concurrent workers never see a half-written object.
            Some(dir) => {
                let tmp = dir.join(format!(".{name}.{}", std::process::id()));
                match std::fs::copy(&obj, &tmp).and_then(|_| std::fs::rename(&tmp, dir.join(&name)))
                {
                    Ok(()) => dir.join(&name),
                    Err(_) => obj,
                }
            }
            None => obj,
        };
        cache.insert(self.cc.clone(), obj.clone());
        Ok(obj)
    }

    /// Identifies the driver build: the source, the compiler binary (path, size, mtime).
    fn driver_key(&self) -> u64 {
        let mut key = DRIVER_SOURCE.to_string();
        key.push_str(&self.cc);
        if let Some(meta) = find_in_path(&self.cc).and_then(|p| std::fs::metadata(p).ok()) {
            key.push_str(&format!("{}{:?}", meta.len(), meta.modified().ok()));
        }
        // FNV-1a: stable across runs, unlike std's hasher.
        key.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
        })
    }

    /// Links `objects` into an executable at `out`; the error text is the linker's stderr.
    /// `pie` is false when some object was compiled without `is_pic`: its absolute relocations
    /// in code need a position-dependent executable.
    pub fn link(&self, objects: &[&Path], out: &Path, pie: bool) -> Result<(), String> {
        LINKS.fetch_add(1, Ordering::Relaxed);
        let mut cmd = Command::new(&self.cc);
        cmd.arg("-o").arg(out);
        for o in objects {
            cmd.arg(o);
        }
        if self.static_link {
            cmd.arg("-static");
        } else if !pie {
            cmd.arg("-no-pie");
        }
        cmd.arg("-lm");
        match cmd.output() {
            Ok(o) if o.status.success() => Ok(()),
            Ok(o) => Err(String::from_utf8_lossy(&o.stderr).trim().to_string()),
            Err(e) => Err(format!("cannot run {}: {e}", self.cc)),
        }
    }

    /// The command that runs a linked program.
    pub fn command(&self, program: &Path) -> Command {
        match &self.runner {
            Some(r) => {
                let mut c = Command::new(r);
                if let Some(cpu) = crate::emulator::cpu(self.arch)
                    && std::env::var_os("QEMU_CPU").is_none()
                {
                    c.env("QEMU_CPU", cpu);
                }
                c.arg(program);
                c
            }
            None => Command::new(program),
        }
    }
}

/// A per-process scratch directory, removed at exit by the OS tmp cleaner only if the process
/// dies; normal exits leave it to `tempfile`'s drop (held for the process lifetime).
pub fn scratch_dir() -> Result<PathBuf> {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    if DIR.get().is_none() {
        let d = tempfile::Builder::new().prefix("clif-diff-").tempdir()?;
        let _ = DIR.set(d);
    }
    Ok(DIR.get().unwrap().path().to_path_buf())
}

const DRIVER_SOURCE: &str = include_str!("engine/driver.c");

/// `$CLIF_DIFF_CACHE`, else `$XDG_CACHE_HOME/clif-diff`, else `~/.cache/clif-diff`, if usable.
fn disk_cache_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("CLIF_DIFF_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("XDG_CACHE_HOME").map(|d| PathBuf::from(d).join("clif-diff")))
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/clif-diff")))?;
    std::fs::create_dir_all(&dir).ok()?;
    Some(dir)
}

pub fn find_in_path(tool: &str) -> Option<PathBuf> {
    if tool.contains('/') {
        return Path::new(tool).exists().then(|| PathBuf::from(tool));
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(tool))
            .find(|p| p.is_file())
    })
}
