//! The one way a test says it did not run something. A skip names the test and its reason on
//! a `SKIP <test>: <reason>` line that shows even when the test passes; with CODEX_AS_STRICT=1
//! (CI) a skip is a failure with the same text, so nothing silently stops being tested.

/// `skip!("reason {}", x)`: reports a skip of the current test (see [`skip`]).
#[macro_export]
macro_rules! skip {
    ($($arg:tt)*) => {
        $crate::support::skip::skip(&format!($($arg)*))
    };
}

/// Whether CODEX_AS_STRICT turns skips into failures.
pub fn strict() -> bool {
    std::env::var("CODEX_AS_STRICT").is_ok_and(|v| !v.is_empty() && v != "0")
}

/// The test running on this thread: libtest names each test's thread after the test.
pub fn test_name() -> String {
    std::thread::current()
        .name()
        .filter(|n| *n != "main")
        .unwrap_or("<unnamed test thread>")
        .to_owned()
}

/// Reports a skip; panics instead in strict mode.
pub fn skip(reason: &str) {
    let line = format!("SKIP {}: {reason}", test_name());
    if strict() {
        panic!("{line} (CODEX_AS_STRICT is set: a skip is a failure)");
    }
    // Past the harness's output capture, so the line shows even when the test passes.
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{line}");
}
