//! The host's end of the bus: [`TwinSpi`], an embedded-hal 1.0 `SpiDevice` whose every
//! transaction crosses the twin's socket as bytes, so the same [`crate::frontend::Frontend`],
//! procedures and engine run on it as on spidev.
//!
//! It connects on first use, and again before a transaction when the twin closed the link while
//! it was idle (a twin killed or restarted between transactions, like a board unplugged and
//! plugged back): nothing of that transaction was sent yet. A transaction whose link fails while
//! it is under way is an error, never retried here: whether the board executed it is unknown,
//! and deciding what to do about a board that went away (identify it again, re-tune) is the
//! engine's business.
//! Every read and write is bounded by [`TwinLinkOptions::io_timeout`], so a twin that hangs is
//! reported in bounded time.

use std::fmt;
use std::io;
use std::time::Duration;

use embedded_hal::spi::{ErrorKind, ErrorType, Operation, SpiDevice};

use super::address::{TwinAddress, TwinStream};
use super::wire::{
    Channel, WireError, encode_transaction, fill_reads, hello, read_frame, write_frame,
};

/// Time limits of a twin link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TwinLinkOptions {
    /// Longest wait for a TCP connection.
    pub connect_timeout: Duration,
    /// Longest wait for any one read or write on the socket.
    pub io_timeout: Duration,
}

impl Default for TwinLinkOptions {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(2),
            io_timeout: Duration::from_secs(5),
        }
    }
}

/// Why the link to a twin failed.
#[derive(thiserror::Error)]
pub enum TwinLinkError {
    /// No twin could be reached at the address.
    #[error("board twin at {address}: cannot connect: {source}")]
    Connect {
        /// Where.
        address: TwinAddress,
        /// The OS error.
        source: io::Error,
    },
    /// The twin went away or stopped answering mid-exchange.
    #[error("board twin at {address}: link lost: {}", describe(source))]
    Lost {
        /// Where.
        address: TwinAddress,
        /// The OS error.
        source: io::Error,
    },
    /// The twin refused the hello or a request.
    #[error("board twin at {address}: refused: {reason}")]
    Refused {
        /// Where.
        address: TwinAddress,
        /// Its reason.
        reason: String,
    },
    /// The twin answered something this host cannot read.
    #[error("board twin at {address}: {error}")]
    Wire {
        /// Where.
        address: TwinAddress,
        /// What was wrong.
        error: WireError,
    },
}

/// The driver prints bus errors with `{:?}`: make that the readable message too.
impl fmt::Debug for TwinLinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl embedded_hal::spi::Error for TwinLinkError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Other
    }
}

fn describe(error: &io::Error) -> String {
    match error.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
            "no answer within the link's time limit".to_owned()
        }
        io::ErrorKind::UnexpectedEof => "the twin closed the connection".to_owned(),
        _ => error.to_string(),
    }
}

/// Opens a connection on `channel`: connect, hello, the twin's acceptance.
pub(crate) fn open_channel(
    address: &TwinAddress,
    options: &TwinLinkOptions,
    channel: Channel,
) -> Result<TwinStream, TwinLinkError> {
    let mut stream = TwinStream::connect(address, options.connect_timeout).map_err(|source| {
        TwinLinkError::Connect {
            address: address.clone(),
            source,
        }
    })?;
    let lost = |source| TwinLinkError::Lost {
        address: address.clone(),
        source,
    };
    stream.set_timeout(Some(options.io_timeout)).map_err(lost)?;
    write_frame(&mut stream, &hello(channel)).map_err(lost)?;
    let answer = read_frame(&mut stream).map_err(lost)?;
    if !answer.is_empty() {
        return Err(TwinLinkError::Refused {
            address: address.clone(),
            reason: String::from_utf8_lossy(&answer).into_owned(),
        });
    }
    Ok(stream)
}

/// An `SpiDevice` on a board twin's bus channel.
#[derive(Debug)]
pub struct TwinSpi {
    address: TwinAddress,
    options: TwinLinkOptions,
    stream: Option<TwinStream>,
    connections: u64,
}

impl TwinSpi {
    /// A device for the twin at `address`; connects on the first transaction.
    pub fn new(address: TwinAddress, options: TwinLinkOptions) -> Self {
        Self {
            address,
            options,
            stream: None,
            connections: 0,
        }
    }

    /// The twin's address.
    pub fn address(&self) -> &TwinAddress {
        &self.address
    }

    /// Connections opened so far (more than one: the link was lost and made again).
    pub fn connections(&self) -> u64 {
        self.connections
    }

    fn stream(&mut self) -> Result<&mut TwinStream, TwinLinkError> {
        // A link the twin closed while idle (it was killed or restarted between transactions)
        // carried nothing of the next one: make it again before sending.
        if self.stream.as_mut().is_some_and(TwinStream::peer_closed) {
            self.stream = None;
        }
        if self.stream.is_none() {
            let stream = open_channel(&self.address, &self.options, Channel::Bus)?;
            self.connections += 1;
            self.stream = Some(stream);
        }
        self.stream.as_mut().ok_or_else(|| TwinLinkError::Lost {
            address: self.address.clone(),
            source: io::Error::from(io::ErrorKind::NotConnected),
        })
    }

    fn exchange(&mut self, body: &[u8]) -> Result<Vec<u8>, TwinLinkError> {
        let stream = self.stream()?;
        let sent = write_frame(stream, body).and_then(|()| read_frame(stream));
        sent.map_err(|source| {
            // Whatever the twin did with this transaction, the next one starts on a new link.
            self.stream = None;
            TwinLinkError::Lost {
                address: self.address.clone(),
                source,
            }
        })
    }
}

impl ErrorType for TwinSpi {
    type Error = TwinLinkError;
}

impl SpiDevice for TwinSpi {
    fn transaction(&mut self, operations: &mut [Operation<'_, u8>]) -> Result<(), TwinLinkError> {
        let reply = self.exchange(&encode_transaction(operations))?;
        fill_reads(operations, &reply).map_err(|error| {
            self.stream = None;
            TwinLinkError::Wire {
                address: self.address.clone(),
                error,
            }
        })
    }
}
