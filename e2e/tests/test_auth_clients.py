"""Auth on, with an official client: the TypeScript SDK connects with a bearer token minted from
the test key pair; without a token it gets the 401 challenge that points at the metadata."""
import subprocess
import time
from pathlib import Path

import jwt
import requests

from support import NODE_BIN, ROOT, TS_CLIENT

FIXTURES = ROOT / "platform/tests/fixtures"
ISSUER = "https://issuer.test.example"


def token(resource: str, scope: str = "mcp:call") -> str:
    now = int(time.time())
    claims = {"sub": "ts-client", "iss": ISSUER, "aud": resource, "iat": now, "exp": now + 300, "scope": scope}
    key = (FIXTURES / "test-signing-key.pem").read_text()
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": "test-key-1"})


def test_official_client_with_a_bearer_token(server_factory, tmp_path):
    probe = server_factory()  # learn a port layout first: the resource URL must be the real one
    probe.stop()
    server = server_factory({
        "APP__HTTP__ADDR": f"127.0.0.1:{probe.port}",
        "APP__AUTH__MODE": "jwt",
        "APP__AUTH__RESOURCE": probe.url,
        "APP__AUTH__ISSUER": ISSUER,
        "APP__AUTH__JWKS_FILE": str(FIXTURES / "test-jwks.json"),
        "APP__AUTH__REQUIRED_SCOPES": "mcp:call",
    })
    denied = requests.post(server.url, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                           headers={"Accept": "application/json, text/event-stream"}, timeout=5)
    assert denied.status_code == 401
    challenge = denied.headers["WWW-Authenticate"]
    metadata_url = f"{server.base}/.well-known/oauth-protected-resource/mcp"
    assert f'resource_metadata="{metadata_url}"' in challenge
    assert requests.get(metadata_url, timeout=5).json()["resource"] == server.url

    for sdk, mode in [("v1", "legacy"), ("v2", "pin")]:
        proc = subprocess.run([NODE_BIN, str(TS_CLIENT), "--sdk", sdk, "--mode", mode, "--url", server.url,
                               "--token", token(server.url)], capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "pong! taskId=local" in proc.stdout
    log = server.log()
    assert '"enduser.id":"ts-client"' in log, "the caller's subject reaches the logs"
    assert token(server.url) not in log
