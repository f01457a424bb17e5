//! Readings that cannot be right: a power sensor, meter or counter that
//! reports negative watts, watts no machine joulebench measures can draw, or
//! more energy in one interval than the hardware can deliver. Such a reading
//! is flagged (the window gets no energy and says why) or refused (a meter
//! log line), never integrated into a joule figure as if it were right.

use super::{Rail, RailKind, Sample};

/// The most a machine joulebench measures can draw, in watts: a loaded
/// multi-socket server with accelerators at the wall stays well below it.
/// A reading above it is a unit error or a broken sensor.
pub const MAX_PLAUSIBLE_W: f64 = 100_000.0;

/// Negative readings down to this are the zero-current noise of a shunt
/// monitor's ADC (an INA3221 channel with nothing connected reads a few mW
/// either side of zero) and are integrated as read; anything below is a
/// sensor wired backwards or broken.
pub const NEGATIVE_NOISE_W: f64 = -0.05;

/// Why a power reading in watts cannot be right, or `None` when it can.
pub fn implausible_watts(w: f64) -> Option<String> {
    if !w.is_finite() {
        Some(format!("{w} W is not a finite number"))
    } else if w < NEGATIVE_NOISE_W {
        Some(format!(
            "{w} W is negative: a power reading cannot be (a sensor wired backwards, a wrong \
             column, or a broken sensor)"
        ))
    } else if w > MAX_PLAUSIBLE_W {
        Some(format!(
            "{w} W is more than the {MAX_PLAUSIBLE_W} W any measured machine draws (a unit \
             error, a wrong column, or a broken sensor)"
        ))
    } else {
        None
    }
}

/// Why the energy `delta_j` an energy counter moved over `dt_s` seconds
/// cannot be right, or `None`. Intervals shorter than 0.1 s are judged as
/// 0.1 s, so a counter that updates in steps is not flagged for a step.
pub fn implausible_energy(delta_j: f64, dt_s: f64, ceiling_w: f64) -> Option<String> {
    if !delta_j.is_finite() {
        return Some(format!("an energy step of {delta_j} J is not a number"));
    }
    if delta_j < 0.0 {
        return Some(format!(
            "the energy counter went back by {:.6} J (reset, or a counter that wraps read as one that does not)",
            -delta_j
        ));
    }
    let watts = delta_j / dt_s.max(0.1);
    (watts > ceiling_w).then(|| {
        format!(
            "the energy counter moved {delta_j:.6} J in {dt_s:.3} s, {watts:.1} W, more than the \
             {ceiling_w} W the rail can draw (a counter reset, or a wrap the sampling missed)"
        )
    })
}

/// The problems of one window's samples: every rail's implausible readings
/// (power rails) or steps (energy rails), and what the probe flagged while
/// reading (a wrap it could not resolve). Returns the warnings, first
/// occurrence per rail with a count, and whether a rail of the total is
/// affected (then the window has no energy).
pub fn check_window(rails: &[Rail], total: &[usize], samples: &[Sample]) -> (Vec<String>, bool) {
    let mut found: Vec<Vec<String>> = vec![Vec::new(); rails.len()];
    for (i, rail) in rails.iter().enumerate() {
        match rail.kind {
            RailKind::Power => {
                for s in samples {
                    if let Some(why) = implausible_watts(s.values[i]) {
                        found[i].push(format!("at {:.3} s: {why}", s.t_s));
                    }
                }
            }
            RailKind::Energy => {
                for w in samples.windows(2) {
                    let delta = w[1].values[i] - w[0].values[i];
                    let dt = w[1].t_s - w[0].t_s;
                    if let Some(why) = implausible_energy(delta, dt, MAX_PLAUSIBLE_W) {
                        found[i].push(format!("at {:.3} s: {why}", w[1].t_s));
                    }
                }
            }
        }
    }
    // The first reading opens the window: what happened before it does not
    // count.
    for s in samples.iter().skip(1) {
        for (i, why) in &s.flags {
            if let Some(f) = found.get_mut(*i) {
                f.push(format!("at {:.3} s: {why}", s.t_s));
            }
        }
    }
    let mut warnings = Vec::new();
    let mut total_bad = false;
    for (i, f) in found.iter().enumerate() {
        let Some(first) = f.first() else { continue };
        let in_total = total.contains(&i);
        total_bad |= in_total;
        let more = if f.len() > 1 {
            format!(" (and {} more such reading(s))", f.len() - 1)
        } else {
            String::new()
        };
        warnings.push(format!(
            "rail {} {first}{more}{}",
            rails[i].name,
            if in_total {
                "; the window's energy is not recorded"
            } else {
                ""
            }
        ));
    }
    (warnings, total_bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readings_outside_what_a_machine_draws_are_named() {
        assert_eq!(implausible_watts(12.5), None);
        assert_eq!(implausible_watts(0.0), None);
        assert_eq!(implausible_watts(-0.01), None);
        assert!(implausible_watts(-3.0).unwrap().contains("negative"));
        assert!(implausible_watts(1e308).unwrap().contains("more than"));
        assert!(implausible_watts(f64::NAN).unwrap().contains("finite"));
        assert_eq!(implausible_energy(5.0, 1.0, 100.0), None);
        // a step of 1 J read 1 ms after the last read is judged over 0.1 s
        assert_eq!(implausible_energy(1.0, 0.001, 100.0), None);
        assert!(implausible_energy(-1.0, 1.0, 100.0)
            .unwrap()
            .contains("went back"));
        assert!(implausible_energy(500.0, 1.0, 100.0)
            .unwrap()
            .contains("500.0 W"));
    }
}
