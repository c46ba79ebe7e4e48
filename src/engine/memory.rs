//! JIT memory providers, including one that provokes out-of-range relocations.
//!
//! The seed bug (wasmtime#8852) was a call relocation that could not reach its target because the
//! JIT happened to place caller and callee far apart. [`FarMemoryProvider`] makes that the rule
//! instead of an accident: every allocation is mapped at least 4 GiB beyond the end of the
//! previous one, so every 32-bit PC-relative relocation between two allocations overflows, on
//! any machine, deterministically.

use super::JitMemory;
use cranelift_jit::{
    ArenaMemoryProvider, BranchProtection, JITMemoryKind, JITMemoryProvider, SystemMemoryProvider,
};
use cranelift_module::{ModuleError, ModuleResult};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::{Arc, Mutex};

/// Distance kept between consecutive allocations.
pub const FAR_GAP: usize = 4 << 30;

/// Where the first far allocation is attempted: high in the 47-bit user address space, away from
/// the heap, the stack and shared libraries.
const FAR_BASE: usize = 0x2000_0000_0000;

/// Where [`SharedMemoryProvider`] places near regions: above the far ones' probe window.
const NEAR_BASE: usize = 0x3000_0000_0000;

/// The addresses the two layouts use, and nothing else does: the persistent runner clears them.
pub const SHARED_ZONE: std::ops::Range<usize> = FAR_BASE..NEAR_BASE + (1 << 44);

pub fn provider(kind: JitMemory) -> io::Result<Box<dyn JITMemoryProvider + Send>> {
    Ok(match kind {
        JitMemory::System => Box::new(SystemMemoryProvider::new()),
        JitMemory::Arena => Box::new(
            ArenaMemoryProvider::new_with_size(64 << 20)
                .map_err(|e| io::Error::other(e.to_string()))?,
        ),
        JitMemory::Far => Box::new(FarMemoryProvider::default()),
    })
}

struct Mapping {
    ptr: *mut u8,
    len: usize,
    executable: bool,
    read_only: bool,
}

// SAFETY: the mappings are owned by the provider and only touched through `&mut self`.
unsafe impl Send for FarMemoryProvider {}

#[derive(Default)]
pub struct FarMemoryProvider {
    next: usize,
    mappings: Vec<Mapping>,
}

fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    unsafe { libc::sysconf(libc::_SC_PAGESIZE) as usize }
}

/// `size` rounded up to whole pages, for an allocation aligned to at most a page.
fn page_len(size: usize, align: u64) -> io::Result<usize> {
    let page = page_size();
    if align as usize > page {
        return Err(io::Error::other(format!(
            "alignment {align} exceeds a page"
        )));
    }
    Ok(size.max(1).div_ceil(page) * page)
}

/// The first of 64 addresses `start`, `start + step`, … where `map` (an `mmap` with
/// `MAP_FIXED_NOREPLACE` at the hint) places `len` bytes exactly there.
fn map_at_first_free(
    start: usize,
    step: usize,
    len: usize,
    map: impl Fn(usize) -> *mut libc::c_void,
) -> Option<usize> {
    let mut hint = start;
    for _ in 0..64 {
        let ptr = map(hint);
        if ptr != libc::MAP_FAILED && ptr as usize == hint {
            return Some(hint);
        }
        if ptr != libc::MAP_FAILED {
            // An old kernel ignored NOREPLACE and placed it elsewhere.
            // SAFETY: we just mapped it.
            unsafe { libc::munmap(ptr, len) };
        }
        hint += step;
    }
    None
}

impl Drop for FarMemoryProvider {
    /// A module that panicked in `finalize_definitions` is dropped without `free_memory`. A
    /// worker lives for many cases, and every new module starts probing at `FAR_BASE`: leaked
    /// mappings would fill the probe window after a few dozen such cases and turn the finding
    /// into an allocation error. Nothing runs code from a dropped module, so unmap it all.
    fn drop(&mut self) {
        // SAFETY: as in `free_memory`; the module owning the code is gone.
        unsafe { self.free_memory() };
    }
}

impl JITMemoryProvider for FarMemoryProvider {
    fn allocate(&mut self, size: usize, align: u64, kind: JITMemoryKind) -> io::Result<*mut u8> {
        let len = page_len(size, align)?;
        let start = if self.next == 0 { FAR_BASE } else { self.next };
        let addr = map_at_first_free(start, FAR_GAP, len, |hint| {
            // SAFETY: NOREPLACE never clobbers an existing mapping.
            unsafe {
                libc::mmap(
                    hint as *mut libc::c_void,
                    len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED_NOREPLACE,
                    -1,
                    0,
                )
            }
        })
        .ok_or_else(|| io::Error::other("no free address range for a far allocation"))?;
        self.next = addr + len + FAR_GAP;
        self.mappings.push(Mapping {
            ptr: addr as *mut u8,
            len,
            executable: matches!(kind, JITMemoryKind::Executable),
            read_only: matches!(kind, JITMemoryKind::ReadOnly),
        });
        Ok(addr as *mut u8)
    }

