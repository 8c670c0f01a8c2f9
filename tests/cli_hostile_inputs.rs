//! The command line against a hostile corpus: devices, FIFOs, links to devices, huge and sparse
//! files, standard input from /dev/zero, malformed and binary text, denormal, huge and
//! non-finite numbers in files and arguments, degenerate calibrations, series that are wrong in
//! their design or point at devices, and terminal control characters.
//!
//! Every case runs the built binary with a time-out and is waited for with `wait4`, which gives
//! the child's own peak resident memory. The corpus passes when every case ends by itself (0
//! hangs), none panics (0 panics), none prints a raw escape character, each refusal names what was
//! wrong, and no case's peak memory exceeds [`MEMORY_LIMIT_MIB`], the limit README.md states for
//! the default `--max-file-mib 16`. The corpus is made in a temporary directory when the test
//! runs (the large files are sparse, so they cost no disk).
//!
//! Run with `--no-capture` to see each case's exit status, time and peak memory.

use std::ffi::{CString, OsString};
use std::fs::{self, File};
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use nmr_core::Acquisition;
use nmr_core::io::write_csv;
use nmr_core::simulate::CpmgSimulation;

/// The peak resident memory any command may reach on this corpus with the default file limit.
const MEMORY_LIMIT_MIB: u64 = 512;
/// A case still running after this has hung.
const CASE_TIMEOUT: Duration = Duration::from_secs(120);

/// What a case must end with.
enum Expect {
    /// A non-zero exit whose standard error (or, for `fit`, standard output) names this.
    Refused(&'static str),
    /// A clean exit.
    Success,
}

/// Where a case's standard input comes from.
enum Input {
    Null,
    File(PathBuf),
}

struct Case {
    name: String,
    args: Vec<OsString>,
    stdin: Input,
    expect: Expect,
}

struct Outcome {
    code: Option<i32>,
    signal: Option<i32>,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    peak_kib: u64,
    elapsed: Duration,
    hung: bool,
}

fn case(name: &str, args: &[&dyn AsRef<std::ffi::OsStr>], expect: Expect) -> Case {
    Case {
        name: name.to_owned(),
        args: args.iter().map(|a| a.as_ref().to_owned()).collect(),
        stdin: Input::Null,
        expect,
    }
}

/// Runs one case, waiting with `wait4` for its exit status and peak memory; kills it at the
/// time-out.
fn run(case: &Case) -> Outcome {
    let stdin = match &case.stdin {
        Input::Null => Stdio::null(),
        Input::File(path) => Stdio::from(File::open(path).expect("the stdin source opens")),
    };
    let started = Instant::now();
    // Reaped below with wait4 (for its peak memory), not with `Child::wait`.
    #[allow(clippy::zombie_processes)]
    let mut child = Command::new(env!("CARGO_BIN_EXE_ferrocount"))
        .args(&case.args)
        .env_remove("RUST_BACKTRACE")
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let mut out = child.stdout.take().expect("piped");
    let mut err = child.stderr.take().expect("piped");
    // Drain both pipes while waiting, so a chatty child cannot block on a full pipe.
    let out_reader = thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = out.read_to_end(&mut bytes);
        bytes
    });
    let err_reader = thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = err.read_to_end(&mut bytes);
        bytes
    });
    let pid = i32::try_from(child.id()).expect("a pid fits");
    let mut status = 0;
    // SAFETY: `rusage` is plain old data that wait4 fills in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let mut hung = false;
    loop {
        // SAFETY: waits for our own child; `status` and `usage` are valid for writing.
        let done = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        if done == pid {
            break;
        }
        assert!(done == 0, "wait4 failed for {}", case.name);
        if started.elapsed() > CASE_TIMEOUT {
            hung = true;
            // SAFETY: signals our own child, which has not been reaped.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            // SAFETY: as above, now blocking until it is gone.
            unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
            break;
        }
        thread::sleep(Duration::from_millis(5));
    }
    let elapsed = started.elapsed();
    Outcome {
        code: libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status)),
        signal: libc::WIFSIGNALED(status).then(|| libc::WTERMSIG(status)),
        stdout: out_reader.join().expect("stdout reader"),
        stderr: err_reader.join().expect("stderr reader"),
        peak_kib: u64::try_from(usage.ru_maxrss).unwrap_or(0),
        elapsed,
        hung,
    }
}

