//! Codex's own multi-client app-server of an account home (the daemon Codex's TUI starts, or any
//! `codex app-server --listen unix://` of that home): finding it at the home's standard path,
//! trusting it only when it is this user's, and speaking its framing (a WebSocket over the unix
//! socket, one JSON-RPC message per text frame) for a broker whose own side stays line based.

use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::UnixStream;
use tokio::sync::mpsc::Sender;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message as Frame;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use super::app_server::{MAX_UNREAD, Output};
use super::lines::{self, Outbox};
use crate::sys::fsutil;

/// Where Codex puts the listener of a home, below the home.
pub const CONTROL_DIR: &str = "app-server-control";
pub const SOCKET_NAME: &str = "app-server-control.sock";
/// The path Codex's own TUI asks for in its upgrade request.
const RPC_URL: &str = "ws://localhost/rpc";
/// How long connecting and the upgrade may take before the broker runs its own child instead:
/// a listener that does not answer that fast is hung, not busy.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a leaving broker gives its last messages and its close frame.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// The standard path of `home`'s listener (a bare `unix://` of Codex), whether or not one is
/// there.
pub fn standard_path(home: &Path) -> PathBuf {
    home.join(CONTROL_DIR).join(SOCKET_NAME)
}

/// What is at a home's standard listener path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// Nothing, or a link to a socket that is gone: there is no listener.
    None,
    /// A socket of this user's, in a folder only this user may change: the resolved path.
    Socket(PathBuf),
    /// Something this user must not trust (another user could have planted it), and why.
    Untrusted(String),
}

/// Looks at `home`'s standard listener path without connecting. Codex makes it a symlink into
/// `/tmp/codex-daemon-<uid>/` (a 0700 folder, a 0600 socket); everything on the way must be this
/// user's and closed to others, or a socket someone else planted would get the account's work.
pub fn find(home: &Path) -> Found {
    let dir = home.join(CONTROL_DIR);
    let dir_meta = match std::fs::symlink_metadata(&dir) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Found::None,
        Err(e) => return Found::Untrusted(format!("{}: {e}", dir.display())),
    };
    if !dir_meta.is_dir() {
        return Found::Untrusted(format!("{} is not a folder", dir.display()));
    }
    if let Some(why) = fsutil::untrusted_reason(&dir_meta) {
        return Found::Untrusted(format!("{}: {why}", dir.display()));
    }
    let link = standard_path(home);
    match std::fs::symlink_metadata(&link) {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Found::None,
        Err(e) => return Found::Untrusted(format!("{}: {e}", link.display())),
    }
    let target = match std::fs::canonicalize(&link) {
        Ok(t) => t,
        // A dangling link: the listener that made it is gone.
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Found::None,
        Err(e) => return Found::Untrusted(format!("{}: {e}", link.display())),
    };
    match trusted_socket(&target) {
        Ok(()) => Found::Socket(target),
        Err(why) => Found::Untrusted(why),
    }
}

/// Why the socket at `target` (a resolved path) or its folder is not to be trusted, if so.
fn trusted_socket(target: &Path) -> Result<(), String> {
    let meta =
        std::fs::symlink_metadata(target).map_err(|e| format!("{}: {e}", target.display()))?;
    if !meta.file_type().is_socket() {
        return Err(format!("{} is not a socket", target.display()));
    }
    closed_to_others(target, &meta)?;
    let folder = target.parent().unwrap_or(Path::new("/"));
    let folder_meta =
        std::fs::symlink_metadata(folder).map_err(|e| format!("{}: {e}", folder.display()))?;
    closed_to_others(folder, &folder_meta)
}

/// This user's, and nobody else may read or write it (Codex makes its socket 0600 and its folder
/// 0700; a wider one was not made by Codex for this user alone).
fn closed_to_others(path: &Path, meta: &std::fs::Metadata) -> Result<(), String> {
    if let Some(why) = fsutil::not_mine(meta) {
        return Err(format!("{}: {why}", path.display()));
    }
    let mode = meta.mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(format!(
            "{}: others may use it (mode {mode:o})",
            path.display()
        ));
    }
    Ok(())
}

