"""The stack described by template.yaml, booted on moto in this process.

Tables, bucket, topic, bus, parameter, secrets and SES identity are created from their template
properties; the state machine from the same ASL file with the same substitutions; every function is
its handler in this process, invoked with its environment from the template.
"""

import base64
import importlib
import json
import re
import secrets
import threading
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3

from arflow.config import function_environment
from arflow_local.template import Resolver, load_template

ACCOUNT_ID = "123456789012"
REPO_ROOT = Path(__file__).resolve().parents[2]

# Differences from AWS, on purpose: templates come from the repo instead of the layer at /opt,
# and the policy from the run's policy file instead of the template's default parameter.
LOCAL_OVERRIDES = {"TEMPLATES_DIR": str(REPO_ROOT / "templates")}


@dataclass
class LocalContext:
    """The parts of the Lambda context object the handlers and Powertools read."""

    function_name: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = ""

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


@dataclass
class LocalFunction:
    logical_id: str
    name: str
    arn: str
    handler_path: str
    environment: dict[str, str]
    memory: int
    _handler: Callable[[dict[str, Any], Any], Any] | None = None

    def handler(self) -> Callable[[dict[str, Any], Any], Any]:
        if self._handler is None:
            module_name, _, attribute = self.handler_path.rpartition(".")
            self._handler = getattr(importlib.import_module(module_name), attribute)
        return self._handler


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    function: LocalFunction

    def match(self, method: str, path: str) -> dict[str, str] | None:
        if method.upper() != self.method:
            return None
        pattern = re.sub(r"\{([^}]+)\}", r"(?P<\1>[^/]+)", self.path)
        found = re.fullmatch(pattern, path)
        return found.groupdict() if found else None


@dataclass(frozen=True)
class Schedule:
    """A scheduled function, as EventBridge Scheduler would run it: daily at a UTC time."""

    function: LocalFunction
    expression: str
    hour: int
    minute: int

    @classmethod
    def of(cls, function: LocalFunction, expression: str) -> "Schedule":
        daily = re.fullmatch(r"cron\((\d{1,2}) (\d{1,2}) \* \* \? \*\)", expression.strip())
        if daily:
            return cls(function, expression, int(daily.group(2)), int(daily.group(1)))
        if expression.strip() == "rate(1 day)":
            return cls(function, expression, 0, 0)
        raise ValueError(
            f"{function.logical_id}: the local stack runs daily schedules only, not {expression}"
        )


@dataclass(frozen=True)
class HttpAnswer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body or b"null")


@dataclass
class FunctionFailure:
    function: str
    error_type: str
    message: str
    at: datetime
    trace: str = ""