fn mkfifo(path: &Path) {
    let name = CString::new(path.as_os_str().as_bytes()).expect("no NUL in a temp path");
    // SAFETY: a valid NUL-terminated path.
    let made = unsafe { libc::mkfifo(name.as_ptr(), 0o600) };
    assert_eq!(made, 0, "mkfifo {}", path.display());
}

/// A sparse file of `len` bytes starting with `head`.
fn sparse(path: &Path, head: &str, len: u64) {
    let mut file = File::create(path).expect("create");
    file.write_all(head.as_bytes()).expect("head");
    file.set_len(len).expect("sparse length");
}

/// A simulated reading at TE 4 ms with true R2 `r2_per_s`.
fn reading(path: &Path, r2_per_s: f64, seed: u64) {
    let mut simulation = CpmgSimulation::mono(1.0, 1.0 / r2_per_s, 0.004, 500);
    simulation.noise_sd = 1.0 / 300.0;
    let train = simulation.simulate(seed).with_acquisition(Acquisition {
        te_s: Some(0.004),
        temp_c: Some(25.0),
        ..Acquisition::default()
    });
    fs::write(path, write_csv(&train)).expect("write train");
}

/// A real echo train of about `bytes` bytes (a decay at TE 0.01 ms), to read at the limit.
fn long_train(path: &Path, bytes: usize) {
    let mut text = String::with_capacity(bytes + 64);
    text.push_str("# te_ms=0.01\nt_ms,magnitude\n");
    let mut i = 1u64;
    while text.len() + 40 < bytes {
        let t_ms = i as f64 * 0.01;
        let noise = ((i * 2_654_435_761) % 1000) as f64 / 500.0 - 1.0;
        text.push_str(&format!(
            "{t_ms:.2},{:.6}\n",
            1000.0 * (-t_ms / 80.0).exp() + 5.0 + noise
        ));
        i += 1;
    }
    fs::write(path, text).expect("write long train");
}

/// A Magritek Prospa `CPMGFast` export (TAB-separated time s, real, imaginary) of `echoes` echoes
/// at TE 4 ms, a decay with T2 100 ms and a little deterministic noise.
fn prospa(path: &Path, echoes: u64) {
    let mut text = String::new();
    for i in 1..=echoes {
        let t_s = i as f64 * 0.004;
        let noise = |k: u64| ((i * k) % 1000) as f64 / 500.0 - 1.0;
        text.push_str(&format!(
            "{t_s:.6}\t{:.4}\t{:.4}\n",
            1000.0 * (-t_s / 0.1).exp() + noise(2_654_435_761),
            noise(40_503)
        ));
    }
    fs::write(path, text).expect("write Prospa export");
}

/// A Prospa `acqu.par` for [`prospa`]'s exports: TE 4000 µs, `echoes` echoes.
fn acqu_par(echoes: u64) -> String {
    format!("echoTime = 4000\nnrEchoes = {echoes}\nnrScans = 4\nb1Freq = 13.24\n")
}

const CALIBRATION: &str = r#"lot = "LOT-A"
te_ms = 4.0
slope_per_s_per_cell = 0.004
slope_se = 0.00004
intercept_per_s = 0.05
intercept_se = 0.0012
slope_intercept_cov = -2e-8
fit_df = 28
lob_cells = 1.0
lod_cells = 2.2
loq_cells = 5.0
created = "2026-11-24T04:00:00Z"
"#;

