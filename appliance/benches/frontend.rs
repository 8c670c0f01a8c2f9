//! Host CPU time per echo read from the FIFO.
//!
//! `host_only`: the driver against a responder that serves a pre-encoded burst (so only the
//! host's framing, CRC and decoding are timed). `with_sim_board`: the driver against the simulated
//! board (host + board emulation). Run: `cargo bench -p appliance --bench frontend`.

use std::convert::Infallible;
use std::hint::black_box;

use appliance::frontend::protocol::{Request, Response};
use appliance::frontend::{Frontend, PulseProgram};
use appliance::sim_board::{SimBoard, SimBoardConfig, SimClock};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use embedded_hal::spi::{ErrorType, Operation, SpiDevice};
use embedded_hal_mock::eh1::delay::NoopDelay;

/// Answers every request with a FIFO burst of `echoes` echoes under the request's sequence number.
struct BurstResponder {
    frames: Vec<Vec<u8>>,
    current: usize,
}

impl BurstResponder {
    fn new(echoes: u16) -> Self {
        let mut payload = echoes.to_le_bytes().to_vec();
        for k in 0..i32::from(echoes) {
            payload.extend_from_slice(&(1000 * k).to_le_bytes());
            payload.extend_from_slice(&(-7 * k).to_le_bytes());
        }
        let frames = (0..=255u8)
            .map(|seq| {
                Response {
                    seq,
                    status: 0,
                    payload: payload.clone(),
                }
                .encode()
            })
            .collect();
        Self { frames, current: 0 }
    }
}

impl ErrorType for BurstResponder {
    type Error = Infallible;
}

impl SpiDevice for BurstResponder {
    fn transaction(&mut self, operations: &mut [Operation<'_, u8>]) -> Result<(), Infallible> {
        for op in operations.iter_mut() {
            match op {
                Operation::Write(bytes) => {
                    if let Ok(request) = Request::decode(bytes) {
                        self.current = usize::from(request.seq);
                    }
                }
                Operation::Read(buf) => {
                    let frame = &self.frames[self.current];
                    let n = buf.len().min(frame.len());
                    buf[..n].copy_from_slice(&frame[..n]);
                }
                _ => {}
            }
        }
        Ok(())
    }
}

fn host_only(c: &mut Criterion) {
    let mut group = c.benchmark_group("read_echoes/host_only");
    for burst in [64u16, 1024] {
        group.throughput(Throughput::Elements(u64::from(burst)));
        let mut frontend = Frontend::new(BurstResponder::new(burst), NoopDelay);
        let mut echoes = Vec::with_capacity(usize::from(burst));
        group.bench_function(format!("burst_{burst}"), |b| {
            b.iter(|| {
                echoes.clear();
                black_box(frontend.read_fifo_burst(burst, &mut echoes).expect("burst"));
            })
        });
    }
    group.finish();
}

fn with_sim_board(c: &mut Criterion) {
    let mut group = c.benchmark_group("read_echoes/with_sim_board");
    let echoes = 1024u16;
    group.throughput(Throughput::Elements(u64::from(echoes)));
    group.bench_function("1024_echoes_bursts_of_64", |b| {
        b.iter_batched(
            || {
                // A board whose FIFO holds 1024 echoes from a noise program (1 scan).
                let clock = SimClock::instant();
                let mut frontend = Frontend::new(
                    SimBoard::new(SimBoardConfig::default(), clock.clone()),
                    clock.delay(),
                );
                frontend.connect().expect("connect");
                let program = PulseProgram::noise(echoes, 10_000, 10_000).expect("program");
                frontend.load_program(&program).expect("load");
                frontend.set_repetition_time_us(100_000).expect("tr");
                frontend.start().expect("start");
                frontend
                    .wait_for_sequence(100_000, |_| Ok(()))
                    .expect("done");
                frontend
            },
            |mut frontend| black_box(frontend.read_echoes(usize::from(echoes)).expect("read")),
            criterion::BatchSize::LargeInput,
        )
    });
    group.finish();
}

criterion_group!(benches, host_only, with_sim_board);
criterion_main!(benches);
