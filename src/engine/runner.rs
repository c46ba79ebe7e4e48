//! The persistent runner: JIT code executed in one long-lived child instead of a fork per case.
//!
//! Forking the process that compiled a case copies its page tables, which for an instrumented
//! libFuzzer binary costs as much as compiling the case. The runner is forked once. Each case's
//! JIT memory comes from a [`super::memory::SharedMemoryProvider`], whose regions are ranges of a memfd: the
//! runner opens that memfd through `/proc/<pid>/fd`, maps every region at the address the JIT
//! used, privately (copy on write, as a forked child sees the parent's memory), runs the calls,
//! and unmaps them. Libcalls and the harness's helpers are at the same addresses in the runner
//! because it is a fork of this process.
//!
//! A trap in the module's code (`SIGILL` from a trap instruction, `SIGFPE` from a division) does
//! not end the runner: the call is unwound to where the runner made it (`guard.c`, `sigsetjmp`),
//! answered as the forked child's fault handler would have, and the runner goes on. Traps are a
//! generator feature (one case in seven has one), and a new runner is a fork, the cost the
//! runner exists to avoid. What the trapping code wrote before it trapped stays, as it does
//! after a call that returns. Any other fault, a fault outside the module's code, a hang or a
//! kill ends the runner, exactly as it ends a forked child ([`native::close_ends`]); the next
//! case starts a new runner. The runner acknowledges each
//! request once its memory is mapped, so a runner that was already dead is never mistaken for a
//! crash of the case: it is restarted and the request sent again. A module the runner cannot map
//! (an address already taken in it, a request too large) falls back to forked children — never
//! to silence.
//!
//! The child neither allocates nor takes locks: its buffers are made before the fork.

