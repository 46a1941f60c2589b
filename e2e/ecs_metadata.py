"""A stand-in for the ECS task metadata endpoint v4 of one Fargate task with two containers, the
app (`app`) and the collector sidecar (`otel-collector`), both logging with the awslogs driver. Names follow infra/ecs.tf and infra/observability.tf. The JSON follows the documented v4 shape (Fargate): `${ECS_CONTAINER_METADATA_URI_V4}`
answers the calling container's own metadata, `${ECS_CONTAINER_METADATA_URI_V4}/task` the task's.
Each container gets its own base URL, as ECS hands each its own variable.
"""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from support import SERVICE_NAME

REGION = "eu-west-1"
ACCOUNT = "123456789012"
CLUSTER = SERVICE_NAME  # infra/ecs.tf: cluster and family are var.name
TASK_ID = "8f0e4c6b2a1d4e9f8c7b6a5d4e3f2a1b"
TASK_ARN = f"arn:aws:ecs:{REGION}:{ACCOUNT}:task/{CLUSTER}/{TASK_ID}"
FAMILY = SERVICE_NAME
REVISION = "7"
ZONE = f"{REGION}a"
APP, COLLECTOR = "app", "otel-collector"
LOG_GROUP = f"/ecs/{FAMILY}/{APP}"  # the app's; the collector's ends in /otel-collector


def _container(name: str, index: int, status: str) -> dict:
    docker_id = f"{TASK_ID}-{1000 + index}"
    return {
        "DockerId": docker_id,
        "Name": name,
        "DockerName": name,
        "Image": f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/{FAMILY}:0123abc",
        "ImageID": "sha256:" + f"{index:x}" * 64,
        "Labels": {
            "com.amazonaws.ecs.cluster": f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/{CLUSTER}",
            "com.amazonaws.ecs.container-name": name,
            "com.amazonaws.ecs.task-arn": TASK_ARN,
            "com.amazonaws.ecs.task-definition-family": FAMILY,
            "com.amazonaws.ecs.task-definition-version": REVISION,
        },
        "DesiredStatus": "RUNNING",
        "KnownStatus": status,
        "Limits": {"CPU": 0, "Memory": 0},
        "CreatedAt": "2026-11-28T08:00:00.000000000Z",
        "StartedAt": "2026-11-28T08:00:01.000000000Z",
        "Type": "NORMAL",
        "LogDriver": "awslogs",
        "LogOptions": {
            "awslogs-group": f"/ecs/{FAMILY}/{name}",
            "awslogs-region": REGION,
            "awslogs-stream": f"{name}/{name}/{TASK_ID}",  # awslogs-stream-prefix = the name
        },
        "ContainerARN": f"arn:aws:ecs:{REGION}:{ACCOUNT}:container/{CLUSTER}/{TASK_ID}/{index:08x}",
        "Networks": [{
            "NetworkMode": "awsvpc",
            "IPv4Addresses": ["127.0.0.1"],
            "AttachmentIndex": 0,
            "IPv4SubnetCIDRBlock": "127.0.0.0/8",
            "PrivateDNSName": "ip-127-0-0-1.eu-west-1.compute.internal",
        }],
        "Snapshotter": "overlayfs",
    }


class TaskMetadata:
    """The task as ECS describes it. The app container is PENDING until `app_running()`: in a
    real task it starts only once the collector is healthy (`dependsOn`), so the collector's
    one-time resource detection never sees it running."""

    def __init__(self):
        self.containers = {APP: _container(APP, 1, "PENDING"), COLLECTOR: _container(COLLECTOR, 2, "RUNNING")}
        self.requests: list[str] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def base_url(self, container: str) -> str:
        """The container's ECS_CONTAINER_METADATA_URI_V4."""
        port = self._server.server_address[1]
        return f"http://127.0.0.1:{port}/v4/{self.containers[container]['DockerId']}"

    def app_running(self):
        self.containers[APP]["KnownStatus"] = "RUNNING"

    def task(self) -> dict:
        return {
            "Cluster": f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/{CLUSTER}",
            "TaskARN": TASK_ARN,
            "Family": FAMILY,
            "Revision": REVISION,
            "DesiredStatus": "RUNNING",
            "KnownStatus": "RUNNING",
            "Limits": {"CPU": 0.5, "Memory": 1024},
            "PullStartedAt": "2026-11-28T07:59:50.000000000Z",
            "PullStoppedAt": "2026-11-28T07:59:58.000000000Z",
            "AvailabilityZone": ZONE,
            "LaunchType": "FARGATE",
            "Containers": list(self.containers.values()),
            "ClockDrift": {"ClockErrorBound": 0.5, "ReferenceTimestamp": "2026-11-28T08:00:00Z",
                           "ClockSynchronizationStatus": "SYNCHRONIZED"},
            "EphemeralStorageMetrics": {"Utilized": 261, "Reserved": 20496},
            "ServiceName": FAMILY,
            "VPCID": "vpc-0123456789abcdef0",
        }

    def _answer(self, path: str) -> dict | None:
        for container in self.containers.values():
            base = f"/v4/{container['DockerId']}"
            if path == base:
                return container
            if path == f"{base}/task":
                return self.task()
        return None

    def _handler(self):
        metadata = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                metadata.requests.append(self.path)
                body = metadata._answer(self.path.rstrip("/"))
                data = json.dumps(body).encode()
                self.send_response(200 if body is not None else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        return Handler

    def __enter__(self) -> "TaskMetadata":
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._server.shutdown()
        self._server.server_close()
