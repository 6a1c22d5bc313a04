"""The benchmark: a ledger's worth of invoices through their whole lifecycles, timed.

It builds the kind of plan `arflow simulate` runs (canonical JSON documents and payment events,
under the demo's policy), runs it on the local stack, and says how long it took, how much memory it
used, how every lifecycle ended, and what importing each handler costs in a fresh interpreter.
"""

import argparse
import cProfile
import itertools
import json
import logging
import os
import pstats
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO

from arflow_local.run import RunResult, run
from arflow_local.scenario import Plan, ScenarioEvent, document_delivery
from arflow_local.stack import REPO_ROOT

POLICY_PATH = REPO_ROOT / "examples" / "demo" / "policy.yaml"
FIRST_ISSUE_DATE = date(2026, 9, 1)
ISSUE_DAYS = 28  # invoices are issued on the working days of four weeks

# The payment behaviour of a ledger: shares of the invoices, in the order they are handed out.
PAID_EARLY, PAID_LATE, PART_PAID, NEVER_PAID = "paid_early", "paid_late", "part_paid", "never_paid"
PAYMENT_MIX = ((PAID_EARLY, 0.40), (PAID_LATE, 0.25), (PART_PAID, 0.10), (NEVER_PAID, 0.25))

HANDLER_MODULES = tuple(
    f"arflow.handlers.{name}"
    for name in (
        "invoice_ingest",
        "payment_ingest",
        "hold_status",
        "credit_check",
        "lifecycle",
        "reminders",
        "escalation",
        "order_hold",
        "insurance_claim",
    )
)
BASELINE_MODULE = "boto3"

SUPPLIER = {
    "id": "GB-SUP-0001",
    "name": "Brightwater Components Ltd",
    "email": "accounts@brightwater.example",
    "country": "GB",
    "vat_id": "GB123456789",
}
PAYMENT_INSTRUCTIONS = {
    "iban": "GB33BUKB20201555555555",
    "bic": "BUKBGB22",
    "account_name": "Brightwater Components Ltd",
}
_NAME_FIRST = ("Harbour", "Lumen", "Atlas", "Nordic", "Meridian", "Copper", "Granite", "Willow")
_NAME_SECOND = ("Foods", "Retail", "Construction", "Tools", "Logistics", "Textiles", "Energy")
_NAME_FORM = {"GB": "Ltd", "NL": "BV", "FR": "SA", "SE": "AB", "DE": "GmbH"}
_CHINESE_CITY = ("深圳", "上海", "苏州", "宁波")
_CHINESE_NAME = ("华星", "金桥", "远航", "东方", "新源")
_CHINESE_TRADE = ("电子", "机械", "贸易")


# The ledger.


@dataclass(frozen=True)
class Customer:
    id: str
    name: str
    country: str
    email: str | None
    locale: str | None

    def party(self) -> dict[str, Any]:
        party: dict[str, Any] = {"id": self.id, "name": self.name, "country": self.country}
        if self.email:
            party["email"] = self.email
        if self.locale:
            party["locale"] = self.locale
        return party


def customers(count: int, rng: random.Random) -> list[Customer]:
    """Buyers in five European countries and China; most can be e-mailed, some only written to."""
    made = []
    for number in range(1, count + 1):
        customer_id = f"CUST-{number:05d}"
        if rng.random() < 0.15:
            name = (
                rng.choice(_CHINESE_CITY)
                + rng.choice(_CHINESE_NAME)
                + rng.choice(_CHINESE_TRADE)
                + "有限公司"
            )
            country, locale = "CN", "zh-CN"
        else:
            country = rng.choice(tuple(_NAME_FORM))
            first, second = rng.choice(_NAME_FIRST), rng.choice(_NAME_SECOND)
            name = f"{first} {second} {number} {_NAME_FORM[country]}"
            locale = None
        email = f"payables@{customer_id.lower()}.example" if rng.random() < 0.85 else None
        made.append(Customer(customer_id, name, country, email, locale))
    return made


