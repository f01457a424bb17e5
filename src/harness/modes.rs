//! Power modes as a sweep axis: named setups (cpufreq governor and limits,
//! Jetson `nvpmodel -m N` and `jetson_clocks`, or `none`) applied before a
//! point, verified, and undone at the end, on Ctrl-C, on error, or by
//! `joulebench restore RUN_DIR` after a crash; and the conditions of every
//! measured window (frequencies, SoC temperature, throttling).

use super::HarnessError;
use crate::power::cpufreq::{self, FreqSampler, Policy, PolicyState, Setting};
use crate::power::thermal::{self, TempSensor};
use crate::power::{is_root, PowerError, Sysfs};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// The mode that changes nothing.
pub const NONE: &str = "none";

/// The file in the run directory holding the state found at start.
pub const STATE_FILE: &str = "power_state.json";

/// What a mode sets through cpufreq.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct CpufreqMode {
    pub setting: Setting,
    /// Policy numbers; `None`: every policy.
    pub policies: Option<Vec<usize>>,
}

/// One named power mode of a suite.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ModeDef {
    pub name: String,
    pub cpufreq: Option<CpufreqMode>,
    pub nvpmodel: Option<u32>,
    pub jetson_clocks: bool,
}

/// The suite's `[power_modes]` table.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ModeSettings {
    /// Wait after each switch, before the next point's warm-up.
    pub settle_seconds: f64,
    pub nvpmodel_command: String,
    pub jetson_clocks_command: String,
    /// `vcgencmd` for `get_throttled`; tried on every run.
    pub vcgencmd_command: String,
    pub modes: Vec<ModeDef>,
}

impl Default for ModeSettings {
    fn default() -> Self {
        ModeSettings {
            settle_seconds: 2.0,
            nvpmodel_command: "nvpmodel".into(),
            jetson_clocks_command: "jetson_clocks".into(),
            vcgencmd_command: "vcgencmd".into(),
            modes: Vec::new(),
        }
    }
}

impl ModeSettings {
    pub fn get(&self, name: &str) -> Option<&ModeDef> {
        self.modes.iter().find(|m| m.name == name)
    }
}

fn mode_err(reason: impl Into<String>) -> HarnessError {
    HarnessError::Mode(reason.into())
}

fn power_err(context: &str) -> impl FnOnce(PowerError) -> HarnessError + '_ {
    move |e| match e {
        PowerError::Permission { .. } | PowerError::Config(_) => {
            mode_err(format!("{context}: {e}"))
        }
        _ => HarnessError::Power {
            context: context.to_string(),
            source: e,
        },
    }
}

