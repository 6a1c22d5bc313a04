"""boto3 clients, created once per process and shared (low-level clients are thread-safe)."""

import json
import threading
from typing import Any

import boto3
from botocore.config import Config

# Standard retry mode: back-off with jitter on throttling and transient service errors.
_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5})
_clients: dict[tuple[str, str], Any] = {}
_lock = threading.Lock()


def client(service: str, region: str) -> Any:
    key = (service, region)
    found = _clients.get(key)
    if found is not None:
        return found
    with _lock:
        if key not in _clients:
            _clients[key] = boto3.client(service, region_name=region, config=_CONFIG)  # type: ignore[call-overload]
        return _clients[key]


def forget_clients() -> None:
    """Drop cached clients (a test or a local run that changes credentials or endpoints)."""
    with _lock:
        _clients.clear()


def api_key_from_secret(secret: str, what: str) -> str:
    """An API key from a SecretString: the key itself, or JSON `{"api_key": "..."}`."""
    text = secret.strip()
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict):
        key = parsed.get("api_key")
        if not isinstance(key, str) or not key.strip():
            raise ValueError(f"the {what} secret's JSON has no api_key")
        return key.strip()
    if not text:
        raise ValueError(f"the {what} secret is empty")
    return text