def issue_dates(rng: random.Random) -> Iterator[date]:
    working_days = [
        day
        for day in (FIRST_ISSUE_DATE + timedelta(days=n) for n in range(ISSUE_DAYS))
        if day.weekday() < 5
    ]
    while True:
        yield rng.choice(working_days)


def invoice_document(
    number: str, customer: Customer, issued: date, rng: random.Random
) -> dict[str, Any]:
    """A canonical invoice: most state their due date, some only their terms, some neither."""
    currency = rng.choices(("EUR", "GBP", "USD"), weights=(6, 3, 1))[0]
    amount = Decimal(rng.randrange(25_000, 2_000_000)) / 100
    document: dict[str, Any] = {
        "invoice_number": number,
        "supplier": SUPPLIER,
        "customer": customer.party(),
        "issue_date": issued.isoformat(),
        "currency": currency,
        "total_amount": str(amount),
        "payment_instructions": {**PAYMENT_INSTRUCTIONS, "payment_reference": number},
        "lines": [
            {"description": "Precision bearings, batch", "quantity": 1, "amount": str(amount)}
        ],
    }
    terms = rng.random()
    if terms < 0.7:
        document["due_date"] = (issued + timedelta(days=30)).isoformat()
    elif terms < 0.9:
        document["payment_terms"] = "Payment within 45 days"
        document["payment_terms_days"] = 45
    return document


def payment_events(
    number: str, behaviour: str, total: Decimal, rng: random.Random
) -> list[ScenarioEvent]:
    def paid(at: str, amount: Decimal | str = "balance") -> ScenarioEvent:
        return ScenarioEvent.model_validate(
            {"at": at, "kind": "payment", "invoice": number, "amount": amount}
        )

    if behaviour == PAID_EARLY:
        return [paid(f"due-{rng.randint(1, 20)}")]
    if behaviour == PAID_LATE:
        return [paid(f"due+{rng.randint(3, 30)}")]
    if behaviour == PART_PAID:
        share = Decimal(rng.randint(20, 80)) / 100
        return [paid(f"due+{rng.randint(0, 20)}", (total * share).quantize(Decimal("0.01")))]
    return []


def behaviours(count: int, rng: random.Random) -> list[str]:
    """The payment mix in exact shares (the last one takes the rounding), shuffled."""
    handed_out: list[str] = []
    for behaviour, share in PAYMENT_MIX[:-1]:
        handed_out += [behaviour] * round(count * share)
    handed_out += [PAYMENT_MIX[-1][0]] * max(count - len(handed_out), 0)
    handed_out = handed_out[:count]
    rng.shuffle(handed_out)
    return handed_out