/// Runs a command; its stdout, or an error naming it.
fn run_cmd(command: &str, args: &[&str], what: &str) -> Result<String, HarnessError> {
    let out = Command::new(command).args(args).output().map_err(|e| {
        mode_err(format!(
            "`{command} {}` could not run ({e}); set `{what}` in [power_modes] to its path",
            args.join(" ")
        ))
    })?;
    // 127 is "not found" where exec failure is reported as an exit status
    // (under qemu-user, for one).
    if out.status.code() == Some(127) {
        return Err(mode_err(format!(
            "`{command} {}` was not found (exit status 127); set `{what}` in [power_modes] to its path",
            args.join(" ")
        )));
    }
    if !out.status.success() {
        return Err(mode_err(format!(
            "`{command} {}` failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `nvpmodel -q`: the mode number is the last line that is a number.
pub fn nvpmodel_query(command: &str) -> Result<u32, HarnessError> {
    let out = run_cmd(command, &["-q"], "nvpmodel_command")?;
    out.lines()
        .rev()
        .find_map(|l| l.trim().parse::<u32>().ok())
        .ok_or_else(|| {
            mode_err(format!(
                "`{command} -q` printed no mode number: {:?}",
                out.trim()
            ))
        })
}

/// The saved state of the machine, written before anything changes.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SavedState {
    pub sysfs_root: PathBuf,
    pub cpufreq: Vec<PolicyState>,
    pub nvpmodel: Option<SavedCommand>,
    pub jetson_clocks: Option<SavedCommand>,
    pub saved_utc: String,
    /// Set when the state was put back.
    pub restored_utc: Option<String>,
}

/// A command and what to give it to restore: nvpmodel's mode number, or
/// the file jetson_clocks stored its state in.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SavedCommand {
    pub command: String,
    pub value: String,
}

fn utc_now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn write_state(dir: &Path, s: &SavedState) -> Result<(), HarnessError> {
    let path = dir.join(STATE_FILE);
    let tmp = path.with_extension("json.tmp");
    let text = serde_json::to_string_pretty(s).unwrap_or_default();
    std::fs::write(&tmp, text + "\n")
        .and_then(|_| std::fs::File::open(&tmp)?.sync_all())
        .and_then(|_| std::fs::rename(&tmp, &path))
        .map_err(|e| HarnessError::Io {
            path,
            reason: e.to_string(),
        })
}

fn read_state(dir: &Path) -> Result<SavedState, HarnessError> {
    let path = dir.join(STATE_FILE);
    let text = std::fs::read_to_string(&path).map_err(|e| HarnessError::Usage {
        name: "RUN_DIR",
        reason: format!(
            "cannot read {}: {e}; give a run directory of a suite with power modes",
            path.display()
        ),
    })?;
    serde_json::from_str(&text).map_err(|e| HarnessError::Records {
        path,
        reason: format!("not a joulebench power state file: {e}"),
    })
}

/// The modes `names` use, in order, without `none`.
fn defs<'a>(settings: &'a ModeSettings, names: &[String]) -> Vec<&'a ModeDef> {
    names.iter().filter_map(|n| settings.get(n)).collect()
}

/// The policies a cpufreq mode touches; an error names a missing policy.
fn targets<'a>(
    all: &'a [Policy],
    m: &CpufreqMode,
    mode: &str,
) -> Result<Vec<&'a Policy>, HarnessError> {
    match &m.policies {
        None => {
            if all.is_empty() {
                return Err(mode_err(format!(
                    "power_mode `{mode}` sets cpufreq, but this machine has no cpufreq policies ({} is missing: a virtual machine or a container without /sys?)",
                    cpufreq::CPUFREQ_DIR
                )));
            }
            Ok(all.iter().collect())
        }
        Some(ids) => ids
            .iter()
            .map(|id| {
                all.iter().find(|p| p.id == *id).ok_or_else(|| {
                    mode_err(format!(
                        "power_mode `{mode}` sets policy{id}, but this machine has policies {}",
                        all.iter()
                            .map(|p| format!("policy{}", p.id))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                })
            })
            .collect(),
    }
}

/// Before the suite starts: every file and command the modes `names` need
/// is there and may be used; the error names what to run as root.
pub fn check(sysfs: &Sysfs, settings: &ModeSettings, names: &[String]) -> Result<(), HarnessError> {
    let all = cpufreq::policies(sysfs);
    let mut denied: Vec<String> = Vec::new();
    for m in defs(settings, names) {
        if let Some(c) = &m.cpufreq {
            for p in targets(&all, c, &m.name)? {
                cpufreq::validate(p, &c.setting)
                    .map_err(|e| mode_err(format!("power_mode `{}`: {e}", m.name)))?;
                // Restoring writes all three.
                for f in ["scaling_governor", "scaling_min_freq", "scaling_max_freq"] {
                    let path = p.file(f);
                    if !sysfs.writable(&path) {
                        denied.push(path.display().to_string());
                    }
                }
            }
        }
        if m.nvpmodel.is_some() || m.jetson_clocks {
            if !is_root() {
                return Err(mode_err(format!(
                    "power_mode `{}` runs {}, which needs root: run `sudo joulebench run ...` (or allow `{}` and `{}` in sudoers and run joulebench as root)",
                    m.name,
                    if m.nvpmodel.is_some() { "nvpmodel" } else { "jetson_clocks" },
                    settings.nvpmodel_command,
                    settings.jetson_clocks_command
                )));
            }
            if m.nvpmodel.is_some() {
                nvpmodel_query(&settings.nvpmodel_command)?;
            }
        }
    }
    denied.sort();
    denied.dedup();
    if !denied.is_empty() {
        return Err(mode_err(format!(
            "no permission to write cpufreq: {}; {}",
            denied.join(", "),
            cpufreq::WRITE_HINT
        )));
    }
    Ok(())
}

/// Applies power modes and puts the machine back.
pub struct ModeControl<'a> {
    sysfs: Sysfs,
    settings: &'a ModeSettings,
    policies: Vec<Policy>,
    saved: SavedState,
    dir: PathBuf,
    current: String,
    restored: bool,
}

