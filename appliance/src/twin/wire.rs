//! What crosses a twin's socket. Every message is a frame: a `u32` little-endian length, then that
//! many bytes (at most [`MAX_FRAME_LEN`]).
//!
//! A connection opens with a hello (`"FCTW"`, wire version, channel) answered by the twin, and
//! then carries one channel only:
//!
//! - **the bus** ([`Channel::Bus`]): one frame per SPI transaction, its operations as bytes
//!   (what the host clocks out, how many bytes it clocks in, delays with chip select held), and
//!   one reply frame with the bytes the board clocked out. Nothing else travels here: this is the
//!   wire a logic analyser would see between the Pi and the board.
//! - **the simulation side channel** ([`Channel::Simulation`]): JSON requests that a real board
//!   has no wire for — the virtual tube in the coil, the passing of virtual time, and the
//!   simulation's truth for tests.
//!
//! Not for: the front-end protocol's frames (they are the *contents* of the bus channel's
//! writes and reads, see [`crate::frontend::protocol`]).

use std::io::{self, Read, Write};

use embedded_hal::spi::Operation;

use crate::sim_board::VirtualTube;

use super::truth::TwinTruth;

/// First bytes of every hello.
pub const MAGIC: [u8; 4] = *b"FCTW";
/// Version of this wire format.
pub const WIRE_VERSION: u8 = 1;
/// Largest frame either end accepts (a FIFO burst of 1024 echoes is about 8 kB).
pub const MAX_FRAME_LEN: usize = 1 << 20;

/// What a connection carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Channel {
    /// SPI transactions, as bytes.
    Bus = 1,
    /// Simulation control and truth (JSON).
    Simulation = 2,
}

/// A malformed message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("twin wire: {0}")]
pub struct WireError(pub String);

fn malformed(what: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, WireError(what.into()))
}

/// Writes one frame.
pub fn write_frame(stream: &mut impl Write, body: &[u8]) -> io::Result<()> {
    if body.len() > MAX_FRAME_LEN {
        return Err(malformed(format!(
            "frame of {} bytes exceeds {MAX_FRAME_LEN}",
            body.len()
        )));
    }
    let mut frame = Vec::with_capacity(4 + body.len());
    frame.extend_from_slice(&(body.len() as u32).to_le_bytes());
    frame.extend_from_slice(body);
    stream.write_all(&frame)?;
    stream.flush()
}

/// Reads one frame. A clean end of stream before its first byte is `UnexpectedEof`.
pub fn read_frame(stream: &mut impl Read) -> io::Result<Vec<u8>> {
    let mut length = [0u8; 4];
    stream.read_exact(&mut length)?;
    let length = u32::from_le_bytes(length) as usize;
    if length > MAX_FRAME_LEN {
        return Err(malformed(format!(
            "frame of {length} bytes exceeds {MAX_FRAME_LEN}"
        )));
    }
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body)?;
    Ok(body)
}

/// The hello a client sends first.
pub fn hello(channel: Channel) -> Vec<u8> {
    let mut body = MAGIC.to_vec();
    body.extend_from_slice(&[WIRE_VERSION, channel as u8]);
    body
}

/// Reads a client's hello: the channel asked for, or why it is refused.
pub fn parse_hello(body: &[u8]) -> Result<Channel, WireError> {
    let [m0, m1, m2, m3, version, channel] = body else {
        return Err(WireError(format!(
            "hello of {} bytes, expected 6",
            body.len()
        )));
    };
    if [*m0, *m1, *m2, *m3] != MAGIC {
        return Err(WireError("not a board-twin client (bad magic)".into()));
    }
    if *version != WIRE_VERSION {
        return Err(WireError(format!(
            "wire version {version}, this twin speaks {WIRE_VERSION}"
        )));
    }
    match channel {
        1 => Ok(Channel::Bus),
        2 => Ok(Channel::Simulation),
        other => Err(WireError(format!("unknown channel {other}"))),
    }
}

/// The twin's answer to a hello: empty when accepted, the reason otherwise.
pub fn hello_reply(outcome: &Result<Channel, WireError>) -> Vec<u8> {
    match outcome {
        Ok(_) => Vec::new(),
        Err(error) => error.0.clone().into_bytes(),
    }
}

const OP_READ: u8 = 1;
const OP_WRITE: u8 = 2;
const OP_TRANSFER: u8 = 3;
const OP_TRANSFER_IN_PLACE: u8 = 4;
const OP_DELAY_NS: u8 = 5;

