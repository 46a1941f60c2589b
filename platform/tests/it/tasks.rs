//! The task stores' contract, on both stores: the embedded one, and DynamoDB as moto's server
//! mode serves it (a real process on loopback, from the test venv, one request at a time:
//! e2e/moto_serial.py). A status only moves forward; a cancel racing a completion leaves exactly
//! one of them.

use std::{
    net::TcpListener,
    process::{Child, Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use aws_sdk_dynamodb::{
    config::{BehaviorVersion, Credentials, Region, SharedCredentialsProvider},
    types::{AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType},
};
use mcp_platform::tasks::{
    Change, DynamoStore, MemoryStore, StoreError, TaskRecord, TaskStore, Tasks,
};
use rmcp::model::TaskStatus;
use serde_json::{Map, json};

/// Now, in milliseconds since the epoch: the embedded store drops expired tasks.
fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn record(id: &str) -> TaskRecord {
    let now = now_ms();
    TaskRecord {
        id: id.to_owned(),
        owner: "alice".into(),
        tool: "report".into(),
        status: TaskStatus::Working,
        status_message: None,
        created_at_ms: now,
        updated_at_ms: now,
        ttl_ms: 60_000,
        poll_interval_ms: 500,
        input_requests: Map::new(),
        input_responses: Map::new(),
        result: None,
        error: None,
    }
}

fn map(value: serde_json::Value) -> Map<String, serde_json::Value> {
    value.as_object().cloned().unwrap()
}

async fn contract(store: Arc<dyn TaskStore>, prefix: &str) {
    let id = format!("{prefix}-1");
    assert_eq!(store.get(&id).await.unwrap(), None);
    let created = record(&id);
    let t = created.created_at_ms;
    store.create(&created).await.unwrap();
    assert_eq!(store.get(&id).await.unwrap(), Some(created.clone()));
    assert!(
        store.create(&created).await.is_err(),
        "ids are never reused"
    );

    // Input: the runner publishes a request, a client answers, the runner takes the answer.
    let ask = Change {
        status: Some(TaskStatus::InputRequired),
        input_requests: Some(map(json!({"publish": {"method": "elicitation/create"}}))),
        ..Change::default()
    }
    .message("waiting");
    assert!(store.update(&id, &ask, t + 2_000).await.unwrap());
    assert!(
        store
            .answer(
                &id,
                &map(json!({"publish": {"action": "accept"}})),
                t + 2_500
            )
            .await
            .unwrap()
    );
    let asked = store.get(&id).await.unwrap().unwrap();
    assert_eq!(asked.status, TaskStatus::InputRequired);
    assert_eq!(asked.status_message.as_deref(), Some("waiting"));
    assert_eq!(
        asked.input_responses["publish"],
        json!({"action": "accept"})
    );
    assert_eq!(asked.updated_at_ms, t + 2_500);
    let taken = Change {
        status: Some(TaskStatus::Working),
        status_message: Some(None),
        input_requests: Some(Map::new()),
        taken_responses: vec!["publish".into()],
        ..Change::default()
    };
    assert!(store.update(&id, &taken, t + 3_000).await.unwrap());
    let working = store.get(&id).await.unwrap().unwrap();
    assert_eq!(working.status, TaskStatus::Working);
    assert_eq!(working.status_message, None);
    assert!(working.input_requests.is_empty() && working.input_responses.is_empty());

    // Completion, then nothing moves it.
    let mut done = Change::status(TaskStatus::Completed);
    done.result = Some(json!({"content": [], "isError": false}));
    assert!(store.update(&id, &done, t + 4_000).await.unwrap());
    let cancel = Change::status(TaskStatus::Cancelled);
    assert!(!store.update(&id, &cancel, t + 5_000).await.unwrap());
    assert!(
        !store
            .answer(&id, &map(json!({"x": 1})), t + 5_000)
            .await
            .unwrap()
    );
    let completed = store.get(&id).await.unwrap().unwrap();
    assert_eq!(completed.status, TaskStatus::Completed);
    assert_eq!(completed.result, done.result);
    assert_eq!(completed.updated_at_ms, t + 4_000);

    // A missing task takes no change.
    assert!(
        !store
            .update(&format!("{prefix}-none"), &cancel, 1)
            .await
            .unwrap()
    );

    // Cancel and completion race: exactly one wins, and it is what is stored.
    for round in 0..5 {
        let id = format!("{prefix}-race-{round}");
        store.create(&record(&id)).await.unwrap();
        let writers: Vec<_> = (0..6)
            .map(|i| {
                let store = store.clone();
                let id = id.clone();
                tokio::spawn(async move {
                    let mut change = if i % 2 == 0 {
                        Change::status(TaskStatus::Cancelled)
                    } else {
                        Change::status(TaskStatus::Completed)
                    };
                    change.status_message = Some(Some(format!("writer {i}")));
                    let won = store.update(&id, &change, 10).await.unwrap();
                    (won, i)
                })
            })
            .collect();
        let mut winners = Vec::new();
        for writer in writers {
            let (won, i) = writer.await.unwrap();
            if won {
                winners.push(i);
            }
        }
        assert_eq!(winners.len(), 1, "one terminal write wins: {winners:?}");
        let stored = store.get(&id).await.unwrap().unwrap();
        let expected = if winners[0] % 2 == 0 {
            TaskStatus::Cancelled
        } else {
            TaskStatus::Completed
        };
        assert_eq!(stored.status, expected);
        assert_eq!(
            stored.status_message,
            Some(format!("writer {}", winners[0]))
        );
    }
}

#[tokio::test]
async fn memory_store_keeps_the_contract() {
    contract(Arc::new(MemoryStore::new()), "mem").await;
}

/// moto in server mode (e2e/moto_serial.py) on a free loopback port, stopped when dropped.
struct Moto {
    child: Child,
    url: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn moto() -> Moto {
    let venv = std::env::var("MCP_VENV").expect("MCP_VENV (scripts/env.sh) names the test venv");
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // One request at a time: conditional writes atomic, as DynamoDB's are (see the script).
    let serial = concat!(env!("CARGO_MANIFEST_DIR"), "/../e2e/moto_serial.py");
    let child = Command::new(format!("{venv}/bin/python"))
        .args([serial, "-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("moto runs (scripts/bootstrap.sh installs it in the test venv)");
    let url = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "moto_server did not listen");
        std::thread::sleep(Duration::from_millis(50));
    }
    Moto { child, url }
}

fn sdk(endpoint: &str, timeout: Duration) -> aws_config::SdkConfig {
    aws_config::SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            "testing", "testing", None, None, "test",
        )))
        .http_client(mcp_platform::tasks::dynamo_http_client())
        .timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .operation_timeout(timeout)
                .build(),
        )
        .build()
}