def ledger_plan(count: int, seed: int) -> Plan:
    """The plan: `count` invoices of one supplier to count/4 customers, and what each one pays."""
    rng = random.Random(seed)  # noqa: S311 - a repeatable ledger, not a secret
    buyers = customers(max(1, count // 4), rng)
    # A few customers take most of the invoices, as in any ledger.
    weights = [1 / (rank + 1) ** 0.5 for rank in range(len(buyers))]
    dates = issue_dates(rng)
    deliveries, events = [], []
    for index, behaviour in enumerate(behaviours(count, rng), start=1):
        number = f"BENCH-2026-{index:05d}"
        customer = rng.choices(buyers, weights=weights)[0]
        document = invoice_document(number, customer, next(dates), rng)
        body = json.dumps(document, indent=2, ensure_ascii=False).encode()
        deliveries.append(document_delivery(Path(f"bench/{number}.json"), body))
        events += payment_events(number, behaviour, Decimal(document["total_amount"]), rng)
    title = f"Benchmark ledger: {count} invoices, {len(buyers)} customers"
    return Plan(title, deliveries, events, policy_path=POLICY_PATH)


# Measuring.


@dataclass
class Outcomes:
    invoices: int
    accepted: int
    rejected: int
    ended: Counter[str]
    failures: int
    notes: list[str]

    @property
    def all_ended(self) -> bool:
        return self.rejected == 0 and sum(self.ended.values()) == self.invoices == self.accepted


def outcomes(invoices: int, result: RunResult) -> Outcomes:
    ended: dict[str, str] = {}
    for entry in result.timeline:
        if entry["event"] == "lifecycle_ended":
            ended[entry["invoice_id"]] = str(entry["detail"].get("outcome"))
    return Outcomes(
        invoices=invoices,
        accepted=len(result.accepted),
        rejected=len(result.rejections),
        ended=Counter(ended.values()),
        failures=result.failures,
        notes=list(result.notes),
    )


@dataclass(frozen=True)
class Usage:
    """What the process has used so far (all its threads)."""

    cpu_seconds: float
    voluntary_switches: int  # a thread blocked: a wait, a lock, a handover to another thread
    forced_switches: int  # the system took the CPU away

    @classmethod
    def now(cls) -> "Usage":
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return cls(usage.ru_utime + usage.ru_stime, usage.ru_nvcsw, usage.ru_nivcsw)

    def since(self, earlier: "Usage") -> "Usage":
        return Usage(
            self.cpu_seconds - earlier.cpu_seconds,
            self.voluntary_switches - earlier.voluntary_switches,
            self.forced_switches - earlier.forced_switches,
        )


def peak_rss_mib() -> float:
    # Linux reports ru_maxrss in KiB.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class ThreadCount:
    """The most threads alive at once during a run, sampled from a thread of its own."""

    def __init__(self, every: float = 0.1) -> None:
        self.peak = threading.active_count()
        self._every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> "ThreadCount":
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        while not self._stop.wait(self._every):
            self.peak = max(self.peak, threading.active_count())


@dataclass(frozen=True)
class ProfileSettings:
    """How a run is profiled: on which clock, and which threads."""

    clock: str = "cpu"  # "cpu": each thread's CPU time; "wall": elapsed time, cheaper
    one_in: int = 1  # the driver, and one execution thread in this many

    @property
    def timer(self) -> Callable[[], float]:
        return time.thread_time if self.clock == "cpu" else time.perf_counter


@contextmanager
def profiled_threads(into: list[cProfile.Profile], settings: ProfileSettings) -> Iterator[None]:
    """Profile the calling thread and the threads started meanwhile, one profile per thread.

    Each execution runs in its own thread, parked on the virtual clock most of the time. On the
    CPU clock a parked thread costs nothing, but reading that clock is a system call on every
    function call and return. On the wall clock the interpreter is told to switch threads only
    where one blocks, so time is charged to the thread that works, and a blocking call (a wait on
    the clock, a lock, a system call) is charged with whatever ran meanwhile.
    """
    guard = threading.Lock()
    started = itertools.count()

    def start_in_new_thread(*_: Any) -> None:
        sys.setprofile(None)
        if next(started) % settings.one_in:
            return
        profile = cProfile.Profile(settings.timer)
        with guard:
            into.append(profile)
        profile.enable()

    main = cProfile.Profile(settings.timer)
    into.append(main)
    switch_interval = sys.getswitchinterval()
    if settings.clock == "wall":
        sys.setswitchinterval(60.0)
    threading.setprofile(start_in_new_thread)
    main.enable()
    try:
        yield
    finally:
        main.disable()
        threading.setprofile(None)
        sys.setswitchinterval(switch_interval)


def write_profile(
    profiles: list[cProfile.Profile],
    settings: ProfileSettings,
    stream: TextIO,
    save_to: Path | None,
    top: int,
) -> None:
    # A thread that ended took its profiler's hook with it; its figures stay readable.
    stats = pstats.Stats(profiles[0], stream=stream)
    for profile in profiles[1:]:
        stats.add(profile)
    if save_to is not None:
        stats.dump_stats(str(save_to))
        stream.write(f"profile written to {save_to}\n")
    sampled = (
        f", the driver and one execution thread in {settings.one_in}" if settings.one_in > 1 else ""
    )
    stream.write(f"\nprofile: {len(profiles)} threads on the {settings.clock} clock{sampled}\n")
    stats.sort_stats(pstats.SortKey.CUMULATIVE).print_stats(top)
    stats.sort_stats(pstats.SortKey.TIME).print_stats(top)


@dataclass
class ImportCost:
    module: str
    milliseconds: float  # the module's cumulative import time, as -X importtime reports it
    process_milliseconds: float  # the whole interpreter, from start to exit
    modules_loaded: int
    heaviest: list[tuple[str, float]]  # top-level packages by their own import time
    error: str | None = None


def import_cost(module: str, runs: int) -> ImportCost:
    """Import the module alone in fresh interpreters; the median of the runs."""
    samples = [_import_once(module) for _ in range(runs)]
    failed = next((s for s in samples if s.error), None)
    if failed is not None:
        return failed
    samples.sort(key=lambda s: s.milliseconds)
    median = samples[len(samples) // 2]
    median.milliseconds = statistics.median(s.milliseconds for s in samples)
    median.process_milliseconds = statistics.median(s.process_milliseconds for s in samples)
    return median


def _import_once(module: str) -> ImportCost:
    started = time.perf_counter()
    # S603: the interpreter running this benchmark, with a module name from this file.
    finished = subprocess.run(  # noqa: S603
        [sys.executable, "-X", "importtime", "-c", f"import {module}"],
        capture_output=True,
        text=True,
        check=False,
    )
    process_ms = (time.perf_counter() - started) * 1000
    if finished.returncode != 0:
        last_line = (finished.stderr.strip().splitlines() or ["no output"])[-1]
        return ImportCost(module, 0, process_ms, 0, [], error=last_line)

    own_by_package: Counter[str] = Counter()
    cumulative: dict[str, int] = {}
    for line in finished.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        own, total, name = (part.strip() for part in line.removeprefix("import time:").split("|"))
        cumulative[name] = int(total)
        own_by_package[name.split(".")[0]] += int(own)
    heaviest = [(package, us / 1000) for package, us in own_by_package.most_common(3)]
    return ImportCost(
        module, cumulative.get(module, 0) / 1000, process_ms, len(cumulative), heaviest
    )


# Reporting.


def _table(rows: list[tuple[str, str]]) -> str:
    width = max(len(label) for label, _ in rows)
    return "".join(f"  {label:<{width}}  {value}\n" for label, value in rows)


def run_report(outcome: Outcomes, wall: float, used: Usage, threads: int) -> str:
    ended = sum(outcome.ended.values())
    cpu = used.cpu_seconds
    others = {k: v for k, v in outcome.ended.items() if k not in ("PAID", "CLAIMED")}
    other_text = ", ".join(f"{k} {v}" for k, v in sorted(others.items())) or "0"
    rows = [
        ("invoices", str(outcome.invoices)),
        ("accepted / rejected", f"{outcome.accepted} / {outcome.rejected}"),
        ("wall time", f"{wall:.1f} s"),
        ("CPU time", f"{cpu:.1f} s ({cpu / wall:.2f} cores)" if wall else f"{cpu:.1f} s"),
        ("lifecycles per second", f"{ended / wall:.1f}" if wall else "-"),
        ("peak RSS", f"{peak_rss_mib():.0f} MiB"),
        ("peak threads", str(threads)),
        (
            "context switches",
            f"{used.voluntary_switches} voluntary, {used.forced_switches} forced",
        ),
        ("ended PAID", str(outcome.ended.get("PAID", 0))),
        ("ended CLAIMED", str(outcome.ended.get("CLAIMED", 0))),
        ("ended otherwise", other_text),
        ("handler failures", str(outcome.failures)),
        (
            "every lifecycle ended",
            f"{'yes' if outcome.all_ended else 'NO'} ({ended} of {outcome.invoices})",
        ),
    ]
    return _table(rows)


def import_report(costs: list[ImportCost], runs: int) -> str:
    lines = [
        f"\nimport time, a fresh interpreter each, median of {runs} (-X importtime)\n",
        f"  {'module':<32} {'import':>9} {'process':>9} {'modules':>8}  "
        "heaviest packages (their own import time)\n",
    ]
    for cost in costs:
        if cost.error:
            lines.append(f"  {cost.module:<32} import failed: {cost.error}\n")
            continue
        heaviest = ", ".join(f"{name} {ms:.0f} ms" for name, ms in cost.heaviest)
        figures = (
            f"{cost.milliseconds:>6.0f} ms {cost.process_milliseconds:>6.0f} ms "
            f"{cost.modules_loaded:>8}"
        )
        lines.append(f"  {cost.module:<32} {figures}  {heaviest}\n")
    return "".join(lines)


# The command.


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="arflow-bench", description=__doc__)
    parser.add_argument("--invoices", type=int, default=1000, help="invoices to run (1000)")
    parser.add_argument("--out", type=Path, help="where the run writes (a temporary folder)")
    parser.add_argument("--seed", type=int, default=2026, help="seed of the generated ledger")
    parser.add_argument(
        "--import-runs",
        type=int,
        default=3,
        help="fresh interpreters per module for the import table (3; 0 leaves it out)",
    )
    parser.add_argument(
        "--profile", action="store_true", help="profile the run; top functions to stderr"
    )
    parser.add_argument("--profile-out", type=Path, help="also save the profile (.prof) here")
    parser.add_argument(
        "--profile-clock",
        choices=("cpu", "wall"),
        default="cpu",
        help="cpu: exact per thread, slow; wall: a few times faster, blocking calls inflated",
    )
    parser.add_argument(
        "--profile-one-in",
        type=int,
        default=1,
        metavar="K",
        help="profile the driver and one execution thread in K (1: every thread)",
    )
    parser.add_argument("--top", type=int, default=25, help="functions per profile table (25)")
    args = parser.parse_args(argv)
    if args.invoices < 1:
        parser.error("--invoices must be at least 1")
    if args.profile_one_in < 1:
        parser.error("--profile-one-in must be at least 1")
    return args


@contextmanager
def _quiet_functions() -> Iterator[None]:
    """As `arflow simulate` runs by default: only the functions' errors, none of moto's logs."""
    moto_logger = logging.getLogger("moto")
    level, log_level = moto_logger.level, os.environ.get("POWERTOOLS_LOG_LEVEL")
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "ERROR")
    moto_logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        moto_logger.setLevel(level)
        if log_level is None:
            os.environ.pop("POWERTOOLS_LOG_LEVEL", None)


def _timed_run(
    plan: Plan, out: Path, profiles: list[cProfile.Profile] | None, settings: ProfileSettings
) -> RunResult:
    # The run's progress line goes to stderr; stdout is for the benchmark's own figures.
    if profiles is None:
        return run(plan, out, stream=sys.stderr)
    with profiled_threads(profiles, settings):
        return run(plan, out, stream=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    out_stream = sys.stdout

    with _quiet_functions(), tempfile.TemporaryDirectory(prefix="arflow-bench-") as scratch:
        out = args.out or Path(scratch)
        plan = ledger_plan(args.invoices, args.seed)
        out_stream.write(f"{plan.title}, policy {POLICY_PATH.relative_to(REPO_ROOT)}\n")
        out_stream.flush()

        profiles: list[cProfile.Profile] | None = [] if args.profile else None
        settings = ProfileSettings(args.profile_clock, args.profile_one_in)
        with ThreadCount() as threads:
            before, started = Usage.now(), time.perf_counter()
            result = _timed_run(plan, out, profiles, settings)
            wall, used = time.perf_counter() - started, Usage.now().since(before)
        outcome = outcomes(args.invoices, result)

        out_stream.write(f"\nwrote {out / 'timeline.jsonl'}\n" if args.out else "\n")
        out_stream.write(run_report(outcome, wall, used, threads.peak))
        for note in outcome.notes[:10]:
            out_stream.write(f"  note: {note}\n")
        if len(outcome.notes) > 10:
            out_stream.write(f"  ... and {len(outcome.notes) - 10} more notes\n")
        out_stream.flush()
        if profiles is not None:
            write_profile(profiles, settings, sys.stderr, args.profile_out, args.top)

    if args.import_runs > 0:
        modules = (BASELINE_MODULE, *HANDLER_MODULES)
        costs = [import_cost(module, args.import_runs) for module in modules]
        out_stream.write(import_report(costs, args.import_runs))

    return 0 if outcome.all_ended and outcome.failures == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
