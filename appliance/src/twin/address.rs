//! Where a board twin listens: `unix:PATH` (a Unix-domain socket) or `tcp:HOST:PORT`, and the
//! byte stream either one gives.
//!
//! Not for: what crosses the stream (see [`super::wire`]).

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream, ToSocketAddrs};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

/// The address of a board twin.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum TwinAddress {
    /// A Unix-domain socket at this path.
    Unix(PathBuf),
    /// A TCP address, `HOST:PORT`.
    Tcp(String),
}

/// Why a twin address could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TwinAddressError {
    /// Neither `unix:` nor `tcp:`.
    #[error("board twin address {0:?}: expected unix:PATH or tcp:HOST:PORT")]
    Scheme(String),
    /// `unix:` with nothing after it.
    #[error("board twin address {0:?}: the socket path is empty")]
    EmptyPath(String),
    /// `tcp:` without a `HOST:PORT` whose port is a number.
    #[error("board twin address {0:?}: expected tcp:HOST:PORT with a numeric port")]
    TcpAddress(String),
}

impl FromStr for TwinAddress {
    type Err = TwinAddressError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if let Some(path) = text.strip_prefix("unix:") {
            if path.is_empty() {
                return Err(TwinAddressError::EmptyPath(text.to_owned()));
            }
            return Ok(Self::Unix(PathBuf::from(path)));
        }
        if let Some(address) = text.strip_prefix("tcp:") {
            let port_ok = address
                .rsplit_once(':')
                .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
            if !port_ok {
                return Err(TwinAddressError::TcpAddress(text.to_owned()));
            }
            return Ok(Self::Tcp(address.to_owned()));
        }
        Err(TwinAddressError::Scheme(text.to_owned()))
    }
}

impl TryFrom<String> for TwinAddress {
    type Error = TwinAddressError;
    fn try_from(text: String) -> Result<Self, Self::Error> {
        text.parse()
    }
}

impl From<TwinAddress> for String {
    fn from(address: TwinAddress) -> Self {
        address.to_string()
    }
}

impl fmt::Display for TwinAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unix(path) => write!(f, "unix:{}", path.display()),
            Self::Tcp(address) => write!(f, "tcp:{address}"),
        }
    }
}

/// A connected byte stream to or from a twin.
#[derive(Debug)]
pub enum TwinStream {
    /// Over a Unix-domain socket.
    Unix(UnixStream),
    /// Over TCP (Nagle off: every frame is sent at once).
    Tcp(TcpStream),
}

impl TwinStream {
    /// Connects to `address`, giving up after `timeout` (TCP) or at once (Unix: a missing
    /// socket or no listener fails immediately).
    pub fn connect(address: &TwinAddress, timeout: Duration) -> io::Result<Self> {
        match address {
            TwinAddress::Unix(path) => UnixStream::connect(path).map(Self::Unix),
            TwinAddress::Tcp(host_port) => {
                let mut last = io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("{host_port} resolves to no address"),
                );
                for socket in host_port.to_socket_addrs()? {
                    match TcpStream::connect_timeout(&socket, timeout) {
                        Ok(stream) => {
                            stream.set_nodelay(true)?;
                            return Ok(Self::Tcp(stream));
                        }
                        Err(error) => last = error,
                    }
                }
                Err(last)
            }
        }
    }

    /// Whether the peer has closed the connection (or sent what nobody asked for) while it was
    /// idle: a non-blocking read that finds the end of the stream, stray bytes, or an error.
    /// Between exchanges nothing is pending, so nothing is lost by reading.
    pub fn peer_closed(&mut self) -> bool {
        if self.set_nonblocking(true).is_err() {
            return true;
        }
        let mut byte = [0u8; 1];
        let closed = match self.read(&mut byte) {
            Err(error) => error.kind() != io::ErrorKind::WouldBlock,
            Ok(_) => true,
        };
        closed || self.set_nonblocking(false).is_err()
    }

    fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        match self {
            Self::Unix(stream) => stream.set_nonblocking(nonblocking),
            Self::Tcp(stream) => stream.set_nonblocking(nonblocking),
        }
    }

    /// Bounds every read and write (None: wait forever).
    pub fn set_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        match self {
            Self::Unix(stream) => {
                stream.set_read_timeout(timeout)?;
                stream.set_write_timeout(timeout)
            }
            Self::Tcp(stream) => {
                stream.set_read_timeout(timeout)?;
                stream.set_write_timeout(timeout)
            }
        }
    }
}

impl Read for TwinStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Self::Unix(stream) => stream.read(buf),
            Self::Tcp(stream) => stream.read(buf),
        }
    }
}