impl<'a> ModeControl<'a> {
    /// Saves the state found now into `dir` (a resumed run keeps the state
    /// saved by its first start, unless it was restored since).
    pub fn start(
        sysfs: &Sysfs,
        settings: &'a ModeSettings,
        names: &[String],
        dir: &Path,
    ) -> Result<ModeControl<'a>, HarnessError> {
        let policies = cpufreq::policies(sysfs);
        let saved = match read_state(dir) {
            Ok(s) if s.restored_utc.is_none() => s,
            _ => {
                let used = defs(settings, names);
                let mut s = SavedState {
                    sysfs_root: sysfs.root().to_path_buf(),
                    saved_utc: utc_now(),
                    ..SavedState::default()
                };
                for p in &policies {
                    s.cpufreq.push(
                        cpufreq::read_state(sysfs, p).map_err(power_err("saving cpufreq state"))?,
                    );
                }
                if used.iter().any(|m| m.nvpmodel.is_some()) {
                    let mode = nvpmodel_query(&settings.nvpmodel_command)?;
                    s.nvpmodel = Some(SavedCommand {
                        command: settings.nvpmodel_command.clone(),
                        value: mode.to_string(),
                    });
                }
                if used.iter().any(|m| m.jetson_clocks) {
                    let store = dir.join("jetson_clocks.conf");
                    let store_s = store.display().to_string();
                    run_cmd(
                        &settings.jetson_clocks_command,
                        &["--store", &store_s],
                        "jetson_clocks_command",
                    )?;
                    s.jetson_clocks = Some(SavedCommand {
                        command: settings.jetson_clocks_command.clone(),
                        value: store_s,
                    });
                }
                write_state(dir, &s)?;
                s
            }
        };
        Ok(ModeControl {
            sysfs: sysfs.clone(),
            settings,
            policies,
            saved,
            dir: dir.to_path_buf(),
            current: NONE.into(),
            restored: false,
        })
    }

    pub fn current(&self) -> &str {
        &self.current
    }

    /// Switches to mode `name`; whether anything was done (then the caller
    /// waits `settle_seconds`).
    pub fn switch(&mut self, name: &str) -> Result<bool, HarnessError> {
        if name == self.current {
            return Ok(false);
        }
        let none = ModeDef::default();
        let prev = self.settings.get(&self.current).unwrap_or(&none).clone();
        let next = self.settings.get(name).unwrap_or(&none).clone();
        let ctx = format!("switching to power_mode `{name}`");
        self.restored = false;
        // 1. Policies the previous mode set and the next does not: back to
        // the saved state.
        let next_targets: Vec<usize> = match &next.cpufreq {
            Some(c) => targets(&self.policies, c, name)?
                .iter()
                .map(|p| p.id)
                .collect(),
            None => Vec::new(),
        };
        if let Some(c) = &prev.cpufreq {
            for p in targets(&self.policies, c, &prev.name)? {
                if next_targets.contains(&p.id) {
                    continue;
                }
                if let Some(s) = self.saved.cpufreq.iter().find(|s| s.policy == p.id) {
                    cpufreq::restore(&self.sysfs, p, s).map_err(power_err(&ctx))?;
                }
            }
        }
        // 2. nvpmodel (it resets clocks, so before jetson_clocks and cpufreq).
        let nv_target = next.nvpmodel.map(|n| n.to_string()).or_else(|| {
            prev.nvpmodel
                .and(self.saved.nvpmodel.as_ref().map(|s| s.value.clone()))
        });
        if let Some(n) = nv_target {
            let cmd = &self.settings.nvpmodel_command;
            run_cmd(cmd, &["-m", &n], "nvpmodel_command")?;
            let got = nvpmodel_query(cmd)?;
            if got.to_string() != n {
                return Err(mode_err(format!(
                    "{ctx}: `{cmd} -m {n}` left the board in mode {got}; check the modes of /etc/nvpmodel.conf"
                )));
            }
        }
        // 3. jetson_clocks.
        if next.jetson_clocks {
            run_cmd(
                &self.settings.jetson_clocks_command,
                &[],
                "jetson_clocks_command",
            )?;
        } else if prev.jetson_clocks {
            if let Some(s) = &self.saved.jetson_clocks {
                run_cmd(
                    &s.command,
                    &["--restore", &s.value],
                    "jetson_clocks_command",
                )?;
            }
        }
        // 4. cpufreq of the next mode, verified.
        if let Some(c) = &next.cpufreq {
            for p in targets(&self.policies, c, name)? {
                cpufreq::apply(&self.sysfs, p, &c.setting).map_err(power_err(&ctx))?;
            }
        }
        self.current = name.to_string();
        Ok(true)
    }

    /// Puts back the state found at start and marks it restored.
    pub fn restore(&mut self) -> Result<(), HarnessError> {
        if self.restored {
            return Ok(());
        }
        let jc = self
            .settings
            .get(&self.current)
            .is_some_and(|m| m.jetson_clocks);
        restore_saved(&self.sysfs, &mut self.saved, jc)?;
        write_state(&self.dir, &self.saved)?;
        self.current = NONE.into();
        self.restored = true;
        Ok(())
    }
}

