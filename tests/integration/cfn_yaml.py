"""Reads CloudFormation YAML into the same dicts as its JSON form.

The short tags (`!Ref`, `!GetAtt`, `!Sub`, ...) become the long forms (`{"Ref": ...}`,
`{"Fn::GetAtt": [...]}`, `{"Fn::Sub": ...}`), so tests can inspect a template without caring
which form its author used.
"""

from pathlib import Path
from typing import Any

import yaml

# Tags whose long form is `Fn::<Name>`; Ref, GetAtt and Condition are handled on their own.
_FN_TAGS = (
    "And",
    "Base64",
    "Cidr",
    "Equals",
    "FindInMap",
    "GetAZs",
    "If",
    "ImportValue",
    "Join",
    "Length",
    "Not",
    "Or",
    "Select",
    "Split",
    "Sub",
    "ToJsonString",
    "Transform",
)


class CfnLoader(yaml.SafeLoader):
    """A safe loader that also understands the CloudFormation short tags."""


def _node_value(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node, deep=True)
    raise yaml.constructor.ConstructorError(
        None, None, f"unexpected node {node.id}", node.start_mark
    )


def _construct_ref(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, Any]:
    return {"Ref": _node_value(loader, node)}


def _construct_condition(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, Any]:
    return {"Condition": _node_value(loader, node)}


def _construct_get_att(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, Any]:
    value = _node_value(loader, node)

    # The short form is "Resource.Attribute"; only the first dot separates the two, since
    # attribute names such as Endpoint.Address contain dots themselves.
    if isinstance(value, str):
        resource, _, attribute = value.partition(".")
        value = [resource, attribute]
    return {"Fn::GetAtt": value}


def _fn_constructor(name: str) -> Any:
    def construct(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, Any]:
        return {f"Fn::{name}": _node_value(loader, node)}

    return construct


CfnLoader.add_constructor("!Ref", _construct_ref)
CfnLoader.add_constructor("!Condition", _construct_condition)
CfnLoader.add_constructor("!GetAtt", _construct_get_att)
for _name in _FN_TAGS:
    CfnLoader.add_constructor(f"!{_name}", _fn_constructor(_name))


def load_template(path: Path) -> dict[str, Any]:
    """Parses a CloudFormation or SAM template written in YAML."""
    document = yaml.load(path.read_text(encoding="utf-8"), Loader=CfnLoader)
    if not isinstance(document, dict):
        raise TypeError(f"{path} is not a template: its top level is not a mapping")
    return document
