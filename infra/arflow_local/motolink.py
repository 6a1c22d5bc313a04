"""Every coupling of the local stack to moto's internals, in one place.

moto runs Step Functions executions with its own ASL interpreter (`execute_state_machine`). This
module changes how that interpreter waits and threads, and nothing about what it decides:

- each execution's thread is counted by the virtual clock as one actor;
- the helper threads it starts for a program and for each task run inline in that actor's thread,
  so an execution is one thread the clock can see (a task-token wait enforces its own timeout);
- Wait states, task-token waits with timeouts and retry back-off wait on the virtual clock;
- timestamps it compares and records are virtual time;
- a parsed definition is reused for every execution of the same definition, and the Lambda client
  it invokes through is created once;
- moto answers one request at a time: its in-memory backends are not safe for the concurrent
  requests of many executions (a query iterating a table while another thread writes to it).

moto is pinned to one exact version (requirements-dev.txt); tests/integration/test_motolink.py
fails loudly when any of the names below stops existing or stops behaving as expected.
"""

import datetime as _datetime
import threading
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

import boto3
from botocore.client import BaseClient
from botocore.config import Config
from moto.core.botocore_stubber import BotocoreStubber
from moto.ses.models import ses_backends
from moto.sns.models import sns_backends
from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
from moto.stepfunctions.parser.asl.component.program import program
from moto.stepfunctions.parser.asl.component.state.exec import execute_state
from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils
from moto.stepfunctions.parser.asl.component.state.wait.wait_function import (
    timestamp as wait_timestamp,
)
from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import (
    WaitFunction,
)
from moto.stepfunctions.parser.asl.eval.callback.callback import CallbackEndpoint
from moto.stepfunctions.parser.asl.eval.event.event_manager import EventManager
from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser
from moto.stepfunctions.parser.backend import execution_worker
from moto.stepfunctions.parser.utils import TMP_THREADS

from arflow_local.clock import VirtualClock

MOTO_CONFIG = {"stepfunctions": {"execute_state_machine": True}}

# Maintenance: these are the attributes replaced below; the coupling test checks each one exists.
PATCHED = (
    (execution_worker, "Thread"),
    (execution_worker.ExecutionWorker, "_get_evaluation_entrypoint"),
    (program, "threading"),
    (execute_state, "Thread"),
    (WaitFunction, "_wait_interval"),
    (wait_timestamp, "datetime"),
    (CallbackEndpoint, "wait"),
    (retrier_decl, "time"),
    (EventManager, "_get_current_timestamp"),
    (lambda_eval_utils, "boto_client_for"),
    (BotocoreStubber, "__call__"),
)
_answer_request = BotocoreStubber.__call__
_one_request_at_a_time = threading.RLock()


def _serialized_request(self: BotocoreStubber, *args: Any, **kwargs: Any) -> Any:
    with _one_request_at_a_time:
        return _answer_request(self, *args, **kwargs)


class _Inline:
    """Stands in for threading.Thread where the interpreter starts a helper and waits for it."""

    def __init__(
        self,
        group: None = None,
        target: Callable[..., Any] | None = None,
        name: str | None = None,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
        daemon: bool | None = None,
    ) -> None:
        self._call: Callable[[], Any] | None = (
            (lambda: target(*args, **(kwargs or {}))) if target is not None else None
        )

    def start(self) -> None:
        call, self._call = self._call, None
        if call is not None:
            call()

    def join(self, timeout: float | None = None) -> None:
        return None

    def is_alive(self) -> bool:
        return False


class _Link:
    """The clock the patched interpreter waits on, and a record of live executions."""

    def __init__(self) -> None:
        self.clock: VirtualClock | None = None
        self.live = 0
        self.lock = threading.Lock()
        self.all_ended = threading.Event()
        self.all_ended.set()

    def need_clock(self) -> VirtualClock:
        if self.clock is None:
            raise RuntimeError("the local stack's virtual clock is not installed")
        return self.clock


_link = _Link()


class _ExecutionThread(threading.Thread):
    """An execution's one thread: an actor of the virtual clock from start to end."""

    def start(self) -> None:
        clock = _link.need_clock()
        with _link.lock:
            _link.live += 1
            _link.all_ended.clear()
        clock.actor_started()
        super().start()

    def run(self) -> None:
        try:
            super().run()
        finally:
            with _link.lock:
                _link.live -= 1
                if _link.live == 0:
                    _link.all_ended.set()
            _link.need_clock().actor_finished()


def _virtual_wait_interval(self: WaitFunction, env: Any, wait_seconds: int) -> None:
    if wait_seconds > 0:
        _link.need_clock().wait(wait_seconds, env.program_state_event)


def _virtual_callback_wait(self: CallbackEndpoint, timeout: float | None = None) -> Any:
    _link.need_clock().wait(timeout, self._notify_event)
    return self._outcome