#[tokio::test]
async fn dynamodb_store_keeps_the_contract() {
    let moto = moto();
    let sdk = sdk(&moto.url, Duration::from_secs(10));
    aws_sdk_dynamodb::Client::new(&sdk)
        .create_table()
        .table_name("tasks")
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("task_id")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("task_id")
                .key_type(KeyType::Hash)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let before = now_ms();
    contract(Arc::new(DynamoStore::new(&sdk, "tasks")), "ddb").await;

    // The item carries the TTL attribute: creation + ttl, in epoch seconds.
    let item = aws_sdk_dynamodb::Client::new(&sdk)
        .get_item()
        .table_name("tasks")
        .key(
            "task_id",
            aws_sdk_dynamodb::types::AttributeValue::S("ddb-1".into()),
        )
        .send()
        .await
        .unwrap();
    let expires = item.item().unwrap()[mcp_platform::tasks::TTL_ATTRIBUTE]
        .as_n()
        .unwrap()
        .clone();
    let expires: u64 = expires.parse().unwrap();
    assert!(
        (before + 60_000).div_ceil(1000) <= expires
            && expires <= (now_ms() + 60_000).div_ceil(1000)
    );
}

#[tokio::test]
async fn an_unreachable_store_is_an_error_in_bounded_time() {
    // A port nobody listens on: connections are refused, the SDK retries, then says so.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let store = DynamoStore::new(
        &sdk(&format!("http://127.0.0.1:{port}"), Duration::from_secs(5)),
        "tasks",
    );
    let err = store.create(&record("x")).await.unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    let err = store.get("x").await.unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
}

/// Waits until the store's record of `id` satisfies `done`, and returns it.
async fn until(
    store: &Arc<dyn TaskStore>,
    id: &str,
    done: impl Fn(&TaskRecord) -> bool,
) -> TaskRecord {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let record = store.get(id).await.unwrap().unwrap();
        if done(&record) {
            return record;
        }
        assert!(Instant::now() < deadline, "never reached: {record:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Tasks on the embedded store that read their records every 10 ms.
fn quick_tasks() -> Arc<Tasks> {
    Arc::new(Tasks::new(
        Arc::new(MemoryStore::new()),
        60_000,
        10,
        Duration::from_secs(1),
    ))
}

#[tokio::test]
async fn a_tool_that_panics_fails_its_task_and_the_drain_still_ends() {
    let tasks = quick_tasks();
    let prepared = tasks.prepare("boom", "");
    tasks.store().create(prepared.record()).await.unwrap();
    let id = prepared.record().id.clone();
    tasks.start(prepared, tracing::Span::none(), async {
        tokio::time::sleep(Duration::from_millis(20)).await;
        panic!("the tool fails");
    });
    let failed = until(tasks.store(), &id, |r| r.status.is_terminal()).await;
    assert_eq!(failed.status, TaskStatus::Failed);
    assert_eq!(failed.error.unwrap()["code"], json!(-32603));
    tokio::time::timeout(Duration::from_secs(5), tasks.drained())
        .await
        .expect("no runner is left behind");
}

#[tokio::test]
async fn input_requested_in_parallel_is_answered_one_request_at_a_time() {
    let tasks = quick_tasks();
    let prepared = tasks.prepare("two questions", "");
    let work = prepared.work();
    assert_eq!(work.task_id(), None, "not a task before the store holds it");
    tasks.store().create(prepared.record()).await.unwrap();
    let id = prepared.record().id.clone();
    let question = || serde_json::from_value(json!({"method": "roots/list"})).unwrap();
    tasks.start(prepared, tracing::Span::none(), async move {
        let (first, second) = tokio::join!(
            work.request_input("first", question()),
            work.request_input("second", question()),
        );
        let text = format!("{} {}", first?["n"], second?["n"]);
        Ok(
            rmcp::model::CallToolResult::success(vec![rmcp::model::ContentBlock::text(text)])
                .into(),
        )
    });
    let store = tasks.store();
    until(store, &id, |r| r.input_requests.len() == 2).await;
    store
        .answer(&id, &map(json!({"first": {"n": 1}})), now_ms())
        .await
        .unwrap();
    let waiting = until(store, &id, |r| r.input_responses.is_empty()).await;
    assert_eq!(waiting.status, TaskStatus::InputRequired);
    assert_eq!(
        waiting.input_requests.keys().collect::<Vec<_>>(),
        ["second"]
    );
    store
        .answer(&id, &map(json!({"second": {"n": 2}})), now_ms())
        .await
        .unwrap();
    let done = until(store, &id, |r| r.status.is_terminal()).await;
    assert_eq!(done.status, TaskStatus::Completed);
    assert_eq!(done.result.unwrap()["content"][0]["text"], json!("1 2"));
}
