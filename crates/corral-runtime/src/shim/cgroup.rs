//! Reading the container's cgroup: OOM kills and member pids.

use std::path::{Path, PathBuf};

/// The container's cgroup directories under a cgroupfs root (normally `/sys/fs/cgroup`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct CgroupProbe {
    /// cgroup v1 memory controller directory, when the v1 hierarchy has one.
    v1_memory: Option<PathBuf>,
    /// cgroup v2 directory otherwise.
    v2: Option<PathBuf>,
}

impl CgroupProbe {
    /// Finds the directories for `cgroups_path` (the spec's `linux.cgroupsPath`). Paths in
    /// systemd's `slice:prefix:name` form are not resolved (the shim disables systemd).
    pub(crate) fn new(root: &Path, cgroups_path: Option<&str>) -> Self {
        let Some(path) = cgroups_path.filter(|path| !path.contains(':')) else {
            return Self::default();
        };
        let relative = path.trim_start_matches('/');
        let memory_root = root.join("memory");
        if memory_root.is_dir() {
            // v1 (or hybrid: runtimes put the memory controller on v1 then).
            return Self {
                v1_memory: Some(memory_root.join(relative)),
                v2: None,
            };
        }
        Self {
            v1_memory: None,
            v2: Some(root.join(relative)),
        }
    }

    /// Reads `linux.cgroupsPath` from a bundle's `config.json`.
    pub(crate) fn cgroups_path_of(bundle: &Path) -> Option<String> {
        /// Only the one field: the rest of the spec is skipped, not built into a tree.
        #[derive(serde::Deserialize)]
        struct Spec {
            linux: Option<Linux>,
        }
        #[derive(serde::Deserialize)]
        struct Linux {
            #[serde(rename = "cgroupsPath")]
            cgroups_path: Option<String>,
        }
        let bytes = std::fs::read(bundle.join("config.json")).ok()?;
        let spec: Spec = serde_json::from_slice(&bytes).ok()?;
        spec.linux?.cgroups_path
    }

    /// Whether the OOM killer killed a process in the cgroup (`oom_kill` counter of
    /// `memory.oom_control` on v1, `memory.events` on v2).
    pub(crate) fn oom_killed(&self) -> bool {
        let file = match (&self.v1_memory, &self.v2) {
            (Some(dir), _) => dir.join("memory.oom_control"),
            (None, Some(dir)) => dir.join("memory.events"),
            (None, None) => return false,
        };
        let Ok(text) = std::fs::read_to_string(file) else {
            return false;
        };
        text.lines()
            .filter_map(|line| line.strip_prefix("oom_kill "))
            .filter_map(|count| count.trim().parse::<u64>().ok())
            .any(|count| count > 0)
    }

    /// Pids in the cgroup (empty when unknown).
    pub(crate) fn pids(&self) -> Vec<i32> {
        let Some(dir) = self.v1_memory.as_ref().or(self.v2.as_ref()) else {
            return Vec::new();
        };
        std::fs::read_to_string(dir.join("cgroup.procs"))
            .map(|text| {
                text.lines()
                    .filter_map(|line| line.trim().parse().ok())
                    .collect()
            })
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_v1_oom_kill_counter_and_pids() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("memory/corral/c1");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("memory.oom_control"),
            "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n",
        )
        .unwrap();
        std::fs::write(dir.join("cgroup.procs"), "12\n34\n").unwrap();
        let probe = CgroupProbe::new(root.path(), Some("/corral/c1"));
        assert!(!probe.oom_killed());
        assert_eq!(probe.pids(), [12, 34]);
        std::fs::write(dir.join("memory.oom_control"), "oom_kill 2\n").unwrap();
        assert!(probe.oom_killed());
    }

    #[test]
    fn reads_v2_memory_events() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("corral/c2");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("memory.events"), "low 0\noom 1\noom_kill 1\n").unwrap();
        assert!(CgroupProbe::new(root.path(), Some("/corral/c2")).oom_killed());
        assert!(!CgroupProbe::new(root.path(), None).oom_killed());
        assert!(!CgroupProbe::new(root.path(), Some("system.slice:corral:c2")).oom_killed());
    }

    #[test]
    fn reads_cgroups_path_from_bundle() {
        let bundle = tempfile::tempdir().unwrap();
        std::fs::write(
            bundle.path().join("config.json"),
            r#"{"linux":{"cgroupsPath":"/a/b"}}"#,
        )
        .unwrap();
        assert_eq!(
            CgroupProbe::cgroups_path_of(bundle.path()).as_deref(),
            Some("/a/b")
        );
    }
}
