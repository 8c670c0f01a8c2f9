//! Magritek Spinsolve `T1IRT2` (inversion-recovery CPMG) exports: `T1IRT2.dat` holds one line per
//! inversion delay, each a comma-separated run of `re, im` pairs (one pair per echo), and the
//! `acqu.par` beside it gives the echo time (`echoTime`, µs), the echoes per train (`nrEchoes`) and
//! the delays (`minTau` to `maxTau` ms in `tauSteps` steps, logarithmic when `logspace = "yes"`).
//! Every line is a train of its own, complex (the receiver's channels), labelled with its delay;
//! echo k (1-based) is at k·TE. Without its `acqu.par` the file cannot be read: it holds no times.

use super::parameters::Parameters;
use super::{ImportedTrain, ParseError, number};
use crate::EchoTrain;

/// A line of comma-separated numbers, an even count of at least four.
pub(super) fn recognises(first_line: &str) -> bool {
    let fields: Vec<&str> = first_line.split(',').collect();
    fields.len() >= 4
        && fields.len().is_multiple_of(2)
        && fields.iter().all(|f| f.trim().parse::<f64>().is_ok())
}

pub(super) fn parse(
    text: &str,
    parameters: Option<&str>,
) -> Result<Vec<ImportedTrain>, ParseError> {
    let Some(parameters) = parameters else {
        return Err(ParseError::Parameters {
            message: "a Spinsolve data file holds no echo times: its acqu.par must be beside it"
                .into(),
        });
    };
    let parameters = Parameters::parse(parameters);
    match parameters.text("experiment") {
        Some("T1IRT2") => {}
        other => {
            return Err(ParseError::Parameters {
                message: format!(
                    "acqu.par: experiment `{}` is not a Spinsolve T1IRT2 (inversion-recovery CPMG)",
                    other.unwrap_or("(none)")
                ),
            });
        }
    }
    let te_s = parameters.required("echoTime", "the echo times")? / 1e6;
    let echoes = parameters.required("nrEchoes", "the echoes per train")?;
    let steps = parameters.required("tauSteps", "the inversion delays")?;
    let tau_min_ms = parameters.required("minTau", "the inversion delays")?;
    let tau_max_ms = parameters.required("maxTau", "the inversion delays")?;
    let valid = te_s > 0.0
        && echoes >= 1.0
        && echoes.fract() == 0.0
        && steps >= 1.0
        && steps.fract() == 0.0
        && tau_min_ms > 0.0
        && tau_max_ms >= tau_min_ms;
    if !valid {
        return Err(ParseError::Parameters {
            message: format!(
                "acqu.par: echoTime {} µs, nrEchoes {echoes}, tauSteps {steps}, minTau {tau_min_ms} ms, maxTau {tau_max_ms} ms do not describe trains",
                te_s * 1e6
            ),
        });
    }
    let (echoes, steps) = (echoes as usize, steps as usize);
    let logspace = parameters.text("logspace") == Some("yes");
    let delay_ms = |k: usize| {
        if steps == 1 {
            return tau_min_ms;
        }
        let f = k as f64 / (steps - 1) as f64;
        if logspace {
            (tau_min_ms.ln() + f * (tau_max_ms / tau_min_ms).ln()).exp()
        } else {
            tau_min_ms + f * (tau_max_ms - tau_min_ms)
        }
    };
    let acquisition = parameters.acquisition()?;
    let times_s: Vec<f64> = (1..=echoes).map(|k| k as f64 * te_s).collect();
    let mut trains = Vec::with_capacity(steps);
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        if raw.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = raw.trim().split(',').collect();
        if fields.len() != 2 * echoes {
            return Err(ParseError::Row {
                line,
                message: format!(
                    "expected {} values ({echoes} re, im pairs, acqu.par nrEchoes), found {}",
                    2 * echoes,
                    fields.len()
                ),
            });
        }
        let mut re = Vec::with_capacity(echoes);
        let mut im = Vec::with_capacity(echoes);
        for pair in fields.chunks_exact(2) {
            re.push(number(pair[0], line, "re")?);
            im.push(number(pair[1], line, "im")?);
        }
        let k = trains.len();
        if k >= steps {
            return Err(ParseError::Row {
                line,
                message: format!(
                    "more lines than the {steps} inversion delays of acqu.par (tauSteps)"
                ),
            });
        }
        let train = EchoTrain::complex(times_s.clone(), re, im)
            .map_err(|source| ParseError::Train { line, source })?
            .with_acquisition(acquisition.clone());
        trains.push(ImportedTrain {
            train,
            label: Some(format!("inversion delay {:.4} ms", delay_ms(k))),
            signal_reason: "Spinsolve exports the receiver's real and imaginary channels".into(),
        });
    }
    if trains.len() != steps {
        return Err(ParseError::Parameters {
            message: format!(
                "acqu.par has tauSteps = {steps} but the data hold {} trains",
                trains.len()
            ),
        });
    }
    Ok(trains)
}

#[cfg(test)]
mod tests {
    use super::super::read_echo_trains;

    const PAR: &str = "echoTime = 100\nexperiment = \"T1IRT2\"\nlogspace = \"yes\"\nmaxTau = 3000\nminTau = 1\nnrEchoes = 3\nnrScans = 128\ntauSteps = 2\nb1Freq1H = 44.0816167\n";

    #[test]
    fn every_line_is_a_train_labelled_with_its_delay() {
        let data = "-3,1,-2,0.5,-1,0.2\n3,1,2,0.5,1,0.2\n";
        let trains = read_echo_trains(data.as_bytes(), Some(PAR)).unwrap();
        assert_eq!(trains.len(), 2);
        assert_eq!(
            trains[0].label.as_deref(),
            Some("inversion delay 1.0000 ms")
        );
        assert_eq!(
            trains[1].label.as_deref(),
            Some("inversion delay 3000.0000 ms")
        );
        let t = trains[1].train.times_s();
        assert!((t[2] - 3e-4).abs() < 1e-15);
        assert_eq!(trains[1].train.acquisition().scans, Some(128));
    }

    #[test]
    fn without_or_with_a_wrong_acqu_par_it_is_refused() {
        let data = b"3,1,2,0.5,1,0.2\n";
        let e = read_echo_trains(data, None).unwrap_err();
        assert!(e.to_string().contains("acqu.par"), "{e}");
        let e = read_echo_trains(data, Some(&PAR.replace("T1IRT2", "T2"))).unwrap_err();
        assert!(e.to_string().contains("experiment"), "{e}");
        let e = read_echo_trains(b"3,1,2,0.5\n3,1,2,0.5\n", Some(PAR)).unwrap_err();
        assert!(e.to_string().contains("expected 6 values"), "{e}");
        let e = read_echo_trains(b"3,1,2,0.5,1,0.2\n", Some(PAR)).unwrap_err();
        assert!(e.to_string().contains("tauSteps = 2"), "{e}");
    }
}