/// Why a connection to a listener failed. `Absent` means nothing listens (a stale socket);
/// anything else is worth a line in the broker's log before it runs its own child.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("nothing listens at {0}")]
    Absent(PathBuf),
    #[error("{0}")]
    Refused(String),
}

/// A broker's connection to a listener, upgraded and pumping: every text frame it receives goes
/// to the event loop as one [`Output::Line`], every line sent goes out as one text frame.
pub struct Link {
    /// The listener's process, as its socket reported it.
    pid: u32,
    path: PathBuf,
    input: Outbox,
    writer: JoinHandle<()>,
    reader: JoinHandle<()>,
}

impl Link {
    /// Connects to the listener at `path` (a socket [`find`] trusted), checks that this user's
    /// process serves it, and upgrades the connection as Codex's TUI does.
    pub async fn connect<E: Send + 'static>(
        path: &Path,
        events: Sender<E>,
        wrap: fn(Output) -> E,
    ) -> Result<Link, ConnectError> {
        let refused = |why: String| ConnectError::Refused(format!("{}: {why}", path.display()));
        let stream = match tokio::time::timeout(CONNECT_TIMEOUT, UnixStream::connect(path)).await {
            Err(_) => return Err(refused("no answer to connecting".into())),
            Ok(Err(e))
                if matches!(
                    e.kind(),
                    io::ErrorKind::ConnectionRefused | io::ErrorKind::NotFound
                ) =>
            {
                return Err(ConnectError::Absent(path.to_path_buf()));
            }
            Ok(Err(e)) => return Err(refused(e.to_string())),
            Ok(Ok(s)) => s,
        };
        // The file checks could have been raced; the kernel's word on the peer cannot.
        let cred = stream.peer_cred().map_err(|e| refused(e.to_string()))?;
        let me = nix::unistd::getuid().as_raw();
        if cred.uid() != me {
            return Err(refused(format!(
                "served by uid {}, not you (uid {me})",
                cred.uid()
            )));
        }
        let pid = cred.pid().and_then(|p| u32::try_from(p).ok()).unwrap_or(0);
        let config = WebSocketConfig::default()
            .max_message_size(Some(lines::MAX_LINE))
            .max_frame_size(Some(lines::MAX_LINE));
        let upgrade = tokio_tungstenite::client_async_with_config(RPC_URL, stream, Some(config));
        let (ws, _) = match tokio::time::timeout(CONNECT_TIMEOUT, upgrade).await {
            Err(_) => return Err(refused("no answer to the WebSocket upgrade".into())),
            Ok(Err(e)) => return Err(refused(format!("WebSocket upgrade failed: {e}"))),
            Ok(Ok(ws)) => ws,
        };
        let (mut sink, mut frames) = ws.split();
        let (input, mut rx, backlog) = Outbox::new(MAX_UNREAD);
        let writer = tokio::spawn(async move {
            while let Some(line) = rx.recv().await {
                let n = line.len();
                let sent = sink.send(Frame::text(line)).await;
                backlog.sub(n);
                if sent.is_err() {
                    return;
                }
            }
            // The broker is leaving: a close frame says so. The listener and everyone else's
            // work on it go on.
            let _ = sink.close().await;
        });
        let reader = tokio::spawn(async move {
            while let Some(frame) = frames.next().await {
                let output = match frame {
                    Ok(Frame::Text(text)) => Output::Line(text.as_str().to_owned()),
                    Ok(Frame::Close(_)) => break,
                    // Pings are answered by the WebSocket layer; Codex sends no binary frames.
                    Ok(_) => continue,
                    Err(tokio_tungstenite::tungstenite::Error::Capacity(e)) => {
                        // The stream cannot be read past an oversized message: report it (its
                        // request fails) and end as a closed connection.
                        let _ = events
                            .send(wrap(Output::TooLong {
                                read: lines::MAX_LINE,
                                head: e.to_string(),
                            }))
                            .await;
                        break;
                    }
                    Err(_) => break,
                };
                if events.send(wrap(output)).await.is_err() {
                    return;
                }
            }
            let _ = events.send(wrap(Output::Closed)).await;
        });
        Ok(Link {
            pid,
            path: path.to_path_buf(),
            input,
            writer,
            reader,
        })
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn send(&self, line: String) {
        self.input.send(line);
    }

    /// True while the listener keeps up with what the broker sends it.
    pub fn gate(&self) -> watch::Receiver<bool> {
        self.input.gate()
    }

    /// Leaves the listener: what is queued goes out, then a close frame. The listener itself is
    /// never stopped: other clients (a TUI) may be using it.
    pub async fn close(mut self) {
        self.input.close();
        let _ = tokio::time::timeout(CLOSE_GRACE, &mut self.writer).await;
        self.writer.abort();
        self.reader.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn private_dir(path: &Path) {
        std::fs::create_dir_all(path).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700)).unwrap();
    }

    /// A home whose standard path links to a socket in a folder of its own, like Codex's.
    fn home_with_listener(root: &Path) -> (PathBuf, PathBuf, std::os::unix::net::UnixListener) {
        let home = root.join("home");
        private_dir(&home.join(CONTROL_DIR));
        let daemon = root.join("daemon");
        private_dir(&daemon);
        let socket = daemon.join("abc");
        let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
        std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::os::unix::fs::symlink(&socket, standard_path(&home)).unwrap();
        (home, socket, listener)
    }

    #[test]
    fn a_private_socket_behind_the_standard_link_is_found() {
        let d = tempfile::tempdir().unwrap();
        let (home, socket, _l) = home_with_listener(d.path());
        let resolved = std::fs::canonicalize(&socket).unwrap();
        assert_eq!(find(&home), Found::Socket(resolved));
    }

    #[test]
    fn no_folder_no_link_or_a_dangling_link_is_no_listener() {
        let d = tempfile::tempdir().unwrap();
        let home = d.path().join("home");
        assert_eq!(find(&home), Found::None);
        private_dir(&home.join(CONTROL_DIR));
        assert_eq!(find(&home), Found::None);
        std::os::unix::fs::symlink(d.path().join("gone"), standard_path(&home)).unwrap();
        assert_eq!(find(&home), Found::None);
    }

    #[test]
    fn a_socket_or_folder_others_may_use_is_not_trusted() {
        let d = tempfile::tempdir().unwrap();
        let (home, socket, _l) = home_with_listener(d.path());
        std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o666)).unwrap();
        assert!(matches!(find(&home), Found::Untrusted(why) if why.contains("mode 666")));
        std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o600)).unwrap();
        let folder = socket.parent().unwrap();
        std::fs::set_permissions(folder, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert!(matches!(find(&home), Found::Untrusted(why) if why.contains("mode 755")));
        std::fs::set_permissions(folder, std::fs::Permissions::from_mode(0o700)).unwrap();
        let control = home.join(CONTROL_DIR);
        std::fs::set_permissions(&control, std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(matches!(find(&home), Found::Untrusted(_)));
    }

    #[test]
    fn a_file_where_the_socket_should_be_is_not_trusted() {
        let d = tempfile::tempdir().unwrap();
        let home = d.path().join("home");
        private_dir(&home.join(CONTROL_DIR));
        std::fs::write(standard_path(&home), "x").unwrap();
        assert!(matches!(find(&home), Found::Untrusted(why) if why.contains("not a socket")));
    }

    #[tokio::test]
    async fn nothing_listening_is_absent_not_an_error() {
        let d = tempfile::tempdir().unwrap();
        let (_home, socket, l) = home_with_listener(d.path());
        drop(l);
        let (tx, _rx) = tokio::sync::mpsc::channel::<Output>(4);
        let got = Link::connect(&socket, tx, |o| o).await;
        assert!(
            matches!(got, Err(ConnectError::Absent(_))),
            "{:?}",
            got.err()
        );
    }
}