impl Write for TwinStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Self::Unix(stream) => stream.write(buf),
            Self::Tcp(stream) => stream.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Self::Unix(stream) => stream.flush(),
            Self::Tcp(stream) => stream.flush(),
        }
    }
}

/// A bound listening socket.
#[derive(Debug)]
pub enum TwinListener {
    /// A Unix-domain socket; its file is removed when the listener is dropped.
    Unix(UnixListener, PathBuf),
    /// A TCP socket.
    Tcp(TcpListener),
}

impl TwinListener {
    /// Binds `address`. A Unix socket file left behind by a twin that was killed is removed
    /// first; one that still has a listener is an error ("address in use"), as is any other
    /// kind of file at that path.
    pub fn bind(address: &TwinAddress) -> io::Result<Self> {
        match address {
            TwinAddress::Unix(path) => {
                remove_stale_socket(path)?;
                UnixListener::bind(path).map(|listener| Self::Unix(listener, path.clone()))
            }
            TwinAddress::Tcp(host_port) => TcpListener::bind(host_port.as_str()).map(Self::Tcp),
        }
    }

    /// The address actually bound (a TCP port 0 becomes the port the system chose).
    pub fn local_address(&self) -> io::Result<TwinAddress> {
        Ok(match self {
            Self::Unix(_, path) => TwinAddress::Unix(path.clone()),
            Self::Tcp(listener) => TwinAddress::Tcp(listener.local_addr()?.to_string()),
        })
    }

    /// Waits for the next connection.
    pub fn accept(&self) -> io::Result<TwinStream> {
        match self {
            Self::Unix(listener, _) => listener
                .accept()
                .map(|(stream, _)| TwinStream::Unix(stream)),
            Self::Tcp(listener) => {
                let (stream, _) = listener.accept()?;
                stream.set_nodelay(true)?;
                Ok(TwinStream::Tcp(stream))
            }
        }
    }
}

impl Drop for TwinListener {
    fn drop(&mut self) {
        if let Self::Unix(_, path) = self {
            // Best effort: a file we cannot remove is found stale and removed by the next bind.
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Removes a socket file nobody listens on; refuses to touch anything else.
fn remove_stale_socket(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::FileTypeExt as _;
    let metadata = match std::fs::symlink_metadata(path) {
        Ok(metadata) => metadata,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(error) => return Err(error),
    };
    if !metadata.file_type().is_socket() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{} exists and is not a socket", path.display()),
        ));
    }
    match UnixStream::connect(path) {
        Ok(_) => Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            format!("another process listens on {}", path.display()),
        )),
        Err(_) => std::fs::remove_file(path),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_round_trip_and_bad_ones_are_named() {
        for text in [
            "unix:/run/ferrocount/twin.sock",
            "tcp:127.0.0.1:7020",
            "tcp:[::1]:7020",
        ] {
            let address: TwinAddress = text.parse().expect(text);
            assert_eq!(address.to_string(), text);
        }
        assert_eq!(
            "unix:".parse::<TwinAddress>(),
            Err(TwinAddressError::EmptyPath("unix:".into()))
        );
        assert_eq!(
            "tcp:localhost".parse::<TwinAddress>(),
            Err(TwinAddressError::TcpAddress("tcp:localhost".into()))
        );
        assert_eq!(
            "/tmp/twin.sock".parse::<TwinAddress>(),
            Err(TwinAddressError::Scheme("/tmp/twin.sock".into()))
        );
    }

    #[test]
    fn a_stale_socket_file_is_replaced_but_a_live_one_or_a_plain_file_is_not() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("twin.sock");
        let address = TwinAddress::Unix(path.clone());
        let first = TwinListener::bind(&address).expect("first bind");
        let busy = TwinListener::bind(&address).expect_err("a live listener keeps its socket");
        assert_eq!(busy.kind(), io::ErrorKind::AddrInUse);
        drop(first);
        assert!(
            !path.exists(),
            "a listener removes its socket file when it ends"
        );
        // A killed twin leaves its file behind, with nobody listening.
        drop(UnixListener::bind(&path).expect("raw bind"));
        assert!(path.exists());
        TwinListener::bind(&address).expect("a stale socket file is replaced");
        let plain = dir.path().join("plain");
        std::fs::write(&plain, b"not a socket").expect("write");
        let error = TwinListener::bind(&TwinAddress::Unix(plain.clone())).expect_err("plain file");
        assert_eq!(error.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(&plain).expect("kept"), b"not a socket");
    }
}
