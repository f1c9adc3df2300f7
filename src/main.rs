use std::process::ExitCode;

mod account;
mod broker;
mod claude;
mod cli;
mod cmd;
mod doctor;
mod error;
mod exit;
mod fallback;
mod handover;
#[cfg(test)]
mod manpage;
mod plugin;
mod quota;
mod request;
mod run;
mod shell;
mod sys;
mod thread;
mod words;

fn main() -> ExitCode {
    match request::read(std::env::args_os().collect()) {
        Ok(request) => finish(cmd::dispatch(request)),
        Err(answer) => ExitCode::from(answer.print()),
    }
}

fn finish(result: anyhow::Result<u8>) -> ExitCode {
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) if exit::is_closed_pipe(&e) => ExitCode::from(error::status::OK),
        Err(e) => {
            eprintln!("codex-as: {e:#}");
            ExitCode::from(exit::code(&e))
        }
    }
}