use super::memory::SharedView;
use super::native::{self, Call, ChildEnd};
use std::sync::Mutex;
use std::sync::atomic::{AtomicI32, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Largest request the runner takes (regions, arguments); larger ones use forked children.
const REQUEST_MAX: usize = 1 << 20;
/// Most regions one module may have in the runner.
const REGIONS_MAX: usize = 512;
/// Largest result buffer of one call.
const RETS_MAX: usize = 4096;
/// Alignment of argument and result buffers, as the trampolines' `aligned` accesses need.
const ARG_ALIGN: usize = 16;

struct Runner {
    pid: i32,
    /// Our end of the socket pair.
    fd: i32,
}

static RUNNER: Mutex<Option<Runner>> = Mutex::new(None);

/// Why a module did not run in the runner; the caller runs it in forked children instead.
#[derive(Debug)]
pub struct Fallback(pub &'static str);

/// Runs `calls` in order in the persistent runner, with `view` (the module's memory, finalized)
/// mapped; the same contract as [`native::call_forked_all`].
///
/// # Safety
/// Every `tramp` must point to finalized code with the trampoline signature, inside `view`'s
/// regions or in this process's own code.
pub unsafe fn call_all(
    view: &SharedView,
    calls: &[Call],
    timeout: Duration,
) -> Result<Vec<ChildEnd>, Fallback> {
    let result = serve_calls(view, calls, timeout);
    match &result {
        Ok(_) => SERVED.fetch_add(1, Ordering::Relaxed),
        Err(_) => FELL_BACK.fetch_add(1, Ordering::Relaxed),
    };
    result
}

fn serve_calls(
    view: &SharedView,
    calls: &[Call],
    timeout: Duration,
) -> Result<Vec<ChildEnd>, Fallback> {
    let mut guard = RUNNER.lock().unwrap_or_else(|e| e.into_inner());
    let mut ends = Vec::with_capacity(calls.len());
    while ends.len() < calls.len() {
        let rest = &calls[ends.len()..];
        let request = encode(view, rest, timeout)?;
        // A runner that died since its last case (or a failed start) gets one restart.
        let mut accepted = false;
        for _ in 0..2 {
            let runner = match guard.as_ref() {
                Some(r) => r,
                None => guard.insert(spawn().ok_or(Fallback("the runner could not start"))?),
            };
            match send_and_await_ack(runner, &request, timeout) {
                Ack::Accepted => {
                    accepted = true;
                    break;
                }
                Ack::Unmappable => return Err(Fallback("the runner could not map the module")),
                Ack::Dead => stop(guard.take()),
            }
        }
        if !accepted {
            return Err(Fallback("the runner died before taking the case"));
        }
        let runner = guard.as_ref().expect("accepted by a live runner");
        let answers = native::read_ends(runner.fd, rest, timeout);
        if answers.ends.len() == rest.len() && !answers.fatal {
            ends.extend(answers.ends);
            continue;
        }
        // The runner ended in the middle of a call: it faulted, hung, or was killed.
        let runner = guard.take().expect("a live runner");
        if !answers.fatal {
            // SAFETY: our own child.
            unsafe { libc::kill(runner.pid, libc::SIGKILL) };
        }
        let status = native::reap(runner.pid);
        // SAFETY: the descriptor is ours and closed once.
        unsafe { libc::close(runner.fd) };
        ends.extend(native::close_ends(answers, rest.len(), status));
    }
    Ok(ends)
}

enum Ack {
    Accepted,
    Unmappable,
    Dead,
}

fn send_and_await_ack(runner: &Runner, request: &[u8], timeout: Duration) -> Ack {
    if !send_all(runner.fd, request) {
        return Ack::Dead;
    }
    match native::wait_readable(runner.fd, Instant::now() + timeout) {
        native::Readable::Yes => {}
        _ => return Ack::Dead,
    }
    let mut b = 0u8;
    // SAFETY: reading one byte into a local.
    let n = unsafe { libc::read(runner.fd, &mut b as *mut u8 as *mut libc::c_void, 1) };
    match (n, b) {
        (1, b'A') => Ack::Accepted,
        (1, b'M') => Ack::Unmappable,
        _ => Ack::Dead,
    }
}

fn stop(runner: Option<Runner>) {
    if let Some(r) = runner {
        // SAFETY: our own child and descriptor.
        unsafe {
            libc::kill(r.pid, libc::SIGKILL);
            libc::close(r.fd);
        }
        native::reap(r.pid);
    }
}

fn send_all(fd: i32, mut bytes: &[u8]) -> bool {
    while !bytes.is_empty() {
        // SAFETY: sending from a live buffer; MSG_NOSIGNAL turns a dead peer into EPIPE.
        let n = unsafe {
            libc::send(
                fd,
                bytes.as_ptr() as *const libc::c_void,
                bytes.len(),
                libc::MSG_NOSIGNAL,
            )
        };
        if n < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
            continue;
        }
        if n <= 0 {
            return false;
        }
        bytes = &bytes[n as usize..];
    }
    true
}

/// `len u32 | pid u32 | fd i32 | alarm_s u32 | n u32 | n × (addr u64, len u64, offset u64,
/// prot i32) | m u32 | m × (tramp u64, args_len u32, args, rets_len u32)`, little-endian.
fn encode(view: &SharedView, calls: &[Call], timeout: Duration) -> Result<Vec<u8>, Fallback> {
    use std::os::fd::AsRawFd;
    if view.regions.len() > REGIONS_MAX {
        return Err(Fallback("too many regions for the runner"));
    }
    if calls.iter().any(|c| c.rets_len > RETS_MAX) {
        return Err(Fallback("results too large for the runner"));
    }
    let mut b = vec![0u8; 4];
    b.extend(std::process::id().to_le_bytes());
    b.extend(view.fd.as_raw_fd().to_le_bytes());
    // An orphaned runner stuck in a loop dies by SIGALRM, after our own deadline would have
    // killed it.
    b.extend((timeout.as_secs() as u32 + 2).to_le_bytes());
    b.extend((view.regions.len() as u32).to_le_bytes());
    for r in &view.regions {
        b.extend((r.addr as u64).to_le_bytes());
        b.extend((r.len as u64).to_le_bytes());
        b.extend((r.offset as u64).to_le_bytes());
        b.extend(r.prot().to_le_bytes());
    }
    b.extend((calls.len() as u32).to_le_bytes());
    for c in calls {
        b.extend((c.tramp as usize as u64).to_le_bytes());
        b.extend((c.args.len() as u32).to_le_bytes());
        // The trampoline loads its arguments with `aligned` flags: each buffer starts 16-aligned
        // in the body (which the runner reads to the start of a 16-aligned buffer).
        b.resize(4 + (b.len() - 4).next_multiple_of(ARG_ALIGN), 0);
        b.extend(c.args);
        b.extend((c.rets_len as u32).to_le_bytes());
    }
    if b.len() > REQUEST_MAX {
        return Err(Fallback("request too large for the runner"));
    }
    let len = (b.len() - 4) as u32;
    b[..4].copy_from_slice(&len.to_le_bytes());
    Ok(b)
}

fn spawn() -> Option<Runner> {
    let mut fds = [0i32; 2];
    // SAFETY: fds has room for two descriptors.
    let ok = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_STREAM | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    };
    if ok != 0 {
        return None;
    }
    // u128s: the body starts 16-aligned, whatever the allocator's own alignment.
    let mut request = vec![0u128; REQUEST_MAX / 16];
    let mut alt_stack = vec![0u8; 256 * 1024];
    // SAFETY: the child only makes system calls and runs generated code until it exits.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // SAFETY: in the fresh child, on buffers made before the fork.
        unsafe {
            libc::close(fds[0]);
            let bytes =
                std::slice::from_raw_parts_mut(request.as_mut_ptr() as *mut u8, REQUEST_MAX);
            serve(fds[1], bytes, &mut alt_stack)
        }
    }
    // SAFETY: the child's end is not ours.
    unsafe { libc::close(fds[1]) };
    if pid < 0 {
        // SAFETY: ours, unused.
        unsafe { libc::close(fds[0]) };
        return None;
    }
    STARTED.fetch_add(1, Ordering::Relaxed);
    Some(Runner { pid, fd: fds[0] })
}

