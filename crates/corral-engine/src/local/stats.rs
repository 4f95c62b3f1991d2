//! `docker stats`: one sample of a container's cgroup counters, in Docker's stats JSON.
//!
//! The readers are pure functions over a cgroupfs root and a procfs root, so tests feed
//! them fixture trees. Both cgroup layouts are read: v1 (one hierarchy per controller,
//! `<root>/<controller>/<path>`; also what hybrid hosts use) and v2 (unified,
//! `<root>/<path>`), told apart by `<root>/cgroup.controllers`. The field meanings follow
//! the kernel's cgroup-v1 (`cpuacct.txt`, `memory.txt`, `blkio-controller.txt`) and
//! cgroup-v2 (`cgroup-v2.rst`) documents; the JSON follows the Engine API's
//! `ContainerStatsResponse`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Value};

use super::LocalEngine;
use crate::error::{Error, Result};

/// Where cgroupfs is mounted.
const CGROUP_ROOT: &str = "/sys/fs/cgroup";
/// Where procfs is mounted.
const PROC_ROOT: &str = "/proc";
/// `USER_HZ`: the unit of `/proc/stat` and `cpuacct.stat` (fixed at 100 on Linux, as
/// dockerd also assumes).
const CLOCK_TICKS: u64 = 100;
const NANOS_PER_TICK: u64 = 1_000_000_000 / CLOCK_TICKS;
/// Docker's zero time, for samples never taken.
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// One blkio counter of one device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BlkioEntry {
    pub(crate) major: u64,
    pub(crate) minor: u64,
    pub(crate) op: String,
    pub(crate) value: u64,
}

/// The counters of one cgroup. Missing files read as zero or absent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct CgroupSample {
    pub(crate) pids_current: Option<u64>,
    pub(crate) pids_limit: Option<u64>,
    pub(crate) cpu_total_ns: u64,
    pub(crate) cpu_user_ns: u64,
    pub(crate) cpu_kernel_ns: u64,
    /// Per-CPU usage (v1 only).
    pub(crate) percpu_ns: Vec<u64>,
    pub(crate) throttle_periods: u64,
    pub(crate) throttled_periods: u64,
    pub(crate) throttled_ns: u64,
    pub(crate) mem_usage: Option<u64>,
    /// Peak usage (v1 only).
    pub(crate) mem_max_usage: Option<u64>,
    /// The limit, `None` when unlimited.
    pub(crate) mem_limit: Option<u64>,
    pub(crate) mem_failcnt: u64,
    pub(crate) mem_stats: BTreeMap<String, u64>,
    pub(crate) io_bytes: Vec<BlkioEntry>,
    pub(crate) io_ops: Vec<BlkioEntry>,
}

/// Host-wide numbers the stats are relative to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct HostSample {
    /// All CPU time on the host since boot, in nanoseconds (`/proc/stat`'s `cpu` line).
    pub(crate) system_cpu_ns: u64,
    /// Number of CPUs listed in `/proc/stat`.
    pub(crate) online_cpus: u64,
    /// `MemTotal` in bytes.
    pub(crate) mem_total: u64,
}

// === readers ===

/// Reads the cgroup at `path` (`/corral-<instance>/<id>`) under cgroupfs `root`.
pub(crate) fn read_cgroup(root: &Path, path: &str) -> CgroupSample {
    let rel = path.trim_start_matches('/');
    if root.join("cgroup.controllers").exists() {
        read_v2(&root.join(rel))
    } else {
        read_v1(root, rel)
    }
}

fn read(p: PathBuf) -> Option<String> {
    std::fs::read_to_string(p).ok()
}

fn read_u64(p: PathBuf) -> Option<u64> {
    read(p).and_then(|s| s.trim().parse().ok())
}

