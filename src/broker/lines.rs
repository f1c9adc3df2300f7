//! Reading and writing one JSON message per line over any byte stream.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc::{self, UnboundedReceiver, UnboundedSender};
use tokio::sync::watch;

/// The longest line accepted from a peer: far above any real message (a long thread's history
/// is a few MB), low enough that a runaway peer cannot exhaust memory.
pub const MAX_LINE: usize = 64 << 20;

/// The next line without its newline; None at end of input. A last line without a newline
/// still counts, as it does for Node's readline. A line longer than [`MAX_LINE`] is an error
/// that [`too_long`] recognises; its rest is still unread.
pub async fn read_line<R: AsyncBufRead + Unpin>(r: &mut R) -> io::Result<Option<String>> {
    let mut buf = Vec::new();
    loop {
        let available = r.fill_buf().await?;
        if available.is_empty() {
            return Ok((!buf.is_empty()).then(|| into_text(buf)));
        }
        if let Some(i) = available.iter().position(|&b| b == b'\n') {
            buf.extend_from_slice(&available[..i]);
            r.consume(i + 1);
            return Ok(Some(into_text(buf)));
        }
        let n = available.len();
        buf.extend_from_slice(available);
        r.consume(n);
        if buf.len() > MAX_LINE {
            let head = String::from_utf8_lossy(&buf[..HEAD.min(buf.len())]).into_owned();
            let err = LineTooLong {
                read: buf.len(),
                head,
            };
            return Err(io::Error::new(io::ErrorKind::InvalidData, err));
        }
    }
}

/// How much of an overlong line is kept to tell what it was (a JSON-RPC answer names its id
/// first).
const HEAD: usize = 64;

/// A line past [`MAX_LINE`]: how much of it was read without finding its end, and how it began.
#[derive(Debug, thiserror::Error)]
#[error("a line longer than {} MiB ({read} bytes read without a newline)", MAX_LINE >> 20)]
pub struct LineTooLong {
    pub read: usize,
    pub head: String,
}

/// The overlong line behind a [`read_line`] error, if that is what it was.
pub fn too_long(e: &io::Error) -> Option<&LineTooLong> {
    e.get_ref()?.downcast_ref::<LineTooLong>()
}

/// Discards input up to and including the next newline (the rest of an overlong line); the
/// number of bytes discarded.
pub async fn skip_line<R: AsyncBufRead + Unpin>(r: &mut R) -> io::Result<usize> {
    let mut skipped = 0;
    loop {
        let available = r.fill_buf().await?;
        if available.is_empty() {
            return Ok(skipped);
        }
        if let Some(i) = available.iter().position(|&b| b == b'\n') {
            r.consume(i + 1);
            return Ok(skipped + i);
        }
        let n = available.len();
        r.consume(n);
        skipped += n;
    }
}

