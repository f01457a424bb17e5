//! Raspberry Pi 5: the PMIC's ADC through `vcgencmd pmic_read_adc`.
//!
//! The command prints one line per channel, a current line per rail
//! (`VDD_CORE_A current(7)=0.80457000A`) and a voltage line per rail
//! (`VDD_CORE_V volt(15)=0.72061000V`). Power is the sum of V·I over the
//! rails that have both; rails with only a voltage (`EXT5V_V`, `BATT_V`) are
//! skipped. The sum covers the PMIC's outputs only: 5 V consumers (USB
//! ports, fan, HDMI 5 V) and the PMIC's own conversion losses are missing, so
//! it underestimates the board's input power; the manifest says so.

use super::{PowerError, Probe, Rail, RailKind, Sampled};
use std::path::{Path, PathBuf};

/// The underestimate, as stated in the manifest and by `sensors`.
pub const UNDERESTIMATE_NOTE: &str = "sum of the PMIC's output rails (V x I): it misses the 5 V consumers (USB ports, fan, HDMI 5 V) and the PMIC's conversion losses, so it underestimates the board's input power; use an external USB meter for absolute watts";

/// One rail of the PMIC: watts.
#[derive(Clone, Debug, PartialEq)]
pub struct PmicRail {
    pub name: String,
    pub watts: f64,
}

/// Parses `vcgencmd pmic_read_adc` output: rails with both a current and a
/// voltage, in the order their current lines appear. `source` names the
/// text in errors.
pub fn parse(text: &str, source: &Path) -> Result<Vec<PmicRail>, PowerError> {
    let mut amps: Vec<(String, f64)> = Vec::new();
    let mut volts: Vec<(String, f64)> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let bad = |why: &str| {
            PowerError::malformed(
                source,
                Some(format!("line {}", i + 1)),
                format!(
                    "{why} in {line:?}; expected `NAME_A current(N)=X.XA` or `NAME_V volt(N)=X.XV` (is this vcgencmd pmic_read_adc output from a Raspberry Pi 5?)"
                ),
            )
        };
        let (name, rest) = line
            .split_once(char::is_whitespace)
            .ok_or_else(|| bad("no value"))?;
        let (kind, value) = rest.trim().split_once('=').ok_or_else(|| bad("no `=`"))?;
        let (unit, list, base) = if kind.starts_with("current(") {
            ('A', &mut amps, name.strip_suffix("_A"))
        } else if kind.starts_with("volt(") {
            ('V', &mut volts, name.strip_suffix("_V"))
        } else {
            return Err(bad("neither current(...) nor volt(...)"));
        };
        let base = base.ok_or_else(|| bad("rail name without its _A / _V suffix"))?;
        let num = value
            .trim()
            .strip_suffix(unit)
            .ok_or_else(|| bad("missing unit"))?
            .parse::<f64>()
            .map_err(|_| bad("not a number"))?;
        if !num.is_finite() {
            return Err(bad("not a finite number"));
        }
        list.push((base.to_string(), num));
    }
    if amps.is_empty() {
        return Err(PowerError::malformed(
            source,
            None,
            "no current(...) lines: this is not vcgencmd pmic_read_adc output of a Raspberry Pi 5 (older firmware or another model?)",
        ));
    }
    Ok(amps
        .into_iter()
        .filter_map(|(name, a)| {
            let v = volts.iter().find(|(n, _)| *n == name)?.1;
            Some(PmicRail { name, watts: v * a })
        })
        .collect())
}

/// Time `vcgencmd` gets to answer: it answers in milliseconds, a hung
/// firmware mailbox never does.
pub const COMMAND_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Output `vcgencmd` may print: `pmic_read_adc` prints about 2 KiB.
pub const COMMAND_OUTPUT_CAP: usize = 1 << 20;

/// Runs `<command> pmic_read_adc`, killed after [`COMMAND_TIMEOUT`] or
/// [`COMMAND_OUTPUT_CAP`] bytes of output.
pub fn run(command: &str) -> Result<String, PowerError> {
    run_limited(command, COMMAND_TIMEOUT)
}

