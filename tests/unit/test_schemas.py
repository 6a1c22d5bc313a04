"""The JSON Schemas in schemas/ are the models' own, and the script keeps them so."""

import json
from pathlib import Path

import pytest

from arflow_local import schemas

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", sorted(schemas.MODELS))
def test_committed_schema_is_what_the_model_generates(name: str) -> None:
    # Given the schema file in the repository
    committed = (REPO / "schemas" / name).read_text("utf-8")

    # When the schema is generated from the model
    generated = schemas.render()[name]

    # Then they are the same: if not, run python -m arflow_local.schemas
    assert committed == generated


def test_script_writes_schemas_that_describe_the_documents(tmp_path: Path) -> None:
    # Given an empty directory
    # When the script is run into it
    status = schemas.main(["--out", str(tmp_path)])

    # Then both schemas are there, valid JSON, requiring what the models require
    assert status == 0
    invoice = json.loads((tmp_path / "invoice.schema.json").read_text("utf-8"))
    payment = json.loads((tmp_path / "payment.schema.json").read_text("utf-8"))
    assert invoice["title"] == "InvoiceDocument"
    assert invoice["additionalProperties"] is False
    assert {"invoice_number", "supplier", "customer", "issue_date", "currency"} <= set(
        invoice["required"]
    )
    assert payment["title"] == "Payment"
    assert {"payment_id", "amount", "currency"} <= set(payment["required"])


def test_check_reports_a_schema_out_of_date(tmp_path: Path) -> None:
    # Given generated schemas, one of them then edited by hand
    schemas.main(["--out", str(tmp_path)])
    (tmp_path / "payment.schema.json").write_text("{}\n", "utf-8")

    # When the check is run
    outdated = schemas.main(["--out", str(tmp_path), "--check"])

    # Then it fails, naming the file
    assert outdated == 1
    assert schemas.stale(tmp_path) == ["payment.schema.json"]


def test_check_passes_on_the_repository() -> None:
    # Given the repository's schemas
    # When the check is run on them
    # Then they are up to date
    assert schemas.main(["--out", str(REPO / "schemas"), "--check"]) == 0
