//! The DynamoDB store: one item per task in one table (Terraform's `infra/tasks.tf`), keyed by
//! `task_id`, with `expires_at` (epoch seconds) as the table's TTL attribute. Reads are
//! consistent; every write but the first is conditional on the task not being terminal, so a
//! status only moves forward and a cancel racing a completion leaves one of them.
//!
//! The SDK's own spans (one per operation, its HTTP attempt below it) are children of the span
//! the call starts in: the tool call's, or the task's.

use std::{collections::HashMap, time::Duration};

use async_trait::async_trait;
use aws_config::{BehaviorVersion, Region, timeout::TimeoutConfig};
use aws_sdk_dynamodb::{
    Client,
    error::{ProvideErrorMetadata, SdkError},
    operation::update_item::builders::UpdateItemFluentBuilder,
    types::AttributeValue,
};
use aws_smithy_http_client::tls;
use serde_json::{Map, Value};

use super::store::{Change, StoreError, TaskRecord, TaskStore, parse_status, status_name};

const KEY: &str = "task_id";
/// The TTL attribute: DynamoDB deletes the item some time after it (within days); reads check
/// the expiry themselves.
pub const TTL_ATTRIBUTE: &str = "expires_at";
/// Only a task in one of these may change.
const NOT_TERMINAL: &str = "#status IN (:working, :input_required)";

/// The SDK's HTTPS client: smithy's hyper client on rustls with ring (the provider the rest of
/// the platform uses; the SDK's default would build aws-lc).
pub fn http_client() -> aws_sdk_dynamodb::config::SharedHttpClient {
    crate::install_tls_provider();
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https()
}

/// Where the table is, from `[tasks]`.
#[derive(Debug, Clone)]
pub struct DynamoOptions {
    pub table: String,
    /// A DynamoDB-compatible endpoint instead of AWS's (tests).
    pub endpoint_url: Option<String>,
    /// Overrides the region found in the environment (`AWS_REGION`).
    pub region: Option<String>,
    /// One store call, retries included; one attempt at most a third of it.
    pub timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
}

impl DynamoStore {
    /// Builds the client: credentials and region as the SDK finds them (environment, ECS
    /// container credentials, ...). Fails (a configuration error) when no region is known.
    pub async fn connect(options: &DynamoOptions) -> Result<Self, String> {
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(options.timeout / 3)
            .operation_attempt_timeout(options.timeout / 3)
            .operation_timeout(options.timeout)
            .build();
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .http_client(http_client())
            .timeout_config(timeouts);
        if let Some(region) = &options.region {
            loader = loader.region(Region::new(region.clone()));
        }
        if let Some(endpoint) = &options.endpoint_url {
            loader = loader.endpoint_url(endpoint);
        }
        let sdk = loader.load().await;
        if sdk.region().is_none() {
            return Err("no AWS region: set AWS_REGION or APP__TASKS__REGION".into());
        }
        Ok(Self::new(&sdk, &options.table))
    }

    /// A store on `table` with an SDK configuration made elsewhere (tests).
    pub fn new(sdk: &aws_config::SdkConfig, table: &str) -> Self {
        Self {
            client: Client::new(sdk),
            table: table.to_owned(),
        }
    }

    fn key(id: &str) -> (String, AttributeValue) {
        (KEY.to_owned(), AttributeValue::S(id.to_owned()))
    }

    /// An update of task `id` (stamped `:now`) that applies only while it is not terminal.
    fn update_unless_terminal(&self, id: &str, now_ms: u64) -> UpdateItemFluentBuilder {
        let (k, v) = Self::key(id);
        self.client
            .update_item()
            .table_name(&self.table)
            .key(k, v)
            .condition_expression(NOT_TERMINAL)
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":working", s("working"))
            .expression_attribute_values(":input_required", s("input_required"))
            .expression_attribute_values(":now", n(now_ms))
    }
}

