//! The end-to-end tests: one binary driving the built `codex-as`, one module per area.
//!
//! Adding a test: put it in its area's module (or a new module declared here), start from
//! `support::Sandbox` (dropping it ends every process the test started in it), run the plugin
//! scenarios through `support::for_each_plugin` (fixture + current real plugin) or
//! `support::for_each_plugin_version` (fixture + every version, for plugin code that changed
//! between versions), real-codex checks over `support::real_codexes()`, and say why anything
//! did not run with `skip!` (a failure under CODEX_AS_STRICT=1). Independent oracles (what the
//! plugin or codex-as must compute) live once in `support::oracle`. The env vars are described
//! in support/peers.rs and the README's "Tests and benchmarks".

mod support;

mod broker;
mod broker_shared;
mod claude_code;
mod companion;
mod completions;
mod fallback;
mod first_hour;
mod handover;
mod harden;
mod listener;
mod model_stub;
mod own_listener;
mod plugin_data;
mod plugin_fixture;
mod quick_start;
mod quota_sources;
mod run_as;
mod shell_init;
mod shell_lint;
mod threads;
mod threads_across;
