//! The board twin's transport, in one process: the twin served on a thread behind a real socket,
//! the host's driver and procedures on `TwinSpi`. What crosses must be exactly what the
//! in-process board sees (same seed, same bytes, same answers), simulation truth must travel only
//! on the side channel, a lost link must be an error and then be made again, and taking over a
//! board left running by another host must halt it even when the host's first sequence number
//! collides with the board's replay cache.
//!
//! The same twin as a separate process, killed and restarted with real signals, is exercised by
//! the binary's tests (`tests/twin_faults.rs`).

use std::io;
use std::os::unix::net::UnixListener;
use std::time::Duration;

use appliance::frontend::protocol::{Command, MAX_PAYLOAD_LEN, Request, Response};
use appliance::frontend::{Frontend, PulseProgram, SequencerState};
use appliance::procedures::{self, CpmgSettings, StepOutcome, TuneSettings};
use appliance::sim_board::{SimBoard, SimBoardConfig, SimClock, VirtualTube};
use appliance::twin::{
    TwinAddress, TwinConfig, TwinLinkError, TwinLinkOptions, TwinServer, TwinSpi, twin_frontend,
    wire,
};
use embedded_hal::spi::SpiDevice;
use nmr_core::fit::{FitOptions, fit_mono};

fn spawn_twin(address: &TwinAddress, config: TwinConfig) -> TwinAddress {
    let server = TwinServer::bind(address, config).expect("the twin binds");
    let bound = server.local_address().expect("its address");
    server.spawn().expect("the twin serves");
    bound
}

fn unix_address(dir: &tempfile::TempDir, name: &str) -> TwinAddress {
    TwinAddress::Unix(dir.path().join(name))
}

/// Tune + CPMG + fit, as `ferrocount board cpmg` does.
fn tune_and_measure<SPI, D>(
    frontend: &mut Frontend<SPI, appliance::frontend::NoPin, appliance::frontend::NoPin, D>,
) -> (f64, nmr_core::EchoTrain, f64)
where
    SPI: SpiDevice,
    SPI::Error: std::fmt::Debug,
    D: embedded_hal::delay::DelayNs,
{
    procedures::identify(frontend).expect("identify");
    let tune = procedures::tune(frontend, &TuneSettings::default()).expect("tune");
    let measurement = procedures::measure_cpmg(frontend, &CpmgSettings::default()).expect("cpmg");
    let fit = fit_mono(&measurement.train, &FitOptions::default()).expect("fit");
    (tune.f0_hz, measurement.train, fit.t2_ms)
}

#[test]
fn a_cpmg_through_the_twin_is_bit_identical_to_the_in_process_board_over_unix_and_tcp() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = SimBoardConfig {
        seed: 42,
        ..SimBoardConfig::default()
    };
    let clock = SimClock::instant();
    let mut local = Frontend::new(SimBoard::new(config.clone(), clock.clone()), clock.delay());
    let expected = tune_and_measure(&mut local);

    for address in [
        unix_address(&dir, "twin.sock"),
        "tcp:127.0.0.1:0".parse().expect("address"),
    ] {
        let bound = spawn_twin(
            &address,
            TwinConfig {
                board: config.clone(),
                ..TwinConfig::default()
            },
        );
        let (mut frontend, simulation) = twin_frontend(&bound, TwinLinkOptions::default());
        let through_twin = tune_and_measure(&mut frontend);
        assert_eq!(through_twin, expected, "over {bound}");
        assert_eq!(
            frontend.counters(),
            local.counters(),
            "the same transactions and bytes over {bound}"
        );
        let truth = simulation.truth().expect("truth");
        assert_eq!(truth.transactions, local.counters().transactions);
        assert_eq!(truth.bytes_written, local.counters().bytes_written);
        assert_eq!(truth.bytes_read, local.counters().bytes_read);
        assert_eq!(truth.bus_connections, 1);
    }
}