/// The runner's loop: one request, one answer per call, until the socket closes.
unsafe fn serve(fd: i32, buf: &mut [u8], alt_stack: &mut [u8]) -> ! {
    // SAFETY: plain system calls in the child, on memory it owns.
    unsafe {
        // The fuzzer's own handlers (libFuzzer's alarm and interrupt) mean nothing here.
        for sig in [libc::SIGALRM, libc::SIGINT, libc::SIGTERM, libc::SIGUSR1] {
            libc::signal(sig, libc::SIG_DFL);
        }
        // JIT regions this process had when it forked (the module that started the runner, a
        // module of another thread) are not the runner's: it maps each case's afresh.
        let zone = super::memory::SHARED_ZONE;
        libc::munmap(zone.start as *mut libc::c_void, zone.end - zone.start);
        native::REPORT_FD.store(fd, std::sync::atomic::Ordering::Relaxed);
        native::install_child_handlers(alt_stack, on_fault_in_runner);
        let mut mapped = [(0usize, 0usize); REGIONS_MAX];
        // u128s, for the trampoline's aligned stores.
        let mut rets = [0u128; RETS_MAX / 16];
        let mut message = [0u8; 1 + RETS_MAX];
        loop {
            if !recv_exact(fd, &mut buf[..4]) {
                libc::_exit(0);
            }
            let len = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
            if len > buf.len() || !recv_exact(fd, &mut buf[..len]) {
                libc::_exit(0);
            }
            let mut r = Reader { b: &buf[..len] };
            let (Some(pid), Some(memfd), Some(alarm), Some(n)) =
                (r.u32(), r.u32(), r.u32(), r.u32())
            else {
                libc::_exit(72);
            };
            let mut path = [0u8; 64];
            proc_fd_path(&mut path, pid, memfd);
            let file = libc::open(path.as_ptr() as *const libc::c_char, libc::O_RDWR);
            let mut count = 0;
            let mut ok = file >= 0 && n as usize <= REGIONS_MAX;
            for _ in 0..n {
                let (Some(addr), Some(len), Some(off), Some(prot)) =
                    (r.u64(), r.u64(), r.u64(), r.u32())
                else {
                    libc::_exit(72);
                };
                if !ok {
                    continue;
                }
                let p = libc::mmap(
                    addr as usize as *mut libc::c_void,
                    len as usize,
                    prot as i32,
                    libc::MAP_PRIVATE | libc::MAP_FIXED_NOREPLACE,
                    file,
                    off as libc::off_t,
                );
                if p == libc::MAP_FAILED || p as usize != addr as usize {
                    if p != libc::MAP_FAILED {
                        libc::munmap(p, len as usize);
                    }
                    ok = false;
                    continue;
                }
                mapped[count] = (addr as usize, len as usize);
                count += 1;
            }
            if file >= 0 {
                libc::close(file);
            }
            let unmap = |mapped: &[(usize, usize)]| {
                for &(a, l) in mapped {
                    libc::munmap(a as *mut libc::c_void, l);
                }
            };
            if !ok {
                unmap(&mapped[..count]);
                send_byte(fd, b'M');
                continue;
            }
            for (slot, &(a, l)) in MODULE.iter().zip(&mapped[..count]) {
                slot.0.store(a, Ordering::Relaxed);
                slot.1.store(l, Ordering::Relaxed);
            }
            MODULE_LEN.store(count, Ordering::Relaxed);
            send_byte(fd, b'A');
            let Some(m) = r.u32() else { libc::_exit(72) };
            for _ in 0..m {
                let (Some(tramp), Some(args_len)) = (r.u64(), r.u32()) else {
                    libc::_exit(72);
                };
                r.align(len, ARG_ALIGN);
                let Some(args) = r.bytes(args_len as usize) else {
                    libc::_exit(72);
                };
                let Some(rets_len) = r.u32() else {
                    libc::_exit(72)
                };
                let rets_len = (rets_len as usize).min(RETS_MAX);
                rets.fill(0);
                libc::alarm(alarm);
                let tramp: native::Tramp = std::mem::transmute(tramp as usize);
                let trapped =
                    clif_diff_guarded_call(tramp, args.as_ptr(), rets.as_mut_ptr() as *mut u8);
                libc::alarm(0);
                let answer = if trapped != 0 {
                    let (signo, pc) = (
                        TRAP_SIGNO.load(Ordering::Relaxed),
                        TRAP_PC.load(Ordering::Relaxed),
                    );
                    message[..13].copy_from_slice(&native::signal_message(b'T', signo, pc));
                    &message[..13]
                } else {
                    message[0] = b'R';
                    message[1..1 + rets_len].copy_from_slice(&as_bytes(&rets)[..rets_len]);
                    &message[..1 + rets_len]
                };
                if !send_all(fd, answer) {
                    libc::_exit(0);
                }
            }
            MODULE_LEN.store(0, Ordering::Relaxed);
            unmap(&mapped[..count]);
        }
    }
}

