//! Catching panics as data.
//!
//! A panic inside Cranelift is a finding, so its message and location must survive
//! `catch_unwind`. A process-wide hook records them in a thread-local instead of printing, and
//! [`catch`] hands them back.

use std::cell::{Cell, RefCell};
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;

#[derive(Clone, Debug)]
pub struct PanicInfo {
    pub message: String,
    /// `file:line:col` as reported by the panic.
    pub location: String,
}

thread_local! {
    static LAST: RefCell<Option<PanicInfo>> = const { RefCell::new(None) };
    /// How many `catch` calls are active on this thread: a panic outside them is a real one.
    static CATCHING: Cell<u32> = const { Cell::new(0) };
}

static HOOK: Once = Once::new();

/// Installs the recording hook. Set `CLIF_DIFF_SHOW_PANICS=1` to also print caught panics.
pub fn install_hook() {
    HOOK.call_once(|| {
        let show = std::env::var_os("CLIF_DIFF_SHOW_PANICS").is_some();
        let default = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            let message = if let Some(s) = info.payload().downcast_ref::<&str>() {
                s.to_string()
            } else if let Some(s) = info.payload().downcast_ref::<String>() {
                s.clone()
            } else {
                "<non-string panic payload>".to_string()
            };
            let location = info
                .location()
                .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()))
                .unwrap_or_default();
            LAST.with(|l| *l.borrow_mut() = Some(PanicInfo { message, location }));
            // Panics nobody catches (a harness bug) still get the default report.
            if show || CATCHING.with(Cell::get) == 0 {
                default(info);
            }
        }));
    });
}

/// Runs `f`; a panic becomes `Err` with its message and location.
pub fn catch<T>(f: impl FnOnce() -> T) -> Result<T, PanicInfo> {
    install_hook();
    LAST.with(|l| l.borrow_mut().take());
    CATCHING.with(|c| c.set(c.get() + 1));
    let result = panic::catch_unwind(AssertUnwindSafe(f));
    CATCHING.with(|c| c.set(c.get() - 1));
    result.map_err(|_| {
        LAST.with(|l| l.borrow_mut().take()).unwrap_or(PanicInfo {
            message: "<panic without hook information>".into(),
            location: String::new(),
        })
    })
}
