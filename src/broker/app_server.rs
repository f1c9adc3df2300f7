//! The one `codex app-server` child: spawning it with the broker's own environment, pumping its
//! lines, and stopping it so that it is always reaped.

use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::io::BufReader;
use tokio::process::{Child, Command};

use tokio::sync::mpsc::Sender;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::BrokerError;
use super::lines::{self, Outbox};

/// How much may wait for the app-server to read it before clients are read no further: a busy
/// or stuck app-server slows its clients down instead of growing the broker's memory.
pub const MAX_UNREAD: usize = 16 << 20;

/// What the reader task reports from the app-server's stdout.
#[derive(Debug)]
pub enum Output {
    Line(String),
    /// A line past [`lines::MAX_LINE`], dropped; how it began tells whose answer it was.
    TooLong {
        read: usize,
        head: String,
    },
    /// stdout closed: the app-server exited or is exiting.
    Closed,
}

pub struct AppServer {
    child: Child,
    pid: u32,
    /// Its stdin; what it holds and the app-server has not read yet is bounded.
    input: Outbox,
    writer: JoinHandle<()>,
    reader: JoinHandle<()>,
}

impl AppServer {
    /// Starts `codex app-server` in `cwd`, stderr inherited (the spawner logs it). Every stdout
    /// line goes to `events`, wrapped by `wrap`; a full queue stops reading its output.
    pub fn spawn<E: Send + 'static>(
        codex: &Path,
        cwd: &Path,
        events: Sender<E>,
        wrap: fn(Output) -> E,
    ) -> Result<AppServer, BrokerError> {
        let mut child = Command::new(codex)
            .arg("app-server")
            .current_dir(cwd)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| BrokerError::Spawn {
                program: codex.to_path_buf(),
                source,
            })?;
        let pid = child.id().unwrap_or(0);
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(BrokerError::AppServer(
                "codex app-server started without pipes".into(),
            ));
        };
        let (input, rx, unread) = Outbox::new(MAX_UNREAD);
        let writer = tokio::spawn(lines::write_lines(stdin, rx, Some(unread)));
        let reader = tokio::spawn(async move {
            let mut out = BufReader::new(stdout);
            loop {
                let output = match lines::read_line(&mut out).await {
                    Ok(Some(line)) => Output::Line(line),
                    Ok(None) => break,
                    Err(e) => match lines::too_long(&e) {
                        // Its end is somewhere further: the next line is whole again.
                        Some(long) => {
                            let (read, head) = (long.read, long.head.clone());
                            let rest = lines::skip_line(&mut out).await.unwrap_or(0);
                            Output::TooLong {
                                read: read + rest,
                                head,
                            }
                        }
                        None => break,
                    },
                };
                if events.send(wrap(output)).await.is_err() {
                    return;
                }
            }
            let _ = events.send(wrap(Output::Closed)).await;
        });
        Ok(AppServer {
            child,
            pid,
            input,
            writer,
            reader,
        })
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    pub fn send(&self, line: String) {
        self.input.send(line);
    }

    /// True while the app-server keeps up with its input (see [`MAX_UNREAD`]).
    pub fn gate(&self) -> watch::Receiver<bool> {
        self.input.gate()
    }

    /// Waits for the child to exit (cancel-safe, for the event loop's `select!`).
    pub async fn wait(&mut self) -> std::io::Result<ExitStatus> {
        self.child.wait().await
    }

    /// Ends the app-server the gentle way first: closing its stdin is how Codex (and the
    /// plugin's broker) ask it to exit; SIGTERM, then SIGKILL, only if it lingers. Always reaps.
    pub async fn stop(mut self) -> Option<ExitStatus> {
        self.input.close();
        let _ = tokio::time::timeout(Duration::from_secs(1), &mut self.writer).await;
        self.reader.abort();
        if let Ok(Ok(status)) =
            tokio::time::timeout(Duration::from_secs(3), self.child.wait()).await
        {
            return Some(status);
        }
        if let Ok(pid) = i32::try_from(self.pid) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
        if let Ok(Ok(status)) =
            tokio::time::timeout(Duration::from_secs(2), self.child.wait()).await
        {
            return Some(status);
        }
        let _ = self.child.start_kill();
        self.child.wait().await.ok()
    }
}

/// How the app-server ended, phrased like the plugin's client does.
pub fn describe_exit(status: Option<ExitStatus>) -> String {
    use std::os::unix::process::ExitStatusExt;
    match status {
        Some(s) => match (s.code(), s.signal()) {
            (Some(c), _) => format!("codex app-server exited unexpectedly (exit {c})."),
            (None, Some(sig)) => format!("codex app-server exited unexpectedly (signal {sig})."),
            _ => "codex app-server exited unexpectedly.".to_string(),
        },
        None => "codex app-server closed its output unexpectedly.".to_string(),
    }
}
