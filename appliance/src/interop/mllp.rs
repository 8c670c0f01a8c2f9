//! MLLP, the Minimal Lower Layer Protocol HL7 v2 travels on over TCP: a message is framed as
//! `0x0B` … `0x1C 0x0D`, and the receiver answers on the same connection with a framed
//! acknowledgement.
//!
//! What it is for: one exchange (connect, send one framed message, read one framed answer) with a
//! time limit on each step. What it is not for: deciding what an answer means (the outbox's rule)
//! or retrying (the sender's).

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// The start of a frame.
pub const START: u8 = 0x0B;
/// The end of a frame: file separator and carriage return.
pub const END: [u8; 2] = [0x1C, 0x0D];
/// The longest answer read (an acknowledgement is a few hundred bytes).
const MAX_ANSWER: usize = 1 << 20;

/// Why an exchange got no answer.
#[derive(Debug, thiserror::Error)]
pub enum MllpError {
    /// Could not connect.
    #[error("could not connect to {address}: {source}")]
    Connect {
        /// The address.
        address: String,
        /// Why.
        source: std::io::Error,
    },
    /// A step took longer than its limit.
    #[error("no answer within {0:?}")]
    TimedOut(Duration),
    /// The connection failed while sending or reading.
    #[error("the connection failed: {0}")]
    Io(#[from] std::io::Error),
    /// The receiver closed the connection before a whole answer.
    #[error("the receiver closed the connection before answering")]
    Closed,
    /// The answer was not a frame of text.
    #[error("the answer was not an MLLP frame of text: {0}")]
    Malformed(String),
}

/// `message` framed for MLLP.
pub fn frame(message: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + 3);
    out.push(START);
    out.extend_from_slice(message.as_bytes());
    out.extend_from_slice(&END);
    out
}

/// Connects to `address` (`host:port`), sends `message` and returns the answer's text; each of
/// connecting and the exchange is limited to `timeout`.
pub async fn send(address: &str, message: &str, timeout: Duration) -> Result<String, MllpError> {
    let stream = tokio::time::timeout(timeout, TcpStream::connect(address))
        .await
        .map_err(|_| MllpError::TimedOut(timeout))?
        .map_err(|source| MllpError::Connect {
            address: address.to_owned(),
            source,
        })?;
    exchange(stream, message, timeout).await
}

/// Sends one framed message on `stream` and reads one framed answer, within `timeout`.
pub async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    message: &str,
    timeout: Duration,
) -> Result<String, MllpError> {
    let work = async {
        stream.write_all(&frame(message)).await?;
        stream.flush().await?;
        read_frame(&mut stream).await
    };
    tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| MllpError::TimedOut(timeout))?
}

async fn read_frame<S: AsyncRead + Unpin>(stream: &mut S) -> Result<String, MllpError> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(MllpError::Closed);
        }
        buffer.extend_from_slice(&chunk[..n]);
        if let Some(end) = buffer.windows(2).position(|w| w == END) {
            let start = buffer
                .iter()
                .position(|b| *b == START)
                .filter(|s| *s < end)
                .ok_or_else(|| MllpError::Malformed("no start byte".into()))?;
            return String::from_utf8(buffer[start + 1..end].to_vec())
                .map_err(|e| MllpError::Malformed(e.to_string()));
        }
        if buffer.len() > MAX_ANSWER {
            return Err(MllpError::Malformed("an answer over 1 MiB".into()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_exchange_reads_the_framed_answer_even_in_pieces() {
        let (mut near, far) = tokio::io::duplex(64);
        let receiver = tokio::spawn(async move {
            let mut got = Vec::new();
            let mut byte = [0u8; 1];
            while !got.ends_with(&END) {
                near.read_exact(&mut byte).await.unwrap();
                got.push(byte[0]);
            }
            near.write_all(b"\x0bMSH|^~\\&\rMSA|").await.unwrap();
            near.write_all(b"AA|FC1\r\x1c\x0d").await.unwrap();
            got
        });
        let answer = exchange(far, "MSH|^~\\&\r", Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(answer, "MSH|^~\\&\rMSA|AA|FC1\r");
        assert_eq!(receiver.await.unwrap(), frame("MSH|^~\\&\r"));
    }

    #[tokio::test]
    async fn a_receiver_that_closes_or_says_nothing_is_no_answer() {
        let (near, far) = tokio::io::duplex(64);
        drop(near);
        let closed = exchange(far, "MSH\r", Duration::from_secs(5)).await;
        assert!(
            matches!(closed, Err(MllpError::Io(_) | MllpError::Closed)),
            "{closed:?}"
        );
        let (_near, far) = tokio::io::duplex(1024);
        let silent = exchange(far, "MSH\r", Duration::from_millis(50)).await;
        assert!(matches!(silent, Err(MllpError::TimedOut(_))), "{silent:?}");
    }
}