impl Drop for ModeControl<'_> {
    /// On an error path: restore, and say so when that fails too.
    fn drop(&mut self) {
        if let Err(e) = self.restore() {
            eprintln!(
                "error: could not restore the power state: {e}; run `joulebench restore {}`",
                self.dir.display()
            );
        }
    }
}

/// Puts back `s`; jetson_clocks only when `jetson_clocks` (it cannot be
/// queried), nvpmodel and cpufreq where they differ.
fn restore_saved(
    sysfs: &Sysfs,
    s: &mut SavedState,
    jetson_clocks: bool,
) -> Result<Vec<String>, HarnessError> {
    let mut done = Vec::new();
    if let Some(nv) = &s.nvpmodel {
        if nvpmodel_query(&nv.command)?.to_string() != nv.value {
            run_cmd(&nv.command, &["-m", &nv.value], "nvpmodel_command")?;
            done.push(format!("{} -m {}", nv.command, nv.value));
        }
    }
    if let (Some(jc), true) = (&s.jetson_clocks, jetson_clocks) {
        run_cmd(
            &jc.command,
            &["--restore", &jc.value],
            "jetson_clocks_command",
        )?;
        done.push(format!("{} --restore {}", jc.command, jc.value));
    }
    let policies = cpufreq::policies(sysfs);
    for st in &s.cpufreq {
        let Some(p) = policies.iter().find(|p| p.id == st.policy) else {
            continue;
        };
        let now = cpufreq::read_state(sysfs, p).map_err(power_err("restoring cpufreq"))?;
        if now != *st {
            cpufreq::restore(sysfs, p, st).map_err(power_err("restoring cpufreq"))?;
            done.push(format!(
                "policy{}: {} {}..{} kHz",
                st.policy, st.governor, st.min_khz, st.max_khz
            ));
        }
    }
    s.restored_utc = Some(utc_now());
    Ok(done)
}

/// `joulebench restore RUN_DIR`: puts back the state saved in the run
/// directory (below `sysfs_root`, else the root the run used). Returns what
/// was changed.
pub fn restore_run(dir: &Path, sysfs_root: Option<PathBuf>) -> Result<Vec<String>, HarnessError> {
    let mut s = read_state(dir)?;
    let sysfs = Sysfs::new(sysfs_root.unwrap_or_else(|| s.sysfs_root.clone()));
    let done = restore_saved(&sysfs, &mut s, true)?;
    write_state(dir, &s)?;
    Ok(done)
}

