//! `codex-as broker ...`: codex-as's own app-server broker, for codex-as's own use.

use crate::broker::client;
use crate::broker::link::Prefer;
use crate::broker::serve::{self, Options};
use crate::broker::state::StopReason;
use crate::cli::{AppServerChoice, BrokerCommand, BrokerServeArgs};
use crate::error::{UsageError, status};

pub fn run(cmd: BrokerCommand) -> anyhow::Result<u8> {
    match cmd {
        BrokerCommand::Serve(args) => serve_cmd(args),
        BrokerCommand::Status(a) => {
            let st = crate::sys::runtime::current_thread()?
                .block_on(client::status(&a.endpoint, a.timeout))?;
            if !st.is_codex_as() {
                eprintln!("codex-as: note: not a codex-as broker (a patched plugin broker?)");
            }
            crate::outln!("{}", serde_json::to_string(&st)?)?;
            Ok(status::OK)
        }
        BrokerCommand::Shutdown(a) => {
            let t = &a.target;
            let rt = crate::sys::runtime::current_thread()?;
            if a.if_idle {
                if rt.block_on(client::shutdown_if_idle(&t.endpoint, t.timeout))? {
                    Ok(status::OK)
                } else {
                    eprintln!("codex-as: the broker is busy; not stopped");
                    Ok(status::FAILURE)
                }
            } else {
                rt.block_on(async {
                    let mut c = client::connect(&t.endpoint, t.timeout).await?;
                    client::request(&mut c, "broker/shutdown", serde_json::json!({}), t.timeout)
                        .await
                })?;
                Ok(status::OK)
            }
        }
    }
}

fn serve_cmd(args: BrokerServeArgs) -> anyhow::Result<u8> {
    // First of all, so that no child (the app-server) inherits the ready pipe and keeps the
    // spawner from seeing end of file if the broker dies.
    let ready = args.ready_fd.map(serve::take_ready_fd).transpose()?;
    if !args.endpoint.starts_with("unix:") || args.endpoint.len() <= "unix:".len() {
        return Err(UsageError::new(format!(
            "--endpoint {:?}: expected unix:PATH",
            args.endpoint
        ))
        .into());
    }
    let opts = Options {
        endpoint: args.endpoint,
        cwd: serve::resolve_cwd(args.cwd.as_deref())?,
        idle_exit: args.idle_exit,
        pid_file: args.pid_file,
        max_clients: usize::from(args.max_clients),
        app_server: match args.app_server {
            AppServerChoice::Listener => Prefer::Listener,
            AppServerChoice::Child => Prefer::Child,
        },
        codex: crate::sys::tools::codex()?,
        ready,
        observer: Some(quota_sensor()),
    };
    let reason = crate::sys::runtime::current_thread()?.block_on(serve::serve(opts))?;
    Ok(match reason {
        StopReason::AppServerGone(why) => {
            eprintln!("codex-as broker: {why}");
            status::FAILURE
        }
        _ => status::OK,
    })
}

/// Every broker records the rate limits its app-server reports, per account (`quota::sensor`).
/// The home is the one the broker's app-server serves: this process's `CODEX_HOME`.
fn quota_sensor() -> serve::Observer {
    let home = crate::account::identity::codex_home_from_env()
        .map(|h| crate::sys::fsutil::canonical(&h))
        .unwrap_or_default();
    let mut sensor = crate::quota::sensor::Sensor::for_home(&home);
    Box::new(move |msg| sensor.observe(msg))
}
