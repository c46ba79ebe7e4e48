//! Running JIT-compiled code in a forked child.
//!
//! Generated code may segfault, trap, or loop forever. The worker that compiled it forks; the child
//! calls the trampoline and writes the result buffer to a pipe, or — from a signal handler on an
//! alternate stack — the signal number and faulting PC. The worker waits with a deadline and kills
//! the child when it passes. The worker itself never executes generated code, so one bad run
//! costs one child, not the JIT module or the other run lines.

use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant};

/// The trampoline ABI: `tramp(args, rets)`, see [`super::program`].
pub type Tramp = unsafe extern "C" fn(*const u8, *mut u8);

/// How a child run ended.
#[derive(Debug)]
pub enum ChildEnd {
    Returned(Vec<u8>),
    /// A fault caught by the handler, with the faulting PC.
    Signal {
        signo: i32,
        pc: u64,
    },
    /// Killed by a signal the handler did not see (e.g. SIGKILL by the memory limit).
    Killed {
        signo: i32,
    },
    Exited {
        code: i32,
    },
    Timeout,
}

pub(super) static REPORT_FD: AtomicI32 = AtomicI32::new(-1);

const FAULTS: [i32; 5] = [
    libc::SIGSEGV,
    libc::SIGBUS,
    libc::SIGILL,
    libc::SIGFPE,
    libc::SIGTRAP,
];

/// A fault handler for `SA_SIGINFO`.
pub(super) type Handler = extern "C" fn(i32, *mut libc::siginfo_t, *mut libc::c_void);

/// Reports the fault and ends the child: the end of every forked child's run.
pub(super) extern "C" fn on_fault(signo: i32, _info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    let msg = signal_message(b'S', signo, fault_pc(ctx));
    let fd = REPORT_FD.load(Ordering::Relaxed);
    // SAFETY: write and _exit are async-signal-safe.
    unsafe {
        libc::write(fd, msg.as_ptr() as *const libc::c_void, msg.len());
        libc::_exit(70);
    }
}

/// A signal answer: `S` (the child dies with it) or `T` (the runner trapped and goes on), the
/// signal number and the faulting PC.
pub(super) fn signal_message(kind: u8, signo: i32, pc: u64) -> [u8; 13] {
    let mut msg = [0u8; 13];
    msg[0] = kind;
    msg[1..5].copy_from_slice(&signo.to_le_bytes());
    msg[5..13].copy_from_slice(&pc.to_le_bytes());
    msg
}

#[cfg(target_arch = "x86_64")]
pub(super) fn fault_pc(ctx: *mut libc::c_void) -> u64 {
    // SAFETY: the kernel passes a valid ucontext_t to SA_SIGINFO handlers.
    unsafe { (*(ctx as *const libc::ucontext_t)).uc_mcontext.gregs[libc::REG_RIP as usize] as u64 }
}