/// Encodes the operations of one SPI transaction: `u16` count, then per operation a tag and its
/// lengths and written bytes.
pub fn encode_transaction(operations: &[Operation<'_, u8>]) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&(operations.len() as u16).to_le_bytes());
    let length = |body: &mut Vec<u8>, n: usize| body.extend_from_slice(&(n as u32).to_le_bytes());
    for operation in operations {
        match operation {
            Operation::Read(buffer) => {
                body.push(OP_READ);
                length(&mut body, buffer.len());
            }
            Operation::Write(bytes) => {
                body.push(OP_WRITE);
                length(&mut body, bytes.len());
                body.extend_from_slice(bytes);
            }
            Operation::Transfer(read, write) => {
                body.push(OP_TRANSFER);
                length(&mut body, read.len());
                length(&mut body, write.len());
                body.extend_from_slice(write);
            }
            Operation::TransferInPlace(buffer) => {
                body.push(OP_TRANSFER_IN_PLACE);
                length(&mut body, buffer.len());
                body.extend_from_slice(buffer);
            }
            Operation::DelayNs(ns) => {
                body.push(OP_DELAY_NS);
                body.extend_from_slice(&ns.to_le_bytes());
            }
        }
    }
    body
}

/// Bytes the board clocks out in a transaction: the sum of every read length.
pub fn reply_len(operations: &[Operation<'_, u8>]) -> usize {
    operations
        .iter()
        .map(|operation| match operation {
            Operation::Read(buffer) | Operation::TransferInPlace(buffer) => buffer.len(),
            Operation::Transfer(read, _) => read.len(),
            Operation::Write(_) | Operation::DelayNs(_) => 0,
        })
        .sum()
}

/// Copies the reply's bytes into the transaction's read buffers, in order.
pub fn fill_reads(operations: &mut [Operation<'_, u8>], reply: &[u8]) -> Result<(), WireError> {
    let expected = reply_len(operations);
    if reply.len() != expected {
        return Err(WireError(format!(
            "reply of {} bytes to a transaction reading {expected}",
            reply.len()
        )));
    }
    let mut position = 0;
    for operation in operations.iter_mut() {
        let target: &mut [u8] = match operation {
            Operation::Read(buffer) | Operation::TransferInPlace(buffer) => buffer,
            Operation::Transfer(read, _) => read,
            Operation::Write(_) | Operation::DelayNs(_) => continue,
        };
        target.copy_from_slice(&reply[position..position + target.len()]);
        position += target.len();
    }
    Ok(())
}

/// One operation as the twin receives it, with buffers it owns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BusOperation {
    /// Clock in this many bytes.
    Read(Vec<u8>),
    /// Clock out these bytes.
    Write(Vec<u8>),
    /// Clock out `write` while clocking in `read.len()` bytes (lengths may differ).
    Transfer(Vec<u8>, Vec<u8>),
    /// Clock out these bytes and replace them with what came in.
    TransferInPlace(Vec<u8>),
    /// Hold chip select for this many nanoseconds.
    DelayNs(u32),
}

/// Decodes a transaction frame (the inverse of [`encode_transaction`]).
pub fn decode_transaction(body: &[u8]) -> Result<Vec<BusOperation>, WireError> {
    let mut cursor = Cursor { body, position: 0 };
    let count = u16::from_le_bytes(cursor.array::<2>()?);
    let mut operations = Vec::with_capacity(usize::from(count));
    for _ in 0..count {
        let [tag] = cursor.array::<1>()?;
        operations.push(match tag {
            OP_READ => BusOperation::Read(vec![0; cursor.length()?]),
            OP_WRITE => {
                let n = cursor.length()?;
                BusOperation::Write(cursor.bytes(n)?.to_vec())
            }
            OP_TRANSFER => {
                let read = cursor.length()?;
                let write = cursor.length()?;
                BusOperation::Transfer(vec![0; read], cursor.bytes(write)?.to_vec())
            }
            OP_TRANSFER_IN_PLACE => {
                let n = cursor.length()?;
                BusOperation::TransferInPlace(cursor.bytes(n)?.to_vec())
            }
            OP_DELAY_NS => BusOperation::DelayNs(u32::from_le_bytes(cursor.array::<4>()?)),
            other => return Err(WireError(format!("unknown operation tag {other}"))),
        });
    }
    if cursor.position != body.len() {
        return Err(WireError(format!(
            "{} bytes after the last operation",
            body.len() - cursor.position
        )));
    }
    Ok(operations)
}

/// Runs decoded operations on `device` and returns the bytes it clocked out, in order.
pub fn execute_transaction<D: embedded_hal::spi::SpiDevice>(
    device: &mut D,
    mut owned: Vec<BusOperation>,
) -> Result<Vec<u8>, D::Error> {
    let mut operations: Vec<Operation<'_, u8>> = owned
        .iter_mut()
        .map(|operation| match operation {
            BusOperation::Read(buffer) => Operation::Read(buffer),
            BusOperation::Write(bytes) => Operation::Write(bytes),
            BusOperation::Transfer(read, write) => Operation::Transfer(read, write),
            BusOperation::TransferInPlace(buffer) => Operation::TransferInPlace(buffer),
            BusOperation::DelayNs(ns) => Operation::DelayNs(*ns),
        })
        .collect();
    device.transaction(&mut operations)?;
    let mut reply = Vec::with_capacity(reply_len(&operations));
    for operation in &operations {
        match operation {
            Operation::Read(buffer) | Operation::TransferInPlace(buffer) => {
                reply.extend_from_slice(buffer)
            }
            Operation::Transfer(read, _) => reply.extend_from_slice(read),
            Operation::Write(_) | Operation::DelayNs(_) => {}
        }
    }
    Ok(reply)
}

struct Cursor<'a> {
    body: &'a [u8],
    position: usize,
}

impl<'a> Cursor<'a> {
    fn bytes(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        let end = self
            .position
            .checked_add(n)
            .filter(|end| *end <= self.body.len())
            .ok_or_else(|| WireError("transaction frame ends early".into()))?;
        let bytes = &self.body[self.position..end];
        self.position = end;
        Ok(bytes)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], WireError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.bytes(N)?);
        Ok(out)
    }

    fn length(&mut self) -> Result<usize, WireError> {
        let n = u32::from_le_bytes(self.array::<4>()?) as usize;
        if n > MAX_FRAME_LEN {
            return Err(WireError(format!("operation of {n} bytes")));
        }
        Ok(n)
    }
}

