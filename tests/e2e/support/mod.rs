//! Everything the end-to-end tests share: one sandbox, process helpers, the skip rule, where the
//! real peers (plugin releases, Codex CLIs) are, and the independent oracles.
#![allow(dead_code)]

pub mod app_server;
pub mod listener;
pub mod model_stub;
pub mod oracle;
pub mod outputs;
pub mod peers;
pub mod proc;
pub mod sandbox;
pub mod shell;
pub mod skip;

pub use app_server::AppServer;
pub use model_stub::ModelStub;
pub use peers::{for_each_plugin, for_each_plugin_version, have_node, real_codexes};
pub use proc::{
    alive, files_under, have, installed, output_timeout, output_with_stdin, processes_with_env,
    run, stderr, stdout, wait_until,
};
pub use sandbox::{BIN, Sandbox, fake_codex, fixtures};
pub use shell::init;
