"""A real S3 API server for the object-storage tests: moto's server, on loopback.

It runs as its own process (``moto_server``, as ``deploy/smoke.py`` runs it for the
compose stack) with request signing checked: an IAM user with an access key is made
while the server still accepts anything, then every request must be signed with that
key, so refused credentials are refused for real.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import free_port

REGION = "us-east-1"
# Requests the server accepts unsigned while the test user is made: user, policy, key.
SETUP_REQUESTS = 3


@dataclass(frozen=True)
class S3Server:
    """Where the server listens and the key it accepts."""

    url: str
    key_id: str
    secret: str

    def client(self) -> Any:
        """Return a boto3 S3 client signed with the server's key."""
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.url,
            region_name=REGION,
            aws_access_key_id=self.key_id,
            aws_secret_access_key=self.secret,
        )

    def bucket(self) -> str:
        """Create a bucket with a fresh name and return the name."""
        name = f"churnops-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name

    def env(self) -> dict[str, str]:
        """Return the standard AWS variables pointing at this server."""
        return {
            "AWS_ACCESS_KEY_ID": self.key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret,
            "AWS_REGION": REGION,
            "AWS_ENDPOINT_URL_S3": self.url,
        }


# Anything from the developer's own AWS setup that could reach past the test server.
FOREIGN_AWS = (
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_REGION",
    "AWS_ENDPOINT_URL",
    "MLFLOW_S3_ENDPOINT_URL",
)


def aws_env(monkeypatch: pytest.MonkeyPatch, server: S3Server, tmp: Path) -> None:
    """Point the standard AWS variables at ``server``, and nothing else AWS at all."""
    for name in FOREIGN_AWS:
        monkeypatch.delenv(name, raising=False)
    for name, value in server.env().items():
        monkeypatch.setenv(name, value)
    # No shared config or credentials files, and no instance-metadata lookups.
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """Start moto's S3 server on 127.0.0.1 with signatures checked; stop it afterwards."""
    import boto3
    import httpx

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    moto = str(Path(sys.executable).parent / "moto_server")
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [moto, "-H", "127.0.0.1", "-p", str(port)], stdout=out, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 60
        while True:  # bounded by the deadline
            if proc.poll() is not None:
                pytest.fail(f"moto_server exited {proc.returncode}: {log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{url}/moto-api/", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"moto_server did not answer on {url} within 60 s")
            time.sleep(0.1)
        httpx.post(f"{url}/moto-api/reset-auth", content=str(SETUP_REQUESTS).encode())
        iam = boto3.client(
            "iam",
            endpoint_url=url,
            region_name=REGION,
            aws_access_key_id="setup",
            aws_secret_access_key="setup",
        )
        iam.create_user(UserName="churnops")
        everything = {"Effect": "Allow", "Action": "*", "Resource": "*"}
        iam.put_user_policy(
            UserName="churnops",
            PolicyName="everything",
            PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [everything]}),
        )
        key = iam.create_access_key(UserName="churnops")["AccessKey"]
        yield S3Server(url, key["AccessKeyId"], key["SecretAccessKey"])
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture
def s3(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> S3Server:
    """The S3 server, with this test's AWS variables pointing at it."""
    aws_env(monkeypatch, s3_server, tmp_path)
    return s3_server