fn read_v1(root: &Path, rel: &str) -> CgroupSample {
    let dir = |ctrl: &str| root.join(ctrl).join(rel);
    let acct = dir("cpuacct");
    let cpu_stat = parse_keyed(&read(dir("cpu").join("cpu.stat")).unwrap_or_default());
    let acct_stat = parse_keyed(&read(acct.join("cpuacct.stat")).unwrap_or_default());
    let mem = dir("memory");
    let blkio = dir("blkio");
    CgroupSample {
        pids_current: read_u64(dir("pids").join("pids.current")),
        pids_limit: read(dir("pids").join("pids.max")).and_then(|s| parse_limit(&s)),
        cpu_total_ns: read_u64(acct.join("cpuacct.usage")).unwrap_or(0),
        cpu_user_ns: acct_stat.get("user").copied().unwrap_or(0) * NANOS_PER_TICK,
        cpu_kernel_ns: acct_stat.get("system").copied().unwrap_or(0) * NANOS_PER_TICK,
        percpu_ns: read(acct.join("cpuacct.usage_percpu"))
            .map(|s| {
                s.split_whitespace()
                    .filter_map(|v| v.parse().ok())
                    .collect()
            })
            .unwrap_or_default(),
        throttle_periods: cpu_stat.get("nr_periods").copied().unwrap_or(0),
        throttled_periods: cpu_stat.get("nr_throttled").copied().unwrap_or(0),
        throttled_ns: cpu_stat.get("throttled_time").copied().unwrap_or(0),
        mem_usage: read_u64(mem.join("memory.usage_in_bytes")),
        mem_max_usage: read_u64(mem.join("memory.max_usage_in_bytes")),
        mem_limit: read(mem.join("memory.limit_in_bytes")).and_then(|s| parse_limit(&s)),
        mem_failcnt: read_u64(mem.join("memory.failcnt")).unwrap_or(0),
        mem_stats: parse_keyed(&read(mem.join("memory.stat")).unwrap_or_default()),
        io_bytes: parse_v1_blkio(
            &read(blkio.join("blkio.throttle.io_service_bytes_recursive")).unwrap_or_default(),
        ),
        io_ops: parse_v1_blkio(
            &read(blkio.join("blkio.throttle.io_serviced_recursive")).unwrap_or_default(),
        ),
    }
}

fn read_v2(dir: &Path) -> CgroupSample {
    let cpu = parse_keyed(&read(dir.join("cpu.stat")).unwrap_or_default());
    let us = |k: &str| cpu.get(k).copied().unwrap_or(0) * 1000;
    let (io_bytes, io_ops) = parse_io_stat(&read(dir.join("io.stat")).unwrap_or_default());
    CgroupSample {
        pids_current: read_u64(dir.join("pids.current")),
        pids_limit: read(dir.join("pids.max")).and_then(|s| parse_limit(&s)),
        cpu_total_ns: us("usage_usec"),
        cpu_user_ns: us("user_usec"),
        cpu_kernel_ns: us("system_usec"),
        percpu_ns: Vec::new(),
        throttle_periods: cpu.get("nr_periods").copied().unwrap_or(0),
        throttled_periods: cpu.get("nr_throttled").copied().unwrap_or(0),
        throttled_ns: us("throttled_usec"),
        mem_usage: read_u64(dir.join("memory.current")),
        mem_max_usage: None,
        mem_limit: read(dir.join("memory.max")).and_then(|s| parse_limit(&s)),
        mem_failcnt: 0,
        mem_stats: parse_keyed(&read(dir.join("memory.stat")).unwrap_or_default()),
        io_bytes,
        io_ops,
    }
}

/// Reads `/proc/stat` and `/proc/meminfo` under `proc_root`.
pub(crate) fn read_host(proc_root: &Path) -> HostSample {
    let (system_cpu_ns, online_cpus) =
        parse_proc_stat(&read(proc_root.join("stat")).unwrap_or_default());
    HostSample {
        system_cpu_ns,
        online_cpus,
        mem_total: parse_meminfo_total(&read(proc_root.join("meminfo")).unwrap_or_default())
            .unwrap_or(0),
    }
}

// === parsers ===

/// `key value` lines (`memory.stat`, `cpu.stat`, `cpuacct.stat`).
pub(crate) fn parse_keyed(s: &str) -> BTreeMap<String, u64> {
    s.lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let k = it.next()?;
            let v = it.next()?.parse().ok()?;
            Some((k.to_owned(), v))
        })
        .collect()
}

/// A limit file: `max` (v2) or a v1 value at or above 2^62 (the kernel's "unlimited",
/// page-rounded) mean no limit.
pub(crate) fn parse_limit(s: &str) -> Option<u64> {
    let s = s.trim();
    if s == "max" {
        return None;
    }
    s.parse::<u64>().ok().filter(|v| *v < (1 << 62))
}