unsafe extern "C" {
    /// `guard.c`: calls `tramp(args, rets)`; 1 when a trap unwound it, 0 when it returned.
    fn clif_diff_guarded_call(tramp: native::Tramp, args: *const u8, rets: *mut u8) -> i32;
    /// `guard.c`: back to the running guarded call; returns only when there is none.
    fn clif_diff_unwind_trap();
}

/// The regions (address, length) of the module whose calls the runner is making, for its fault
/// handler; the first [`MODULE_LEN`] hold them, none between modules.
static MODULE: [(AtomicUsize, AtomicUsize); REGIONS_MAX] =
    [const { (AtomicUsize::new(0), AtomicUsize::new(0)) }; REGIONS_MAX];
static MODULE_LEN: AtomicUsize = AtomicUsize::new(0);
static TRAP_SIGNO: AtomicI32 = AtomicI32::new(0);
static TRAP_PC: AtomicU64 = AtomicU64::new(0);

/// The runner's fault handler: a trap in the module's code unwinds its call; anything else is
/// the forked child's end ([`native::on_fault`]).
extern "C" fn on_fault_in_runner(signo: i32, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    let pc = native::fault_pc(ctx);
    if matches!(signo, libc::SIGILL | libc::SIGFPE) && in_module(pc) {
        TRAP_SIGNO.store(signo, Ordering::Relaxed);
        TRAP_PC.store(pc, Ordering::Relaxed);
        // SAFETY: between sigsetjmp and siglongjmp are only the generated code's frames, this
        // handler's and the kernel's signal frame, none with anything to drop.
        unsafe { clif_diff_unwind_trap() };
    }
    native::on_fault(signo, info, ctx)
}