    unsafe fn free_memory(&mut self) {
        for m in self.mappings.drain(..) {
            // SAFETY: each mapping was created by `allocate` and is unmapped once.
            unsafe { libc::munmap(m.ptr as *mut libc::c_void, m.len) };
        }
        self.next = 0;
    }

    fn finalize(&mut self, _branch_protection: BranchProtection) -> ModuleResult<()> {
        for m in &self.mappings {
            let prot = if m.executable {
                libc::PROT_READ | libc::PROT_EXEC
            } else if m.read_only {
                libc::PROT_READ
            } else {
                continue;
            };
            // SAFETY: the range is one of our mappings.
            if unsafe { libc::mprotect(m.ptr as *mut libc::c_void, m.len, prot) } != 0 {
                return Err(ModuleError::Backend(anyhow::anyhow!(
                    "mprotect: {}",
                    io::Error::last_os_error()
                )));
            }
        }
        Ok(())
    }
}

/// Memory the persistent runner ([`super::runner`]) can map too: every region is a page-rounded
/// range of one memfd per module, mapped shared here and privately (copy on write) in the
/// runner, so the runner sees the finalized code and data and its writes never reach back.
///
/// Near, it packs allocations of one kind as `SystemMemoryProvider` does, regions one after
/// another from [`NEAR_BASE`]; `far` gives each allocation its own region [`FAR_GAP`] beyond the previous one, as
/// [`FarMemoryProvider`] does.
pub struct SharedMemoryProvider {
    far: bool,
    /// Where the next region is tried.
    next: usize,
    view: Arc<Mutex<SharedView>>,
    /// Per kind (executable, writable, read-only): the open region's address and length, and
    /// how much of it is used.
    open: [Option<(usize, usize, usize)>; 3],
}

/// What the runner needs of a module's memory: the memfd and where each region lies in it.
pub struct SharedView {
    pub fd: OwnedFd,
    file_len: usize,
    pub regions: Vec<SharedRegion>,
}

#[derive(Clone, Copy, Debug)]
pub struct SharedRegion {
    pub addr: usize,
    pub len: usize,
    pub offset: usize,
    pub kind: RegionKind,
}

/// [`JITMemoryKind`], which is neither `Copy` nor comparable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegionKind {
    Code,
    Writable,
    ReadOnly,
}

impl From<&JITMemoryKind> for RegionKind {
    fn from(k: &JITMemoryKind) -> RegionKind {
        match k {
            JITMemoryKind::Executable => RegionKind::Code,
            JITMemoryKind::Writable => RegionKind::Writable,
            JITMemoryKind::ReadOnly => RegionKind::ReadOnly,
        }
    }
}

impl SharedRegion {
    /// The protection the region has once finalized.
    pub fn prot(&self) -> i32 {
        match self.kind {
            RegionKind::Code => libc::PROT_READ | libc::PROT_EXEC,
            RegionKind::ReadOnly => libc::PROT_READ,
            RegionKind::Writable => libc::PROT_READ | libc::PROT_WRITE,
        }
    }
}

// SAFETY: the regions are owned by the provider and only touched through `&mut self`.
unsafe impl Send for SharedMemoryProvider {}

