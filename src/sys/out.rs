//! Writing to stdout without panicking: `print!` panics when the reader has gone
//! (`codex-as list | head -1`). These macros return the write error instead, and `main` ends
//! quietly when it is a closed pipe (see [`crate::error::is_closed_pipe`]).

/// `print!` that returns an `std::io::Result` (use with `?`).
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        write!(std::io::stdout().lock(), $($arg)*)
    }};
}

/// `println!` that returns an `std::io::Result` (use with `?`).
#[macro_export]
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*)
    }};
}
