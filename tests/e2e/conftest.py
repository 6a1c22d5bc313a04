"""What the end-to-end tests share: invoice bodies built from one base document, the sending of
them, and the timeline read by invoice and event."""

import copy
import json
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

import pytest

from arflow.dal.store import Invoices
from arflow.models.records import InvoiceRecord
from arflow_local.simulation import Simulation

BASE_INVOICE = Path(__file__).resolve().parents[1] / "events" / "e2e" / "invoice.json"

Entry = dict[str, Any]


def _merged(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """`base` with `overrides` laid over it: objects merge key by key, None takes a key out."""
    merged = copy.deepcopy(base)
    for key, value in overrides.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merged(merged[key], value)
        else:
            merged[key] = value
    return merged


@pytest.fixture(scope="session")
def invoice_json() -> Callable[..., bytes]:
    """Builds a canonical invoice body: the base invoice with the given fields changed.

    `invoice_json(invoice_number="X", customer={"email": None})` renumbers the invoice and takes
    the buyer's e-mail address out; everything else stays as in tests/events/e2e/invoice.json.
    """
    base = json.loads(BASE_INVOICE.read_text(encoding="utf-8"))

    def build(**overrides: Any) -> bytes:
        return json.dumps(_merged(base, overrides), indent=2).encode()

    return build


@pytest.fixture(scope="session")
def send_invoice() -> Callable[[Simulation, bytes], dict[str, Any]]:
    """Posts a canonical invoice and insists it was accepted; returns the answer's body."""

    def send(sim: Simulation, body: bytes) -> dict[str, Any]:
        answer = sim.post_document(body, "application/json")
        assert answer.status == 202, answer.body
        accepted: dict[str, Any] = answer.json()
        assert accepted["status"] == "accepted"
        return accepted

    return send


@pytest.fixture(scope="session")
def stored_invoice() -> Callable[[Simulation, str], InvoiceRecord]:
    """The invoice as the product stored it."""

    def read(sim: Simulation, invoice_id: str) -> InvoiceRecord:
        return Invoices(sim.stack.ref("InvoicesTable"), sim.stack.region).require(invoice_id)

    return read


def _select(
    timeline: list[Entry], invoice_id: str | None = None, event: str | Collection[str] | None = None
) -> list[Entry]:
    wanted = {event} if isinstance(event, str) else set(event) if event is not None else None
    return [
        entry
        for entry in timeline
        if (invoice_id is None or entry["invoice_id"] == invoice_id)
        and (wanted is None or entry["event"] in wanted)
    ]


@pytest.fixture(scope="session")
def events_of() -> Callable[..., list[Entry]]:
    """Timeline entries of one invoice, of one event (or a set of events), or both."""
    return _select


@pytest.fixture(scope="session")
def story_of() -> Callable[[list[Entry], str], list[tuple[str, str]]]:
    """One invoice's timeline as (instant, event) pairs: what happened, and exactly when."""

    def story(timeline: list[Entry], invoice_id: str) -> list[tuple[str, str]]:
        return [(entry["at"], entry["event"]) for entry in _select(timeline, invoice_id)]

    return story
