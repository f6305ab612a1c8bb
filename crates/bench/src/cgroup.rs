//! A cgroup standing in for a Function Compute instance: a CPU quota and a memory limit, entered before the
//! function's process starts so that every page it touches is charged to it.
//!
//! Both hierarchies are handled: cgroup v2 (`cpu.max`, `memory.max`, `memory.peak`, `memory.events`) when
//! `/sys/fs/cgroup` is a unified mount with the cpu and memory controllers, else cgroup v1 (`cpu` and
//! `memory` mounted separately: `cpu.cfs_quota_us`, `memory.limit_in_bytes`, `memory.max_usage_in_bytes`,
//! `memory.oom_control`). The group is created *under the harness's own group* of each hierarchy (read from
//! `/proc/self/cgroup`), so it nests inside whatever limits the harness already runs under.

use std::path::{Path, PathBuf};
use std::time::Duration;

const ROOT: &str = "/sys/fs/cgroup";
/// The CFS period the quota is a share of (FC's and the kernel's default).
const PERIOD_US: u64 = 100_000;

/// Which cgroup interface the machine offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hierarchy {
    /// One unified directory (relative path of the harness's own group under it).
    V2 { base: PathBuf },
    /// Separate `cpu` and `memory` directories, each the harness's own group in that controller.
    V1 { cpu: PathBuf, memory: PathBuf },
}

impl Hierarchy {
    /// Finds a usable hierarchy, or says plainly why there is none (not root, no controllers, …).
    pub fn detect() -> Result<Hierarchy, String> {
        let own = std::fs::read_to_string("/proc/self/cgroup").map_err(|e| format!("/proc/self/cgroup: {e}"))?;
        let own = OwnGroups::parse(&own);
        let unified = Path::new(ROOT).join("cgroup.controllers");
        if let Ok(controllers) = std::fs::read_to_string(&unified) {
            let words: Vec<&str> = controllers.split_whitespace().collect();
            if !(words.contains(&"cpu") && words.contains(&"memory")) {
                return Err(format!("cgroup v2 at {ROOT}, but its controllers are only {controllers:?}"));
            }
            let base = Path::new(ROOT).join(own.unified.trim_start_matches('/'));
            return Ok(Hierarchy::V2 { base });
        }
        let cpu = Path::new(ROOT).join("cpu");
        let memory = Path::new(ROOT).join("memory");
        if !cpu.join("cpu.cfs_quota_us").exists() || !memory.join("memory.limit_in_bytes").exists() {
            return Err(format!("no cgroup v2 at {ROOT} and no v1 cpu + memory controllers under it"));
        }
        Ok(Hierarchy::V1 {
            cpu: cpu.join(own.cpu.trim_start_matches('/')),
            memory: memory.join(own.memory.trim_start_matches('/')),
        })
    }

    pub fn describe(&self) -> String {
        match self {
            Hierarchy::V2 { base } => format!("cgroup v2 (cpu.max, memory.max) under {}", base.display()),
            Hierarchy::V1 { cpu, memory } => format!(
                "cgroup v1 (cpu.cfs_quota_us over a {} ms period, memory.limit_in_bytes) under {} and {}",
                PERIOD_US / 1000,
                cpu.display(),
                memory.display()
            ),
        }
    }
}

/// The harness's own group in each hierarchy, from `/proc/self/cgroup` (`id:controllers:path` lines).
#[derive(Debug, Default, PartialEq, Eq)]
struct OwnGroups {
    unified: String,
    cpu: String,
    memory: String,
}

impl OwnGroups {
    fn parse(text: &str) -> OwnGroups {
        let mut own = OwnGroups { unified: "/".into(), cpu: "/".into(), memory: "/".into() };
        for line in text.lines() {
            let mut parts = line.splitn(3, ':');
            let (Some(_), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
                continue;
            };
            if controllers.is_empty() {
                own.unified = path.to_owned();
            }
            for controller in controllers.split(',') {
                match controller {
                    "cpu" => own.cpu = path.to_owned(),
                    "memory" => own.memory = path.to_owned(),
                    _ => {}
                }
            }
        }
        own
    }
}

/// The CPU quota and memory limit of one instance size.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    pub vcpu: f64,
    pub memory_mib: u64,
}

impl Limits {
    /// Quota per [`PERIOD_US`] in µs: 0.05 vCPU → 5000.
    pub fn quota_us(&self) -> u64 {
        (self.vcpu * PERIOD_US as f64).round() as u64
    }

    pub fn memory_bytes(&self) -> u64 {
        self.memory_mib * 1024 * 1024
    }
}

