//! MLLP, the Minimal Lower Layer Protocol HL7 v2 travels on over TCP: a message is framed as
//! `0x0B` … `0x1C 0x0D`, and the receiver answers on the same connection with a framed
//! acknowledgement.
//!
//! What it is for: one exchange (connect, over TLS when the destination asks for it, send one
//! framed message, read one framed answer) with a time limit on each step. What it is not for:
//! deciding what an answer means (the outbox's rule) or retrying (the sender's).
//!
//! TLS ([`Link::Tls`]) is rustls with the ring provider, trusting only the roots of the
//! destination's configured CA file (not the system's), and checking the receiver's certificate
//! against the configured server name (by default the address's host).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// The start of a frame.
pub const START: u8 = 0x0B;
/// The end of a frame: file separator and carriage return.
pub const END: [u8; 2] = [0x1C, 0x0D];
/// The longest answer read (an acknowledgement is a few hundred bytes).
const MAX_ANSWER: usize = 1 << 20;

/// Why an exchange got no answer.
#[derive(Debug, thiserror::Error)]
pub enum MllpError {
    /// The TLS handshake failed (the receiver's certificate is not trusted or not for its name,
    /// no common protocol, the receiver speaks no TLS).
    #[error("the TLS handshake with {address} failed: {source}")]
    Tls {
        /// The address.
        address: String,
        /// Why.
        source: std::io::Error,
    },
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

/// How an exchange reaches its receiver.
#[derive(Clone, Debug)]
pub enum Link {
    /// Plain TCP.
    Plain,
    /// TLS over TCP, trusting `config`'s roots, the receiver's certificate checked for
    /// `server_name`.
    Tls {
        /// rustls' client configuration (the destination's CA roots, no client certificate).
        config: Arc<rustls::ClientConfig>,
        /// The name the receiver's certificate must carry.
        server_name: ServerName<'static>,
    },
}

impl Link {
    /// TLS trusting only `roots` ([`ca_roots`]), for a receiver whose certificate carries
    /// `server_name` ([`server_name`]).
    pub fn tls(roots: RootCertStore, server_name: ServerName<'static>) -> Result<Self, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("no TLS protocol version: {e}"))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Self::Tls {
            config: Arc::new(config),
            server_name,
        })
    }
}

/// A receiver's name as its certificate must carry it: a DNS name or an IP address.
pub fn server_name(name: &str) -> Result<ServerName<'static>, String> {
    ServerName::try_from(name.to_owned())
        .map_err(|e| format!("{name:?} is not a DNS name or IP address: {e}"))
}

/// The trusted roots of a PEM file of one or more CA certificates.
pub fn ca_roots(ca_file: &Path) -> Result<RootCertStore, String> {
    let pem =
        std::fs::read(ca_file).map_err(|e| format!("{} cannot be read: {e}", ca_file.display()))?;
    let certificates = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{} is not valid PEM: {e}", ca_file.display()))?;
    if certificates.is_empty() {
        return Err(format!(
            "{} holds no certificate (expected PEM \"BEGIN CERTIFICATE\" blocks)",
            ca_file.display()
        ));
    }
    let mut roots = RootCertStore::empty();
    for certificate in certificates {
        roots.add(certificate).map_err(|e| {
            format!(
                "{} holds a certificate rustls refuses: {e}",
                ca_file.display()
            )
        })?;
    }
    Ok(roots)
}

/// `message` framed for MLLP.
pub fn frame(message: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + 3);
    out.push(START);
    out.extend_from_slice(message.as_bytes());
    out.extend_from_slice(&END);
    out
}

/// Connects to `address` (`host:port`) over `link`, sends `message` and returns the answer's
/// text; each of connecting (with the TLS handshake) and the exchange is limited to `timeout`.
pub async fn send(
    address: &str,
    link: &Link,
    message: &str,
    timeout: Duration,
) -> Result<String, MllpError> {
    let connect = async {
        TcpStream::connect(address)
            .await
            .map_err(|source| MllpError::Connect {
                address: address.to_owned(),
                source,
            })
    };
    match link {
        Link::Plain => {
            let stream = tokio::time::timeout(timeout, connect)
                .await
                .map_err(|_| MllpError::TimedOut(timeout))??;
            exchange(stream, message, timeout).await
        }
        Link::Tls {
            config,
            server_name,
        } => {
            let handshake = async {
                let stream = connect.await?;
                TlsConnector::from(Arc::clone(config))
                    .connect(server_name.clone(), stream)
                    .await
                    .map_err(|source| MllpError::Tls {
                        address: address.to_owned(),
                        source,
                    })
            };
            let stream = tokio::time::timeout(timeout, handshake)
                .await
                .map_err(|_| MllpError::TimedOut(timeout))??;
            exchange(stream, message, timeout).await
        }
    }
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