/// `--dry-run`: every change switching through `order` (mode names, in run
/// order) would make, against the machine's state now.
pub fn describe_changes(sysfs: &Sysfs, settings: &ModeSettings, order: &[String]) -> Vec<String> {
    let policies = cpufreq::policies(sysfs);
    let mut out = Vec::new();
    let mut prev = NONE.to_string();
    let none = ModeDef::default();
    let mut states: Vec<PolicyState> = policies
        .iter()
        .filter_map(|p| cpufreq::read_state(sysfs, p).ok())
        .collect();
    let saved = states.clone();
    let write = |out: &mut Vec<String>, states: &mut Vec<PolicyState>, p: &Policy, s: &Setting| {
        if let Some(now) = states.iter_mut().find(|x| x.policy == p.id) {
            for (path, v) in cpufreq::plan(p, now, s) {
                out.push(format!("  write {v} to {}", path.display()));
            }
            if let Some(g) = &s.governor {
                now.governor = g.clone();
            }
            now.min_khz = s.min_khz.unwrap_or(now.min_khz);
            now.max_khz = s.max_khz.unwrap_or(now.max_khz);
        } else {
            out.push(format!("  policy{}: cannot read its state", p.id));
        }
    };
    let saved_setting = |id: usize| {
        saved.iter().find(|s| s.policy == id).map(|s| Setting {
            governor: Some(s.governor.clone()),
            min_khz: Some(s.min_khz),
            max_khz: Some(s.max_khz),
        })
    };
    let mut steps: Vec<String> = order.to_vec();
    steps.push(String::from("\u{0}restore"));
    for name in &steps {
        let restoring = name == "\u{0}restore";
        if *name == prev {
            continue;
        }
        let p_def = settings.get(&prev).unwrap_or(&none);
        let n_def = if restoring {
            &none
        } else {
            settings.get(name).unwrap_or(&none)
        };
        out.push(if restoring {
            "after the last point (and on Ctrl-C or error): restore the state found at start".into()
        } else {
            format!(
                "power_mode {name}: (then wait settle_seconds = {})",
                settings.settle_seconds
            )
        });
        let n_t: Vec<&Policy> = n_def
            .cpufreq
            .as_ref()
            .and_then(|c| targets(&policies, c, name).ok())
            .unwrap_or_default();
        if let Some(c) = &p_def.cpufreq {
            for p in targets(&policies, c, &prev).unwrap_or_default() {
                if !n_t.iter().any(|q| q.id == p.id) {
                    if let Some(s) = saved_setting(p.id) {
                        write(&mut out, &mut states, p, &s);
                    }
                }
            }
        }
        if let Some(n) = n_def.nvpmodel {
            out.push(format!("  run {} -m {n}", settings.nvpmodel_command));
        } else if p_def.nvpmodel.is_some() {
            out.push(format!(
                "  run {} -m <the mode found at start>",
                settings.nvpmodel_command
            ));
        }
        if n_def.jetson_clocks {
            out.push(format!("  run {}", settings.jetson_clocks_command));
        } else if p_def.jetson_clocks {
            out.push(format!(
                "  run {} --restore <run dir>/jetson_clocks.conf",
                settings.jetson_clocks_command
            ));
        }
        if let Some(c) = &n_def.cpufreq {
            match targets(&policies, c, name) {
                Ok(ps) => {
                    for p in ps {
                        write(&mut out, &mut states, p, &c.setting);
                    }
                }
                Err(e) => out.push(format!("  error: {e}")),
            }
        }
        prev = if restoring { NONE.into() } else { name.clone() };
    }
    if order.iter().all(|n| n == NONE) {
        return Vec::new();
    }
    out
}

/// What a window's conditions were: the columns of every results row.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Conditions {
    pub governor: String,
    pub freq_min_khz: Option<u64>,
    pub freq_max_khz: Option<u64>,
    pub freq_mean_mhz: Option<f64>,
    pub temp_start_c: Option<f64>,
    pub temp_end_c: Option<f64>,
    pub throttled: Option<bool>,
}

/// Reads frequencies, temperatures and throttling around every window.
pub struct Monitor {
    sysfs: Sysfs,
    policies: Vec<Policy>,
    temps: Vec<TempSensor>,
    vcgencmd: Option<String>,
    interval: Duration,
}

/// A window being watched.
pub struct Watching {
    sampler: Option<FreqSampler>,
    temp_start_c: Option<f64>,
    vc_start: Option<u32>,
    states: Vec<PolicyState>,
}

impl Monitor {
    /// Probes what can be read; the description (with the reason for every
    /// column that stays empty) goes into the manifest.
    pub fn new(sysfs: &Sysfs, settings: &ModeSettings) -> (Monitor, serde_json::Value) {
        let policies = cpufreq::policies(sysfs);
        let (temps, other) = thermal::soc_sensors(sysfs);
        let vc = thermal::vc_throttled(&settings.vcgencmd_command);
        let freq = if policies.is_empty() {
            serde_json::json!({ "available": false, "reason": format!("no cpufreq policies under {}: governor, freq_min_khz, freq_max_khz and freq_mean_mhz are empty", sysfs.path(cpufreq::CPUFREQ_DIR).display()) })
        } else {
            serde_json::json!({ "available": true, "policies": policies.iter().map(|p| serde_json::json!({ "policy": p.id, "cpus": p.cpus, "cpuinfo_min_khz": p.cpuinfo_min_khz, "cpuinfo_max_khz": p.cpuinfo_max_khz })).collect::<Vec<_>>(),
                "note": "freq_mean_mhz: scaling_cur_freq of the policies of the used cpus (all when not pinned), sampled every 0.1 s over the window, weighted by cpus" })
        };
        let temp = if temps.is_empty() {
            serde_json::json!({ "available": false, "reason": format!("no thermal zone or hwmon temperature whose type/label contains one of {:?}; found: {:?}; temp_start_c and temp_end_c are empty", thermal::SOC_WORDS, other) })
        } else {
            serde_json::json!({ "available": true, "sensors": temps, "note": "the hottest of these, in degrees C" })
        };
        let throttled = serde_json::json!({
            "frequency": if policies.is_empty() { "unavailable (no cpufreq)" } else { "throttled when a used cpu's scaling_cur_freq fell below scaling_min_freq during the window" },
            "vcgencmd": match &vc {
                Ok(_) => format!("`{} get_throttled`: throttled when bits 0-3 (under-voltage, frequency capped, throttled, soft temperature limit) are set at the start or end of the window", settings.vcgencmd_command),
                Err(e) => format!("unavailable: {e}"),
            },
        });
        let desc =
            serde_json::json!({ "frequency": freq, "temperature": temp, "throttled": throttled });
        (
            Monitor {
                sysfs: sysfs.clone(),
                policies,
                temps,
                vcgencmd: vc.ok().map(|_| settings.vcgencmd_command.clone()),
                interval: Duration::from_millis(100),
            },
            desc,
        )
    }