/// One instance's group; removed on drop (after its processes are gone).
pub struct Group {
    hierarchy: Hierarchy,
    dirs: Vec<PathBuf>,
}

impl Group {
    /// Creates `name` under the harness's own group(s) with `limits` applied.
    pub fn create(hierarchy: &Hierarchy, name: &str, limits: Limits) -> Result<Group, String> {
        let dirs: Vec<PathBuf> = match hierarchy {
            Hierarchy::V2 { base } => vec![base.join(name)],
            Hierarchy::V1 { cpu, memory } => vec![cpu.join(name), memory.join(name)],
        };
        for dir in &dirs {
            match std::fs::create_dir(dir) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(format!("cannot create {} (root needed): {e}", dir.display())),
            }
        }
        let group = Group { hierarchy: hierarchy.clone(), dirs };
        match hierarchy {
            Hierarchy::V2 { base } => {
                // The parent must delegate both controllers to its children.
                write(&base.join("cgroup.subtree_control"), "+cpu +memory")?;
                let dir = &group.dirs[0];
                write(&dir.join("cpu.max"), &format!("{} {PERIOD_US}", limits.quota_us()))?;
                write(&dir.join("memory.max"), &limits.memory_bytes().to_string())?;
                // No swap: an instance that does not fit must show as an OOM, not as a slow one.
                let _ = write(&dir.join("memory.swap.max"), "0");
            }
            Hierarchy::V1 { .. } => {
                let (cpu, memory) = (&group.dirs[0], &group.dirs[1]);
                write(&cpu.join("cpu.cfs_period_us"), &PERIOD_US.to_string())?;
                write(&cpu.join("cpu.cfs_quota_us"), &limits.quota_us().to_string())?;
                write(&memory.join("memory.limit_in_bytes"), &limits.memory_bytes().to_string())?;
                let _ = write(&memory.join("memory.memsw.limit_in_bytes"), &limits.memory_bytes().to_string());
                let _ = write(&memory.join("memory.swappiness"), "0");
            }
        }
        Ok(group)
    }

    /// The files a process writes its pid (`$$`) into to join the group: `cgroup.procs` of each directory.
    pub fn procs_files(&self) -> Vec<PathBuf> {
        self.dirs.iter().map(|dir| dir.join("cgroup.procs")).collect()
    }

    /// Charged memory now (page cache the group faulted in included).
    pub fn memory_now(&self) -> Result<u64, String> {
        match self.hierarchy {
            Hierarchy::V2 { .. } => read_number(&self.dirs[0].join("memory.current")),
            Hierarchy::V1 { .. } => read_number(&self.dirs[1].join("memory.usage_in_bytes")),
        }
    }

    pub fn stats(&self) -> Result<GroupStats, String> {
        match self.hierarchy {
            Hierarchy::V2 { .. } => {
                let dir = &self.dirs[0];
                let cpu = CpuStat::parse_v2(&read(&dir.join("cpu.stat"))?);
                let events = read(&dir.join("memory.events"))?;
                Ok(GroupStats {
                    cpu,
                    peak_bytes: read_number(&dir.join("memory.peak"))?,
                    oom_kills: keyed(&events, "oom_kill").unwrap_or(0),
                    kernel_peak_bytes: None,
                })
            }
            Hierarchy::V1 { .. } => {
                let (cpu, memory) = (&self.dirs[0], &self.dirs[1]);
                let oom = read(&memory.join("memory.oom_control"))?;
                Ok(GroupStats {
                    cpu: CpuStat::parse_v1(&read(&cpu.join("cpu.stat"))?),
                    peak_bytes: read_number(&memory.join("memory.max_usage_in_bytes"))?,
                    oom_kills: keyed(&oom, "oom_kill").unwrap_or(0),
                    kernel_peak_bytes: read_number(&memory.join("memory.kmem.max_usage_in_bytes")).ok(),
                })
            }
        }
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        // rmdir fails while a process is still inside; the caller kills the function first. A moment may
        // pass before the kernel lets go of an exited process.
        for dir in &self.dirs {
            for _ in 0..50 {
                if std::fs::remove_dir(dir).is_ok() || !dir.exists() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

/// What the group's counters say after a burst.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GroupStats {
    pub cpu: CpuStat,
    /// The highest charged memory since the group was created.
    pub peak_bytes: u64,
    /// Processes the kernel's OOM killer ended inside the group.
    pub oom_kills: u64,
    /// v1 only (`memory.kmem.max_usage_in_bytes`): the kernel's share of the peak (socket buffers when
    /// accounted, page tables, slab); the rest is the process's own pages.
    pub kernel_peak_bytes: Option<u64>,
}

/// `cpu.stat`: how often the quota ran out and for how long the group then waited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CpuStat {
    pub periods: u64,
    pub throttled_periods: u64,
    pub throttled: Duration,
}

impl CpuStat {
    /// v1: `nr_periods`, `nr_throttled`, `throttled_time` (ns).
    fn parse_v1(text: &str) -> CpuStat {
        CpuStat {
            periods: keyed(text, "nr_periods").unwrap_or(0),
            throttled_periods: keyed(text, "nr_throttled").unwrap_or(0),
            throttled: Duration::from_nanos(keyed(text, "throttled_time").unwrap_or(0)),
        }
    }

    /// v2: `nr_periods`, `nr_throttled`, `throttled_usec`.
    fn parse_v2(text: &str) -> CpuStat {
        CpuStat {
            periods: keyed(text, "nr_periods").unwrap_or(0),
            throttled_periods: keyed(text, "nr_throttled").unwrap_or(0),
            throttled: Duration::from_micros(keyed(text, "throttled_usec").unwrap_or(0)),
        }
    }

    pub fn since(self, before: CpuStat) -> CpuStat {
        CpuStat {
            periods: self.periods.saturating_sub(before.periods),
            throttled_periods: self.throttled_periods.saturating_sub(before.throttled_periods),
            throttled: self.throttled.saturating_sub(before.throttled),
        }
    }
}

/// The value of a `key value` line (`cpu.stat`, `memory.events`, `memory.oom_control`).
fn keyed(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (name, value) = line.split_once(' ')?;
        (name == key).then(|| value.trim().parse().ok()).flatten()
    })
}