impl SharedMemoryProvider {
    /// A provider and the view the runner reads after finalization.
    pub fn new(far: bool) -> io::Result<(SharedMemoryProvider, Arc<Mutex<SharedView>>)> {
        // SAFETY: a plain syscall with a NUL-terminated name.
        let fd = unsafe { libc::memfd_create(c"clif-diff-jit".as_ptr(), libc::MFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let view = Arc::new(Mutex::new(SharedView {
            // SAFETY: a fresh descriptor nobody else owns.
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
            file_len: 0,
            regions: Vec::new(),
        }));
        let provider = SharedMemoryProvider {
            far,
            next: 0,
            view: view.clone(),
            open: [None; 3],
        };
        Ok((provider, view))
    }

    fn kind_index(kind: RegionKind) -> usize {
        match kind {
            RegionKind::Code => 0,
            RegionKind::Writable => 1,
            RegionKind::ReadOnly => 2,
        }
    }

    /// Maps a new region of `len` bytes (a page multiple) at the end of the file.
    fn new_region(&mut self, len: usize, kind: RegionKind) -> io::Result<usize> {
        let mut view = self.view.lock().unwrap_or_else(|e| e.into_inner());
        let offset = view.file_len;
        let fd = view.fd.as_raw_fd();
        // SAFETY: growing our own memfd.
        if unsafe { libc::ftruncate(fd, (offset + len) as libc::off_t) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // Both layouts place regions themselves, in address ranges of their own: the runner was
        // forked earlier and may still hold, where the kernel would place a region now, memory
        // this process has freed since.
        let (base, gap, step) = if self.far {
            (FAR_BASE, FAR_GAP, FAR_GAP)
        } else {
            (NEAR_BASE, 0, 1 << 20)
        };
        let start = if self.next == 0 { base } else { self.next };
        let addr = map_at_first_free(start, step, len, |hint| {
            // SAFETY: a shared mapping of our memfd; NOREPLACE never clobbers.
            unsafe {
                libc::mmap(
                    hint as *mut libc::c_void,
                    len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_SHARED | libc::MAP_FIXED_NOREPLACE,
                    fd,
                    offset as libc::off_t,
                )
            }
        })
        .ok_or_else(|| io::Error::other("no free address range for JIT memory"))?;
        self.next = addr + len + gap;
        view.file_len = offset + len;
        view.regions.push(SharedRegion {
            addr,
            len,
            offset,
            kind,
        });
        Ok(addr)
    }
}

impl Drop for SharedMemoryProvider {
    /// As for [`FarMemoryProvider`]: a module dropped after a finalize panic leaves nothing mapped.
    fn drop(&mut self) {
        // SAFETY: as in `free_memory`; the module owning the code is gone.
        unsafe { self.free_memory() };
    }
}

impl JITMemoryProvider for SharedMemoryProvider {
    fn allocate(&mut self, size: usize, align: u64, kind: JITMemoryKind) -> io::Result<*mut u8> {
        let len = page_len(size, align)?;
        let kind = RegionKind::from(&kind);
        let k = Self::kind_index(kind);
        if !self.far
            && let Some((addr, region_len, used)) = self.open[k]
        {
            let start = used.next_multiple_of(align.max(1) as usize);
            if start + size <= region_len {
                self.open[k] = Some((addr, region_len, start + size));
                return Ok((addr + start) as *mut u8);
            }
        }
        let addr = self.new_region(len, kind)?;
        self.open[k] = Some((addr, len, size));
        Ok(addr as *mut u8)
    }

    unsafe fn free_memory(&mut self) {
        let mut view = self.view.lock().unwrap_or_else(|e| e.into_inner());
        for r in view.regions.drain(..) {
            // SAFETY: each region was mapped by `new_region` and is unmapped once.
            unsafe { libc::munmap(r.addr as *mut libc::c_void, r.len) };
        }
        // SAFETY: shrinking our own memfd gives its pages back.
        unsafe { libc::ftruncate(view.fd.as_raw_fd(), 0) };
        view.file_len = 0;
        self.open = [None; 3];
        self.next = 0;
    }

    fn finalize(&mut self, _branch_protection: BranchProtection) -> ModuleResult<()> {
        let view = self.view.lock().unwrap_or_else(|e| e.into_inner());
        for r in view
            .regions
            .iter()
            .filter(|r| r.kind != RegionKind::Writable)
        {
            // SAFETY: the range is one of our mappings.
            if unsafe { libc::mprotect(r.addr as *mut libc::c_void, r.len, r.prot()) } != 0 {
                return Err(ModuleError::Backend(anyhow::anyhow!(
                    "mprotect: {}",
                    io::Error::last_os_error()
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn far_allocations_are_out_of_rel32_range() {
        let mut p = FarMemoryProvider::default();
        let a = p.allocate(100, 16, JITMemoryKind::Executable).unwrap() as usize;
        let b = p.allocate(100, 16, JITMemoryKind::Executable).unwrap() as usize;
        assert!(b.abs_diff(a) > i32::MAX as usize);
        p.finalize(BranchProtection::None).unwrap();
        unsafe { p.free_memory() };
        assert!(p.mappings.is_empty());
    }

    #[test]
    fn dropped_providers_give_their_addresses_back() {
        // More providers than the 64-step probe window, each dropped without `free_memory` (as
        // when finalize panics): had they leaked, the later ones would find no free range.
        for _ in 0..80 {
            let mut p = FarMemoryProvider::default();
            p.allocate(100, 16, JITMemoryKind::Executable).unwrap();
        }
    }
}
