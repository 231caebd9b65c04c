#!/usr/bin/env python3
"""Expand AWS::LanguageExtensions and translate infra/template.yaml offline.

CloudFormation runs two transforms on the template: AWS::LanguageExtensions
(Fn::ForEach) and then AWS::Serverless-2016-10-31 (SAM). Neither moto nor the
aws-sam-translator library implements the first one, so this script does what
it does for the subset the template uses, then calls aws-sam-translator:

1. load the YAML (CloudFormation short tags such as !Ref, !GetAtt a.b, !If);
2. expand every Fn::ForEach (Resources, resource properties, Outputs,
   Conditions) for one set of parameter values, as CloudFormation does:
   - the collection is a list, a Ref to a CommaDelimitedList parameter, or an
     Fn::If on a template condition (evaluated here) whose branches are those;
   - ${Id} in output keys becomes the value, &{Id} the value without its
     non-alphanumeric characters;
   - Ref: Id becomes the value, and ${Id}/&{Id} are replaced inside Fn::Sub;
   - plain strings are left alone, as CloudFormation leaves them: a leftover
     ${Id}/&{Id} (for instance in DependsOn) is reported as an error, because
     the real transform would leave it unresolved too;
3. optionally replace each function's CodeUri by an S3 location (moto bucket);
4. translate SAM to plain CloudFormation with aws-sam-translator.

Usage:
  translate.py TEMPLATE [--param K=V ...] [--expanded-out FILE]
               [--code-bucket B --code-key K] [--out FILE]

--expanded-out writes the template after step 2 (still SAM), with each
parameter's Default set to the value used, so that static scanners that
evaluate conditions from defaults (checkov) see the resources of that case.
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

LANGUAGE_EXTENSIONS = "AWS::LanguageExtensions"
FOREACH_PREFIX = "Fn::ForEach::"
UNSUPPORTED_EXTENSIONS = ("Fn::Length", "Fn::ToJsonString")


class TranslateError(Exception):
    """A template construct this script (or CloudFormation) cannot process."""


# --------------------------------------------------------------------- YAML


class _CfnLoader(yaml.SafeLoader):
    """SafeLoader that understands CloudFormation's short-form tags."""


def _construct_tag(loader: yaml.Loader, tag_suffix: str, node: yaml.Node) -> Any:
    name = "Ref" if tag_suffix == "Ref" else f"Fn::{tag_suffix}"
    if tag_suffix == "Condition":
        name = "Condition"
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
        template = yaml.load(handle, Loader=_CfnLoader)  # noqa: S506 - SafeLoader subclass
    if not isinstance(template, dict) or "Resources" not in template:
        raise TranslateError(f"{path}: not a CloudFormation template")
    return template


# --------------------------------------------------------------- parameters


def resolve_parameters(template: dict[str, Any], overrides: dict[str, str]) -> dict[str, Any]:
    """Parameter values as CloudFormation would see them (lists for CommaDelimitedList)."""
    declared = template.get("Parameters", {})
    unknown = sorted(set(overrides) - set(declared))
    if unknown:
        raise TranslateError(f"unknown parameter(s): {', '.join(unknown)}")
    values: dict[str, Any] = {}
    for name, spec in declared.items():
        if name in overrides:
            raw = overrides[name]
        elif "Default" in spec:
            raw = spec["Default"]
        else:
            raise TranslateError(f"parameter {name} has no default and no --param value")
        raw = str(raw)
        allowed = spec.get("AllowedValues")
        if allowed is not None and raw not in [str(a) for a in allowed]:
            raise TranslateError(f"parameter {name}={raw!r} is not one of {allowed}")
        pattern = spec.get("AllowedPattern")
        if pattern is not None and spec.get("Type") == "String" and not re.fullmatch(pattern, raw):
            raise TranslateError(f"parameter {name}={raw!r} does not match {pattern}")
        if spec.get("Type") == "CommaDelimitedList":
            values[name] = raw.split(",")
        else:
            values[name] = raw
    return values


# --------------------------------------------------------------- conditions


