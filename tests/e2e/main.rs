//! The end-to-end tests: one binary driving the built `codex-as` in a sandbox (support/), one
//! module per area. See support/peers.rs for the real plugins and Codex CLIs they can run
//! against, and support/skip.rs for CODEX_AS_STRICT.

mod support;

mod broker;
mod companion;
mod completions;
mod fallback;
mod plugin_fixture;
mod run_as;
mod shell_init;
mod shell_lint;