    /// Right before the window.
    pub fn begin(&self, cpus: Option<&[usize]>) -> Watching {
        let states = cpufreq::used(&self.policies, cpus)
            .into_iter()
            .filter_map(|p| cpufreq::read_state(&self.sysfs, p).ok())
            .collect();
        Watching {
            temp_start_c: thermal::read_max_c(&self.sysfs, &self.temps),
            vc_start: self
                .vcgencmd
                .as_deref()
                .and_then(|c| thermal::vc_throttled(c).ok()),
            sampler: FreqSampler::start(&self.sysfs, &self.policies, cpus, self.interval),
            states,
        }
    }

    /// Right after the window.
    pub fn end(&self, w: Watching) -> Conditions {
        let freq = w.sampler.map(FreqSampler::stop);
        let temp_end_c = thermal::read_max_c(&self.sysfs, &self.temps);
        let vc_end = self
            .vcgencmd
            .as_deref()
            .and_then(|c| thermal::vc_throttled(c).ok());
        let (governor, freq_min_khz, freq_max_khz) = cpufreq::summary(&w.states);
        let by_freq = match (freq.as_ref().and_then(|f| f.min_khz), w.states.is_empty()) {
            (Some(lo), false) => Some(w.states.iter().any(|s| lo < s.min_khz)),
            _ => None,
        };
        let by_vc = match (w.vc_start, vc_end) {
            (None, None) => None,
            (a, b) => Some((a.unwrap_or(0) | b.unwrap_or(0)) & thermal::THROTTLED_NOW_BITS != 0),
        };
        let throttled = match (by_freq, by_vc) {
            (None, None) => None,
            (a, b) => Some(a.unwrap_or(false) || b.unwrap_or(false)),
        };
        Conditions {
            governor,
            freq_min_khz,
            freq_max_khz,
            freq_mean_mhz: freq.and_then(|f| f.mean_mhz),
            temp_start_c: w.temp_start_c,
            temp_end_c,
            throttled,
        }
    }
}

/// Orders points so the mode changes least: grouped by mode, modes in order
/// of first appearance, `none` first; stable within a mode.
pub fn order_by_mode<T>(points: Vec<T>, mode: impl Fn(&T) -> &str) -> Vec<T> {
    let mut seen: Vec<String> = vec![NONE.into()];
    for p in &points {
        if !seen.iter().any(|s| s == mode(p)) {
            seen.push(mode(p).to_string());
        }
    }
    let mut keyed: Vec<(usize, T)> = points
        .into_iter()
        .map(|p| (seen.iter().position(|s| s == mode(&p)).unwrap_or(0), p))
        .collect();
    keyed.sort_by_key(|(k, _)| *k);
    keyed.into_iter().map(|(_, p)| p).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordering_groups_modes() {
        let pts = vec!["a", "b", "none", "a", "b", "none"];
        let got = order_by_mode(pts, |s| s);
        assert_eq!(got, vec!["none", "none", "a", "a", "b", "b"]);
    }

    #[test]
    fn nvpmodel_query_parses_the_last_number() {
        let dir = std::env::temp_dir().join(format!("jb-nvq-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("nvpmodel");
        std::fs::write(
            &f,
            "#!/bin/sh\necho 'NV Fan Mode:quiet'\necho 'NV Power Mode: MODE_15W'\necho 2\n",
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(nvpmodel_query(f.to_str().unwrap()).unwrap(), 2);
        let e = nvpmodel_query("/nonexistent/nvpmodel")
            .unwrap_err()
            .to_string();
        assert!(e.contains("nvpmodel_command"), "{e}");
    }
}