/// A request on the simulation side channel.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "request", rename_all = "snake_case")]
pub enum SimulationRequest {
    /// How the twin's virtual time runs.
    Clock,
    /// Put this tube in the coil (takes effect at the next sequence start, as on hardware).
    InsertTube {
        /// The tube.
        tube: VirtualTube,
    },
    /// Let this much virtual time pass (the host's delays, in instant mode).
    PassTime {
        /// Nanoseconds.
        ns: u64,
    },
    /// What the simulation knows and a real board would not tell.
    Truth,
}

/// The twin's answer on the side channel.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "reply", rename_all = "snake_case")]
pub enum SimulationReply {
    /// The twin's clock: `None` for instant virtual time (moved by [`SimulationRequest::PassTime`]),
    /// or virtual seconds per wall-clock second.
    Clock {
        /// Speed-up of scaled time.
        speedup: Option<f64>,
    },
    /// Done.
    Done,
    /// The truth.
    Truth {
        /// It.
        truth: Box<TwinTruth>,
    },
    /// The request could not be served.
    Refused {
        /// Why.
        reason: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_transaction_crosses_as_bytes_and_its_reads_come_back_in_order() {
        let mut read_a = [0u8; 3];
        let mut transfer_read = [0u8; 2];
        let mut in_place = [7u8, 8];
        let mut operations = [
            Operation::Write(&[1, 2, 3]),
            Operation::Read(&mut read_a),
            Operation::DelayNs(1500),
            Operation::Transfer(&mut transfer_read, &[9, 9, 9, 9]),
            Operation::TransferInPlace(&mut in_place),
        ];
        let body = encode_transaction(&operations);
        let decoded = decode_transaction(&body).expect("decodes");
        assert_eq!(
            decoded,
            vec![
                BusOperation::Write(vec![1, 2, 3]),
                BusOperation::Read(vec![0; 3]),
                BusOperation::DelayNs(1500),
                BusOperation::Transfer(vec![0; 2], vec![9, 9, 9, 9]),
                BusOperation::TransferInPlace(vec![7, 8]),
            ]
        );
        assert_eq!(reply_len(&operations), 7);
        fill_reads(&mut operations, &[10, 11, 12, 20, 21, 30, 31]).expect("fills");
        let _ = operations;
        assert_eq!(read_a, [10, 11, 12]);
        assert_eq!(transfer_read, [20, 21]);
        assert_eq!(in_place, [30, 31]);
    }

    #[test]
    fn truncated_or_padded_transactions_and_wrong_reply_lengths_are_refused() {
        let body = encode_transaction(&[Operation::Write(&[1, 2, 3])]);
        assert!(decode_transaction(&body[..body.len() - 1]).is_err());
        let mut padded = body.clone();
        padded.push(0);
        assert!(decode_transaction(&padded).is_err());
        assert!(decode_transaction(&[1, 0, 99]).is_err());
        let mut buffer = [0u8; 2];
        let mut operations = [Operation::Read(&mut buffer)];
        assert!(fill_reads(&mut operations, &[1]).is_err());
    }

    #[test]
    fn hellos_name_what_is_wrong() {
        assert_eq!(parse_hello(&hello(Channel::Bus)), Ok(Channel::Bus));
        assert_eq!(
            parse_hello(&hello(Channel::Simulation)),
            Ok(Channel::Simulation)
        );
        let mut other_version = hello(Channel::Bus);
        other_version[4] = 9;
        assert!(
            parse_hello(&other_version)
                .unwrap_err()
                .0
                .contains("version 9")
        );
        assert!(parse_hello(b"GET / HTTP/1.1").is_err());
    }

    #[test]
    fn frames_round_trip_and_oversized_lengths_are_refused() {
        let mut buffer = Vec::new();
        write_frame(&mut buffer, b"abc").expect("write");
        assert_eq!(read_frame(&mut buffer.as_slice()).expect("read"), b"abc");
        let huge = (MAX_FRAME_LEN as u32 + 1).to_le_bytes();
        let error = read_frame(&mut huge.as_slice()).expect_err("too long");
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
    }
}
