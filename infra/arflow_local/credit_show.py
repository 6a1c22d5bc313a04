"""`arflow credit show CUSTOMER`: a customer's grade, limit, exposure, history and decisions."""

import json
from pathlib import Path
from typing import Any, TextIO


class UnknownRunError(LookupError):
    """No run output where the command was pointed."""


def load_run(run: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    state = run / "state" / "customers.json"
    timeline = run / "timeline.jsonl"
    if not state.exists() or not timeline.exists():
        raise UnknownRunError(f"{run} holds no run: `arflow simulate ... --out {run}` writes one")
    customers = json.loads(state.read_text(encoding="utf-8"))
    events = [json.loads(line) for line in timeline.read_text(encoding="utf-8").splitlines()]
    return customers, events


def show_customer(customer_id: str, run: Path, out: TextIO, decisions_shown: int = 5) -> int:
    customers, events = load_run(run)
    if customer_id not in customers:
        known = ", ".join(sorted(customers)) or "none"
        raise UnknownRunError(f"no customer {customer_id} in {run} (customers: {known})")
    entry = customers[customer_id]
    customer = entry["customer"]
    last = customer.get("last_decision") or {}
    currency = customer.get("credit_currency") or ""
    write = out.write

    write(f"{customer['name']} ({customer_id})\n")
    write(f"  grade        {last.get('grade') or '-'} (score {last.get('score') or '-'})\n")
    write(
        f"  decision     {last.get('kind', 'none yet')} by {last.get('source', '-')}"
        f" on {str(last.get('decided_at', '-'))[:10]}\n"
    )
    write(f"  credit limit {currency} {customer.get('credit_limit') or '-'}\n")
    write(f"  exposure     {currency} {customer.get('exposure')}\n")
    write(f"  next review  {customer.get('review_due') or '-'}\n")
    holds = customer.get("holds") or {}
    write(f"  order hold   {'ON' if customer.get('on_hold') else 'off'}")
    write(f" ({', '.join(sorted(h['reason'] for h in holds.values()))})\n" if holds else "\n")
    report = customer.get("credit_report")
    if report:
        write(
            f"  report       {report['provider']} {report['reference']} of {report['report_date']}:"
            f" grade {report.get('grade')}, score {report.get('score')}\n"
        )

    own = set(entry["invoices"]) | {f"customer:{customer_id}"}
    history = [e for e in events if e["invoice_id"] in own]
    write("\nHistory\n")
    for event in history:
        write(f"  {event['at'][:16].replace('T', ' ')}  {event['event']:<24} {_gist(event)}\n")

    write(f"\nLast decisions (newest first, {decisions_shown} at most)\n")
    for decision in sorted(entry["decisions"], key=lambda d: d["decided"], reverse=True)[
        :decisions_shown
    ]:
        body = decision["body"]
        made = body.get("decision") or {}
        write(f"  {str(decision['at'])[:16].replace('T', ' ')}  {decision['kind']}\n")
        for reason in (
            made.get("reasons") or body.get("review", {}).get("reasons") or [body.get("reason", "")]
        )[:6]:
            write(f"      - {reason}\n")
    return 0


def _gist(event: dict[str, Any]) -> str:
    detail = event.get("detail") or {}
    keys = (
        "decision",
        "grade",
        "credit_limit",
        "new_limit",
        "direction",
        "exposure",
        "amount",
        "balance",
        "reason",
        "outcome",
        "invoice_number",
    )
    return ", ".join(f"{k}={detail[k]}" for k in keys if detail.get(k) not in (None, ""))
