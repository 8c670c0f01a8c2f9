//! The exact bytes the driver puts on the bus for each operation, checked against an
//! `embedded-hal-mock` SPI device. Expected frames are written out by hand from
//! `docs/frontend-protocol.md`; only the CRC is computed, with the `crc` crate's CRC-16/IBM-3740
//! (CCITT-FALSE) directly, not through the driver's codec.
//!
//! Every new driver's first request is its first contact (protocol §2): a STATUS with sequence
//! number 1 whose answer it does not use; its first command proper carries number 2.

use appliance::frontend::{Error, Frontend, LinkTiming, PhaseCycle};
use embedded_hal_mock::eh1::delay::NoopDelay;
use embedded_hal_mock::eh1::spi::{Mock, Transaction};

const CCITT: crc::Crc<u16> = crc::Crc::<u16>::new(&crc::CRC_16_IBM_3740);

/// Appends the big-endian CRC to a frame body.
fn with_crc(mut body: Vec<u8>) -> Vec<u8> {
    let crc = CCITT.checksum(&body);
    body.extend_from_slice(&crc.to_be_bytes());
    body
}

/// A request frame: A5 seq cmd len_lo len_hi payload crc.
fn request(seq: u8, cmd: u8, payload: &[u8]) -> Vec<u8> {
    let mut body = vec![
        0xA5,
        seq,
        cmd,
        payload.len() as u8,
        (payload.len() >> 8) as u8,
    ];
    body.extend_from_slice(payload);
    with_crc(body)
}

/// A response frame padded to the length the host reads.
fn response(seq: u8, status: u8, payload: &[u8], read_len: usize) -> Vec<u8> {
    let mut body = vec![
        0x5A,
        seq,
        status,
        payload.len() as u8,
        (payload.len() >> 8) as u8,
    ];
    body.extend_from_slice(payload);
    let mut frame = with_crc(body);
    frame.resize(read_len, 0x00);
    frame
}

fn write(bytes: Vec<u8>) -> Vec<Transaction<u8>> {
    vec![
        Transaction::transaction_start(),
        Transaction::write_vec(bytes),
        Transaction::transaction_end(),
    ]
}

fn read(bytes: Vec<u8>) -> Vec<Transaction<u8>> {
    vec![
        Transaction::transaction_start(),
        Transaction::read_vec(bytes),
        Transaction::transaction_end(),
    ]
}

/// One command: the request written, the response read back.
fn exchange(
    seq: u8,
    cmd: u8,
    request_payload: &[u8],
    response_payload: &[u8],
    read_payload_len: usize,
) -> Vec<Transaction<u8>> {
    let mut t = write(request(seq, cmd, request_payload));
    t.extend(read(response(
        seq,
        0x00,
        response_payload,
        7 + read_payload_len,
    )));
    t
}

/// A status block: idle, nothing waiting, last sequence number `last_seq`.
fn idle_status(last_seq: u8) -> Vec<u8> {
    vec![0, 0, 0, 0, 0, 0, last_seq, 0, 0, 0]
}

/// The first contact of a new driver, answered by a board that executed it.
fn first_contact() -> Vec<Transaction<u8>> {
    exchange(1, 0x07, &[], &idle_status(1), 10)
}

/// The first contact followed by one command with sequence number 2.
fn first_command(
    cmd: u8,
    request_payload: &[u8],
    response_payload: &[u8],
    read_payload_len: usize,
) -> Vec<Transaction<u8>> {
    let mut t = first_contact();
    t.extend(exchange(
        2,
        cmd,
        request_payload,
        response_payload,
        read_payload_len,
    ));
    t
}

fn identity_block(major: u8, minor: u8) -> Vec<u8> {
    let mut block = b"FCNT".to_vec();
    block.extend_from_slice(&[major, minor, 1, 2, 3]); // protocol, firmware 1.2.3
    block.extend_from_slice(&0x1234_5678u32.to_le_bytes()); // serial
    block.extend_from_slice(&0b101u32.to_le_bytes()); // capabilities
    block.extend_from_slice(&4096u16.to_le_bytes()); // FIFO capacity
    block.push(32); // program entries
    block
}

