//! The embedded store: a map in this process. For `cargo run` and `just dev`: nothing to set up,
//! but its tasks are lost at exit and other replicas do not see them.

use std::{
    collections::HashMap,
    sync::{Mutex, PoisonError},
};

use async_trait::async_trait;
use serde_json::{Map, Value};

use super::store::{Change, StoreError, TaskRecord, TaskStore, now_ms};

#[derive(Debug, Default)]
pub struct MemoryStore {
    tasks: Mutex<HashMap<String, TaskRecord>>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn locked(&self) -> std::sync::MutexGuard<'_, HashMap<String, TaskRecord>> {
        self.tasks.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl TaskStore for MemoryStore {
    async fn create(&self, record: &TaskRecord) -> Result<(), StoreError> {
        let mut tasks = self.locked();
        // Expired tasks go when new ones come, so the map stays as large as the live tasks.
        let now = now_ms();
        tasks.retain(|_, task| !task.expired(now));
        if tasks.contains_key(&record.id) {
            return Err(StoreError::Failed(format!("task {} exists", record.id)));
        }
        tasks.insert(record.id.clone(), record.clone());
        Ok(())
    }

    async fn get(&self, id: &str) -> Result<Option<TaskRecord>, StoreError> {
        Ok(self.locked().get(id).cloned())
    }

    async fn update(&self, id: &str, change: &Change, now_ms: u64) -> Result<bool, StoreError> {
        let mut tasks = self.locked();
        let Some(task) = tasks.get_mut(id).filter(|t| !t.status.is_terminal()) else {
            return Ok(false);
        };
        if let Some(status) = change.status {
            task.status = status;
        }
        if let Some(message) = &change.status_message {
            task.status_message.clone_from(message);
        }
        if let Some(requests) = &change.input_requests {
            task.input_requests.clone_from(requests);
        }
        for key in &change.taken_responses {
            task.input_responses.remove(key);
        }
        if change.result.is_some() {
            task.result.clone_from(&change.result);
        }
        if change.error.is_some() {
            task.error.clone_from(&change.error);
        }
        task.updated_at_ms = now_ms;
        Ok(true)
    }

    async fn answer(
        &self,
        id: &str,
        responses: &Map<String, Value>,
        now_ms: u64,
    ) -> Result<bool, StoreError> {
        let mut tasks = self.locked();
        let Some(task) = tasks.get_mut(id).filter(|t| !t.status.is_terminal()) else {
            return Ok(false);
        };
        for (key, value) in responses {
            task.input_responses.insert(key.clone(), value.clone());
        }
        task.updated_at_ms = now_ms;
        Ok(true)
    }

    fn kind(&self) -> &'static str {
        "memory"
    }
}