class _VirtualDatetime(_datetime.datetime):
    @classmethod
    def now(cls, tz: _datetime.tzinfo | None = None) -> "_VirtualDatetime":
        instant = _link.need_clock().now()
        local = instant.astimezone(tz) if tz is not None else instant.replace(tzinfo=None)
        return cls.combine(local.date(), local.timetz())


_datetime_shim = types.SimpleNamespace(
    datetime=_VirtualDatetime, timedelta=_datetime.timedelta, timezone=_datetime.timezone
)
_time_shim = types.SimpleNamespace(sleep=lambda seconds: _link.need_clock().sleep(seconds))
_threading_shim = types.SimpleNamespace(Thread=_Inline, Event=threading.Event, Lock=threading.Lock)


@lru_cache(maxsize=16)
def _parse_definition(definition: str) -> Any:
    return AmazonStateLanguageParser.parse(definition)[0]


def _cached_entrypoint(self: execution_worker.ExecutionWorker) -> Any:
    return _parse_definition(self._evaluation_details.state_machine_details.definition)


class LambdaRouter:
    """Answers the interpreter's Lambda Invoke calls with in-process handlers (before-call)."""

    def __init__(self, invoke: Callable[[str, bytes], tuple[bytes, bool]]) -> None:
        self._invoke = invoke
        self._clients: dict[str, BaseClient] = {}
        self._lock = threading.Lock()

    def client_for(self, region: str, service: str, state_credentials: Any = None) -> BaseClient:
        with self._lock:
            key = f"{region}/{service}"
            if key not in self._clients:
                client = boto3.client(  # type: ignore[call-overload]
                    service,
                    region_name=region,
                    aws_access_key_id="testing",
                    aws_secret_access_key="testing",
                    config=Config(retries={"max_attempts": 0, "total_max_attempts": 1}),
                )
                if service == "lambda":
                    client.meta.events.register(
                        "before-parameter-build.lambda.Invoke", self._keep_params
                    )
                    client.meta.events.register("before-call.lambda.Invoke", self._answer)
                self._clients[key] = client
            return self._clients[key]

    @staticmethod
    def _keep_params(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["arflow_invoke"] = dict(params)

    def _answer(self, context: dict[str, Any], **_: Any) -> tuple[Any, dict[str, Any]]:
        from io import BytesIO

        from botocore.awsrequest import AWSResponse, HTTPHeaders
        from botocore.response import StreamingBody

        params = context["arflow_invoke"]
        payload = params.get("Payload") or b"{}"
        if isinstance(payload, str):
            payload = payload.encode()
        body, failed = self._invoke(str(params["FunctionName"]), payload)
        parsed: dict[str, Any] = {
            "StatusCode": 200,
            "ExecutedVersion": "$LATEST",
            "Payload": StreamingBody(BytesIO(body), len(body)),
        }
        if failed:
            parsed["FunctionError"] = "Unhandled"
        return AWSResponse("https://lambda.local/", 200, HTTPHeaders(), None), parsed


@contextmanager
def linked(clock: VirtualClock, router: LambdaRouter) -> Iterator[None]:
    """Patch the interpreter for one local run; everything is restored on exit."""
    replacements: dict[tuple[Any, str], Any] = {
        (execution_worker, "Thread"): _ExecutionThread,
        (execution_worker.ExecutionWorker, "_get_evaluation_entrypoint"): _cached_entrypoint,
        (program, "threading"): _threading_shim,
        (execute_state, "Thread"): _Inline,
        (WaitFunction, "_wait_interval"): _virtual_wait_interval,
        (wait_timestamp, "datetime"): _datetime_shim,
        (CallbackEndpoint, "wait"): _virtual_callback_wait,
        (retrier_decl, "time"): _time_shim,
        (EventManager, "_get_current_timestamp"): staticmethod(clock.now),
        (lambda_eval_utils, "boto_client_for"): router.client_for,
        (BotocoreStubber, "__call__"): _serialized_request,
    }
    saved = {key: key[0].__dict__[key[1]] for key in replacements}
    _link.clock = clock
    try:
        for (owner, name), value in replacements.items():
            setattr(owner, name, value)
        yield
    finally:
        for (owner, name), value in saved.items():
            setattr(owner, name, value)
        _link.clock = None
        TMP_THREADS.clear()


def wait_for_all_executions() -> None:
    """Block the calling actor until every execution has ended."""
    _link.need_clock().wait(None, _link.all_ended)


def live_executions() -> int:
    with _link.lock:
        return _link.live


def sent_emails(account_id: str, region: str) -> list[Any]:
    """Raw messages moto's SES recorded (the local outbox)."""
    return list(ses_backends[account_id][region].sent_messages)


def published_notifications(account_id: str, region: str, topic_arn: str) -> list[Any]:
    """(message id, message, subject, ...) tuples moto's SNS recorded for a topic."""
    return list(sns_backends[account_id][region].topics[topic_arn].sent_notifications)
