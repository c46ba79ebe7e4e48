/* clif-diff object-path driver.
 *
 * Linked with the object files emitted by cranelift-object, one per group of cases that share
 * settings. Group g's object exports `clif_diff_table_<g>`: { nfuncs, ntramps, func[0..nfuncs],
 * tramp[0..ntramps] } as pointer-sized words; group 0's also exports the directory
 * `clif_diff_tables`: { ngroups, &table_0, ... }. Each stdin line asks for one call:
 *
 *     <run> <group> <tramp> <rets_len> <hex args>
 *
 * and the driver answers on stdout with `S <run>` before the call and `R <run> <hex rets>` after
 * it. A fault is answered with `T <run> <signo> <group or -1> <func index or -1> <offset>` from the signal
 * handler, which then jumps back to the request loop and goes on with the next line: a Cranelift
 * trap leaves nothing behind worth keeping (as in wasmtime, the trapping frames are simply
 * abandoned). Whether the fault was a trap is for the harness to decide, from its trap tables;
 * when it was not, the harness kills this process and re-runs the remaining lines in a new one.
 * On s390x the reported PC of SIGILL/SIGFPE is already moved back onto the trap site.
 * The driver is target-neutral C: the same source serves the host and every cross target. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <ucontext.h>
#include <unistd.h>

extern const uintptr_t clif_diff_tables[];

#if defined(__x86_64__)
/* x64 lowers some shuffles without SSSE3 to this libcall, which the embedder provides. */
typedef unsigned char clif_v16 __attribute__((vector_size(16)));
clif_v16 __cranelift_x86_pshufb(clif_v16 a, clif_v16 b) {
    clif_v16 r;
    for (int i = 0; i < 16; i++) r[i] = (b[i] & 0x80) ? 0 : a[b[i] & 15];
    return r;
}
#endif

static const uintptr_t *table(uintptr_t group) {
    return (const uintptr_t *)clif_diff_tables[1 + group];
}
typedef void (*tramp_t)(const unsigned char *args, unsigned char *rets);

static volatile long current_run = -1;
static sigjmp_buf recover;
static volatile sig_atomic_t in_call = 0;
static unsigned char alt_stack[1 << 16];

static uintptr_t fault_pc(void *ctx) {
    ucontext_t *uc = (ucontext_t *)ctx;
#if defined(__x86_64__)
    return (uintptr_t)uc->uc_mcontext.gregs[REG_RIP];
#elif defined(__aarch64__)
    return (uintptr_t)uc->uc_mcontext.pc;
#elif defined(__riscv)
    return (uintptr_t)uc->uc_mcontext.__gregs[REG_PC];
#elif defined(__s390x__)
    return (uintptr_t)uc->uc_mcontext.psw.addr;
#else
    (void)uc;
    return 0;
#endif
}

static void put_num(char **p, long long v) {
    char tmp[24];
    int n = 0;
    unsigned long long u = v < 0 ? -(unsigned long long)v : (unsigned long long)v;
    if (v < 0) *(*p)++ = '-';
    do { tmp[n++] = '0' + (char)(u % 10); u /= 10; } while (u);
    while (n) *(*p)++ = tmp[--n];
}

