//! The memory the process really has, which sizes the memory budget ([`super::budget`]): the
//! tightest cgroup limit on its way to the root (v2 `memory.max`, v1 `memory.limit_in_bytes`),
//! or on ECS the task's memory less the other containers' limits (a task-level limit sits on a
//! cgroup the container cannot see), whichever is lower.

use std::path::Path;

use crate::{config::HttpSettings, telemetry::ecs::EcsTask};

/// The share of the memory limit the budget may take; the rest is for everything else the
/// process holds: runtime, connections' buffers, the allocator's slack, and the parsed copy of
/// every admitted body (see README, Overload, for what a budget of bodies costs in memory).
pub const BUDGET_FRACTION: f64 = 0.35;

/// Larger cgroup values mean "no limit" (v1 writes a page-rounded `i64::MAX`).
const UNLIMITED_FROM: u64 = 1 << 60;

/// A memory limit and where it was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryLimit {
    pub bytes: u64,
    pub source: String,
}

/// The budget's size and where it came from, for the start-up log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BudgetChoice {
    /// `None`: no limit found and none configured; the budget is off.
    pub bytes: Option<u64>,
    pub source: String,
}

impl MemoryLimit {
    /// The process's limit: the lowest of its cgroups' and the ECS task's, if any.
    pub fn detect(task: Option<&EcsTask>) -> Option<Self> {
        let cgroup = std::fs::read_to_string("/proc/self/cgroup")
            .ok()
            .and_then(|own| cgroup_limit(&own, Path::new("/sys/fs/cgroup")));
        let ecs = task.and_then(ecs_limit);
        [cgroup, ecs].into_iter().flatten().min_by_key(|l| l.bytes)
    }
}

impl BudgetChoice {
    /// `http.memory_budget_bytes` when set, else [`BUDGET_FRACTION`] of the limit found.
    pub fn resolve(settings: &HttpSettings, limit: Option<&MemoryLimit>) -> Self {
        match (settings.memory_budget_bytes, limit) {
            (Some(bytes), _) => Self {
                bytes: Some(bytes),
                source: "APP__HTTP__MEMORY_BUDGET_BYTES".into(),
            },
            (None, Some(limit)) => Self {
                bytes: Some((limit.bytes as f64 * BUDGET_FRACTION) as u64),
                source: format!(
                    "{BUDGET_FRACTION} of the {} byte limit of {}",
                    limit.bytes, limit.source
                ),
            },
            (None, None) => Self {
                bytes: None,
                source: "no memory limit found: off".into(),
            },
        }
    }
}

/// The ECS task's memory less the hard limits of its other containers (the sidecar's).
fn ecs_limit(task: &EcsTask) -> Option<MemoryLimit> {
    let task_mib = task.limits.as_ref()?.memory?;
    let others: u64 = task
        .containers
        .iter()
        .filter(|c| Some(&c.name) != task.container_name.as_ref())
        .filter_map(|c| c.limits.as_ref()?.memory)
        .sum();
    let mib = task_mib.checked_sub(others).filter(|m| *m > 0)?;
    Some(MemoryLimit {
        bytes: mib << 20,
        source: format!("the ECS task ({task_mib} MiB less {others} MiB for other containers)"),
    })
}

/// The lowest limit among the cgroups `/proc/self/cgroup` names, from each up to the mount's
/// root (a container sees its own cgroup at the root; a process on a host sees the full path).
fn cgroup_limit(proc_self_cgroup: &str, mount: &Path) -> Option<MemoryLimit> {
    let mut found: Option<MemoryLimit> = None;
    for line in proc_self_cgroup.lines() {
        let mut fields = line.splitn(3, ':');
        let (Some(id), Some(controllers), Some(path)) =
            (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let (root, file) = if id == "0" && controllers.is_empty() {
            (mount.to_path_buf(), "memory.max")
        } else if controllers.split(',').any(|c| c == "memory") {
            (mount.join("memory"), "memory.limit_in_bytes")
        } else {
            continue;
        };
        let own = root.join(path.trim_start_matches('/'));
        let dirs = own.ancestors().take_while(|dir| dir.starts_with(&root));
        for dir in dirs {
            if let Some(bytes) = read_limit(&dir.join(file))
                && found.as_ref().is_none_or(|f| bytes < f.bytes)
            {
                found = Some(MemoryLimit {
                    bytes,
                    source: dir.join(file).display().to_string(),
                });
            }
        }
    }
    found
}

fn read_limit(file: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(file).ok()?;
    text.trim()
        .parse::<u64>()
        .ok()
        .filter(|b| *b > 0 && *b < UNLIMITED_FROM)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn tree(files: &[(&str, &str)]) -> PathBuf {
        let root = std::env::temp_dir().join(format!(
            "cgroup-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4()
        ));
        for (path, text) in files {
            let file = root.join(path);
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            std::fs::write(file, text).unwrap();
        }
        root
    }

    #[test]
    fn v2_takes_the_lowest_limit_up_the_tree() {
        let root = tree(&[
            ("memory.max", "max\n"),
            ("task/memory.max", "1073741824\n"),
            ("task/app/memory.max", "max\n"),
        ]);
        let limit = cgroup_limit("0::/task/app\n", &root).unwrap();
        assert_eq!(limit.bytes, 1 << 30);
        assert!(limit.source.ends_with("task/memory.max"), "{limit:?}");
    }

    #[test]
    fn v1_reads_the_memory_hierarchy_and_ignores_its_unlimited_value() {
        let root = tree(&[
            ("memory/memory.limit_in_bytes", "9223372036854771712\n"),
            ("memory/docker/abc/memory.limit_in_bytes", "805306368\n"),
        ]);
        let own = "4:memory:/docker/abc\n3:cpu,cpuacct:/docker/abc\n";
        assert_eq!(cgroup_limit(own, &root).unwrap().bytes, 768 << 20);
        // In a container the mount shows its own cgroup at the root, whatever the path says.
        let namespaced = tree(&[("memory/memory.limit_in_bytes", "536870912\n")]);
        assert_eq!(cgroup_limit(own, &namespaced).unwrap().bytes, 512 << 20);
        let unlimited = tree(&[("memory/memory.limit_in_bytes", "9223372036854771712\n")]);
        assert_eq!(cgroup_limit(own, &unlimited), None);
    }

    #[test]
    fn on_ecs_the_task_memory_less_the_sidecar_is_the_limit() {
        let task: EcsTask = serde_json::from_str(
            r#"{"TaskARN":"arn:aws:ecs:eu-west-1:1:task/c/t","Limits":{"CPU":0.5,"Memory":1024},
                "Containers":[{"Name":"app","Limits":{"CPU":0}},
                              {"Name":"otel-collector","Limits":{"CPU":0,"Memory":256}}]}"#,
        )
        .unwrap();
        let task = EcsTask {
            container_name: Some("app".into()),
            ..task
        };
        assert_eq!(ecs_limit(&task).unwrap().bytes, 768 << 20);
    }
}