#[test]
fn the_hostile_corpus_gives_0_panics_0_hangs_and_bounded_memory() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let d = dir.path();
    let p = |name: &str| d.join(name);

    // Devices, FIFOs, links.
    mkfifo(&p("fifo.csv"));
    std::os::unix::fs::symlink("/dev/zero", p("zero-link.csv")).expect("link");
    fs::create_dir(p("tree")).expect("dir");
    std::os::unix::fs::symlink("/dev/zero", p("tree/zero.csv")).expect("link");
    mkfifo(&p("tree/pipe.csv"));
    // Good readings: control and quad tubes at TE 4 ms.
    let mut control = Vec::new();
    let mut quad = Vec::new();
    for r in 0..3u64 {
        let (c, q) = (p(&format!("c{r}.csv")), p(&format!("q{r}.csv")));
        reading(&c, 3.0, r);
        reading(&q, 3.2, 10 + r);
        control.push(c);
        quad.push(q);
    }
    fs::copy(&control[0], p("tree/good.csv")).expect("copy");
    // Huge, sparse, at and over the limit, binary, long lines.
    sparse(
        &p("huge.csv"),
        "# te_ms=4\nt_ms,magnitude\n",
        200 * 1024 * 1024,
    );
    sparse(&p("over.csv"), "t_ms,magnitude\n", 16 * 1024 * 1024 + 1);
    sparse(
        &p("huge-te2.csv"),
        "# te_ms=2\nt_ms,magnitude\n",
        200 * 1024 * 1024,
    );
    long_train(&p("at-limit.csv"), 16 * 1024 * 1024 - 4096);
    let mut binary = Vec::with_capacity(1 << 20);
    let mut x = 0x9E37_79B9_u32;
    for _ in 0..(1 << 20) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        binary.push(x.to_le_bytes()[0]);
    }
    fs::write(p("binary.csv"), &binary).expect("binary");
    fs::write(p("one-line.csv"), "1,".repeat(4 * 1024 * 1024)).expect("one long line");
    // A binary Tecmag file (by its magic) far over the limit, sparse.
    sparse(&p("huge.tnt"), "TNT1.005", 200 * 1024 * 1024);
    // Instrument exports whose parameter file (read beside the data) is good, of another
    // acquisition, a FIFO, a link to a device, or huge.
    for dir in [
        "prospa-good",
        "prospa-other",
        "prospa-fifo",
        "prospa-zero",
        "prospa-huge",
    ] {
        fs::create_dir(p(dir)).expect("dir");
        prospa(&p(&format!("{dir}/data.dat")), 200);
    }
    fs::write(p("prospa-good/acqu.par"), acqu_par(200)).expect("acqu.par");
    fs::write(p("prospa-other/acqu.par"), acqu_par(999)).expect("acqu.par");
    mkfifo(&p("prospa-fifo/acqu.par"));
    std::os::unix::fs::symlink("/dev/zero", p("prospa-zero/data.par")).expect("link");
    sparse(
        &p("prospa-huge/acqu.par"),
        "echoTime = 4000\n",
        200 * 1024 * 1024,
    );
    // A CSV reading whose `<name>.par` beside it is a FIFO: read like any input, so refused.
    fs::create_dir(p("csv-fifo-par")).expect("dir");
    reading(&p("csv-fifo-par/r.csv"), 3.0, 99);
    mkfifo(&p("csv-fifo-par/r.par"));
    // Numbers.
    for (name, text) in [
        (
            "denormal.csv",
            "# te_ms=4\nt_ms,magnitude\n4,5e-324\n8,4.9e-324\n12,1e-320\n16,0\n",
        ),
        (
            "huge-values.csv",
            "# te_ms=4\nt_ms,magnitude\n4,1e308\n8,1.7e308\n12,1e307\n16,1e306\n",
        ),
        (
            "huge-times.csv",
            "t_ms,magnitude\n1e307,1\n1e308,0.5\n1.7e308,0.2\n",
        ),
        ("nan.csv", "# te_ms=4\nt_ms,magnitude\n4,NaN\n8,1\n12,0.5\n"),
        (
            "inf-te.csv",
            "# te_ms=inf\nt_ms,magnitude\n4,1\n8,0.5\n12,0.2\n",
        ),
        (
            "tiny-te.csv",
            "# te_ms=1e-320\nt_ms,magnitude\n4,1\n8,0.5\n12,0.2\n",
        ),
        ("empty.csv", ""),
        ("header-only.csv", "# te_ms=4\nt_ms,re,im\n"),
        ("backwards.csv", "t_ms,magnitude\n12,1\n8,0.5\n4,0.2\n"),
        ("control-chars.csv", "\u{1b}[2J\u{1b}]0;pwned\u{7}\nrest\n"),
    ] {
        fs::write(p(name), text).expect("write");
    }
    // Calibrations.
    fs::write(p("cal.toml"), CALIBRATION).expect("calibration");
    for (name, from, to) in [
        (
            "cal-slope.toml",
            "slope_per_s_per_cell = 0.004",
            "slope_per_s_per_cell = 5e-324",
        ),
        ("cal-se.toml", "slope_se = 0.00004", "slope_se = 1e308"),
        (
            "cal-intercept.toml",
            "intercept_per_s = 0.05",
            "intercept_per_s = 1e308",
        ),
        (
            "cal-nan.toml",
            "intercept_se = 0.0012",
            "intercept_se = nan",
        ),
        (
            "cal-created.toml",
            "2026-11-24T04:00:00Z",
            "9999-99-99T00:00:00Z",
        ),
    ] {
        fs::write(p(name), CALIBRATION.replace(from, to)).expect("calibration");
    }
    sparse(&p("cal-huge.toml"), "lot = \"X\"\n", 200 * 1024 * 1024);
    // Series.
    let series_of = |rows: &[(String, &str)]| {
        let mut text = String::from("# lot=LOT-S\nsample,cells,tube,file\n");
        for (level, cells) in [0, 5, 10, 20, 50].iter().enumerate() {
            for sample in 0..2 {
                for tube in ["control", "quad"] {
                    for (r, good) in control.iter().take(2).enumerate() {
                        let file = rows
                            .iter()
                            .find(|(key, _)| *key == format!("{level}{sample}{tube}{r}"))
                            .map_or_else(|| good.display().to_string(), |(_, f)| (*f).to_owned());
                        text.push_str(&format!("S{level}{sample},{cells},{tube},{file}\n"));
                    }
                }
            }
        }
        text
    };
    fs::write(
        p("series-zero.csv"),
        series_of(&[("30quad1".into(), "/dev/zero")]),
    )
    .expect("series");
    fs::write(
        p("series-fifo.csv"),
        series_of(&[("00control0".into(), "fifo.csv")]),
    )
    .expect("series");
    fs::write(
        p("series-huge.csv"),
        series_of(&[("41quad0".into(), "huge.csv")]),
    )
    .expect("series");
    fs::write(
        p("series-te2.csv"),
        series_of(&[("41quad0".into(), "huge-te2.csv")]),
    )
    .expect("series");
    // 10,000 rows whose control tubes have no readings: a design error, found before any fit.
    let mut rows = String::from("# lot=LOT-S\nsample,cells,tube,file\n");
    for i in 0..10_000 {
        rows.push_str(&format!(
            "S{},{},quad,{}\n",
            i / 2,
            (i / 2) % 7,
            control[0].display()
        ));
    }
    fs::write(p("series-10k.csv"), rows).expect("series");

    let c: Vec<&dyn AsRef<std::ffi::OsStr>> = control.iter().map(|x| x as _).collect();
    let q: Vec<&dyn AsRef<std::ffi::OsStr>> = quad.iter().map(|x| x as _).collect();
    let count = |name: &str, calibration: &Path, extra: &[&dyn AsRef<std::ffi::OsStr>], expect| {
        let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![&"count", &"--control"];
        args.extend(c.iter().copied());
        args.push(&"--labeled");
        args.extend(q.iter().copied());
        args.push(&"--calibration");
        let calibration = calibration.to_path_buf();
        let mut owned = case(name, &args, expect);
        owned.args.push(calibration.into_os_string());
        owned
            .args
            .extend(extra.iter().map(|a| a.as_ref().to_owned()));
        owned
    };
    let calibrate = |name: &str, series: &str, extra: &[&str], expect| {
        let mut args: Vec<OsString> = vec!["calibrate".into(), "--series".into(), p(series).into()];
        args.extend(["--out".into(), p("out.toml").into()]);
        args.extend(extra.iter().map(OsString::from));
        Case {
            name: name.to_owned(),
            args,
            stdin: Input::Null,
            expect,
        }
    };
    let fifo = p("fifo.csv");
    let mut cases = vec![
        case(
            "fit /dev/zero",
            &[&"fit", &"/dev/zero"],
            Expect::Refused("character device"),
        ),
        case(
            "fit /dev/urandom",
            &[&"fit", &"/dev/urandom"],
            Expect::Refused("character device"),
        ),
        case("fit FIFO", &[&"fit", &fifo], Expect::Refused("FIFO")),
        case(
            "fit link to /dev/zero",
            &[&"fit", &p("zero-link.csv")],
            Expect::Refused("link target is a character device"),
        ),
        case(
            "fit -r tree with a FIFO and a link",
            &[&"fit", &"-r", &p("tree")],
            Expect::Refused("FIFO"),
        ),
        case(
            "fit 200 MB sparse",
            &[&"fit", &p("huge.csv")],
            Expect::Refused("exceeds the limit of 16 MiB"),
        ),
        case(
            "fit 16 MiB + 1 byte",
            &[&"fit", &p("over.csv")],
            Expect::Refused("exceeds the limit"),
        ),
        case(
            "fit mono at the limit",
            &[&"fit", &p("at-limit.csv")],
            Expect::Success,
        ),
        case(
            "fit bi at the limit",
            &[&"fit", &"--model", &"bi", &p("at-limit.csv")],
            Expect::Success,
        ),
        case(
            "fit spectrum at the limit",
            &[&"fit", &"--model", &"spectrum", &p("at-limit.csv")],
            Expect::Success,
        ),
        case(
            "fit binary",
            &[&"fit", &p("binary.csv")],
            Expect::Refused("not UTF-8 text"),
        ),
        case(
            "fit one 8 MB line",
            &[&"fit", &p("one-line.csv")],
            Expect::Refused("error"),
        ),
        case(
            "fit 200 MB sparse .tnt",
            &[&"fit", &p("huge.tnt")],
            Expect::Refused("exceeds the limit of 16 MiB"),
        ),
        case(
            "fit Prospa with its acqu.par",
            &[&"fit", &p("prospa-good/data.dat")],
            Expect::Success,
        ),
        case(
            "fit Prospa, acqu.par of another run",
            &[&"fit", &p("prospa-other/data.dat")],
            Expect::Refused("nrEchoes = 999"),
        ),
        case(
            "fit Prospa, acqu.par a FIFO",
            &[&"fit", &p("prospa-fifo/data.dat")],
            Expect::Refused("FIFO"),
        ),
        case(
            "fit -r Prospa, acqu.par a FIFO",
            &[&"fit", &"-r", &p("prospa-fifo")],
            Expect::Refused("FIFO"),
        ),
        case(
            "fit Prospa, data.par a link to /dev/zero",
            &[&"fit", &p("prospa-zero/data.dat")],
            Expect::Refused("link target is a character device"),
        ),
        case(
            "fit Prospa, 200 MB acqu.par",
            &[&"fit", &p("prospa-huge/data.dat")],
            Expect::Refused("exceeds the limit of 16 MiB"),
        ),
        case(
            "fit CSV beside a FIFO r.par",
            &[&"fit", &p("csv-fifo-par/r.csv")],
            Expect::Refused("FIFO"),
        ),
        case(
            "fit --max-file-mib 0",
            &[&"fit", &"--max-file-mib", &"0", &p("c0.csv")],
            Expect::Refused("max-file-mib"),
        ),
        case(
            "fit control characters",
            &[&"fit", &p("control-chars.csv")],
            Expect::Refused("\\u{1b}"),
        ),
    ];
    for name in [
        "denormal.csv",
        "huge-values.csv",
        "huge-times.csv",
        "nan.csv",
        "inf-te.csv",
        "tiny-te.csv",
        "empty.csv",
        "header-only.csv",
        "backwards.csv",
    ] {
        cases.push(case(
            &format!("fit {name}"),
            &[&"fit", &"--json", &p(name)],
            Expect::Refused("error"),
        ));
    }
    cases.push(Case {
        stdin: Input::File("/dev/zero".into()),
        ..case(
            "fit - < /dev/zero",
            &[&"fit", &"-"],
            Expect::Refused("standard input: more than 16777216 bytes"),
        )
    });
    cases.push(Case {
        stdin: Input::File(p("at-limit.csv")),
        ..case("fit - < at the limit", &[&"fit", &"-"], Expect::Success)
    });
    cases.extend([
        count(
            "count good",
            &p("cal.toml"),
            &[&"--blood-ml", &"7.5"],
            Expect::Success,
        ),
        count(
            "count --blood-ml 1e-320",
            &p("cal.toml"),
            &[&"--blood-ml", &"1e-320"],
            Expect::Refused("blood_ml"),
        ),
        count(
            "count --blood-ml 5e-324",
            &p("cal.toml"),
            &[&"--blood-ml", &"5e-324"],
            Expect::Refused("blood_ml"),
        ),
        count(
            "count --blood-ml NaN",
            &p("cal.toml"),
            &[&"--blood-ml", &"NaN"],
            Expect::Refused("not a finite number"),
        ),
        count(
            "count --blood-ml inf",
            &p("cal.toml"),
            &[&"--blood-ml", &"inf"],
            Expect::Refused("not a finite number"),
        ),
        count(
            "count --blood-ml 1e308",
            &p("cal.toml"),
            &[&"--blood-ml", &"1e308"],
            Expect::Refused("blood_ml"),
        ),
        count(
            "count slope 5e-324",
            &p("cal-slope.toml"),
            &[&"--blood-ml", &"7.5"],
            Expect::Refused("slope_per_s_per_cell"),
        ),
        count(
            "count slope_se 1e308",
            &p("cal-se.toml"),
            &[&"--blood-ml", &"7.5"],
            Expect::Refused("slope_se"),
        ),
        count(
            "count intercept 1e308",
            &p("cal-intercept.toml"),
            &[&"--blood-ml", &"7.5"],
            Expect::Refused("intercept_per_s"),
        ),
        count(
            "count intercept_se nan",
            &p("cal-nan.toml"),
            &[&"--blood-ml", &"7.5"],
            Expect::Refused("intercept_se"),
        ),
        count(
            "count created 9999-99-99",
            &p("cal-created.toml"),
            &[&"--blood-ml", &"7.5"],
            Expect::Refused("created"),
        ),
        count(
            "count --calibration 200 MB",
            &p("cal-huge.toml"),
            &[&"--blood-ml", &"7.5"],
            Expect::Refused("exceeds the limit"),
        ),
        count(
            "count --calibration /dev/zero",
            Path::new("/dev/zero"),
            &[&"--blood-ml", &"7.5"],
            Expect::Refused("character device"),
        ),
        count(
            "count --calibration FIFO",
            &fifo,
            &[&"--blood-ml", &"7.5"],
            Expect::Refused("FIFO"),
        ),
        count(
            "count --control /dev/zero",
            &p("cal.toml"),
            &[&"--blood-ml", &"7.5", &"--control", &"/dev/zero"],
            Expect::Refused("character device"),
        ),
        count(
            "count --marker epcam=FIFO",
            &p("cal.toml"),
            &[
                &"--blood-ml",
                &"7.5",
                &"--marker",
                &format!("epcam={}", fifo.display()),
            ],
            Expect::Refused("FIFO"),
        ),
        count(
            "count --cd45 200 MB",
            &p("cal.toml"),
            &[
                &"--blood-ml",
                &"7.5",
                &"--cd45",
                &p("huge.csv"),
                &p("huge.csv"),
            ],
            Expect::Refused("exceeds the limit"),
        ),
        count(
            "count --indications /dev/zero",
            &p("cal.toml"),
            &[&"--blood-ml", &"7.5", &"--indications", &"/dev/zero"],
            Expect::Refused("character device"),
        ),
        count(
            "count --lot with control characters",
            &p("cal.toml"),
            &[&"--blood-ml", &"7.5", &"--lot", &"\u{1b}[31mRED"],
            Expect::Refused("\\u{1b}"),
        ),
        calibrate(
            "calibrate row at /dev/zero",
            "series-zero.csv",
            &[],
            Expect::Refused("character device"),
        ),
        calibrate(
            "calibrate row at a FIFO",
            "series-fifo.csv",
            &[],
            Expect::Refused("FIFO"),
        ),
        calibrate(
            "calibrate row at 200 MB",
            "series-huge.csv",
            &[],
            Expect::Refused("exceeds the limit"),
        ),
        calibrate(
            "calibrate 200 MB at TE 2 ms, limit raised",
            "series-te2.csv",
            &["--te-ms", "4", "--max-file-mib", "256"],
            Expect::Refused("declares an echo time of 2 ms"),
        ),
        calibrate(
            "calibrate 10,000 rows, no control readings",
            "series-10k.csv",
            &[],
            Expect::Refused("control tube has 0 reading(s)"),
        ),
        calibrate(
            "calibrate --te-ms NaN",
            "series-zero.csv",
            &["--te-ms", "NaN"],
            Expect::Refused("not a finite number"),
        ),
        calibrate(
            "calibrate --cv-goal-pct inf",
            "series-zero.csv",
            &["--cv-goal-pct", "inf"],
            Expect::Refused("not a finite number"),
        ),
        calibrate(
            "calibrate --te-ms 1e999",
            "series-zero.csv",
            &["--te-ms", "1e999"],
            Expect::Refused("not a finite number"),
        ),
        calibrate(
            "calibrate --lot with control characters",
            "series-zero.csv",
            &["--lot", "LOT\u{1b}[2J\u{7}"],
            Expect::Refused("\\u{1b}"),
        ),
        calibrate(
            "calibrate series = /dev/zero",
            "/dev/zero",
            &[],
            Expect::Refused("character device"),
        ),
        calibrate(
            "calibrate series = FIFO",
            "fifo.csv",
            &[],
            Expect::Refused("FIFO"),
        ),
    ]);
    let mut out_fifo = calibrate(
        "calibrate --out FIFO",
        "series-zero.csv",
        &[],
        Expect::Refused("FIFO"),
    );
    out_fifo.args[4] = fifo.clone().into_os_string();
    cases.push(out_fifo);

    let mut failures = Vec::new();
    let mut peaks: std::collections::BTreeMap<String, (u64, String)> = Default::default();
    println!("{:<48} {:>5} {:>9} {:>9}", "case", "exit", "ms", "peak MiB");
    for case in &cases {
        let outcome = run(case);
        let peak_mib = outcome.peak_kib as f64 / 1024.0;
        println!(
            "{:<48} {:>5} {:>9} {:>9.1}",
            case.name,
            outcome.code.map_or_else(
                || format!("sig{}", outcome.signal.unwrap_or(0)),
                |c| c.to_string()
            ),
            outcome.elapsed.as_millis(),
            peak_mib
        );
        let command = case.name.split(' ').next().unwrap_or("").to_owned();
        let entry = peaks.entry(command).or_default();
        if outcome.peak_kib > entry.0 {
            *entry = (outcome.peak_kib, case.name.clone());
        }
        let stdout = String::from_utf8_lossy(&outcome.stdout);
        let stderr = String::from_utf8_lossy(&outcome.stderr);
        let mut fail =
            |why: String| failures.push(format!("{}: {why}\n{stdout}\n{stderr}", case.name));
        if outcome.hung {
            fail(format!("hung (killed after {CASE_TIMEOUT:?})"));
            continue;
        }
        if outcome.signal.is_some() || outcome.code == Some(101) || stderr.contains("panicked") {
            fail(format!(
                "panicked or was killed ({:?}, {:?})",
                outcome.code, outcome.signal
            ));
        }
        if outcome.peak_kib > MEMORY_LIMIT_MIB * 1024 {
            fail(format!(
                "peak memory {peak_mib:.0} MiB over {MEMORY_LIMIT_MIB} MiB"
            ));
        }
        if outcome.stdout.contains(&0x1b) || outcome.stderr.contains(&0x1b) {
            fail("printed a raw escape character".to_owned());
        }
        match &case.expect {
            Expect::Success if outcome.code != Some(0) => fail("did not succeed".to_owned()),
            Expect::Refused(_) if outcome.code == Some(0) => fail("was not refused".to_owned()),
            Expect::Refused(needle) if !stderr.contains(needle) && !stdout.contains(needle) => {
                fail(format!("the refusal does not name `{needle}`"))
            }
            _ => {}
        }
    }
    for (command, (kib, case)) in &peaks {
        println!(
            "peak memory of `{command}`: {:.1} MiB ({case})",
            *kib as f64 / 1024.0
        );
    }
    assert!(
        out_fifo_untouched(&fifo),
        "the FIFO given as --out is still a FIFO"
    );
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n---\n")
    );
}

fn out_fifo_untouched(fifo: &Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    fs::symlink_metadata(fifo).is_ok_and(|m| m.file_type().is_fifo())
}
