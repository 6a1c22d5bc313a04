"""The `arflow` command."""

import argparse
import logging
import os
import sys
from datetime import UTC, datetime
from pathlib import Path


def _instant(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="arflow", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    simulate = commands.add_parser(
        "simulate",
        help="run documents or scenarios through their whole lifecycle on the local stack",
    )
    simulate.add_argument("inputs", nargs="+", type=Path, help="documents, folders or scenarios")
    simulate.add_argument("--out", type=Path, default=Path("out"), help="where to write (out/)")
    simulate.add_argument("--start", type=_instant, help="virtual start (ISO date or date-time)")
    simulate.add_argument("--policy", type=Path, help="policy file (YAML) instead of the default")
    simulate.add_argument("--verbose", action="store_true", help="show the functions' logs")
    credit = commands.add_parser("credit", help="credit decisions of a run's customers")
    credit_commands = credit.add_subparsers(dest="credit_command", required=True)
    show = credit_commands.add_parser(
        "show", help="a customer's grade, limit, exposure, history and last decisions"
    )
    show.add_argument("customer", help="the customer id")
    show.add_argument("--run", type=Path, default=Path("out"), help="a run's --out folder (out/)")
    args = parser.parse_args(argv)

    if args.command == "credit":
        from arflow_local.credit_show import UnknownRunError, show_customer

        try:
            return int(show_customer(args.customer, args.run, sys.stdout))
        except UnknownRunError as error:
            sys.stderr.write(f"arflow credit show: {error}\n")
            return 2

    # Quiet unless asked: the functions log JSON lines per invocation, moto logs failed states.
    os.environ["POWERTOOLS_LOG_LEVEL"] = "INFO" if args.verbose else "ERROR"
    if not args.verbose:
        logging.getLogger("moto").setLevel(logging.CRITICAL)

    from arflow_local.run import run, summary_lines
    from arflow_local.scenario import ScenarioError, plan_inputs

    try:
        plan = plan_inputs(args.inputs)
        result = run(plan, args.out, args.start, args.policy, sys.stdout)
    except (ScenarioError, ValueError) as error:
        sys.stderr.write(f"arflow simulate: {error}\n")
        return 2

    sys.stdout.write(f"\n{plan.title}\n")
    for line in summary_lines(result):
        sys.stdout.write(line + "\n")
    sys.stdout.write(
        f"\n{len(result.accepted)} accepted, {len(result.rejections)} rejected, "
        f"{len(result.duplicates)} duplicate deliveries, {result.emails} e-mails\n"
        f"wrote {args.out / 'timeline.jsonl'}, {args.out / 'outbox'}/, "
        f"{args.out / 'report.html'}\n"
    )
    for note in result.notes:
        sys.stdout.write(f"note: {note}\n")
    return 1 if result.failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
