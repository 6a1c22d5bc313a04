"""Writes the JSON Schemas in schemas/ from the models: `python -m arflow_local.schemas`.

With `--check` nothing is written; the exit status says whether the files are up to date.
"""

import argparse
import json
import sys
from pathlib import Path

from pydantic import BaseModel

from arflow.models.invoice import InvoiceDocument, Payment

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
MODELS: dict[str, type[BaseModel]] = {
    "invoice.schema.json": InvoiceDocument,
    "payment.schema.json": Payment,
}


def render() -> dict[str, str]:
    """File name to file content, for every schema."""
    rendered = {}
    for name, model in MODELS.items():
        schema = {"$schema": SCHEMA_DIALECT, **model.model_json_schema()}
        rendered[name] = json.dumps(schema, indent=2, ensure_ascii=False) + "\n"
    return rendered


def stale(directory: Path) -> list[str]:
    """The schema files in `directory` that are missing or differ from the models."""
    return [
        name
        for name, content in render().items()
        if not (directory / name).is_file() or (directory / name).read_text("utf-8") != content
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m arflow_local.schemas", description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("schemas"), help="default: ./schemas")
    parser.add_argument("--check", action="store_true", help="only report out-of-date files")
    args = parser.parse_args(argv)
    directory: Path = args.out

    if args.check:
        outdated = stale(directory)
        for name in outdated:
            sys.stderr.write(
                f"{directory / name} is out of date: run python -m arflow_local.schemas\n"
            )
        return 1 if outdated else 0

    directory.mkdir(parents=True, exist_ok=True)
    for name, content in render().items():
        (directory / name).write_text(content, "utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
