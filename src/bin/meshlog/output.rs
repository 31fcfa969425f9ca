//! Standard output that fails without a panic.
//!
//! `println!` panics when standard output cannot be written: a pipe whose
//! reader left (`meshlog show DB | head`), a full disk. Everything this tool
//! prints on standard output goes through [`outln!`], [`out!`] or
//! [`bytes`] instead, which remember the first failure and drop what comes
//! after it. `main` asks [`finish`] how it went before it exits, as C tools
//! check `ferror(stdout)`: a reader that left chose to stop reading, so the
//! command's own exit code stands; any other failure lost output the user
//! asked for, and the command could not run (exit 2, SPEC.md §12.1).

use std::io::Write;
use std::sync::{Mutex, PoisonError};

/// The first failure to write standard output, if there was one.
static FAILED: Mutex<Option<std::io::Error>> = Mutex::new(None);

/// Writes `text` to standard output, unless an earlier write failed.
pub(crate) fn text(text: std::fmt::Arguments<'_>) {
    write_with(|stdout| stdout.write_fmt(text));
}

/// Writes `bytes` to standard output, unless an earlier write failed.
pub(crate) fn bytes(bytes: &[u8]) {
    write_with(|stdout| stdout.write_all(bytes));
}

fn write_with(write: impl FnOnce(&mut std::io::StdoutLock<'_>) -> std::io::Result<()>) {
    let mut failed = FAILED.lock().unwrap_or_else(PoisonError::into_inner);
    if failed.is_none()
        && let Err(error) = write(&mut std::io::stdout().lock())
    {
        *failed = Some(error);
    }
}

/// Flushes standard output; the first failure to write it, if any.
pub(crate) fn finish() -> Option<std::io::Error> {
    write_with(|stdout| stdout.flush());
    FAILED.lock().unwrap_or_else(PoisonError::into_inner).take()
}

/// [`println!`] that never panics: see the module docs.
macro_rules! outln {
    () => {
        $crate::output::text(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::output::text(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// [`print!`] that never panics: see the module docs.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::output::text(format_args!($($arg)*))
    };
}