fn into_text(mut buf: Vec<u8>) -> String {
    if buf.last() == Some(&b'\r') {
        buf.pop();
    }
    String::from_utf8(buf).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// Bytes handed to a writer task and not yet written, so that the sender can bound what waits
/// for a slow reader. Past `limit` it is closed: whoever feeds the sender waits on [`Self::gate`]
/// until the writer has brought it back under.
#[derive(Debug)]
pub struct Backlog {
    bytes: AtomicUsize,
    open: watch::Sender<bool>,
    limit: usize,
}

impl Backlog {
    pub fn new(limit: usize) -> Arc<Backlog> {
        Arc::new(Backlog {
            bytes: AtomicUsize::new(0),
            open: watch::Sender::new(true),
            limit,
        })
    }

    pub fn bytes(&self) -> usize {
        self.bytes.load(Ordering::Acquire)
    }

    pub fn add(&self, n: usize) {
        if self.bytes.fetch_add(n, Ordering::AcqRel) + n > self.limit {
            self.open
                .send_if_modified(|open| std::mem::replace(open, false));
        }
    }

    pub fn sub(&self, n: usize) {
        if self.bytes.fetch_sub(n, Ordering::AcqRel).saturating_sub(n) <= self.limit {
            self.open
                .send_if_modified(|open| !std::mem::replace(open, true));
        }
    }

    /// True while the backlog is under its limit.
    pub fn gate(&self) -> watch::Receiver<bool> {
        self.open.subscribe()
    }
}

/// The sending side of a writer task's queue, bounded by its [`Backlog`]: each line sent counts
/// until the writer has written it. Closing it (or dropping it) ends the queue, so the writer
/// flushes what is queued and stops.
pub struct Outbox {
    tx: Option<UnboundedSender<String>>,
    backlog: Arc<Backlog>,
}

impl Outbox {
    /// An outbox holding up to `limit` unwritten bytes before its gate closes; the receiver and
    /// the backlog go to the writer.
    pub fn new(limit: usize) -> (Outbox, UnboundedReceiver<String>, Arc<Backlog>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let backlog = Backlog::new(limit);
        let outbox = Outbox {
            tx: Some(tx),
            backlog: backlog.clone(),
        };
        (outbox, rx, backlog)
    }

    /// Queues `line`; nothing happens once closed.
    pub fn send(&self, line: String) {
        if let Some(tx) = &self.tx {
            self.backlog.add(line.len());
            let _ = tx.send(line);
        }
    }

    /// True while the writer keeps up (see [`Backlog::gate`]).
    pub fn gate(&self) -> watch::Receiver<bool> {
        self.backlog.gate()
    }

    pub fn close(&mut self) {
        self.tx = None;
    }
}

/// Writes each queued line until the queue closes, taking its size off `backlog` (where the
/// sender bounds what waits) once written, then shuts the stream down so the peer sees end of
/// input. Stops early when the peer goes away.
pub async fn write_lines<W: AsyncWrite + Unpin>(
    mut w: W,
    mut rx: UnboundedReceiver<String>,
    backlog: Option<Arc<Backlog>>,
) {
    while let Some(mut line) = rx.recv().await {
        let n = line.len();
        line.push('\n');
        let written = w.write_all(line.as_bytes()).await;
        if let Some(b) = &backlog {
            b.sub(n);
        }
        if written.is_err() {
            return;
        }
    }
    let _ = w.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn splits_lines_and_keeps_a_final_partial_one() {
        let mut input: &[u8] = b"{\"a\":1}\n\r\n{\"b\":2}\r\nlast";
        let mut got = Vec::new();
        while let Some(l) = read_line(&mut input).await.unwrap() {
            got.push(l);
        }
        assert_eq!(got, ["{\"a\":1}", "", "{\"b\":2}", "last"]);
    }

    #[tokio::test]
    async fn an_overlong_line_is_told_apart_and_can_be_skipped() {
        let blob = "x".repeat(MAX_LINE + (1 << 20));
        let mut input = format!("{{\"id\":7,\"result\":\"{blob}\"}}\n");
        input.push_str("{\"next\":1}\n");
        let mut r = tokio::io::BufReader::new(input.as_bytes());
        let err = match read_line(&mut r).await {
            Err(e) => e,
            Ok(l) => panic!("read a line of {:?} bytes", l.map(|l| l.len())),
        };
        let long = too_long(&err).expect("a line too long");
        assert!(long.read > MAX_LINE, "{}", long.read);
        assert!(long.head.starts_with("{\"id\":7,"), "{}", long.head);
        assert!(err.to_string().contains("longer than 64 MiB"), "{err}");
        assert!(skip_line(&mut r).await.unwrap() > 0);
        assert_eq!(read_line(&mut r).await.unwrap().unwrap(), "{\"next\":1}");
        let other = io::Error::other("x");
        assert!(too_long(&other).is_none());
    }

    #[tokio::test]
    async fn a_backlog_past_its_limit_closes_its_gate_until_written() {
        use tokio::io::AsyncReadExt;
        let backlog = Backlog::new(10);
        let mut gate = backlog.gate();
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        for line in ["123456", "abcdef"] {
            assert!(*gate.borrow(), "open while at most 10 bytes wait");
            backlog.add(line.len());
            tx.send(line.to_string()).unwrap();
        }
        assert!(!*gate.borrow(), "12 bytes wait");
        let (sink, mut out) = tokio::io::duplex(64);
        let writer = tokio::spawn(write_lines(sink, rx, Some(backlog.clone())));
        gate.wait_for(|open| *open).await.unwrap();
        drop(tx);
        writer.await.unwrap();
        assert_eq!(backlog.bytes(), 0);
        let mut got = String::new();
        out.read_to_string(&mut got).await.unwrap();
        assert_eq!(got, "123456\nabcdef\n");
    }
}
