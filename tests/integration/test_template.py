"""The SAM template lints clean and keeps the promises that docs/architecture.md makes."""

import copy
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cfn_yaml import load_template
from samtranslator.translator.transform import transform

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = ROOT / "template.yaml"
ARCHITECTURE_PATH = ROOT / "docs" / "architecture.md"
BIN_DIR = Path(sys.executable).parent
TOOL_TIMEOUT_SECONDS = 120

EXPECTED_TABLE_KEYS = {
    "InvoicesTable": [("invoice_id", "HASH")],
    "CustomersTable": [("customer_id", "HASH")],
    "EventsTable": [("invoice_id", "HASH"), ("seq", "RANGE")],
    "PaymentsTable": [("payment_id", "HASH")],
    "ClaimsTable": [("claim_id", "HASH")],
    "CreditDecisionsTable": [("customer_id", "HASH"), ("decided", "RANGE")],
    "CreditReportsTable": [("customer_id", "HASH")],
}
TASK_FUNCTIONS = {
    "CreditCheckFunctionArn": "CreditCheckFunction",
    "LifecycleFunctionArn": "LifecycleFunction",
    "ReminderFunctionArn": "ReminderFunction",
    "EscalationFunctionArn": "EscalationFunction",
    "OrderHoldFunctionArn": "OrderHoldFunction",
    "InsuranceClaimFunctionArn": "InsuranceClaimFunction",
}
INGEST_FUNCTIONS = {"InvoiceIngestFunction", "PaymentIngestFunction"}
EXPECTED_ROUTES = {
    ("POST", "/invoices"): ("InvoiceIngestFunction", None),
    ("POST", "/webhooks/stripe"): ("InvoiceIngestFunction", None),
    ("POST", "/payments"): ("PaymentIngestFunction", None),
    ("GET", "/customers/{customer_id}/hold"): ("HoldStatusFunction", "AWS_IAM"),
    ("POST", "/invoices/{invoice_id}/dispute"): ("AccountActionsFunction", None),
    ("POST", "/invoices/{invoice_id}/dispute/resolve"): ("AccountActionsFunction", None),
    ("POST", "/invoices/{invoice_id}/promise"): ("AccountActionsFunction", None),
    ("POST", "/invoices/{invoice_id}/write-off"): ("AccountActionsFunction", None),
    ("POST", "/customers/{customer_id}/pause"): ("AccountActionsFunction", None),
    ("DELETE", "/customers/{customer_id}/pause"): ("AccountActionsFunction", None),
    ("POST", "/customers/{customer_id}/credit"): ("AccountActionsFunction", None),
    ("POST", "/customers/{customer_id}/open-orders"): ("AccountActionsFunction", None),
}
EXPECTED_OUTPUTS = {
    "ApiUrl",
    "StateMachineArn",
    "OrderHoldBusName",
    "FinanceTopicArn",
    "DocumentsBucketName",
    "WebhookSecretArn",
}
# The local stack resolves these and nothing else outside the Conditions section.
ALLOWED_INTRINSICS = {"Ref", "Fn::GetAtt", "Fn::Sub"}
# What SAM itself attaches: basic execution (logs) and, with tracing on, X-Ray writes.
SAM_MANAGED_POLICIES = {"AWSLambdaBasicExecutionRole", "AWSXrayWriteOnlyAccess"}
DYNAMODB_READ_ACTIONS = {
    "dynamodb:GetItem",
    "dynamodb:BatchGetItem",
    "dynamodb:Query",
    "dynamodb:Scan",
    "dynamodb:DescribeTable",
}
STACK_NAME_REF = "${AWS::StackName}"


# --- helpers ---------------------------------------------------------------------------------


def _doc_table(heading: str) -> list[list[str]]:
    """The body rows of the first Markdown table in the section whose heading starts so."""
    text = ARCHITECTURE_PATH.read_text(encoding="utf-8")
    match = re.search(rf"^## {re.escape(heading)}\b[^\n]*\n", text, re.MULTILINE)
    assert match, f"docs/architecture.md has no section {heading!r}"

    rows: list[list[str]] = []
    for line in text[match.end() :].splitlines():
        if line.startswith("|"):
            rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
        elif rows or line.startswith("## "):
            break

    # The first row is the header, the second the --- separator.
    assert len(rows) > 2, f"the {heading!r} section has no table"
    return rows[2:]


def _first_code_span(cell: str) -> str:
    match = re.search(r"`([^`]+)`", cell)
    assert match, f"no `code` in table cell {cell!r}"
    return match.group(1)