#[cfg(target_arch = "aarch64")]
pub(super) fn fault_pc(ctx: *mut libc::c_void) -> u64 {
    // SAFETY: as above.
    unsafe { (*(ctx as *const libc::ucontext_t)).uc_mcontext.pc }
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
pub(super) fn fault_pc(_ctx: *mut libc::c_void) -> u64 {
    0
}

/// Child side: install `handler` for every fault, on an alternate stack (generated code may have
/// exhausted the normal one).
pub(super) unsafe fn install_child_handlers(alt_stack: &mut [u8], handler: Handler) {
    // SAFETY: plain libc calls on memory we own; only called in the freshly forked child.
    unsafe {
        let ss = libc::stack_t {
            ss_sp: alt_stack.as_mut_ptr() as *mut libc::c_void,
            ss_flags: 0,
            ss_size: alt_stack.len(),
        };
        libc::sigaltstack(&ss, std::ptr::null_mut());
        for sig in FAULTS {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = handler as *const () as usize;
            sa.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK | libc::SA_NODEFER;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
    }
}

/// One call of a trampoline: its argument buffer and the size of its result buffer.
pub struct Call<'a> {
    pub tramp: Tramp,
    pub args: &'a [u8],
    pub rets_len: usize,
}

/// Runs `calls` in order in forked children, each call with a wall-clock limit of its own, and
/// returns how each ended.
///
/// One child runs the calls one after another, as upstream's `test run` runs a file's run lines
/// in one process: a fork per call was most of the JIT's cost. A call that crashes, times out or
/// kills its child ends that child; the calls after it run in a fresh one.
///
/// # Safety
/// Every `tramp` must point to finalized code with the trampoline signature.
pub unsafe fn call_forked_all(calls: &[Call], timeout: Duration) -> Vec<ChildEnd> {
    let mut ends = Vec::with_capacity(calls.len());
    while ends.len() < calls.len() {
        // SAFETY: forwarded from the caller.
        let more = unsafe { one_child(&calls[ends.len()..], timeout) };
        debug_assert!(!more.is_empty());
        ends.extend(more);
    }
    ends
}

/// Calls `tramp(args, rets)` in a forked child with a wall-clock limit.
///
/// # Safety
/// `tramp` must point to finalized code with the trampoline signature.
pub unsafe fn call_forked(
    tramp: Tramp,
    args: &[u8],
    rets_len: usize,
    timeout: Duration,
) -> ChildEnd {
    let call = Call {
        tramp,
        args,
        rets_len,
    };
    // SAFETY: forwarded from the caller.
    let mut ends = unsafe { call_forked_all(std::slice::from_ref(&call), timeout) };
    ends.pop().expect("one call, one end")
}

/// One child for a prefix of `calls`: the ends of the calls it answered, then the end of the call
/// that ended it, if any. Never empty.
unsafe fn one_child(calls: &[Call], timeout: Duration) -> Vec<ChildEnd> {
    let mut rets: Vec<Vec<u8>> = calls.iter().map(|c| vec![0u8; c.rets_len]).collect();
    let mut alt_stack = vec![0u8; 256 * 1024];
    let mut fds = [0i32; 2];
    // SAFETY: fds has room for two descriptors.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return vec![ChildEnd::Exited { code: -1 }];
    }
    let (rd, wr) = (fds[0], fds[1]);
    // SAFETY: the child only calls async-signal-safe functions and the generated code, then exits.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        unsafe {
            // Die with the worker: an orphaned infinite loop would outlive every deadline.
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            libc::close(rd);
            REPORT_FD.store(wr, Ordering::Relaxed);
            install_child_handlers(&mut alt_stack, on_fault);
            for (c, r) in calls.iter().zip(rets.iter_mut()) {
                (c.tramp)(c.args.as_ptr(), r.as_mut_ptr());
                let mut msg = Vec::with_capacity(1 + r.len());
                msg.push(b'R');
                msg.extend_from_slice(r);
                libc::write(wr, msg.as_ptr() as *const libc::c_void, msg.len());
            }
            libc::_exit(0);
        }
    }
    // SAFETY: closing our copy of the write end so EOF arrives when the child exits.
    unsafe { libc::close(wr) };
    if pid < 0 {
        unsafe { libc::close(rd) };
        return vec![ChildEnd::Exited { code: -1 }];
    }
    let answers = read_ends(rd, calls, timeout);
    // SAFETY: rd is ours and read no more.
    unsafe { libc::close(rd) };
    if answers.timed_out || answers.ends.len() < calls.len() {
        // SAFETY: pid is our child; it has nothing left to say.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    close_ends(answers, calls.len(), reap(pid))
}

/// Waits for child `pid` and returns its wait status.
pub(super) fn reap(pid: i32) -> i32 {
    let mut status = 0;
    // SAFETY: reaping our own child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    status
}

