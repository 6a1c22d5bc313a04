"""Reading template.yaml: CloudFormation's short tags, and resolving the intrinsics we use."""

import re
from pathlib import Path
from typing import Any

import yaml


class _CfnLoader(yaml.SafeLoader):
    """SafeLoader that reads !Ref, !GetAtt, !Sub and friends into their long form."""


def _construct(tag: str) -> Any:
    def build(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
        if isinstance(node, yaml.ScalarNode):
            value: Any = loader.construct_scalar(node)
            if tag == "Fn::GetAtt":
                value = str(value).split(".", 1)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        elif isinstance(node, yaml.MappingNode):
            value = loader.construct_mapping(node, deep=True)
        else:
            raise yaml.constructor.ConstructorError(None, None, f"unexpected {tag} node")
        return {tag: value}

    return build


for _short, _long in {
    "!Ref": "Ref",
    "!GetAtt": "Fn::GetAtt",
    "!Sub": "Fn::Sub",
    "!Join": "Fn::Join",
    "!If": "Fn::If",
    "!Equals": "Fn::Equals",
    "!Not": "Fn::Not",
    "!And": "Fn::And",
    "!Or": "Fn::Or",
    "!Select": "Fn::Select",
    "!Split": "Fn::Split",
    "!Condition": "Condition",
    "!FindInMap": "Fn::FindInMap",
    "!GetAZs": "Fn::GetAZs",
    "!Base64": "Fn::Base64",
    "!ImportValue": "Fn::ImportValue",
}.items():
    _CfnLoader.add_constructor(_short, _construct(_long))


def load_template(path: Path) -> dict[str, Any]:
    loaded = yaml.load(path.read_text(encoding="utf-8"), Loader=_CfnLoader)  # noqa: S506
    if not isinstance(loaded, dict) or "Resources" not in loaded:
        raise ValueError(f"{path} is not a CloudFormation template")
    return loaded


class UnresolvableError(ValueError):
    """The template uses an intrinsic or a reference the local stack does not know."""


_SUB_VARIABLE = re.compile(r"\$\{([^}!][^}]*)\}")


class Resolver:
    """Resolves Ref, Fn::GetAtt and Fn::Sub against the local stack's values."""

    def __init__(self, refs: dict[str, str], attributes: dict[tuple[str, str], str]) -> None:
        self.refs = refs
        self.attributes = attributes

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, argument),) = value.items()
            if key == "Ref":
                return self._ref(str(argument))
            if key == "Fn::GetAtt":
                return self._attribute(str(argument[0]), str(argument[1]))
            if key == "Fn::Sub":
                return self._sub(argument)
            if key == "Fn::Join":
                separator, parts = argument
                return str(separator).join(str(self.resolve(p)) for p in parts)
            if key.startswith("Fn::"):
                raise UnresolvableError(f"the local stack does not resolve {key}")
        return {k: self.resolve(v) for k, v in value.items()}

    def _ref(self, name: str) -> str:
        if name not in self.refs:
            raise UnresolvableError(f"nothing to resolve Ref {name} to")
        return self.refs[name]

    def _attribute(self, resource: str, attribute: str) -> str:
        key = (resource, attribute)
        if key not in self.attributes:
            raise UnresolvableError(f"nothing to resolve GetAtt {resource}.{attribute} to")
        return self.attributes[key]

    def _sub(self, argument: Any) -> str:
        if isinstance(argument, list):
            text, variables = (
                str(argument[0]),
                {k: str(self.resolve(v)) for k, v in dict(argument[1]).items()},
            )
        else:
            text, variables = str(argument), {}

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in variables:
                return variables[name]
            if "." in name:
                resource, attribute = name.split(".", 1)
                return self._attribute(resource, attribute)
            return self._ref(name)

        return _SUB_VARIABLE.sub(replace, text)