fn run_limited(command: &str, timeout: std::time::Duration) -> Result<String, PowerError> {
    use crate::guard::CommandError;
    match crate::guard::run_bounded(command, &["pmic_read_adc"], timeout, COMMAND_OUTPUT_CAP) {
        Ok(out) => Ok(out.stdout),
        Err(CommandError::NotFound { .. }) => Err(PowerError::Unavailable {
            source_name: "pi5".into(),
            reason: format!(
                "`{command}` not found (vcgencmd is on Raspberry Pi OS; set `command` to its path)"
            ),
        }),
        Err(e) => Err(PowerError::Io {
            path: PathBuf::from(command),
            reason: e.to_string(),
        }),
    }
}

/// Reads the PMIC through the command.
pub struct Pi5Probe {
    command: String,
    rails: Vec<Rail>,
    total: Vec<usize>,
}

impl Probe for Pi5Probe {
    fn rails(&self) -> &[Rail] {
        &self.rails
    }

    fn total(&self) -> &[usize] {
        &self.total
    }

    fn read(&mut self) -> Result<Vec<f64>, PowerError> {
        let text = run(&self.command)?;
        let source = PathBuf::from(format!("{} pmic_read_adc", self.command));
        let rails = parse(&text, &source)?;
        self.rails
            .iter()
            .map(|r| {
                rails
                    .iter()
                    .find(|p| p.name == r.name)
                    .map(|p| p.watts)
                    .ok_or_else(|| {
                        PowerError::malformed(
                            &source,
                            None,
                            format!("rail {} disappeared from the output", r.name),
                        )
                    })
            })
            .collect()
    }
}

/// The Pi 5 source. Runs the command once to learn the rails.
pub fn open(command: &str, rate_hz: f64, min_samples: usize) -> Result<Sampled, PowerError> {
    let text = run(command)?;
    let rails = parse(&text, &PathBuf::from(format!("{command} pmic_read_adc")))?;
    let rails: Vec<Rail> = rails
        .into_iter()
        .map(|r| Rail {
            name: r.name,
            kind: RailKind::Power,
        })
        .collect();
    let total = (0..rails.len()).collect();
    let probe = Pi5Probe {
        command: command.to_string(),
        rails,
        total,
    };
    Ok(Sampled::new(
        "pi5",
        Box::new(probe),
        rate_hz,
        min_samples,
        vec![UNDERESTIMATE_NOTE.into()],
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_vcgencmd(name: &str, body: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let d = std::env::temp_dir().join(format!("jb-vcgencmd-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        let p = d.join("vcgencmd");
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p
    }

    #[test]
    fn a_hanging_or_endless_vcgencmd_is_an_error_not_a_hang_or_a_panic() {
        let hang = fake_vcgencmd("hang", "sleep 60");
        let start = std::time::Instant::now();
        let e = run_limited(
            hang.to_str().unwrap(),
            std::time::Duration::from_millis(300),
        )
        .unwrap_err();
        assert!(e.to_string().contains("did not finish"), "{e}");
        assert!(start.elapsed() < std::time::Duration::from_secs(10));
        let endless = fake_vcgencmd("endless", "yes current");
        let e = run(endless.to_str().unwrap()).unwrap_err();
        assert!(e.to_string().contains("printed more than"), "{e}");
        let e = run("/nonexistent/vcgencmd").unwrap_err();
        assert!(matches!(e, PowerError::Unavailable { .. }), "{e}");
    }

    #[test]
    fn lines_without_a_voltage_or_current_are_skipped_and_bad_lines_named() {
        let t = "  A_A current(0)=2.0A\n  A_V volt(1)=0.5V\n  EXT5V_V volt(24)=5.1V\n  B_A current(2)=1.0A\n";
        let r = parse(t, Path::new("x")).unwrap();
        assert_eq!(
            r,
            vec![PmicRail {
                name: "A".into(),
                watts: 1.0
            }]
        );
        let err = parse(
            "  A_A current(0)=2.0A\n  A_V volt(1)=zzV\n",
            Path::new("out.txt"),
        )
        .unwrap_err();
        assert!(err.is_bad_input());
        assert!(
            err.to_string().starts_with("out.txt:line 2: not a number"),
            "{err}"
        );
        let err = parse("throttled=0x0\n", Path::new("o")).unwrap_err();
        assert!(
            err.to_string().contains("no value") || err.to_string().contains("neither"),
            "{err}"
        );
    }
}