fn read(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))
}

fn read_number(path: &Path) -> Result<u64, String> {
    let text = read(path)?;
    text.trim().parse().map_err(|_| format!("{}: not a number: {text:?}", path.display()))
}

fn write(path: &Path, value: &str) -> Result<(), String> {
    std::fs::write(path, value).map_err(|e| format!("cannot write {value:?} to {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_groups_come_from_proc_self_cgroup() {
        let v1 = "9:name=systemd:/\n4:memory:/process_api/abc\n1:cpu:/\n2:cpu,cpuacct:/box\n0::/\n";
        let own = OwnGroups::parse(v1);
        assert_eq!(own, OwnGroups { unified: "/".into(), cpu: "/box".into(), memory: "/process_api/abc".into() });
        let v2 = OwnGroups::parse("0::/user.slice/session-1.scope\n");
        assert_eq!(v2.unified, "/user.slice/session-1.scope");
        assert_eq!(v2.memory, "/");
    }

    #[test]
    fn cpu_stat_of_both_versions() {
        let v1 = "nr_periods 120\nnr_throttled 40\nthrottled_time 2500000000\nnr_bursts 0\nburst_time 0\n";
        assert_eq!(
            CpuStat::parse_v1(v1),
            CpuStat { periods: 120, throttled_periods: 40, throttled: Duration::from_millis(2500) }
        );
        let v2 = "usage_usec 900\nuser_usec 600\nsystem_usec 300\nnr_periods 7\nnr_throttled 3\nthrottled_usec 1500\n";
        assert_eq!(
            CpuStat::parse_v2(v2),
            CpuStat { periods: 7, throttled_periods: 3, throttled: Duration::from_micros(1500) }
        );
        let later = CpuStat { periods: 130, throttled_periods: 45, throttled: Duration::from_millis(3000) };
        let delta = later.since(CpuStat::parse_v1(v1));
        assert_eq!(delta, CpuStat { periods: 10, throttled_periods: 5, throttled: Duration::from_millis(500) });
    }

    #[test]
    fn oom_kills_of_both_versions() {
        let v1 = "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n";
        assert_eq!(keyed(v1, "oom_kill"), Some(2));
        // `oom_kill_disable` must not be read as `oom_kill`.
        assert_eq!(keyed("oom_kill_disable 1\n", "oom_kill"), None);
        let v2 = "low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\noom_group_kill 0\n";
        assert_eq!(keyed(v2, "oom_kill"), Some(1));
        assert_eq!(keyed(v2, "oom"), Some(1));
    }

    #[test]
    fn limits_as_the_kernel_takes_them() {
        let smallest = Limits { vcpu: 0.05, memory_mib: 128 };
        assert_eq!(smallest.quota_us(), 5_000);
        assert_eq!(smallest.memory_bytes(), 134_217_728);
        assert_eq!(Limits { vcpu: 0.35, memory_mib: 512 }.quota_us(), 35_000);
        assert_eq!(Limits { vcpu: 1.0, memory_mib: 1024 }.quota_us(), 100_000);
    }
}
