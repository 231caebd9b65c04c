#!/usr/bin/env python3
"""Translate infra/template.yaml (SAM) to plain CloudFormation, offline.

moto cannot run the AWS::Serverless-2016-10-31 transform, so the smoke test
translates the template here with aws-sam-translator first:

1. load the YAML, understanding CloudFormation short tags (!Ref, !GetAtt a.b, ...);
2. check the parameter values against Type, AllowedValues and AllowedPattern;
3. optionally point each function's CodeUri at an S3 object (moto bucket);
4. translate SAM to CloudFormation with aws-sam-translator.

It also offers Evaluator, which resolves the template's conditions and the
value functions they use for one set of parameter values, so checks can tell
which resources a stack would create and with which names.

The template uses no AWS::LanguageExtensions (see gen_subscriptions.py for
why); this script refuses a template that does, rather than half-translating it.

Usage:
  translate.py TEMPLATE [--param K=V ...] [--code-bucket B --code-key K] [--out FILE]
Needs AWS_DEFAULT_REGION (the translator derives the partition from it).
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import sys
from typing import Any

import yaml

PSEUDO = {
    "AWS::Partition": "aws",
    "AWS::AccountId": "123456789012",
    "AWS::URLSuffix": "amazonaws.com",
}


class TranslateError(Exception):
    """A template or parameter problem, reported in one line."""


# --------------------------------------------------------------------- YAML


class _CfnLoader(yaml.SafeLoader):
    """SafeLoader that understands CloudFormation's short-form tags."""


def _construct_tag(loader: yaml.Loader, tag_suffix: str, node: yaml.Node) -> Any:
    name = tag_suffix if tag_suffix in ("Ref", "Condition") else f"Fn::{tag_suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if tag_suffix == "GetAtt" and isinstance(value, str):
            logical_id, _, attribute = value.partition(".")
            value = [logical_id, attribute]
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


_CfnLoader.add_multi_constructor("!", _construct_tag)


def load_template(path: str) -> dict[str, Any]:
    with open(path, encoding="utf-8") as handle:
        template = yaml.load(handle, Loader=_CfnLoader)  # noqa: S506 - a SafeLoader subclass
    if not isinstance(template, dict) or "Resources" not in template:
        raise TranslateError(f"{path}: not a CloudFormation template")
    transforms = template.get("Transform", [])
    transforms = [transforms] if isinstance(transforms, str) else transforms
    if "AWS::LanguageExtensions" in transforms or "Fn::ForEach" in json.dumps(template):
        raise TranslateError(f"{path}: AWS::LanguageExtensions / Fn::ForEach is not supported here")
    return template


# --------------------------------------------------------------- parameters


def resolve_parameters(template: dict[str, Any], overrides: dict[str, str]) -> dict[str, Any]:
    """Parameter values as CloudFormation would take them, validated."""
    declared = template.get("Parameters", {})
    unknown = sorted(set(overrides) - set(declared))
    if unknown:
        raise TranslateError(f"unknown parameter(s): {', '.join(unknown)}")
    values: dict[str, Any] = {}
    for name, spec in declared.items():
        if name in overrides:
            raw = str(overrides[name])
        elif "Default" in spec:
            raw = str(spec["Default"])
        else:
            raise TranslateError(f"parameter {name} has no default and no value")
        allowed = spec.get("AllowedValues")
        if allowed is not None and raw not in [str(a) for a in allowed]:
            raise TranslateError(f"parameter {name}={raw!r} is not one of {allowed}")
        pattern = spec.get("AllowedPattern")
        if pattern is not None and not re.fullmatch(pattern, raw):
            raise TranslateError(f"parameter {name}={raw!r} does not match {pattern}")
        if spec.get("Type") == "Number":
            number = float(raw)
            if "MinValue" in spec and number < float(spec["MinValue"]):
                raise TranslateError(f"parameter {name}={raw} is below {spec['MinValue']}")
            if "MaxValue" in spec and number > float(spec["MaxValue"]):
                raise TranslateError(f"parameter {name}={raw} is above {spec['MaxValue']}")
        values[name] = raw.split(",") if spec.get("Type") == "CommaDelimitedList" else raw
    return values


# --------------------------------------------------------------- evaluation