#[test]
fn tubes_travel_on_the_side_channel_and_the_bus_carries_only_protocol_frames() {
    let dir = tempfile::tempdir().expect("temp dir");
    let bound = spawn_twin(&unix_address(&dir, "twin.sock"), TwinConfig::default());
    let instrument = appliance::twin::twin_instrument(&bound, TwinLinkOptions::default());
    let mut frontend = instrument.into_frontend();
    let simulation =
        appliance::twin::TwinSimulation::new(bound.clone(), TwinLinkOptions::default());
    procedures::identify(&mut frontend).expect("identify");
    procedures::tune(&mut frontend, &TuneSettings::default()).expect("tune");
    let mut t2_ms = Vec::new();
    for tube_t2_s in [0.2, 0.05] {
        simulation
            .insert_tube(VirtualTube::mono(tube_t2_s))
            .expect("tube in");
        assert_eq!(
            simulation.truth().expect("truth").tube,
            VirtualTube::mono(tube_t2_s)
        );
        let measurement =
            procedures::measure_cpmg(&mut frontend, &CpmgSettings::default()).expect("cpmg");
        t2_ms.push(
            fit_mono(&measurement.train, &FitOptions::default())
                .expect("fit")
                .t2_ms,
        );
    }
    // Independent truth: the tubes' own T2 (200 ms, 50 ms), within 3 %.
    assert!((t2_ms[0] / 200.0 - 1.0).abs() < 0.03, "{t2_ms:?}");
    assert!((t2_ms[1] / 50.0 - 1.0).abs() < 0.03, "{t2_ms:?}");
    let log = simulation.truth().expect("truth").bus_log;
    let protocol = [
        "identify",
        "read register",
        "write register",
        "write program",
        "start",
        "halt",
        "status",
        "read FIFO",
        "flush FIFO",
        "reset",
    ];
    assert!(!log.is_empty());
    assert!(
        log.iter()
            .all(|command| protocol.contains(&command.as_str())),
        "only protocol commands on the bus: {log:?}"
    );
}

#[test]
fn a_lost_link_is_an_error_and_the_next_transaction_connects_again() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("twin.sock");
    let address = TwinAddress::Unix(path.clone());
    let options = TwinLinkOptions {
        io_timeout: Duration::from_millis(500),
        ..TwinLinkOptions::default()
    };
    let mut spi = TwinSpi::new(address.clone(), options);

    // Nobody there yet.
    let error = spi.write(&[0xA5]).expect_err("no twin");
    assert!(matches!(error, TwinLinkError::Connect { .. }), "{error}");

    // A twin that accepts the hello and dies before answering the transaction.
    let listener = UnixListener::bind(&path).expect("bind");
    let dying = std::thread::spawn(move || -> io::Result<()> {
        let (mut stream, _) = listener.accept()?;
        let _hello = wire::read_frame(&mut stream)?;
        wire::write_frame(&mut stream, &[])?;
        let _transaction = wire::read_frame(&mut stream)?;
        Ok(())
    });
    let error = spi
        .write(&[0xA5])
        .expect_err("the twin died mid-transaction");
    assert!(matches!(error, TwinLinkError::Lost { .. }), "{error}");
    assert!(
        error.to_string().contains("closed the connection"),
        "{error}"
    );
    dying.join().expect("thread").expect("fake twin");

    // A twin that answers nothing: bounded by the link's time limit.
    std::fs::remove_file(&path).expect("stale socket removed");
    let listener = UnixListener::bind(&path).expect("bind");
    let silent = std::thread::spawn(move || -> io::Result<()> {
        let (mut stream, _) = listener.accept()?;
        let _hello = wire::read_frame(&mut stream)?;
        wire::write_frame(&mut stream, &[])?;
        let _transaction = wire::read_frame(&mut stream)?;
        std::thread::sleep(Duration::from_secs(2));
        Ok(())
    });
    let error = spi.write(&[0xA5]).expect_err("silent twin");
    assert!(error.to_string().contains("no answer within"), "{error}");
    silent.join().expect("thread").expect("silent twin");

    // A real twin at the same path: the same device connects again and works.
    spawn_twin(&address, TwinConfig::default());
    let mut frontend = Frontend::new(spi, SimClock::instant().delay());
    let identity = frontend.connect().expect("identified after reconnecting");
    assert_eq!(identity.serial, SimBoardConfig::default().serial);
    let (spi, ..) = frontend.destroy();
    assert_eq!(spi.connections(), 3, "hello accepted three times");
}

/// One request with sequence number `seq`, sent as raw frames (no driver, hence no first
/// contact), and the board's answer to it.
fn raw_request(spi: &mut TwinSpi, seq: u8, command: Command) -> Response {
    spi.write(&Request::new(seq, command, Vec::new()).encode())
        .expect("request sent");
    let mut buffer = vec![0u8; Response::frame_len(MAX_PAYLOAD_LEN)];
    for _ in 0..100 {
        spi.read(&mut buffer).expect("answer read");
        if let Ok(response) = Response::decode(&buffer)
            && response.seq == seq
        {
            return response;
        }
    }
    panic!("no answer to {} with sequence number {seq}", command.name());
}