static void on_fault(int signo, siginfo_t *info, void *ctx) {
    (void)info;
    uintptr_t pc = fault_pc(ctx);
#if defined(__s390x__)
    /* s390x delivers SIGILL/SIGFPE with the PSW after the instruction, and Cranelift records
     * such trap sites at the instruction's last byte; memory faults point at the instruction. */
    if (signo == SIGILL || signo == SIGFPE) pc -= 1;
#endif
    long best = -1, best_group = -1;
    uintptr_t best_start = 0;
    for (uintptr_t g = 0; g < clif_diff_tables[0]; g++) {
        const uintptr_t *t = table(g);
        for (uintptr_t i = 0; i < t[0]; i++) {
            uintptr_t start = t[2 + i];
            if (start <= pc && (best < 0 || start > best_start)) {
                best = (long)i;
                best_group = (long)g;
                best_start = start;
            }
        }
    }
    /* Only async-signal-safe calls from here on. */
    char buf[128], *p = buf;
    *p++ = 'T'; *p++ = ' ';
    put_num(&p, current_run); *p++ = ' ';
    put_num(&p, signo); *p++ = ' ';
    put_num(&p, best_group); *p++ = ' ';
    put_num(&p, best); *p++ = ' ';
    put_num(&p, best < 0 ? 0 : (long long)(pc - best_start)); *p++ = '\n';
    (void)!write(1, buf, (size_t)(p - buf));
    if (in_call) {
        in_call = 0;
        siglongjmp(recover, 1);
    }
    _exit(70);
}

static int hexval(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* The limits the harness would otherwise set between fork and exec (a fork of a large
 * instrumented fuzzer costs as much as a case, so the harness spawns without one): no core
 * dumps; death with the harness (CLIF_DIFF_PARENT, its pid, closes the race with a harness that
 * died before the prctl); an address-space cap from CLIF_DIFF_AS_LIMIT, for native runs (qemu
 * ignores RLIMIT_AS, which would limit qemu itself). */
static void limit_self(void) {
    struct rlimit zero = {0, 0};
    setrlimit(RLIMIT_CORE, &zero);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    const char *parent = getenv("CLIF_DIFF_PARENT");
    if (parent && (long)getppid() != atol(parent)) _exit(0);
    const char *as = getenv("CLIF_DIFF_AS_LIMIT");
    if (as) {
        rlim_t n = (rlim_t)strtoull(as, NULL, 10);
        struct rlimit lim = {n, n};
        setrlimit(RLIMIT_AS, &lim);
    }
}

int main(void) {
    limit_self();
    stack_t ss;
    ss.ss_sp = alt_stack;
    ss.ss_size = sizeof alt_stack;
    ss.ss_flags = 0;
    sigaltstack(&ss, NULL);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_fault;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    int sigs[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP};
    for (unsigned i = 0; i < sizeof sigs / sizeof sigs[0]; i++) sigaction(sigs[i], &sa, NULL);

    static char line[1 << 16];
    static unsigned char args[1 << 15];
    static unsigned char rets[1 << 12];
    while (fgets(line, sizeof line, stdin)) {
        long run, group, tramp, rets_len;
        int consumed = 0;
        if (sscanf(line, "%ld %ld %ld %ld %n", &run, &group, &tramp, &rets_len, &consumed) != 4)
            continue;
        if (group < 0 || (uintptr_t)group >= clif_diff_tables[0] || tramp < 0 ||
            (uintptr_t)tramp >= table((uintptr_t)group)[1] || rets_len < 0 ||
            rets_len > (long)sizeof rets) {
            printf("E %ld bad request\n", run);
            fflush(stdout);
            continue;
        }
        size_t n = 0;
        for (char *h = line + consumed; hexval(h[0]) >= 0 && hexval(h[1]) >= 0 && n < sizeof args; h += 2)
            args[n++] = (unsigned char)(hexval(h[0]) * 16 + hexval(h[1]));
        memset(rets, 0, (size_t)rets_len);
        current_run = run;
        printf("S %ld\n", run);
        fflush(stdout);
        const uintptr_t *t = table((uintptr_t)group);
        tramp_t f = (tramp_t)t[2 + t[0] + (uintptr_t)tramp];
        /* sigsetjmp(.., 1) also restores the signal mask the handler ran with. */
        if (sigsetjmp(recover, 1) != 0) continue;
        in_call = 1;
        f(args, rets);
        in_call = 0;
        printf("R %ld ", run);
        for (long i = 0; i < rets_len; i++) printf("%02x", rets[i]);
        printf("\n");
        fflush(stdout);
    }
    return 0;
}