class Evaluator:
    """Resolves conditions, and values built from parameters, for one parameter set.

    Resource attributes (Ref to a resource, Fn::GetAtt) cannot be known offline
    and raise TranslateError; pseudo parameters take fixed test values.
    """

    def __init__(self, template: dict[str, Any], params: dict[str, Any], stack_name: str = "stack",
                 region: str = "us-east-1") -> None:
        self.conditions = template.get("Conditions", {})
        self.params = {**PSEUDO, "AWS::Region": region, "AWS::StackName": stack_name, **params}
        self.cache: dict[str, bool] = {}

    def condition(self, name: str) -> bool:
        if name not in self.cache:
            if name not in self.conditions:
                raise TranslateError(f"unknown condition {name}")
            self.cache[name] = self.boolean(self.conditions[name])
        return self.cache[name]

    def boolean(self, node: Any) -> bool:
        if isinstance(node, dict) and len(node) == 1:
            (fn, args), = node.items()
            if fn == "Condition":
                return self.condition(args)
            if fn == "Fn::Equals":
                left, right = (self.value(a) for a in args)
                return str(left) == str(right)
            if fn == "Fn::Not":
                return not self.boolean(args[0])
            if fn == "Fn::And":
                return all(self.boolean(a) for a in args)
            if fn == "Fn::Or":
                return any(self.boolean(a) for a in args)
        raise TranslateError(f"cannot evaluate condition {node!r}")

    def value(self, node: Any) -> Any:
        if isinstance(node, (str, int, float, bool)):
            return node
        if isinstance(node, list):
            return [self.value(v) for v in node]
        if isinstance(node, dict) and not any(k == "Ref" or k.startswith("Fn::") for k in node):
            return {k: self.value(v) for k, v in node.items()}
        if isinstance(node, dict) and len(node) == 1:
            (fn, args), = node.items()
            if fn == "Ref" and args in self.params:
                return self.params[args]
            if fn == "Fn::Join":
                return args[0].join(str(i) for i in self.value(args[1]))
            if fn == "Fn::Split":
                return str(self.value(args[1])).split(args[0])
            if fn == "Fn::Select":
                return self.value(args[1])[int(self.value(args[0]))]
            if fn == "Fn::If":
                return self.value(args[1] if self.condition(args[0]) else args[2])
            if fn == "Fn::Sub":
                text, extra = (args, {}) if isinstance(args, str) else (args[0], args[1])
                names = {**self.params, **{k: self.value(v) for k, v in extra.items()}}

                def repl(match: re.Match[str]) -> str:
                    key = match.group(1)
                    if key not in names:
                        raise TranslateError(f"cannot resolve ${{{key}}} offline")
                    return str(names[key])

                return re.sub(r"\$\{([A-Za-z0-9:._]+)\}", repl, text)
        raise TranslateError(f"cannot evaluate {node!r} offline")


# ---------------------------------------------------------------------- SAM


class _NoManagedPolicies:
    """Every function has its own role, so SAM needs no managed policy map."""

    def load(self) -> dict[str, str]:
        return {}


def set_code_location(template: dict[str, Any], bucket: str, key: str) -> None:
    for resource in template["Resources"].values():
        if resource.get("Type") == "AWS::Serverless::Function":
            resource.setdefault("Properties", {})["CodeUri"] = {"Bucket": bucket, "Key": key}


def translate_sam(template: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    import logging

    from samtranslator.translator.transform import transform  # imported late: slow import

    # The library warns about usage metrics that nobody publishes offline.
    logging.getLogger("samtranslator.metrics").setLevel(logging.ERROR)
    sam_params = {k: ",".join(v) if isinstance(v, list) else v for k, v in params.items()}
    return transform(copy.deepcopy(template), sam_params, _NoManagedPolicies())


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("template")
    parser.add_argument("--param", action="append", default=[], metavar="K=V")
    parser.add_argument("--code-bucket", default="placeholder-bucket")
    parser.add_argument("--code-key", default="placeholder.zip")
    parser.add_argument("--out", metavar="FILE", help="translated CloudFormation JSON (default: stdout)")
    args = parser.parse_args(argv)

    overrides = {}
    for item in args.param:
        name, sep, value = item.partition("=")
        if not sep:
            parser.error(f"--param {item!r}: expected K=V")
        overrides[name] = value
    try:
        template = load_template(args.template)
        params = resolve_parameters(template, overrides)
        set_code_location(template, args.code_bucket, args.code_key)
        translated = translate_sam(template, params)
    except TranslateError as error:
        print(f"translate.py: {error}", file=sys.stderr)
        return 1
    text = json.dumps(translated, indent=2)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as handle:
            handle.write(text + "\n")
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
