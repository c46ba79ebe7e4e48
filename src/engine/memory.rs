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

/// Distance kept between consecutive allocations.
pub const FAR_GAP: usize = 4 << 30;

/// Where the first far allocation is attempted: high in the 47-bit user address space, away from
/// the heap, the stack and shared libraries.
const FAR_BASE: usize = 0x2000_0000_0000;

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
        let page = page_size();
        if align as usize > page {
            return Err(io::Error::other(format!(
                "alignment {align} exceeds a page"
            )));
        }
        let len = size.max(1).div_ceil(page) * page;
        let mut hint = if self.next == 0 { FAR_BASE } else { self.next };
        for _ in 0..64 {
            // SAFETY: MAP_FIXED_NOREPLACE never clobbers an existing mapping; on failure we move on.
            let ptr = unsafe {
                libc::mmap(
                    hint as *mut libc::c_void,
                    len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED_NOREPLACE,
                    -1,
                    0,
                )
            };
            if ptr != libc::MAP_FAILED && ptr as usize == hint {
                self.next = hint + len + FAR_GAP;
                self.mappings.push(Mapping {
                    ptr: ptr as *mut u8,
                    len,
                    executable: matches!(kind, JITMemoryKind::Executable),
                    read_only: matches!(kind, JITMemoryKind::ReadOnly),
                });
                return Ok(ptr as *mut u8);
            }
            if ptr != libc::MAP_FAILED {
                // An old kernel ignored NOREPLACE and placed it elsewhere: not far enough.
                // SAFETY: we just mapped it.
                unsafe { libc::munmap(ptr, len) };
            }
            hint += FAR_GAP;
        }
        Err(io::Error::other(
            "no free address range for a far allocation",
        ))
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