class _Evaluator:
    """Evaluates template conditions and the few value functions they use."""

    def __init__(self, template: dict[str, Any], params: dict[str, Any]) -> None:
        self.conditions = template.get("Conditions", {})
        self.params = params
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
        if isinstance(node, (str, int, float)):
            return node
        if isinstance(node, list):
            return [self.value(v) for v in node]
        if isinstance(node, dict) and len(node) == 1:
            (fn, args), = node.items()
            if fn == "Ref" and args in self.params:
                return self.params[args]
            if fn == "Fn::Join":
                delimiter, items = args
                items = self.value(items)
                return delimiter.join(str(i) for i in items)
            if fn == "Fn::If":
                name, when_true, when_false = args
                return self.value(when_true if self.condition(name) else when_false)
        raise TranslateError(f"cannot evaluate value {node!r} while expanding Fn::ForEach")


# ------------------------------------------------------------------ ForEach

_PLACEHOLDER = re.compile(r"[$&]\{([A-Za-z0-9_]+)\}")


def _alnum(value: str) -> str:
    return re.sub(r"[^0-9A-Za-z]", "", value)


def _substitute(text: str, bindings: dict[str, str]) -> str:
    def repl(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in bindings:
            return match.group(0)
        value = bindings[name]
        return value if match.group(0).startswith("$") else _alnum(value)

    return _PLACEHOLDER.sub(repl, text)


class _Expander:
    def __init__(self, evaluator: _Evaluator) -> None:
        self.evaluator = evaluator

    def collection(self, node: Any) -> list[str]:
        value = self.evaluator.value(node)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise TranslateError(f"Fn::ForEach collection is not a list of strings: {node!r}")
        return value

    def walk(self, node: Any, bindings: dict[str, str]) -> Any:
        if isinstance(node, list):
            return [self.walk(item, bindings) for item in node]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            (key, value), = node.items()
            if key in UNSUPPORTED_EXTENSIONS:
                raise TranslateError(f"{key} is not implemented by this script")
            if key == "Ref" and isinstance(value, str) and value in bindings:
                return bindings[value]
            if key == "Fn::Sub":
                if isinstance(value, str):
                    return {key: _substitute(value, bindings)}
                if isinstance(value, list) and len(value) == 2:
                    return {key: [_substitute(value[0], bindings), self.walk(value[1], bindings)]}
        result: dict[str, Any] = {}
        for key, value in node.items():
            if key.startswith(FOREACH_PREFIX):
                for out_key, out_value in self.expand(key, value, bindings).items():
                    if out_key in result or out_key in node:
                        raise TranslateError(f"Fn::ForEach produced a duplicate key {out_key}")
                    result[out_key] = out_value
            else:
                result[_substitute(key, bindings) if bindings else key] = self.walk(value, bindings)
        return result

    def expand(self, loop: str, spec: Any, bindings: dict[str, str]) -> dict[str, Any]:
        if not (isinstance(spec, list) and len(spec) == 3 and isinstance(spec[0], str)):
            raise TranslateError(f"{loop}: expected [Identifier, Collection, Fragment]")
        identifier, collection, fragment = spec
        if not isinstance(fragment, dict):
            raise TranslateError(f"{loop}: the fragment must be a mapping")
        out: dict[str, Any] = {}
        for item in self.collection(self.walk(collection, bindings)):
            inner = {**bindings, identifier: item}
            for key, value in fragment.items():
                if key.startswith(FOREACH_PREFIX):
                    produced = self.expand(key, value, inner)
                else:
                    if f"${{{identifier}}}" not in key and f"&{{{identifier}}}" not in key:
                        raise TranslateError(f"{loop}: output key {key} must contain ${{{identifier}}} or &{{{identifier}}}")
                    produced = {_substitute(key, inner): self.walk(value, inner)}
                for out_key, out_value in produced.items():
                    if out_key in out:
                        raise TranslateError(f"{loop}: duplicate output key {out_key} (two names differ only in non-alphanumeric characters?)")
                    out[out_key] = out_value
        return out


def _find_unresolved(node: Any, identifiers: set[str], path: str, found: list[str]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            _find_unresolved(value, identifiers, f"{path}/{key}", found)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            _find_unresolved(value, identifiers, f"{path}/{index}", found)
    elif isinstance(node, str):
        for match in _PLACEHOLDER.finditer(node):
            if match.group(1) in identifiers:
                found.append(f"{path}: {node!r}")


def _loop_identifiers(node: Any, acc: set[str]) -> set[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key.startswith(FOREACH_PREFIX) and isinstance(value, list) and value:
                acc.add(str(value[0]))
            _loop_identifiers(value, acc)
    elif isinstance(node, list):
        for value in node:
            _loop_identifiers(value, acc)
    return acc


def expand_language_extensions(template: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """Template after AWS::LanguageExtensions, for these parameter values."""
    transforms = template.get("Transform", [])
    transforms = [transforms] if isinstance(transforms, str) else list(transforms)
    out = copy.deepcopy(template)
    identifiers = _loop_identifiers(template, set())
    if LANGUAGE_EXTENSIONS not in transforms:
        if identifiers:
            raise TranslateError("Fn::ForEach needs the AWS::LanguageExtensions transform")
        return out
    expander = _Expander(_Evaluator(template, params))
    for section in ("Conditions", "Resources", "Outputs"):
        if section in out:
            out[section] = expander.walk(out[section], {})
    leftovers: list[str] = []
    for section in ("Conditions", "Resources", "Outputs"):
        _find_unresolved(out.get(section, {}), identifiers, section, leftovers)
    if leftovers:
        raise TranslateError(
            "loop identifiers left unresolved (CloudFormation resolves them only in output keys, "
            "Ref and Fn::Sub):\n  " + "\n  ".join(leftovers)
        )
    rest = [t for t in transforms if t != LANGUAGE_EXTENSIONS]
    if rest:
        out["Transform"] = rest if len(rest) > 1 else rest[0]
    else:
        out.pop("Transform", None)
    return out


# ---------------------------------------------------------------------- SAM


class _NoManagedPolicies:
    """The template gives every function its own role, so SAM needs no managed policy map."""

    def load(self) -> dict[str, str]:
        return {}


def set_code_location(template: dict[str, Any], bucket: str, key: str) -> None:
    for resource in template["Resources"].values():
        if resource.get("Type") == "AWS::Serverless::Function":
            resource.setdefault("Properties", {})["CodeUri"] = {"Bucket": bucket, "Key": key}


def translate_sam(template: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    import logging

    from samtranslator.translator.transform import transform  # imported late: slow import

    # The library warns about usage metrics nobody publishes offline.
    logging.getLogger("samtranslator.metrics").setLevel(logging.ERROR)

    sam_params = {k: ",".join(v) if isinstance(v, list) else v for k, v in params.items()}
    return transform(copy.deepcopy(template), sam_params, _NoManagedPolicies())


def with_defaults(template: dict[str, Any], overrides: dict[str, str]) -> dict[str, Any]:
    out = copy.deepcopy(template)
    for name, value in overrides.items():
        out["Parameters"][name]["Default"] = value
    return out


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("template")
    parser.add_argument("--param", action="append", default=[], metavar="K=V")
    parser.add_argument("--expanded-out", metavar="FILE")
    parser.add_argument("--code-bucket")
    parser.add_argument("--code-key")
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
        expanded = expand_language_extensions(template, params)
        if args.expanded_out:
            with open(args.expanded_out, "w", encoding="utf-8") as handle:
                json.dump(with_defaults(expanded, overrides), handle, indent=2)
        sam_input = copy.deepcopy(expanded)
        if args.code_bucket and args.code_key:
            set_code_location(sam_input, args.code_bucket, args.code_key)
        else:
            set_code_location(sam_input, "placeholder-bucket", "placeholder.zip")
        translated = translate_sam(sam_input, params)
    except TranslateError as error:
        print(f"translate.py: {error}", file=sys.stderr)
        return 1
    text = json.dumps(translated, indent=2)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as handle:
            handle.write(text)
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