/// v1 `blkio.*_recursive`: `MAJ:MIN Op value` lines, then a `Total value` line that has
/// no device and is dropped.
pub(crate) fn parse_v1_blkio(s: &str) -> Vec<BlkioEntry> {
    s.lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let (dev, op, value) = (it.next()?, it.next()?, it.next()?);
            let (major, minor) = parse_dev(dev)?;
            Some(BlkioEntry {
                major,
                minor,
                op: op.to_owned(),
                value: value.parse().ok()?,
            })
        })
        .collect()
}

fn parse_dev(dev: &str) -> Option<(u64, u64)> {
    let (a, b) = dev.split_once(':')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

/// v2 `io.stat`: `MAJ:MIN rbytes=… wbytes=… rios=… wios=… …` → (bytes, operations), each
/// as `read` and `write` entries, as dockerd reports them on cgroup v2.
pub(crate) fn parse_io_stat(s: &str) -> (Vec<BlkioEntry>, Vec<BlkioEntry>) {
    let mut bytes = Vec::new();
    let mut ops = Vec::new();
    for l in s.lines() {
        let mut it = l.split_whitespace();
        let Some((major, minor)) = it.next().and_then(parse_dev) else {
            continue;
        };
        let kv: BTreeMap<&str, u64> = it
            .filter_map(|f| {
                let (k, v) = f.split_once('=')?;
                Some((k, v.parse().ok()?))
            })
            .collect();
        let entry = |op: &str, key: &str| BlkioEntry {
            major,
            minor,
            op: op.to_owned(),
            value: kv.get(key).copied().unwrap_or(0),
        };
        bytes.push(entry("read", "rbytes"));
        bytes.push(entry("write", "wbytes"));
        ops.push(entry("read", "rios"));
        ops.push(entry("write", "wios"));
    }
    (bytes, ops)
}

/// `/proc/stat`: the `cpu` line's user..steal ticks summed, in nanoseconds (as dockerd's
/// `getSystemCPUUsage`), and the number of `cpuN` lines.
pub(crate) fn parse_proc_stat(s: &str) -> (u64, u64) {
    let mut total = 0;
    let mut cpus = 0;
    for l in s.lines() {
        let mut it = l.split_whitespace();
        match it.next() {
            Some("cpu") => {
                total = it
                    .take(7)
                    .filter_map(|v| v.parse::<u64>().ok())
                    .sum::<u64>()
                    * NANOS_PER_TICK;
            }
            Some(c) if c.starts_with("cpu") => cpus += 1,
            _ => {}
        }
    }
    (total, cpus)
}

/// `MemTotal` from `/proc/meminfo`, in bytes.
pub(crate) fn parse_meminfo_total(s: &str) -> Option<u64> {
    let line = s.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

// === JSON ===

fn blkio_json(entries: &[BlkioEntry]) -> Value {
    Value::Array(
        entries
            .iter()
            .map(|e| json!({"major": e.major, "minor": e.minor, "op": e.op, "value": e.value}))
            .collect(),
    )
}

/// A sample of a running container as the Engine API's stats JSON (no `precpu_stats`).
pub(crate) fn stats_json(
    id: &str,
    name: &str,
    read: DateTime<Utc>,
    cg: &CgroupSample,
    host: &HostSample,
) -> Value {
    let mut pids = json!({});
    if let Some(c) = cg.pids_current {
        pids["current"] = json!(c);
    }
    if let Some(l) = cg.pids_limit {
        pids["limit"] = json!(l);
    }
    let mut usage = json!({
        "total_usage": cg.cpu_total_ns,
        "usage_in_kernelmode": cg.cpu_kernel_ns,
        "usage_in_usermode": cg.cpu_user_ns,
    });
    if !cg.percpu_ns.is_empty() {
        usage["percpu_usage"] = json!(cg.percpu_ns);
    }
    // dockerd caps the limit at the host's memory: "no limit" shows as the host's size.
    let limit = cg.mem_limit.map_or(host.mem_total, |l| {
        if host.mem_total > 0 {
            l.min(host.mem_total)
        } else {
            l
        }
    });
    let mut memory = json!({
        "usage": cg.mem_usage.unwrap_or(0),
        "stats": cg.mem_stats,
        "limit": limit,
    });
    if let Some(m) = cg.mem_max_usage {
        memory["max_usage"] = json!(m);
    }
    if cg.mem_failcnt > 0 {
        memory["failcnt"] = json!(cg.mem_failcnt);
    }
    // Without a memory controller (no usage file) dockerd reports no memory stats at
    // all, which the CLI shows as `0B / 0B`.
    if cg.mem_usage.is_none() {
        memory = json!({});
    }
    json!({
        "read": read.to_rfc3339_opts(SecondsFormat::Nanos, true),
        "preread": ZERO_TIME,
        "pids_stats": pids,
        "blkio_stats": {
            "io_service_bytes_recursive": blkio_json(&cg.io_bytes),
            "io_serviced_recursive": blkio_json(&cg.io_ops),
            "io_queue_recursive": [],
            "io_service_time_recursive": [],
            "io_wait_time_recursive": [],
            "io_merged_recursive": [],
            "io_time_recursive": [],
            "sectors_recursive": [],
        },
        "num_procs": 0,
        "storage_stats": {},
        "cpu_stats": {
            "cpu_usage": usage,
            "system_cpu_usage": host.system_cpu_ns,
            "online_cpus": host.online_cpus,
            "throttling_data": {
                "periods": cg.throttle_periods,
                "throttled_periods": cg.throttled_periods,
                "throttled_time": cg.throttled_ns,
            },
        },
        "memory_stats": memory,
        "name": name,
        "id": id,
    })
}

/// What dockerd reports for a container that is not running: zero times and counters.
pub(crate) fn stopped_stats_json(id: &str, name: &str) -> Value {
    json!({
        "read": ZERO_TIME,
        "preread": ZERO_TIME,
        "pids_stats": {},
        "blkio_stats": {
            "io_service_bytes_recursive": null,
            "io_serviced_recursive": null,
            "io_queue_recursive": null,
            "io_service_time_recursive": null,
            "io_wait_time_recursive": null,
            "io_merged_recursive": null,
            "io_time_recursive": null,
            "sectors_recursive": null,
        },
        "num_procs": 0,
        "storage_stats": {},
        "cpu_stats": {
            "cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
            "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0},
        },
        "memory_stats": {},
        "name": name,
        "id": id,
    })
}

// === impl LocalEngine ===

impl LocalEngine {
    /// One stats sample of a container (all zeros when it is not running).
    pub(crate) async fn container_stats(&self, name: &str) -> Result<Value> {
        let rec = self.lookup(name)?.snapshot();
        let id = rec.id.as_str().to_owned();
        let display = format!("/{}", rec.name);
        if !rec.state.status.is_alive() || rec.state.pid == 0 {
            return Ok(stopped_stats_json(&id, &display));
        }
        let path = self.cgroups_path(&id);
        let (cg, host) = tokio::task::spawn_blocking(move || {
            (
                read_cgroup(Path::new(CGROUP_ROOT), &path),
                read_host(Path::new(PROC_ROOT)),
            )
        })
        .await
        .map_err(|e| Error::Internal(e.to_string()))?;
        Ok(stats_json(&id, &display, Utc::now(), &cg, &host))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(root: &Path, rel: &str, content: &str) {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }

    const CG: &str = "/corral-t/abc";

    fn v1_fixture(root: &Path) {
        let c = "corral-t/abc";
        write(root, &format!("pids/{c}/pids.current"), "3\n");
        write(root, &format!("pids/{c}/pids.max"), "max\n");
        write(root, &format!("cpuacct/{c}/cpuacct.usage"), "18547993\n");
        write(
            root,
            &format!("cpuacct/{c}/cpuacct.usage_percpu"),
            "4308643 14239350 \n",
        );
        write(
            root,
            &format!("cpuacct/{c}/cpuacct.stat"),
            "user 12\nsystem 3\n",
        );
        write(
            root,
            &format!("cpu/{c}/cpu.stat"),
            "nr_periods 10\nnr_throttled 2\nthrottled_time 5000\nnr_bursts 0\nburst_time 0\n",
        );
        write(
            root,
            &format!("memory/{c}/memory.usage_in_bytes"),
            "557056\n",
        );
        write(
            root,
            &format!("memory/{c}/memory.max_usage_in_bytes"),
            "4079616\n",
        );
        write(
            root,
            &format!("memory/{c}/memory.limit_in_bytes"),
            "9223372036854771712\n",
        );
        write(root, &format!("memory/{c}/memory.failcnt"), "0\n");
        write(
            root,
            &format!("memory/{c}/memory.stat"),
            "cache 4096\nrss 49152\ntotal_inactive_file 0\n",
        );
        write(
            root,
            &format!("blkio/{c}/blkio.throttle.io_service_bytes_recursive"),
            "8:0 Read 4096\n8:0 Write 8192\n8:0 Total 12288\nTotal 12288\n",
        );
        write(
            root,
            &format!("blkio/{c}/blkio.throttle.io_serviced_recursive"),
            "8:0 Read 1\n8:0 Write 2\nTotal 3\n",
        );
    }

    #[test]
    fn reads_a_cgroup_v1_hierarchy() {
        let d = tempfile::tempdir().unwrap();
        v1_fixture(d.path());
        let s = read_cgroup(d.path(), CG);
        assert_eq!(s.pids_current, Some(3));
        assert_eq!(s.pids_limit, None);
        assert_eq!(s.cpu_total_ns, 18_547_993);
        assert_eq!(s.percpu_ns, vec![4_308_643, 14_239_350]);
        assert_eq!(s.cpu_user_ns, 120_000_000);
        assert_eq!(s.cpu_kernel_ns, 30_000_000);
        assert_eq!(
            (s.throttle_periods, s.throttled_periods, s.throttled_ns),
            (10, 2, 5000)
        );
        assert_eq!(s.mem_usage, Some(557_056));
        assert_eq!(s.mem_max_usage, Some(4_079_616));
        assert_eq!(s.mem_limit, None, "the v1 'unlimited' value");
        assert_eq!(s.mem_stats["rss"], 49152);
        assert_eq!(s.io_bytes.len(), 3);
        assert_eq!(
            s.io_bytes[1],
            BlkioEntry {
                major: 8,
                minor: 0,
                op: "Write".into(),
                value: 8192
            }
        );
        assert_eq!(s.io_ops.len(), 2);
    }

    #[test]
    fn reads_a_cgroup_v2_directory() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        write(r, "cgroup.controllers", "cpu io memory pids\n");
        let c = "corral-t/abc";
        write(r, &format!("{c}/pids.current"), "2\n");
        write(r, &format!("{c}/pids.max"), "100\n");
        write(
            r,
            &format!("{c}/cpu.stat"),
            "usage_usec 2500\nuser_usec 2000\nsystem_usec 500\nnr_periods 4\nnr_throttled 1\nthrottled_usec 7\n",
        );
        write(r, &format!("{c}/memory.current"), "1048576\n");
        write(r, &format!("{c}/memory.max"), "67108864\n");
        write(
            r,
            &format!("{c}/memory.stat"),
            "anon 4096\nfile 8192\ninactive_file 100\n",
        );
        write(
            r,
            &format!("{c}/io.stat"),
            "8:0 rbytes=10 wbytes=20 rios=1 wios=2 dbytes=0 dios=0\n",
        );
        let s = read_cgroup(r, CG);
        assert_eq!((s.pids_current, s.pids_limit), (Some(2), Some(100)));
        assert_eq!(
            (s.cpu_total_ns, s.cpu_user_ns, s.cpu_kernel_ns),
            (2_500_000, 2_000_000, 500_000)
        );
        assert!(s.percpu_ns.is_empty());
        assert_eq!(
            (s.throttle_periods, s.throttled_periods, s.throttled_ns),
            (4, 1, 7000)
        );
        assert_eq!(
            (s.mem_usage, s.mem_limit),
            (Some(1_048_576), Some(67_108_864))
        );
        assert_eq!(s.mem_max_usage, None);
        assert_eq!(s.mem_stats["inactive_file"], 100);
        let ops: Vec<(&str, u64)> = s
            .io_bytes
            .iter()
            .map(|e| (e.op.as_str(), e.value))
            .collect();
        assert_eq!(ops, [("read", 10), ("write", 20)]);
        let ops: Vec<(&str, u64)> = s.io_ops.iter().map(|e| (e.op.as_str(), e.value)).collect();
        assert_eq!(ops, [("read", 1), ("write", 2)]);
    }

    #[test]
    fn missing_cgroup_reads_as_empty() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(read_cgroup(d.path(), CG), CgroupSample::default());
    }

    #[test]
    fn reads_host_cpu_and_memory() {
        let d = tempfile::tempdir().unwrap();
        write(
            d.path(),
            "stat",
            "cpu  136774 0 45547 559313 2013 0 596 39 0 0\ncpu0 1 2 3 4 5 6 7 0 0 0\ncpu1 1 2 3 4 5 6 7 0 0 0\nintr 1 2\nctxt 5\n",
        );
        write(
            d.path(),
            "meminfo",
            "MemTotal:       24684100 kB\nMemFree: 1 kB\n",
        );
        let h = read_host(d.path());
        assert_eq!(
            h.system_cpu_ns,
            (136_774 + 45_547 + 559_313 + 2013 + 596) * 10_000_000
        );
        assert_eq!(h.online_cpus, 2);
        assert_eq!(h.mem_total, 24_684_100 * 1024);
    }

    #[test]
    fn parses_limits() {
        assert_eq!(parse_limit("max\n"), None);
        assert_eq!(parse_limit("9223372036854771712"), None);
        assert_eq!(parse_limit("67108864\n"), Some(67_108_864));
        assert_eq!(parse_limit("junk"), None);
    }

    #[test]
    fn renders_docker_stats_json() {
        let d = tempfile::tempdir().unwrap();
        v1_fixture(d.path());
        let cg = read_cgroup(d.path(), CG);
        let host = HostSample {
            system_cpu_ns: 7_431_880_000_000,
            online_cpus: 2,
            mem_total: 1 << 34,
        };
        let t = DateTime::parse_from_rfc3339("2024-05-06T07:08:09.123456789Z")
            .unwrap()
            .with_timezone(&Utc);
        let v = stats_json("abc", "/web", t, &cg, &host);
        assert_eq!(v["read"], "2024-05-06T07:08:09.123456789Z");
        assert_eq!(v["name"], "/web");
        assert_eq!(v["id"], "abc");
        assert_eq!(v["pids_stats"], json!({"current": 3}));
        assert_eq!(v["cpu_stats"]["cpu_usage"]["total_usage"], 18_547_993);
        assert_eq!(
            v["cpu_stats"]["cpu_usage"]["percpu_usage"],
            json!([4_308_643, 14_239_350])
        );
        assert_eq!(v["cpu_stats"]["system_cpu_usage"], 7_431_880_000_000_u64);
        assert_eq!(v["cpu_stats"]["online_cpus"], 2);
        assert_eq!(v["cpu_stats"]["throttling_data"]["throttled_periods"], 2);
        assert_eq!(v["memory_stats"]["usage"], 557_056);
        assert_eq!(v["memory_stats"]["max_usage"], 4_079_616);
        // Unlimited shows as the host's memory.
        assert_eq!(v["memory_stats"]["limit"], 1_u64 << 34);
        assert_eq!(v["memory_stats"]["stats"]["cache"], 4096);
        assert!(v["memory_stats"].get("failcnt").is_none());
        assert_eq!(
            v["blkio_stats"]["io_service_bytes_recursive"][0],
            json!({"major": 8, "minor": 0, "op": "Read", "value": 4096})
        );
        assert!(v.get("precpu_stats").is_none());

        // A limit below the host's memory is reported as is.
        let limited = CgroupSample {
            mem_limit: Some(1 << 20),
            ..cg
        };
        let v = stats_json("abc", "/web", t, &limited, &host);
        assert_eq!(v["memory_stats"]["limit"], 1 << 20);

        // No memory controller (no usage file): no memory stats, as dockerd.
        let no_memory = CgroupSample {
            mem_usage: None,
            ..limited
        };
        let v = stats_json("abc", "/web", t, &no_memory, &host);
        assert_eq!(v["memory_stats"], json!({}));
    }

    #[test]
    fn stopped_container_reports_zeros() {
        let v = stopped_stats_json("abc", "/web");
        assert_eq!(v["read"], ZERO_TIME);
        assert_eq!(v["cpu_stats"]["cpu_usage"]["total_usage"], 0);
        assert_eq!(v["memory_stats"], json!({}));
        assert_eq!(v["pids_stats"], json!({}));
        assert_eq!(v["name"], "/web");
    }
}