#[test]
fn each_operation_puts_the_documented_frames_on_the_bus() {
    type Op = fn(
        &mut Frontend<Mock<u8>, appliance::frontend::NoPin, appliance::frontend::NoPin, NoopDelay>,
    );
    /// (name, operation, command byte, request payload, response payload, payload bytes the host reads)
    type Case = (&'static str, Op, u8, Vec<u8>, Vec<u8>, usize);
    let table: Vec<Case> = vec![
        (
            "set frequency 20 MHz: FTW = 2^32/5 = 0x33333333",
            |fe| {
                assert_eq!(
                    fe.set_frequency_hz(20e6).ok(),
                    Some(858_993_459.0 * 100e6 / 4_294_967_296.0)
                )
            },
            0x03,
            vec![0x00, 0x33, 0x33, 0x33, 0x33],
            vec![],
            0,
        ),
        (
            "p90 10 µs = 1000 ticks",
            |fe| assert!(fe.set_p90_ns(10_000).is_ok()),
            0x03,
            vec![0x02, 0xE8, 0x03, 0x00, 0x00],
            vec![],
            0,
        ),
        (
            "p180 20 µs = 2000 ticks",
            |fe| assert!(fe.set_p180_ns(20_000).is_ok()),
            0x03,
            vec![0x03, 0xD0, 0x07, 0x00, 0x00],
            vec![],
            0,
        ),
        (
            "gain 40 dB",
            |fe| assert!(fe.set_rx_gain_db(40).is_ok()),
            0x03,
            vec![0x04, 40, 0, 0, 0],
            vec![],
            0,
        ),
        (
            "dead time 15 µs",
            |fe| assert!(fe.set_acquisition_delay_ns(15_000).is_ok()),
            0x03,
            vec![0x05, 0xDC, 0x05, 0, 0],
            vec![],
            0,
        ),
        (
            "NA 16",
            |fe| assert!(fe.set_scans(16).is_ok()),
            0x03,
            vec![0x06, 16, 0, 0, 0],
            vec![],
            0,
        ),
        (
            "TR 3 s",
            |fe| assert!(fe.set_repetition_time_us(3_000_000).is_ok()),
            0x03,
            vec![0x07, 0xC0, 0xC6, 0x2D, 0x00],
            vec![],
            0,
        ),
        (
            "dummy scans 2",
            |fe| assert!(fe.set_dummy_scans(2).is_ok()),
            0x03,
            vec![0x08, 2, 0, 0, 0],
            vec![],
            0,
        ),
        (
            "phase cycle 4",
            |fe| assert!(fe.set_phase_cycle(PhaseCycle::Four).is_ok()),
            0x03,
            vec![0x09, 4, 0, 0, 0],
            vec![],
            0,
        ),
        (
            "tx amplitude",
            |fe| assert!(fe.set_tx_amplitude(0x8000).is_ok()),
            0x03,
            vec![0x01, 0x00, 0x80, 0, 0],
            vec![],
            0,
        ),
        (
            "magnet temperature 24.875 °C",
            |fe| assert_eq!(fe.magnet_temp_c().ok(), Some(24.875)),
            0x02,
            vec![0x10],
            24_875u32.to_le_bytes().to_vec(),
            4,
        ),
        (
            "coil temperature −1.5 °C",
            |fe| assert_eq!(fe.coil_temp_c().ok(), Some(-1.5)),
            0x02,
            vec![0x11],
            (-1500i32).to_le_bytes().to_vec(),
            4,
        ),
        (
            "start",
            |fe| assert!(fe.start().is_ok()),
            0x05,
            vec![],
            vec![],
            0,
        ),
        (
            "halt",
            |fe| assert!(fe.halt().is_ok()),
            0x06,
            vec![],
            vec![],
            0,
        ),
        (
            "flush",
            |fe| assert!(fe.flush_fifo().is_ok()),
            0x09,
            vec![],
            vec![],
            0,
        ),
        (
            "status: done, overflow, 3 echoes, 8 scans, seq 2, 2 lost",
            |fe| {
                let status = fe.status().expect("status");
                assert_eq!(status.state, appliance::frontend::SequencerState::Done);
                assert!(status.fifo_overflow && !status.reset_seen);
                assert_eq!(
                    (status.fifo_level, status.scans_done, status.echoes_lost),
                    (3, 8, 2)
                );
            },
            0x07,
            vec![],
            vec![2, 0b01, 3, 0, 8, 0, 2, 0, 2, 0],
            10,
        ),
        (
            "two echoes from the FIFO",
            |fe| {
                let echoes = fe.read_echoes(2).expect("echoes");
                assert_eq!(
                    (echoes[0].i, echoes[0].q, echoes[1].i, echoes[1].q),
                    (1000, -2, -70_000, 5)
                );
            },
            0x08,
            vec![2, 0],
            [
                &[2u8, 0][..],
                &1000i32.to_le_bytes(),
                &(-2i32).to_le_bytes(),
                &(-70_000i32).to_le_bytes(),
                &5i32.to_le_bytes(),
            ]
            .concat(),
            2 + 16,
        ),
    ];
    for (name, operation, cmd, request_payload, response_payload, read_len) in table {
        let expectations = first_command(cmd, &request_payload, &response_payload, read_len);
        let mut spi = Mock::new(&expectations);
        let mut frontend = Frontend::new(spi.clone(), NoopDelay);
        operation(&mut frontend);
        spi.done();
        eprintln!("ok: {name}");
    }
}

#[test]
fn connect_reads_identity_and_accepts_a_newer_minor_version() {
    let expectations = first_command(0x01, &[], &identity_block(1, 7), 20);
    let mut spi = Mock::new(&expectations);
    let mut frontend = Frontend::new(spi.clone(), NoopDelay);
    let identity = frontend.connect().expect("same major version");
    assert_eq!(
        (identity.protocol, identity.firmware, identity.serial),
        ((1, 7), (1, 2, 3), 0x1234_5678)
    );
    spi.done();
}

#[test]
fn connect_refuses_another_major_version() {
    let expectations = first_command(0x01, &[], &identity_block(2, 0), 20);
    let mut spi = Mock::new(&expectations);
    let mut frontend = Frontend::new(spi.clone(), NoopDelay);
    let error = frontend.connect().expect_err("major 2");
    assert!(
        matches!(
            error,
            Error::VersionMismatch {
                host_major: 1,
                board_major: 2,
                ..
            }
        ),
        "{error}"
    );
    assert!(error.to_string().contains("incompatible major version"));
    spi.done();
}

#[test]
fn a_pulse_program_goes_out_as_count_then_12_byte_entries() {
    let program = appliance::frontend::PulseProgram::nutation_step(10_000, 20_000).expect("valid");
    let mut payload = vec![3];
    payload.extend_from_slice(&[0, 0, 0, 0, 0x11, 0, 0xFF, 0xFF, 0, 0, 0, 0]); // RF | USE_P90, full amplitude
    payload.extend_from_slice(&[0xE8, 0x03, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]); // wait 1000 ticks
    payload.extend_from_slice(&[0xD0, 0x07, 0, 0, 0x02, 0, 0, 0, 0, 0, 0, 0]); // acquire 2000 ticks
    let expectations = first_command(0x04, &payload, &[], 0);
    let mut spi = Mock::new(&expectations);
    let mut frontend = Frontend::new(spi.clone(), NoopDelay);
    frontend.load_program(&program).expect("loads");
    spi.done();
}

#[test]
fn values_that_do_not_fit_are_refused_before_any_io() {
    let mut spi = Mock::new(&[]);
    let mut frontend = Frontend::new(spi.clone(), NoopDelay);
    assert!(matches!(
        frontend.set_p90_ns(10_005),
        Err(Error::InvalidArgument { name: "p90_ns", .. })
    ));
    assert!(matches!(
        frontend.set_p90_ns(2_000_000),
        Err(Error::InvalidArgument { .. })
    ));
    assert!(matches!(
        frontend.set_rx_gain_db(61),
        Err(Error::InvalidArgument { .. })
    ));
    assert!(matches!(
        frontend.set_scans(0),
        Err(Error::InvalidArgument { .. })
    ));
    assert!(matches!(
        frontend.set_repetition_time_us(999),
        Err(Error::InvalidArgument { .. })
    ));
    assert!(matches!(
        frontend.set_frequency_hz(45e6),
        Err(Error::InvalidArgument { .. })
    ));
    assert!(matches!(
        frontend.set_frequency_hz(f64::NAN),
        Err(Error::InvalidArgument { .. })
    ));
    assert!(matches!(
        frontend.read_fifo_burst(0, &mut Vec::new()),
        Err(Error::InvalidArgument { .. })
    ));
    spi.done();
}

#[test]
fn a_corrupted_response_is_read_again_and_a_nacked_request_is_resent_with_the_same_seq() {
    let mut corrupted = response(2, 0x00, &[], 7);
    corrupted[3] ^= 0x01; // a flipped bit in the length field
    let mut expectations = first_contact();
    expectations.extend(write(request(2, 0x05, &[])));
    expectations.extend(read(corrupted));
    expectations.extend(read(response(2, 0x01, &[], 7))); // (a board would not do this, but) BadCrc: resend
    expectations.extend(write(request(2, 0x05, &[]))); // same sequence number
    expectations.extend(read(response(2, 0x00, &[], 7)));
    let mut spi = Mock::new(&expectations);
    let mut frontend = Frontend::new(spi.clone(), NoopDelay);
    frontend.start().expect("start after retries");
    let counters = frontend.counters();
    assert_eq!(
        (
            counters.corrupt_responses,
            counters.request_nacks,
            counters.resends
        ),
        (1, 1, 1)
    );
    spi.done();
}

#[test]
fn a_board_error_status_is_reported_not_retried() {
    let mut expectations = first_contact();
    expectations.extend(write(request(2, 0x05, &[])));
    expectations.extend(read(response(2, 0x07, &[], 7)));
    let mut spi = Mock::new(&expectations);
    let mut frontend = Frontend::new(spi.clone(), NoopDelay);
    let error = frontend.start().expect_err("busy");
    assert!(matches!(
        error,
        Error::Board {
            command: "start",
            status: appliance::frontend::protocol::BoardStatus::Busy
        }
    ));
    spi.done();
}

#[test]
fn a_silent_board_times_out_after_exactly_the_documented_number_of_polls() {
    let timing = LinkTiming {
        max_attempts: 3,
        response_polls: 5,
        poll_interval_us: 100,
        corrupt_rereads: 2,
        fifo_burst_echoes: 64,
    };
    let silent = |seq: u8| {
        let mut expectations = Vec::new();
        for _ in 0..timing.max_attempts {
            expectations.extend(write(request(seq, 0x07, &[])));
            for _ in 0..timing.response_polls {
                expectations.extend(read(vec![0xFF; 17]));
            }
        }
        expectations
    };
    // A board that falls silent after the first contact.
    let mut expectations = first_contact();
    expectations.extend(silent(2));
    let mut spi = Mock::new(&expectations);
    let mut frontend = Frontend::new(spi.clone(), NoopDelay).with_link_timing(timing);
    let error = frontend.status().expect_err("silent board");
    assert!(
        matches!(
            error,
            Error::Timeout {
                command: "status",
                attempts: 3,
                polls: 15,
                budget_us: 1_500,
            }
        ),
        "{error}"
    );
    assert_eq!(frontend.counters().transactions, 2 + 18);
    spi.done();

    // A board silent from the start: the first contact fails, within the same bound, naming itself.
    let mut spi = Mock::new(&silent(1));
    let mut frontend = Frontend::new(spi.clone(), NoopDelay).with_link_timing(timing);
    let error = frontend.identify().expect_err("silent board");
    assert!(
        matches!(
            error,
            Error::Timeout {
                command: "first contact (status)",
                attempts: 3,
                polls: 15,
                budget_us: 1_500,
            }
        ),
        "{error}"
    );
    spi.done();
}

/// A 64-echo FIFO burst as the board answers it: `n`, then `n` (I, Q) pairs.
fn fifo_burst(echoes: u16) -> Vec<u8> {
    let mut payload = echoes.to_le_bytes().to_vec();
    for k in 0..i32::from(echoes) {
        payload.extend_from_slice(&(1000 - k).to_le_bytes());
        payload.extend_from_slice(&(-k).to_le_bytes());
    }
    payload
}

#[test]
fn the_first_contact_takes_a_replayed_answer_of_any_length_and_status_and_the_first_command_runs() {
    // The previous host's last request had sequence number 1, the new driver's first: the board
    // answers the first contact from its replay cache. Whatever that answer was, the driver's
    // first command proper (number 2) is executed and answered.
    let burst = fifo_burst(64);
    let replays: [(&str, u8, Vec<u8>); 3] = [
        ("a status block", 0x00, idle_status(1)),
        ("a 64-echo FIFO burst (523 bytes)", 0x00, burst),
        ("a refusal (Busy)", 0x07, vec![]),
    ];
    for (what, status, replayed) in replays {
        let whole = 7 + replayed.len();
        let mut expectations = write(request(1, 0x07, &[]));
        // Read at a status block's length first; an answer longer than that is read again whole.
        expectations.extend(read(response(1, status, &replayed, 17)));
        if whole > 17 {
            expectations.extend(read(response(1, status, &replayed, whole)));
        }
        expectations.extend(exchange(2, 0x01, &[], &identity_block(1, 0), 20));
        let mut spi = Mock::new(&expectations);
        let mut frontend = Frontend::new(spi.clone(), NoopDelay);
        let identity = frontend
            .connect()
            .unwrap_or_else(|e| panic!("after {what}: {e}"));
        assert_eq!(identity.serial, 0x1234_5678, "after {what}");
        let counters = frontend.counters();
        assert_eq!(
            (
                counters.corrupt_responses,
                counters.resends,
                counters.request_nacks
            ),
            (0, 0, 0),
            "after {what}"
        );
        spi.done();
    }
}

#[test]
fn the_first_contact_happens_once_per_driver() {
    let mut expectations = first_command(0x06, &[], &[], 0);
    expectations.extend(exchange(3, 0x09, &[], &[], 0));
    let mut spi = Mock::new(&expectations);
    let mut frontend = Frontend::new(spi.clone(), NoopDelay);
    frontend.halt().expect("halt");
    frontend.flush_fifo().expect("flush");
    spi.done();
}

#[test]
fn with_a_data_ready_line_the_status_is_read_only_once_the_line_is_high() {
    use embedded_hal_mock::eh1::digital::{Mock as PinMock, State, Transaction as PinTransaction};
    let mut data_ready = PinMock::new(&[
        PinTransaction::get(State::Low),
        PinTransaction::get(State::Low),
        PinTransaction::get(State::High),
    ]);
    let done = vec![2, 0, 4, 0, 1, 0, 2, 0, 0, 0]; // done, 4 echoes, 1 scan
    let expectations = first_command(0x07, &[], &done, 10);
    let mut spi = Mock::new(&expectations);
    let mut frontend = Frontend::new(spi.clone(), NoopDelay).with_data_ready(data_ready.clone());
    let mut polls = 0;
    let status = frontend
        .wait_for_sequence(10_000, |_| {
            polls += 1;
            Ok(())
        })
        .expect("done");
    assert_eq!((status.fifo_level, polls), (4, 2));
    spi.done();
    data_ready.done();
}

#[test]
fn a_hardware_reset_pulses_the_line_low_then_reconnects() {
    use embedded_hal_mock::eh1::digital::{Mock as PinMock, State, Transaction as PinTransaction};
    let mut reset = PinMock::new(&[
        PinTransaction::set(State::Low),
        PinTransaction::set(State::High),
    ]);
    let expectations = first_command(0x01, &[], &identity_block(1, 0), 20);
    let mut spi = Mock::new(&expectations);
    let mut frontend = Frontend::new(spi.clone(), NoopDelay).with_reset_line(reset.clone());
    frontend.hardware_reset().expect("reset and identify");
    spi.done();
    reset.done();
}
