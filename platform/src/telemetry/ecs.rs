//! ECS task metadata (endpoint v4), read once at start-up: which task this is, for the `ping`
//! tool and the telemetry resource. Outside ECS the variable is absent and nothing is fetched.

use std::time::Duration;

use serde::Deserialize;

pub const METADATA_ENV: &str = "ECS_CONTAINER_METADATA_URI_V4";
const FETCH_TIMEOUT: Duration = Duration::from_secs(2);

/// The task facts we use, from `GET $ECS_CONTAINER_METADATA_URI_V4/task`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct EcsTask {
    #[serde(rename = "TaskARN")]
    pub task_arn: String,
    #[serde(rename = "Cluster", default)]
    pub cluster: String,
    #[serde(rename = "Family", default)]
    pub family: String,
    #[serde(rename = "Revision", default)]
    pub revision: String,
    #[serde(rename = "AvailabilityZone", default)]
    pub availability_zone: String,
    #[serde(rename = "LaunchType", default)]
    pub launch_type: String,
    /// Where this container's stdout goes (`awslogs` driver), from the container's own metadata.
    #[serde(skip)]
    pub logs: Option<LogDestination>,
    /// The task's CPU and memory (the memory budget's basis).
    #[serde(rename = "Limits", default)]
    pub limits: Option<Limits>,
    #[serde(rename = "Containers", default)]
    pub containers: Vec<TaskContainer>,
    /// This container's name, from its own metadata.
    #[serde(skip)]
    pub container_name: Option<String>,
}

/// A container of the task, as the task metadata lists it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct TaskContainer {
    #[serde(rename = "Name", default)]
    pub name: String,
    #[serde(rename = "Limits", default)]
    pub limits: Option<Limits>,
}

/// Memory in MiB (absent when the task or container sets none).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Limits {
    #[serde(rename = "Memory", default)]
    pub memory: Option<u64>,
}

/// The CloudWatch log group and stream of this container.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct LogDestination {
    #[serde(rename = "awslogs-group")]
    pub group: String,
    #[serde(rename = "awslogs-stream", default)]
    pub stream: String,
}

/// `GET $ECS_CONTAINER_METADATA_URI_V4`: the container's own metadata.
#[derive(Deserialize)]
struct Container {
    #[serde(rename = "Name", default)]
    name: Option<String>,
    #[serde(rename = "LogOptions", default)]
    log_options: Option<LogDestination>,
}

impl EcsTask {
    /// The task id: the last part of the task ARN.
    pub fn task_id(&self) -> &str {
        self.task_arn.rsplit('/').next().unwrap_or(&self.task_arn)
    }

    /// Reads the metadata when running on ECS. A failure is logged, not fatal: the service
    /// works without it (the task id then reads `unknown`).
    pub async fn detect() -> Option<Result<Self, String>> {
        let base = std::env::var(METADATA_ENV).ok().filter(|v| !v.is_empty())?;
        let base = base.trim_end_matches('/');
        let mut task = match fetch::<Self>(&format!("{base}/task")).await {
            Ok(task) => task,
            Err(err) => return Some(Err(err)),
        };
        let container = fetch::<Container>(base).await.ok();
        task.container_name = container.as_ref().and_then(|c| c.name.clone());
        // Without the awslogs driver there is no log group to link to.
        task.logs = container
            .and_then(|container| container.log_options)
            .filter(|logs| !logs.group.is_empty());
        Some(Ok(task))
    }
}

async fn fetch<T: serde::de::DeserializeOwned>(url: &str) -> Result<T, String> {
    let client = crate::http_client_builder()
        .timeout(FETCH_TIMEOUT)
        .build()
        .map_err(|e| e.to_string())?;
    let response = client
        .get(url)
        .send()
        .await
        .map_err(|e| format!("GET {url}: {e}"))?;
    if !response.status().is_success() {
        return Err(format!("GET {url}: HTTP {}", response.status()));
    }
    response
        .json::<T>()
        .await
        .map_err(|e| format!("GET {url}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_id_is_the_last_arn_segment() {
        let t: EcsTask = serde_json::from_str(
            r#"{"TaskARN":"arn:aws:ecs:eu-west-1:123456789012:task/mcp/4f1c2d3e","Cluster":"mcp",
                "Family":"some-service","Revision":"7","AvailabilityZone":"eu-west-1a","LaunchType":"FARGATE"}"#,
        )
        .unwrap();
        assert_eq!(t.task_id(), "4f1c2d3e");
        assert_eq!(t.launch_type, "FARGATE");
    }
}