def _walk(node: Any) -> Iterator[Any]:
    yield node
    if isinstance(node, dict):
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from _walk(item)


def _statements(node: Any) -> Iterator[dict[str, Any]]:
    """Every IAM statement anywhere under node: policies, bucket policies, SAM inline ones."""
    for item in _walk(node):
        if isinstance(item, dict) and "Statement" in item:
            statement = item["Statement"]
            yield from statement if isinstance(statement, list) else [statement]


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _functions(resources: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: resource
        for name, resource in resources.items()
        if resource["Type"] == "AWS::Serverless::Function"
    }


def _with_artifacts_uploaded(template: dict[str, Any]) -> dict[str, Any]:
    """The template as `sam package` would leave it: local paths replaced by S3 locations."""
    packaged = copy.deepcopy(template)
    uri_keys = {"CodeUri", "ContentUri", "DefinitionUri"}
    for item in _walk(packaged):
        if isinstance(item, dict):
            for key in uri_keys & item.keys():
                item[key] = f"s3://artifacts/{key.lower()}.zip"
    return packaged


class _OfflinePolicyLoader:
    """Stands in for SAM's IAM lookup of managed policy names, which needs an AWS account."""

    def load(self) -> dict[str, str]:
        raise AssertionError(
            "the template names a managed policy SAM cannot resolve offline, so `sam validate` "
            "would call IAM: use a policy template or an inline statement instead"
        )


# --- fixtures --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template(TEMPLATE_PATH)


@pytest.fixture(scope="module")
def resources(template: dict[str, Any]) -> dict[str, Any]:
    section: dict[str, Any] = template["Resources"]
    return section


