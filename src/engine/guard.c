/*
 * A trap in JIT code that the persistent runner survives (see runner.rs): the runner calls the
 * trampoline through clif_diff_guarded_call, and its SIGILL/SIGFPE handler, having checked that
 * the faulting PC is in the module's code, jumps back here with clif_diff_unwind_trap. This is
 * C because Rust cannot call sigsetjmp soundly (a function that returns twice).
 */
#include <setjmp.h>
#include <stddef.h>

typedef void (*clif_diff_tramp)(const void *args, void *rets);

/* The runner is single-threaded: one guarded call at a time. */
static sigjmp_buf *volatile current;

/* Calls tramp(args, rets); returns 0 when it returned, 1 when a trap unwound it. */
int clif_diff_guarded_call(clif_diff_tramp tramp, const void *args, void *rets) {
    sigjmp_buf env;
    if (sigsetjmp(env, 1) != 0) {
        current = NULL;
        return 1;
    }
    current = &env;
    tramp(args, rets);
    current = NULL;
    return 0;
}

/* From a signal handler: back to the guarded call, if one is running; returns if none is. */
void clif_diff_unwind_trap(void) {
    sigjmp_buf *env = current;
    if (env != NULL) {
        siglongjmp(*env, 1);
    }
}
