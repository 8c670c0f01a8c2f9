//! The temperature guard: the Larmor frequency moves about 21 kHz per kelvin, so a measurement
//! whose magnet drifts too far is aborted rather than reported.

/// Aborts a sequence when the magnet temperature moves more than `max_drift_c` from its value at
/// the start (checked at every status poll of the wait).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TemperatureGuard {
    /// Largest allowed |T − T_start|, °C.
    pub max_drift_c: f64,
}

impl TemperatureGuard {
    /// Whether `now_c` is still within the limit of `start_c`.
    pub fn within_limit(&self, start_c: f64, now_c: f64) -> bool {
        (now_c - start_c).abs() <= self.max_drift_c
    }
}

impl Default for TemperatureGuard {
    /// 0.05 K: about 1 kHz of Larmor shift at 0.49 T, small against a 20 µs echo window.
    fn default() -> Self {
        Self { max_drift_c: 0.05 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_is_symmetric_and_inclusive() {
        let guard = TemperatureGuard { max_drift_c: 0.1 };
        assert!(guard.within_limit(25.0, 25.099));
        assert!(guard.within_limit(25.0, 24.901));
        assert!(guard.within_limit(25.0, 25.0));
        assert!(!guard.within_limit(25.0, 25.11));
        assert!(!guard.within_limit(25.0, 24.89));
    }
}