@pytest.fixture(scope="module")
def translated(template: dict[str, Any]) -> dict[str, Any]:
    """The plain CloudFormation that SAM turns the template into (IAM roles included)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        cloudformation: dict[str, Any] = transform(
            _with_artifacts_uploaded(template),
            {"SenderEmail": "billing@example.com"},
            _OfflinePolicyLoader(),
        )
    return cloudformation


@pytest.fixture
def offline_env(tmp_path: Path) -> dict[str, str]:
    """An environment for the SAM CLI that keeps it off the network and out of ~/.aws."""
    # The CLI asks PyPI for a newer version unless its config says it asked recently; a fresh
    # config dir with a current check time (and telemetry off) leaves it nothing to fetch.
    config_dir = tmp_path / ".aws-sam"
    config_dir.mkdir()
    (config_dir / "metadata.json").write_text(
        json.dumps({"lastVersionCheck": time.time(), "telemetryEnabled": False}),
        encoding="utf-8",
    )
    return {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_CONFIG_FILE": str(tmp_path / "aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "aws-credentials"),
        "SAM_CLI_TELEMETRY": "0",
    }


# --- linters ---------------------------------------------------------------------------------


def test_cfn_lint_reports_nothing() -> None:
    # Given the template and the pinned cfn-lint
    cfn_lint = BIN_DIR / "cfn-lint"

    # When cfn-lint checks it with its default rules
    result = subprocess.run(
        [str(cfn_lint), str(TEMPLATE_PATH)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=TOOL_TIMEOUT_SECONDS,
        check=False,
    )

    # Then it finds no error, warning or anything else to say
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_sam_validate_lint_passes(offline_env: dict[str, str]) -> None:
    # Given the template, the pinned SAM CLI and an environment without AWS behind it
    sam = BIN_DIR / "sam"

    # When SAM validates and lints it
    result = subprocess.run(
        [str(sam), "validate", "--lint", "--template-file", str(TEMPLATE_PATH)],
        cwd=ROOT,
        env=offline_env,
        capture_output=True,
        text=True,
        timeout=TOOL_TIMEOUT_SECONDS,
        check=False,
    )

    # Then it calls the template valid
    assert result.returncode == 0, result.stdout + result.stderr
    assert "is a valid SAM Template" in result.stdout


# --- storage ---------------------------------------------------------------------------------


def test_tables_have_the_documented_keys_and_are_protected(resources: dict[str, Any]) -> None:
    # Given the DynamoDB tables in the template
    tables = {
        name: resource
        for name, resource in resources.items()
        if resource["Type"] == "AWS::DynamoDB::Table"
    }

    # Then they are exactly the documented ones, each with its documented key
    assert set(tables) == set(EXPECTED_TABLE_KEYS)
    for name, table in tables.items():
        properties = table["Properties"]
        keys = [(key["AttributeName"], key["KeyType"]) for key in properties["KeySchema"]]
        assert keys == EXPECTED_TABLE_KEYS[name], name

        # And each has point-in-time recovery and encryption on, and outlives its stack
        recovery = properties["PointInTimeRecoverySpecification"]
        assert recovery["PointInTimeRecoveryEnabled"] is True, name
        assert properties["SSESpecification"]["SSEEnabled"] is True, name
        assert properties["BillingMode"] == "PAY_PER_REQUEST", name
        assert (table["DeletionPolicy"], table["UpdateReplacePolicy"]) == ("Retain", "Retain")


def test_invoices_can_be_listed_by_customer(resources: dict[str, Any]) -> None:
    # Given the invoices table
    properties = resources["InvoicesTable"]["Properties"]

    # When its secondary indexes are read
    indexes = {index["IndexName"]: index for index in properties["GlobalSecondaryIndexes"]}

    # Then by_customer is keyed by customer and invoice and carries whole invoices
    by_customer = indexes["by_customer"]
    keys = [(key["AttributeName"], key["KeyType"]) for key in by_customer["KeySchema"]]
    assert keys == [("customer_id", "HASH"), ("invoice_id", "RANGE")]
    assert by_customer["Projection"]["ProjectionType"] == "ALL"


def test_documents_bucket_is_private_encrypted_and_tls_only(resources: dict[str, Any]) -> None:
    # Given the documents bucket and the policies on it
    bucket = resources["DocumentsBucket"]
    properties = bucket["Properties"]
    bucket_policies = [
        resource["Properties"]["PolicyDocument"]
        for resource in resources.values()
        if resource["Type"] == "AWS::S3::BucketPolicy"
        and resource["Properties"]["Bucket"] == {"Ref": "DocumentsBucket"}
    ]

    # Then all four public-access blocks are on
    block = properties["PublicAccessBlockConfiguration"]
    assert block == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }

    # And objects are encrypted at rest, versioned, owned by the bucket owner and kept
    rules = properties["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    algorithms = {rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] for rule in rules}
    assert algorithms and algorithms <= {"AES256", "aws:kms", "aws:kms:dsse"}
    assert properties["VersioningConfiguration"]["Status"] == "Enabled"
    assert properties["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    assert (bucket["DeletionPolicy"], bucket["UpdateReplacePolicy"]) == ("Retain", "Retain")

    # And a bucket policy refuses every request that does not come over TLS
    tls_denials = [
        statement
        for statement in _statements(bucket_policies)
        if statement["Effect"] == "Deny"
        and statement.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport") == "false"
    ]
    assert tls_denials, "no statement denies requests without TLS"


# --- permissions -----------------------------------------------------------------------------


def _wildcard_grants(statements: list[dict[str, Any]]) -> list[tuple[str, Any]]:
    """(Sid, action) of every allowed action that holds a wildcard or is granted by exclusion."""
    allowing = [statement for statement in statements if statement["Effect"] == "Allow"]
    assert allowing, "found no Allow statement: the walk over the template is broken"
    return [
        (statement.get("Sid", "?"), action)
        for statement in allowing
        for action in _as_list(statement.get("Action", []))
        + _as_list(statement.get("NotAction", []))
        if "*" in str(action) or "NotAction" in statement
    ]


# A Deny may hold a wildcard: the bucket's TLS rule must cover every S3 call, present and future.
def test_no_allow_statement_grants_a_wildcard_action(resources: dict[str, Any]) -> None:
    # Given every IAM statement as written, inline ones in SAM's Policies included
    statements = list(_statements(resources))

    # When the actions they allow with a wildcard, or by exclusion, are collected
    grants = _wildcard_grants(statements)

    # Then there are none
    assert grants == []


def test_policy_templates_expand_without_wildcard_actions(translated: dict[str, Any]) -> None:
    # Given every IAM statement once SAM has expanded its policy templates into roles
    statements = list(_statements(translated["Resources"]))

    # When the actions they allow with a wildcard, or by exclusion, are collected
    grants = _wildcard_grants(statements)

    # Then there are none there either
    assert grants == []


def test_roles_carry_no_managed_policy_beyond_what_sam_adds(
    template: dict[str, Any], translated: dict[str, Any]
) -> None:
    # Given the IAM roles that SAM generates for the functions and the state machine
    roles = {
        name: resource["Properties"]
        for name, resource in translated["Resources"].items()
        if resource["Type"] == "AWS::IAM::Role"
    }

    # When their managed policies are named
    attached = {
        arn.rsplit("/", 1)[-1]
        for properties in roles.values()
        for arn in properties.get("ManagedPolicyArns", [])
    }

    # Then there is one role per function and state machine, and only SAM's own policies
    sam_resources = [
        name
        for name, resource in template["Resources"].items()
        if resource["Type"] in {"AWS::Serverless::Function", "AWS::Serverless::StateMachine"}
    ]
    # (a scheduled function also gets the role EventBridge Scheduler invokes it with)
    schedule_roles = [
        f"{name}{event_name}Role"
        for name, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
        for event_name, event in resource["Properties"].get("Events", {}).items()
        if event["Type"] == "ScheduleV2"
    ]
    assert sorted(roles) == sorted([f"{name}Role" for name in sam_resources] + schedule_roles)
    assert attached <= SAM_MANAGED_POLICIES


def test_hold_status_can_only_read(translated: dict[str, Any]) -> None:
    # Given the role of the function that order systems call
    role = translated["Resources"]["HoldStatusFunctionRole"]["Properties"]

    # When the actions its inline policies allow are collected
    actions = {
        action
        for statement in _statements(role.get("Policies", []))
        if statement["Effect"] == "Allow"
        for action in _as_list(statement["Action"])
    }

    # Then they are DynamoDB reads and nothing else
    assert actions, "the hold-status role allows nothing: it could not answer"
    assert actions <= DYNAMODB_READ_ACTIONS


def test_lifecycle_may_answer_tasks_of_its_own_state_machine(resources: dict[str, Any]) -> None:
    # Given the name the state machine is given and the Lifecycle function's statements
    machine_name = resources["InvoiceLifecycle"]["Properties"]["Name"]["Fn::Sub"]
    statements = _statements(resources["LifecycleFunction"]["Properties"]["Policies"])

    # When the resource of its SendTaskSuccess grant is read
    resources_granted = [
        statement["Resource"]["Fn::Sub"].strip()
        for statement in statements
        if "states:SendTaskSuccess" in _as_list(statement["Action"])
    ]

    # Then it is built from that very name (a Ref would be a dependency cycle)
    assert resources_granted == [
        "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:stateMachine:" + machine_name
    ]
    assert STACK_NAME_REF in machine_name


# --- functions -------------------------------------------------------------------------------


def test_functions_run_python_313_on_arm(template: dict[str, Any]) -> None:
    # Given the function defaults and every function
    defaults = template["Globals"]["Function"]
    functions = _functions(template["Resources"])

    # Then the defaults are Python 3.13 on arm64 and no function overrides them
    assert defaults["Runtime"] == "python3.13"
    assert defaults["Architectures"] == ["arm64"]
    assert functions
    overrides = {
        name: (function["Properties"].get("Runtime"), function["Properties"].get("Architectures"))
        for name, function in functions.items()
        if {"Runtime", "Architectures"} & function["Properties"].keys()
    }
    assert overrides == {}


def test_functions_are_the_documented_ones_with_their_handlers(template: dict[str, Any]) -> None:
    # Given the function table of the architecture doc
    documented = {
        _first_code_span(row[0]): _first_code_span(row[1]) for row in _doc_table("Functions")
    }

    # When the template's functions and handlers are read
    code_uri = template["Globals"]["Function"]["CodeUri"]
    handlers = {
        name: function["Properties"]["Handler"]
        for name, function in _functions(template["Resources"]).items()
    }

    # Then they match the doc exactly, and each handler names a module under handlers/
    assert len(documented) == 11
    assert handlers == documented
    assert code_uri == "functions/"
    for handler in handlers.values():
        module, _, entry_point = handler.rpartition(".")
        assert module.startswith("arflow.handlers."), handler
        assert (entry_point, module.count(".")) == ("handler", 2), handler


def test_environment_is_the_documented_one(template: dict[str, Any]) -> None:
    # Given the environment table of the architecture doc
    documented = {
        _first_code_span(row[0]): _first_code_span(row[1]) for row in _doc_table("Environment")
    }
    expected = {
        variable: source if source.startswith("/") else {"Ref": source}
        for variable, source in documented.items()
    }

    # When the shared variables and each function's own are read
    shared = template["Globals"]["Function"]["Environment"]["Variables"]
    own = {
        name: function["Properties"].get("Environment", {}).get("Variables", {})
        for name, function in _functions(template["Resources"]).items()
    }

    # Then every function shares the documented ones (and Powertools' settings) ...
    state_machine = expected.pop("STATE_MACHINE_ARN")
    assert shared == {
        **expected,
        "POWERTOOLS_LOG_LEVEL": {"Ref": "LogLevel"},
        "POWERTOOLS_SERVICE_NAME": "arflow",
    }

    # ... and only the ingest functions add the state machine
    assert {name: variables for name, variables in own.items() if variables} == {
        name: {"STATE_MACHINE_ARN": state_machine} for name in INGEST_FUNCTIONS
    }


def test_http_routes_and_their_authorization(resources: dict[str, Any]) -> None:
    # Given the HTTP API events of every function
    routes = {
        (event["Properties"]["Method"], event["Properties"]["Path"]): (
            name,
            event["Properties"].get("Auth", {}).get("Authorizer"),
        )
        for name, function in _functions(resources).items()
        for event in function["Properties"].get("Events", {}).values()
        if event["Type"] == "HttpApi"
    }
    api_auth = resources["HttpApi"]["Properties"]["Auth"]

    # Then the routes are the documented ones, all on the one API, and only the hold-status
    # route demands SigV4: webhook senders cannot sign for AWS and prove themselves in code
    assert routes == EXPECTED_ROUTES
    assert api_auth.get("EnableIamAuthorizer") is True
    assert "DefaultAuthorizer" not in api_auth
    api_ids = {
        json.dumps(event["Properties"]["ApiId"])
        for function in _functions(resources).values()
        for event in function["Properties"].get("Events", {}).values()
        if event["Type"] == "HttpApi"
    }
    assert api_ids == {json.dumps({"Ref": "HttpApi"})}


# --- state machine ---------------------------------------------------------------------------


def test_state_machine_substitutions_are_the_agreed_set(resources: dict[str, Any]) -> None:
    # Given the lifecycle state machine
    properties = resources["InvoiceLifecycle"]["Properties"]

    # When its definition substitutions are read
    substitutions = properties["DefinitionSubstitutions"]

    # Then they are exactly the six task functions' ARNs and the finance topic
    assert substitutions == {
        **{key: {"Fn::GetAtt": [name, "Arn"]} for key, name in TASK_FUNCTIONS.items()},
        "FinanceTopicArn": {"Ref": "FinanceTopic"},
    }
    assert properties["DefinitionUri"] == "statemachines/invoice_lifecycle.asl.json"
    assert properties["Type"] == "STANDARD"


def test_state_machine_may_invoke_its_task_functions(resources: dict[str, Any]) -> None:
    # Given the policies of the state machine
    policies = resources["InvoiceLifecycle"]["Properties"]["Policies"]

    # When the functions it may invoke are collected
    invocable = {
        policy["LambdaInvokePolicy"]["FunctionName"]["Ref"]
        for policy in policies
        if "LambdaInvokePolicy" in policy
    }

    # Then they are the task functions, no more and no fewer
    assert invocable == set(TASK_FUNCTIONS.values())


# --- whole template --------------------------------------------------------------------------


def test_only_the_intrinsics_the_local_stack_resolves(template: dict[str, Any]) -> None:
    # Given everything but the Conditions section, which the local stack evaluates on its own
    sections = {key: value for key, value in template.items() if key != "Conditions"}

    # When the intrinsic functions used there are collected
    used = {
        key
        for item in _walk(sections)
        if isinstance(item, dict)
        for key in item
        if key == "Ref" or key.startswith("Fn::")
    }

    # Then they are Ref, GetAtt and Sub only
    assert used
    assert used <= ALLOWED_INTRINSICS


def test_no_fixed_physical_names(resources: dict[str, Any]) -> None:
    # Given every top-level resource property that names the resource or another one
    named = {
        (resource_id, key): value
        for resource_id, resource in resources.items()
        for key, value in resource.get("Properties", {}).items()
        if key.endswith("Name")
    }

    # When the names that are neither a reference nor built from the stack name are kept
    fixed = {
        place: value
        for place, value in named.items()
        if not (
            (isinstance(value, dict) and value.keys() & {"Ref", "Fn::GetAtt"})
            or (isinstance(value, dict) and STACK_NAME_REF in str(value.get("Fn::Sub")))
        )
    }

    # Then there are none, so two stacks fit in one account
    assert named, "found no name property: the walk over the template is broken"
    assert fixed == {}


def test_outputs_are_the_agreed_set(template: dict[str, Any]) -> None:
    # Given the template's outputs
    outputs = template["Outputs"]

    # Then they are the agreed six and the API URL is built from the API's id
    assert set(outputs) == EXPECTED_OUTPUTS
    assert outputs["ApiUrl"]["Value"] == {
        "Fn::Sub": "https://${HttpApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}/"
    }