/// Sends a conditional update: `Ok(false)` when the task was terminal (or missing).
async fn unless_terminal(request: UpdateItemFluentBuilder) -> Result<bool, StoreError> {
    match request.send().await {
        Ok(_) => Ok(true),
        Err(e) if conditional_failed(&e) => Ok(false),
        Err(e) => Err(classify(&e)),
    }
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: u64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// A JSON map as a DynamoDB map of JSON strings (one attribute per key, so one key can be set or
/// removed by itself).
fn json_map(map: &Map<String, Value>) -> AttributeValue {
    AttributeValue::M(
        map.iter()
            .map(|(k, v)| (k.clone(), s(v.to_string())))
            .collect(),
    )
}

fn item(record: &TaskRecord) -> HashMap<String, AttributeValue> {
    let mut item = HashMap::from([
        DynamoStore::key(&record.id),
        ("owner".into(), s(&record.owner)),
        ("tool".into(), s(&record.tool)),
        ("status".into(), s(status_name(record.status))),
        ("created_at".into(), n(record.created_at_ms)),
        ("updated_at".into(), n(record.updated_at_ms)),
        ("ttl_ms".into(), n(record.ttl_ms)),
        ("poll_interval_ms".into(), n(record.poll_interval_ms)),
        (
            TTL_ATTRIBUTE.into(),
            n(record.expires_at_ms().div_ceil(1000)),
        ),
        ("input_requests".into(), json_map(&record.input_requests)),
        ("input_responses".into(), json_map(&record.input_responses)),
    ]);
    if let Some(message) = &record.status_message {
        item.insert("status_message".into(), s(message));
    }
    if let Some(result) = &record.result {
        item.insert("result".into(), s(result.to_string()));
    }
    if let Some(error) = &record.error {
        item.insert("error".into(), s(error.to_string()));
    }
    item
}

fn record(item: &HashMap<String, AttributeValue>) -> Result<TaskRecord, StoreError> {
    let bad = |what: &str| StoreError::Failed(format!("malformed task item: {what}"));
    let text = |k: &str| item.get(k).and_then(|v| v.as_s().ok()).cloned();
    let number = |k: &str| {
        item.get(k)
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .ok_or_else(|| bad(k))
    };
    let json = |k: &str| -> Result<Option<Value>, StoreError> {
        text(k)
            .map(|t| serde_json::from_str(&t).map_err(|_| bad(k)))
            .transpose()
    };
    let map = |k: &str| -> Result<Map<String, Value>, StoreError> {
        let Some(AttributeValue::M(m)) = item.get(k) else {
            return Ok(Map::new());
        };
        m.iter()
            .map(|(key, v)| {
                let t = v.as_s().map_err(|_| bad(k))?;
                Ok((key.clone(), serde_json::from_str(t).map_err(|_| bad(k))?))
            })
            .collect()
    };
    Ok(TaskRecord {
        id: text(KEY).ok_or_else(|| bad(KEY))?,
        owner: text("owner").unwrap_or_default(),
        tool: text("tool").unwrap_or_default(),
        status: text("status")
            .as_deref()
            .and_then(parse_status)
            .ok_or_else(|| bad("status"))?,
        status_message: text("status_message"),
        created_at_ms: number("created_at")?,
        updated_at_ms: number("updated_at")?,
        ttl_ms: number("ttl_ms")?,
        poll_interval_ms: number("poll_interval_ms")?,
        input_requests: map("input_requests")?,
        input_responses: map("input_responses")?,
        result: json("result")?,
        error: json("error")?,
    })
}

/// The SDK's error as ours: throttling, unreachable, or anything else.
fn classify<E, R>(err: &SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let detail = aws_sdk_dynamodb::error::DisplayErrorContext(err).to_string();
    match err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => StoreError::Unavailable(detail),
        SdkError::ServiceError(e) => match e.err().code() {
            Some(
                "ThrottlingException"
                | "ProvisionedThroughputExceededException"
                | "RequestLimitExceeded",
            ) => StoreError::Throttled(detail),
            Some("ServiceUnavailable" | "InternalServerError") => StoreError::Unavailable(detail),
            _ => StoreError::Failed(detail),
        },
        SdkError::ResponseError(_) => StoreError::Unavailable(detail),
        _ => StoreError::Failed(detail),
    }
}

fn conditional_failed<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> bool {
    matches!(err, SdkError::ServiceError(e) if e.err().code() == Some("ConditionalCheckFailedException"))
}

#[async_trait]
impl TaskStore for DynamoStore {
    async fn create(&self, record: &TaskRecord) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item(record)))
            .condition_expression("attribute_not_exists(#key)")
            .expression_attribute_names("#key", KEY)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify(&e))
    }

    async fn get(&self, id: &str) -> Result<Option<TaskRecord>, StoreError> {
        let (k, v) = Self::key(id);
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(k, v)
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| classify(&e))?;
        out.item().map(record).transpose()
    }

    async fn update(&self, id: &str, change: &Change, now_ms: u64) -> Result<bool, StoreError> {
        let mut sets = vec!["updated_at = :now".to_owned()];
        let mut removes = Vec::new();
        let mut request = self.update_unless_terminal(id, now_ms);
        if let Some(status) = change.status {
            sets.push("#status = :status".into());
            request = request.expression_attribute_values(":status", s(status_name(status)));
        }
        match &change.status_message {
            Some(Some(message)) => {
                sets.push("status_message = :message".into());
                request = request.expression_attribute_values(":message", s(message));
            }
            Some(None) => removes.push("status_message".to_owned()),
            None => {}
        }
        if let Some(requests) = &change.input_requests {
            sets.push("input_requests = :requests".into());
            request = request.expression_attribute_values(":requests", json_map(requests));
        }
        for (i, key) in change.taken_responses.iter().enumerate() {
            let name = format!("#taken{i}");
            removes.push(format!("input_responses.{name}"));
            request = request.expression_attribute_names(name, key);
        }
        if let Some(result) = &change.result {
            sets.push("#result = :result".into());
            request = request
                .expression_attribute_names("#result", "result")
                .expression_attribute_values(":result", s(result.to_string()));
        }
        if let Some(error) = &change.error {
            sets.push("#error = :error".into());
            request = request
                .expression_attribute_names("#error", "error")
                .expression_attribute_values(":error", s(error.to_string()));
        }
        let mut expression = format!("SET {}", sets.join(", "));
        if !removes.is_empty() {
            expression.push_str(&format!(" REMOVE {}", removes.join(", ")));
        }
        unless_terminal(request.update_expression(expression)).await
    }

    async fn answer(
        &self,
        id: &str,
        responses: &Map<String, Value>,
        now_ms: u64,
    ) -> Result<bool, StoreError> {
        if responses.is_empty() {
            return Ok(true);
        }
        let mut sets = vec!["updated_at = :now".to_owned()];
        let mut request = self.update_unless_terminal(id, now_ms);
        for (i, (key, value)) in responses.iter().enumerate() {
            sets.push(format!("input_responses.#k{i} = :v{i}"));
            request = request
                .expression_attribute_names(format!("#k{i}"), key)
                .expression_attribute_values(format!(":v{i}"), s(value.to_string()));
        }
        unless_terminal(request.update_expression(format!("SET {}", sets.join(", ")))).await
    }

    fn kind(&self) -> &'static str {
        "dynamodb"
    }
}
