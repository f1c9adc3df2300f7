//! Reading and writing one JSON message per line over any byte stream.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc::UnboundedReceiver;

/// The longest line accepted from a peer: far above any real message (a long thread's history
/// is a few MB), low enough that a runaway peer cannot exhaust memory.
pub const MAX_LINE: usize = 64 << 20;

/// The next line without its newline; None at end of input. A last line without a newline
/// still counts, as it does for Node's readline.
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
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "line longer than 64 MiB",
            ));
        }
    }
}

fn into_text(mut buf: Vec<u8>) -> String {
    if buf.last() == Some(&b'\r') {
        buf.pop();
    }
    String::from_utf8(buf).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// Writes each queued line until the queue closes, then shuts the stream down so the peer sees
/// end of input. Stops early when the peer goes away.
pub async fn write_lines<W: AsyncWrite + Unpin>(mut w: W, mut rx: UnboundedReceiver<String>) {
    while let Some(mut line) = rx.recv().await {
        line.push('\n');
        if w.write_all(line.as_bytes()).await.is_err() {
            return;
        }
    }
    let _ = w.shutdown().await;
}

/// [`write_lines`], taking each line's size off `queued` once it is written, so that the sender
/// can bound what a slow reader leaves waiting.
pub async fn write_lines_counted<W: AsyncWrite + Unpin>(
    mut w: W,
    mut rx: UnboundedReceiver<String>,
    queued: Arc<AtomicUsize>,
) {
    while let Some(mut line) = rx.recv().await {
        let n = line.len();
        line.push('\n');
        let written = w.write_all(line.as_bytes()).await;
        queued.fetch_sub(n, Ordering::AcqRel);
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
}