fn in_module(pc: u64) -> bool {
    let pc = pc as usize;
    MODULE[..MODULE_LEN.load(Ordering::Relaxed)]
        .iter()
        .any(|(a, l)| {
            let a = a.load(Ordering::Relaxed);
            pc >= a && pc < a + l.load(Ordering::Relaxed)
        })
}

/// `/proc/<pid>/fd/<fd>` with a terminating NUL, written without allocating.
fn proc_fd_path(out: &mut [u8; 64], pid: u32, fd: u32) {
    let mut at = 0;
    let mut put = |s: &[u8]| {
        out[at..at + s.len()].copy_from_slice(s);
        at += s.len();
    };
    put(b"/proc/");
    put(decimal(pid, &mut [0u8; 10]));
    put(b"/fd/");
    put(decimal(fd, &mut [0u8; 10]));
    put(b"\0");
}

fn decimal(mut v: u32, buf: &mut [u8; 10]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            return &buf[i..];
        }
    }
}

struct Reader<'a> {
    b: &'a [u8],
}

fn as_bytes(words: &[u128; RETS_MAX / 16]) -> &[u8; RETS_MAX] {
    // SAFETY: same size, and every bit pattern is a valid byte.
    unsafe { &*(words as *const [u128; RETS_MAX / 16] as *const [u8; RETS_MAX]) }
}

impl<'a> Reader<'a> {
    /// Skips to the next multiple of `align` from the start of the `total`-byte body.
    fn align(&mut self, total: usize, align: usize) {
        let at = total - self.b.len();
        let skip = at.next_multiple_of(align) - at;
        self.b = &self.b[skip.min(self.b.len())..];
    }

    fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.b.len() < n {
            return None;
        }
        let (head, tail) = self.b.split_at(n);
        self.b = tail;
        Some(head)
    }
    fn u32(&mut self) -> Option<u32> {
        self.bytes(4)
            .map(|b| u32::from_le_bytes(b.try_into().unwrap()))
    }
    fn u64(&mut self) -> Option<u64> {
        self.bytes(8)
            .map(|b| u64::from_le_bytes(b.try_into().unwrap()))
    }
}

fn recv_exact(fd: i32, buf: &mut [u8]) -> bool {
    let mut at = 0;
    while at < buf.len() {
        // SAFETY: reading into the unfilled part of a buffer we own.
        let n = unsafe {
            libc::read(
                fd,
                buf[at..].as_mut_ptr() as *mut libc::c_void,
                buf.len() - at,
            )
        };
        if n < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
            continue;
        }
        if n <= 0 {
            return false;
        }
        at += n as usize;
    }
    true
}

fn send_byte(fd: i32, b: u8) {
    if !send_all(fd, &[b]) {
        // SAFETY: the parent is gone; nothing to clean up in the runner.
        unsafe { libc::_exit(0) };
    }
}

/// What the runner did since this process started (for tests and `CLIF_DIFF_FUZZ_TIMING`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stats {
    /// Modules it ran.
    pub served: u64,
    /// Modules that ran in forked children instead.
    pub fell_back: u64,
    /// Runners started: the first, and one after each that died.
    pub started: u64,
}

pub fn stats() -> Stats {
    Stats {
        served: SERVED.load(Ordering::Relaxed),
        fell_back: FELL_BACK.load(Ordering::Relaxed),
        started: STARTED.load(Ordering::Relaxed),
    }
}

static SERVED: AtomicU64 = AtomicU64::new(0);
static FELL_BACK: AtomicU64 = AtomicU64::new(0);
static STARTED: AtomicU64 = AtomicU64::new(0);