#[test]
fn take_over_halts_a_board_left_running_even_when_the_first_sequence_number_is_replayed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let bound = spawn_twin(&unix_address(&dir, "twin.sock"), TwinConfig::default());

    // The previous host: it sets a long sequence up through its driver, then its last request
    // is START with sequence number 1 — a new host's first — sent as a raw frame, so the
    // collision does not depend on how the driver numbers its requests.
    let (mut previous, simulation) = twin_frontend(&bound, TwinLinkOptions::default());
    previous.connect().expect("identify");
    let program = PulseProgram::nutation_step(10_000, 20_000).expect("program");
    previous.load_program(&program).expect("program loaded");
    previous.set_repetition_time_us(1_000_000).expect("TR set");
    previous.set_scans(60).expect("scans set");
    drop(previous);
    let mut previous_bus = TwinSpi::new(bound.clone(), TwinLinkOptions::default());
    let started = raw_request(&mut previous_bus, 1, Command::Start);
    assert_eq!(started.status, 0, "START executed");
    drop(previous_bus);
    assert_eq!(
        simulation.truth().expect("truth").sequencer,
        SequencerState::Running
    );

    // The collision is real: a HALT numbered 1 without a first contact is answered from the
    // replay cache (START's answer) and does not halt.
    let mut naive = TwinSpi::new(bound.clone(), TwinLinkOptions::default());
    let answer = raw_request(&mut naive, 1, Command::Halt);
    assert_eq!(answer.status, 0, "answered OK, from the cache");
    assert_eq!(
        simulation.truth().expect("truth").sequencer,
        SequencerState::Running,
        "the replay cache answered the HALT without halting"
    );
    drop(naive);

    // The take-over procedure on a new host, into the same collision: the driver's first contact
    // takes the replayed answer, and the HALT after it is executed.
    let (mut new_host, _) = twin_frontend(&bound, TwinLinkOptions::default());
    procedures::take_over(&mut new_host).expect("take over");
    let truth = simulation.truth().expect("truth");
    assert_eq!(truth.sequencer, SequencerState::Idle);
    assert_eq!(truth.fifo_level, 0);
    assert_eq!(
        truth.bus_log,
        ["status", "halt", "flush FIFO"],
        "first contact, then halt and flush before anything else"
    );
}

#[test]
fn the_self_test_passes_through_the_twin_and_fails_the_right_step_on_a_faulty_board() {
    let dir = tempfile::tempdir().expect("temp dir");
    let bound = spawn_twin(&unix_address(&dir, "good.sock"), TwinConfig::default());
    let (mut frontend, _) = twin_frontend(&bound, TwinLinkOptions::default());
    let report = procedures::selftest(&mut frontend);
    assert!(report.passed, "{report:#?}");
    assert_eq!(
        report.steps.iter().map(|s| s.step).collect::<Vec<_>>(),
        procedures::STEPS
    );

    // A magnet far too warm: 40 K above its set point moves f0 by about 840 kHz.
    let mut hot = SimBoardConfig::default();
    hot.magnet.temp_c = 65.0;
    let bound = spawn_twin(
        &unix_address(&dir, "hot.sock"),
        TwinConfig {
            board: hot,
            ..TwinConfig::default()
        },
    );
    let (mut frontend, _) = twin_frontend(&bound, TwinLinkOptions::default());
    let report = procedures::selftest(&mut frontend);
    let outcome = |name: &str| {
        report
            .steps
            .iter()
            .find(|s| s.step == name)
            .map(|s| s.outcome)
    };
    assert!(!report.passed);
    assert_eq!(outcome("identity"), Some(StepOutcome::Pass));
    assert_eq!(outcome("registers"), Some(StepOutcome::Pass));
    assert_eq!(outcome("fid"), Some(StepOutcome::Fail), "{report:#?}");
    assert_eq!(outcome("temperatures"), Some(StepOutcome::Fail));
    assert_eq!(outcome("timing"), Some(StepOutcome::Pass));

    // Another firmware major: identity fails, nothing else runs.
    let bound = spawn_twin(
        &unix_address(&dir, "new-firmware.sock"),
        TwinConfig {
            board: SimBoardConfig {
                firmware: (procedures::SUPPORTED_FIRMWARE_MAJOR + 1, 0, 0),
                ..SimBoardConfig::default()
            },
            ..TwinConfig::default()
        },
    );
    let (mut frontend, _) = twin_frontend(&bound, TwinLinkOptions::default());
    let report = procedures::selftest(&mut frontend);
    assert_eq!(outcome_of(&report, "identity"), StepOutcome::Fail);
    assert!(
        report.steps[1..]
            .iter()
            .all(|s| s.outcome == StepOutcome::Skipped)
    );
    let (mut frontend, _) = twin_frontend(&bound, TwinLinkOptions::default());
    let refused = procedures::identify(&mut frontend).expect_err("refused");
    assert!(refused.to_string().contains("not supported"), "{refused}");
}

fn outcome_of(report: &procedures::SelftestReport, name: &str) -> StepOutcome {
    report
        .steps
        .iter()
        .find(|s| s.step == name)
        .map(|s| s.outcome)
        .expect("step present")
}
