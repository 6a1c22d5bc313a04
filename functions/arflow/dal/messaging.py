"""Adapters for what goes out: e-mail (SES), finance notices (SNS), hold events (EventBridge),
letters and packs (S3); and for what configures: secrets and the policy."""

import json
import threading
import time
from datetime import datetime
from typing import Any

import yaml
from pydantic import ValidationError

from arflow.config import ConfigurationError
from arflow.dal.aws import client
from arflow.models.policy import Policy


class Mailer:
    def __init__(self, region: str) -> None:
        self._ses = client("ses", region)

    def send(self, sender: str, recipient: str, raw_message: bytes) -> str:
        response = self._ses.send_raw_email(
            Source=sender, Destinations=[recipient], RawMessage={"Data": raw_message}
        )
        return str(response["MessageId"])


class FinanceNotifier:
    def __init__(self, topic_arn: str, region: str) -> None:
        self._topic_arn = topic_arn
        self._sns = client("sns", region)

    def publish(self, subject: str, message: str, attributes: dict[str, str]) -> str:
        response = self._sns.publish(
            TopicArn=self._topic_arn,
            Subject=subject[:99],
            Message=message,
            MessageAttributes={
                k: {"DataType": "String", "StringValue": v} for k, v in attributes.items()
            },
        )
        return str(response["MessageId"])


class HoldEvents:
    """OrderHoldPlaced / OrderHoldReleased on the order-hold bus, for order systems."""

    SOURCE = "arflow.credit-control"

    def __init__(self, bus_name: str, region: str) -> None:
        self._bus = bus_name
        self._events = client("events", region)

    def emit(self, detail_type: str, detail: dict[str, Any], at: datetime) -> None:
        response = self._events.put_events(
            Entries=[
                {
                    "Time": at,
                    "Source": self.SOURCE,
                    "DetailType": detail_type,
                    "Detail": json.dumps(detail, default=str),
                    "EventBusName": self._bus,
                }
            ]
        )
        if response.get("FailedEntryCount"):
            raise RuntimeError(f"{detail_type} was not accepted by the event bus")


class DocumentStore:
    def __init__(self, bucket: str, region: str) -> None:
        self._bucket = bucket
        self._s3 = client("s3", region)

    def put(self, key: str, body: bytes, content_type: str) -> str:
        self._s3.put_object(
            Bucket=self._bucket,
            Key=key,
            Body=body,
            ContentType=content_type,
            ServerSideEncryption="AES256",
        )
        return key

    def get(self, key: str) -> bytes:
        return bytes(self._s3.get_object(Bucket=self._bucket, Key=key)["Body"].read())

    def keys(self, prefix: str) -> list[str]:
        response = self._s3.list_objects_v2(Bucket=self._bucket, Prefix=prefix)
        return [str(o["Key"]) for o in response.get("Contents", [])]


_cache_lock = threading.Lock()
_secret_cache: dict[str, str] = {}
_policy_cache: dict[str, tuple[float, str, Policy]] = {}


def secret_value(secret_arn: str, region: str) -> str:
    """A secret's string, read once per process (rotation takes effect on the next cold start)."""
    with _cache_lock:
        if secret_arn in _secret_cache:
            return _secret_cache[secret_arn]
    value = str(
        client("secretsmanager", region).get_secret_value(SecretId=secret_arn)["SecretString"]
    )
    with _cache_lock:
        _secret_cache[secret_arn] = value
    return value


# A warm function re-reads the policy at most this often (seconds of wall time).
POLICY_MAX_AGE = 30.0


def load_policy(parameter_name: str, region: str) -> Policy:
    """The policy document from SSM, validated; a changed policy takes effect within
    POLICY_MAX_AGE seconds on a warm function, at once on a cold one."""
    with _cache_lock:
        cached = _policy_cache.get(parameter_name)
    if cached is not None and time.monotonic() - cached[0] < POLICY_MAX_AGE:
        return cached[2]
    raw = str(client("ssm", region).get_parameter(Name=parameter_name)["Parameter"]["Value"])
    if cached is not None and cached[1] == raw:
        policy = cached[2]
    else:
        try:
            policy = Policy.from_text(raw)
        except (yaml.YAMLError, ValidationError) as error:
            raise ConfigurationError(
                f"the policy in {parameter_name} is invalid: {error}"
            ) from error
    with _cache_lock:
        _policy_cache[parameter_name] = (time.monotonic(), raw, policy)
    return policy


def forget_cached_configuration() -> None:
    with _cache_lock:
        _secret_cache.clear()
        _policy_cache.clear()