/// Completes a child's answers to `n` calls with the end of the call it died in, if it died
/// mid-call without saying how: the timeout, or what its wait `status` says.
pub(super) fn close_ends(answers: Answers, n: usize, status: i32) -> Vec<ChildEnd> {
    let Answers {
        mut ends,
        timed_out,
        fatal,
    } = answers;
    if ends.len() < n && !fatal {
        ends.push(if timed_out {
            ChildEnd::Timeout
        } else if libc::WIFSIGNALED(status) {
            ChildEnd::Killed {
                signo: libc::WTERMSIG(status),
            }
        } else {
            ChildEnd::Exited {
                code: libc::WEXITSTATUS(status),
            }
        });
    }
    ends
}

/// What a child answered, and how its answers stopped.
pub(super) struct Answers {
    pub ends: Vec<ChildEnd>,
    /// A call's deadline passed.
    pub timed_out: bool,
    /// The last end is the fault the child died of (an `S` answer).
    pub fatal: bool,
}

/// Reads a child's answers to `calls` from `fd`: `R` and the result buffer per call; `S`,
/// signal number and PC from the fault handler, which ends the child; or `T`, the same for a
/// trap the persistent runner survived. Each call has `timeout` of its own. Stops at the first
/// fatal fault, at end of file, at the deadline, or when every call is answered.
pub(super) fn read_ends(fd: i32, calls: &[Call], timeout: Duration) -> Answers {
    let mut ends = Vec::new();
    let mut buf: Vec<u8> = Vec::new();
    let mut deadline = Instant::now() + timeout;
    let stop = |ends, timed_out, fatal| Answers {
        ends,
        timed_out,
        fatal,
    };
    loop {
        // Take every complete message off the front of the buffer.
        while let Some(c) = calls.get(ends.len()) {
            match buf.first() {
                Some(b'R') if buf.len() > c.rets_len => {
                    ends.push(ChildEnd::Returned(buf[1..1 + c.rets_len].to_vec()));
                    buf.drain(..1 + c.rets_len);
                    deadline = Instant::now() + timeout;
                }
                Some(&kind @ (b'S' | b'T')) if buf.len() >= 13 => {
                    ends.push(ChildEnd::Signal {
                        signo: i32::from_le_bytes(buf[1..5].try_into().unwrap()),
                        pc: u64::from_le_bytes(buf[5..13].try_into().unwrap()),
                    });
                    if kind == b'S' {
                        return stop(ends, false, true);
                    }
                    buf.drain(..13);
                    deadline = Instant::now() + timeout;
                }
                _ => break,
            }
        }
        if ends.len() == calls.len() {
            return stop(ends, false, false);
        }
        match wait_readable(fd, deadline) {
            Readable::Yes => {}
            Readable::TimedOut => return stop(ends, true, false),
            Readable::Failed => return stop(ends, false, false),
        }
        let mut chunk = [0u8; 4096];
        // SAFETY: reading into a buffer we own.
        let k = unsafe { libc::read(fd, chunk.as_mut_ptr() as *mut libc::c_void, chunk.len()) };
        if k <= 0 {
            if k < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return stop(ends, false, false);
        }
        buf.extend_from_slice(&chunk[..k as usize]);
    }
}

pub(super) enum Readable {
    Yes,
    TimedOut,
    Failed,
}

/// Waits until `fd` has something to read (or is at end of file), or `deadline` passes.
pub(super) fn wait_readable(fd: i32, deadline: Instant) -> Readable {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Readable::TimedOut;
        }
        let mut pfd = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let n = unsafe { libc::poll(&mut pfd, 1, left.as_millis().min(i32::MAX as u128) as i32) };
        if n < 0 {
            if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Readable::Failed;
        }
        if n > 0 {
            return Readable::Yes;
        }
    }
}

pub fn signal_name(signo: i32) -> String {
    match signo {
        libc::SIGSEGV => "SIGSEGV".into(),
        libc::SIGBUS => "SIGBUS".into(),
        libc::SIGILL => "SIGILL".into(),
        libc::SIGFPE => "SIGFPE".into(),
        libc::SIGTRAP => "SIGTRAP".into(),
        libc::SIGABRT => "SIGABRT".into(),
        libc::SIGKILL => "SIGKILL".into(),
        libc::SIGXCPU => "SIGXCPU".into(),
        n => format!("SIG{n}"),
    }
}