class LocalStack:
    def __init__(
        self,
        template_path: Path = REPO_ROOT / "template.yaml",
        parameters: dict[str, str] | None = None,
        stack_name: str = "arflow-local",
        region: str = "us-east-1",
    ) -> None:
        self.template_path = template_path
        self.template = load_template(template_path)
        self.stack_name = stack_name
        self.region = region
        self.parameters = self._parameters(parameters or {})
        self.functions: dict[str, LocalFunction] = {}
        self.routes: list[Route] = []
        self.schedules: list[Schedule] = []
        self._secrets: dict[str, str] = {}
        self.failures: list[FunctionFailure] = []
        self._lock = threading.Lock()
        refs, attributes = self._physical_ids()
        self.resolver = Resolver(refs, attributes)

    # What the template names.

    def _parameters(self, given: dict[str, str]) -> dict[str, str]:
        values: dict[str, str] = {}
        for name, spec in self.template.get("Parameters", {}).items():
            if name in given:
                values[name] = given[name]
            elif "Default" in spec:
                values[name] = str(spec["Default"])
            else:
                raise ValueError(f"template parameter {name} needs a value")
        return values

    def resources(self, kind: str) -> dict[str, dict[str, Any]]:
        return {
            name: spec
            for name, spec in self.template["Resources"].items()
            if spec.get("Type") == kind
        }

    def _physical_ids(self) -> tuple[dict[str, str], dict[tuple[str, str], str]]:
        region, account, stack = self.region, ACCOUNT_ID, self.stack_name
        refs: dict[str, str] = {
            "AWS::StackName": stack,
            "AWS::Region": region,
            "AWS::AccountId": account,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            **self.parameters,
        }
        attributes: dict[tuple[str, str], str] = {}
        early = Resolver(refs, attributes)
        for logical, spec in self.template["Resources"].items():
            kind = spec["Type"]
            props = spec.get("Properties", {})
            name = f"{stack}-{logical}"
            if kind == "AWS::DynamoDB::Table":
                refs[logical] = name
                attributes[(logical, "Arn")] = f"arn:aws:dynamodb:{region}:{account}:table/{name}"
            elif kind == "AWS::S3::Bucket":
                refs[logical] = name.lower()
                attributes[(logical, "Arn")] = f"arn:aws:s3:::{name.lower()}"
            elif kind == "AWS::SNS::Topic":
                refs[logical] = f"arn:aws:sns:{region}:{account}:{name}"
                attributes[(logical, "TopicName")] = name
            elif kind == "AWS::Events::EventBus":
                bus = str(early.resolve(props.get("Name", name)))
                refs[logical] = bus
                attributes[(logical, "Arn")] = f"arn:aws:events:{region}:{account}:event-bus/{bus}"
                attributes[(logical, "Name")] = bus
            elif kind == "AWS::SSM::Parameter":
                # Unique per run: warm functions cache the policy by the parameter's name.
                refs[logical] = f"/{stack}/{uuid.uuid4().hex[:12]}/{logical}"
            elif kind == "AWS::SecretsManager::Secret":
                refs[logical] = f"arn:aws:secretsmanager:{region}:{account}:secret:{name}"
            elif kind == "AWS::Serverless::StateMachine":
                machine = str(early.resolve(props.get("Name", name)))
                arn = f"arn:aws:states:{region}:{account}:stateMachine:{machine}"
                refs[logical] = arn
                attributes[(logical, "Name")] = machine
                attributes[(logical, "Arn")] = arn
            elif kind == "AWS::Serverless::Function":
                refs[logical] = name
                attributes[(logical, "Arn")] = f"arn:aws:lambda:{region}:{account}:function:{name}"
            elif kind == "AWS::Serverless::HttpApi":
                refs[logical] = "local"
            elif kind == "AWS::Serverless::LayerVersion":
                refs[logical] = f"arn:aws:lambda:{region}:{account}:layer:{name}:1"
            elif kind == "AWS::Logs::LogGroup":
                refs[logical] = f"/aws/vendedlogs/{name}"
                attributes[(logical, "Arn")] = f"arn:aws:logs:{region}:{account}:log-group:{name}"
            else:
                refs[logical] = name
        return refs, attributes

    # Booting (inside an active moto mock).

    def boot(self, policy_text: str) -> None:
        self._tables()
        self._bucket()
        self._messaging()
        self._configuration(policy_text)
        self._functions()
        self._state_machine()

    def client(self, service: str) -> Any:
        return boto3.client(service, region_name=self.region)  # type: ignore[call-overload]

    def _tables(self) -> None:
        dynamodb = self.client("dynamodb")
        allowed = {"AttributeDefinitions", "KeySchema", "GlobalSecondaryIndexes", "BillingMode"}
        for logical, spec in self.resources("AWS::DynamoDB::Table").items():
            props = self.resolver.resolve(spec.get("Properties", {}))
            name = self.resolver.refs[logical]
            dynamodb.create_table(
                TableName=name, **{k: v for k, v in props.items() if k in allowed}
            )
            if props.get("SSESpecification", {}).get("SSEEnabled"):
                dynamodb.update_table(TableName=name, SSESpecification={"Enabled": True})
            pitr = props.get("PointInTimeRecoverySpecification", {})
            if pitr.get("PointInTimeRecoveryEnabled"):
                dynamodb.update_continuous_backups(
                    TableName=name,
                    PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True},
                )

    def _bucket(self) -> None:
        s3 = self.client("s3")
        for logical, spec in self.resources("AWS::S3::Bucket").items():
            props = self.resolver.resolve(spec.get("Properties", {}))
            name = self.resolver.refs[logical]
            s3.create_bucket(Bucket=name)
            if "PublicAccessBlockConfiguration" in props:
                s3.put_public_access_block(
                    Bucket=name,
                    PublicAccessBlockConfiguration=props["PublicAccessBlockConfiguration"],
                )
            if "BucketEncryption" in props:
                # CloudFormation and the S3 API spell the same setting differently.
                rules = [
                    {
                        "ApplyServerSideEncryptionByDefault": rule["ServerSideEncryptionByDefault"],
                        **(
                            {"BucketKeyEnabled": rule["BucketKeyEnabled"]}
                            if "BucketKeyEnabled" in rule
                            else {}
                        ),
                    }
                    for rule in props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
                ]
                s3.put_bucket_encryption(
                    Bucket=name, ServerSideEncryptionConfiguration={"Rules": rules}
                )

    def _messaging(self) -> None:
        sns, events, ses = self.client("sns"), self.client("events"), self.client("ses")
        for logical in self.resources("AWS::SNS::Topic"):
            sns.create_topic(Name=self.resolver.attributes[(logical, "TopicName")])
        for logical in self.resources("AWS::Events::EventBus"):
            events.create_event_bus(Name=self.resolver.refs[logical])
        for spec in self.resources("AWS::SES::EmailIdentity").values():
            identity = self.resolver.resolve(spec["Properties"]["EmailIdentity"])
            ses.verify_email_identity(EmailAddress=identity)

    def _configuration(self, policy_text: str) -> None:
        ssm, secretsmanager = self.client("ssm"), self.client("secretsmanager")
        for logical in self.resources("AWS::SSM::Parameter"):
            ssm.put_parameter(Name=self.resolver.refs[logical], Value=policy_text, Type="String")
        for logical, spec in self.resources("AWS::SecretsManager::Secret").items():
            props = spec.get("Properties", {})
            value = props.get("SecretString") or secrets.token_urlsafe(36)
            created = secretsmanager.create_secret(
                Name=f"{self.stack_name}-{logical}", SecretString=str(value)
            )
            # moto appends a random suffix to secret ARNs, as AWS does.
            self.resolver.refs[logical] = created["ARN"]

    def _functions(self) -> None:
        globals_ = self.template.get("Globals", {}).get("Function", {})
        shared = globals_.get("Environment", {}).get("Variables", {})
        for logical, spec in self.resources("AWS::Serverless::Function").items():
            props = spec.get("Properties", {})
            own = props.get("Environment", {}).get("Variables", {})
            environment = {k: str(v) for k, v in self.resolver.resolve({**shared, **own}).items()}
            environment |= {
                "AWS_REGION": self.region,
                "AWS_DEFAULT_REGION": self.region,
                "AWS_LAMBDA_FUNCTION_NAME": self.resolver.refs[logical],
                **LOCAL_OVERRIDES,
            }
            function = LocalFunction(
                logical_id=logical,
                name=self.resolver.refs[logical],
                arn=self.resolver.attributes[(logical, "Arn")],
                handler_path=str(props["Handler"]),
                environment=environment,
                memory=int(props.get("MemorySize", globals_.get("MemorySize", 128))),
            )
            self.functions[function.arn] = function
            self.functions[function.name] = function
            for event in props.get("Events", {}).values():
                if event.get("Type") in ("Schedule", "ScheduleV2"):
                    expression = str(event["Properties"]["ScheduleExpression"])
                    self.schedules.append(Schedule.of(function, expression))
                if event.get("Type") == "HttpApi":
                    route = event["Properties"]
                    self.routes.append(
                        Route(str(route["Method"]).upper(), str(route["Path"]), function)
                    )

    def _state_machine(self) -> None:
        sfn = self.client("stepfunctions")
        for logical, spec in self.resources("AWS::Serverless::StateMachine").items():
            props = spec["Properties"]
            definition = (self.template_path.parent / props["DefinitionUri"]).read_text("utf-8")
            substitutions = self.resolver.resolve(props.get("DefinitionSubstitutions", {}))
            for name, value in substitutions.items():
                definition = definition.replace("${" + name + "}", str(value))
            leftover = re.findall(r"\$\{[A-Za-z0-9]+\}", definition)
            if leftover:
                raise ValueError(f"state machine {logical} has unsubstituted {leftover}")
            sfn.create_state_machine(
                name=self.resolver.attributes[(logical, "Name")],
                definition=definition,
                roleArn=f"arn:aws:iam::{ACCOUNT_ID}:role/{self.stack_name}-{logical}",
                type=props.get("Type", "STANDARD"),
            )

    # Running.

    def ref(self, logical_id: str) -> str:
        return str(self.resolver.refs[logical_id])

    def secret(self, logical_id: str) -> str:
        """A secret's value, read once: senders sign every request with it."""
        if logical_id not in self._secrets:
            client = self.client("secretsmanager")
            self._secrets[logical_id] = str(
                client.get_secret_value(SecretId=self.ref(logical_id))["SecretString"]
            )
        return self._secrets[logical_id]

    def invoke(self, function_name: str, payload: bytes) -> tuple[bytes, bool]:
        """Run a handler as Lambda would: JSON in, JSON out, errors as Lambda reports them."""
        function = self.functions.get(function_name)
        if function is None:
            error = {"errorType": "ResourceNotFoundException", "errorMessage": function_name}
            return json.dumps(error).encode(), True
        context = LocalContext(function.name, function.arn, function.memory)
        try:
            with function_environment(function.environment):
                result = function.handler()(json.loads(payload or b"{}"), context)
        except Exception as error:
            with self._lock:
                self.failures.append(
                    FunctionFailure(
                        function.logical_id,
                        type(error).__name__,
                        str(error),
                        _now(),
                        "".join(traceback.format_exception(error)),
                    )
                )
            body = {
                "errorType": type(error).__name__,
                "errorMessage": str(error),
                "stackTrace": traceback.format_exception(error),
            }
            return json.dumps(body).encode(), True
        return json.dumps(result, default=str).encode(), False

    def request(self, method: str, path: str, headers: dict[str, str], body: bytes) -> HttpAnswer:
        """An HTTP request to the HTTP API, routed as API Gateway would (payload format 2.0)."""
        for route in self.routes:
            parameters = route.match(method, path)
            if parameters is None:
                continue
            event = _http_event(route, path, parameters, headers, body)
            raw, failed = self.invoke(route.function.arn, json.dumps(event).encode())
            if failed:
                return HttpAnswer(
                    500,
                    {"content-type": "application/json"},
                    b'{"message":"Internal Server Error"}',
                )
            answer = json.loads(raw)
            data = answer.get("body") or ""
            payload = (
                base64.b64decode(data) if answer.get("isBase64Encoded") else str(data).encode()
            )
            return HttpAnswer(
                int(answer.get("statusCode", 200)), answer.get("headers", {}), payload
            )
        return HttpAnswer(404, {"content-type": "application/json"}, b'{"message":"Not Found"}')


def _now() -> datetime:
    from arflow.timekeeping import utcnow

    return utcnow()


def _http_event(
    route: Route, path: str, parameters: dict[str, str], headers: dict[str, str], body: bytes
) -> dict[str, Any]:
    import base64

    try:
        text, encoded = body.decode("utf-8"), False
    except UnicodeDecodeError:
        text, encoded = base64.b64encode(body).decode(), True
    now = _now()
    return {
        "version": "2.0",
        "routeKey": f"{route.method} {route.path}",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {k.lower(): v for k, v in headers.items()},
        "pathParameters": parameters or None,
        "requestContext": {
            "accountId": ACCOUNT_ID,
            "apiId": "local",
            "domainName": "localhost",
            "http": {
                "method": route.method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": headers.get("user-agent", "arflow-simulate"),
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": f"{route.method} {route.path}",
            "stage": "$default",
            "time": now.astimezone(UTC).strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now.timestamp() * 1000),
        },
        "body": text,
        "isBase64Encoded": encoded,
    }
