#!/usr/bin/env python3
"""Checks of infra/member.yaml, the member-account template that StackSets roll
out across an organisation: per scenario (a set of parameter values),

1. parameter validation refuses what the template cannot subscribe;
2. static checks after evaluating the conditions: an account-level
   subscription filter policy (selection criteria excluding logwarden's own log
   groups, the forwarding path) or one subscription filter per listed log group,
   each naming the central account's destination in the stack's own region and
   no role (the destination's role writes into the stream);
3. unless --offline: the stack is created in moto (CREATE_COMPLETE), its outputs
   resolve, and it is deleted. moto does not emulate AWS::Logs::AccountPolicy or
   AWS::Logs::SubscriptionFilter from CloudFormation, nor deliver through a
   destination (step 2 checks them);
4. unless --offline, in moto's multi-account mode (the x-moto-account-id
   header): a central account with a stream and the destination in front of
   it, a member account with the member stack; the member's output is the
   central destination's ARN, and each stack lives in its own account.

Runs only against a loopback endpoint. Exits 1 on any failed check.

Usage: smoke_member.py [--template infra/member.yaml] [--offline]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import translate  # noqa: E402
from smoke_moto import REGION, Checks, clients, endpoint, wait_stack  # noqa: E402

CENTRAL = "111111111111"
RUN_ID = uuid.uuid4().hex[:8]
DESTINATION = f"arn:aws:logs:{REGION}:{CENTRAL}:destination:logwarden-logs"
GROUPS = ["/aws/lambda/checkout", "/aws/lambda/login.v2"]


def scenarios() -> dict[str, dict[str, str]]:
    return {
        "account-policy": {"CentralAccountId": CENTRAL},
        "log-groups": {"CentralAccountId": CENTRAL, "SubscriptionMode": "LogGroups", "LogGroupNames": ",".join(GROUPS)},
        "five-log-groups": {"CentralAccountId": CENTRAL, "SubscriptionMode": "LogGroups",
                            "LogGroupNames": ",".join(f"/aws/lambda/fn-{i}" for i in range(1, 6)),
                            "SubscriptionFilterPattern": "-DEBUG"},
        "account-policy-central-stack-named-audit": {
            "CentralAccountId": CENTRAL, "DestinationName": "audit-logs",
            "ExcludedLogGroups": "/aws/lambda/audit-detector,/aws/lambda/audit-notifier,/aws/lambda/forwarder"},
    }


def parameter_checks(c: Checks, template: dict[str, Any]) -> None:
    base = {"CentralAccountId": CENTRAL}
    for overrides, why in (
        ({}, "no central account"),
        ({"CentralAccountId": "12345"}, "a central account id that is not 12 digits"),
        ({**base, "LogGroupNames": ",".join(f"/g{i}" for i in range(6))}, "6 log group names"),
        ({**base, "ExcludedLogGroups": "/aws/lambda/a, /aws/lambda/b"}, "an excluded name with a space"),
        ({**base, "ExcludedLogGroups": '/a"]'}, "an excluded name that would end the selection criteria"),
        ({**base, "DestinationName": "x:*"}, "a destination name with ':'"),
    ):
        try:
            translate.resolve_parameters(template, overrides)
            c.check(False, f"{why} is refused")
        except translate.TranslateError:
            c.check(True, f"{why} is refused")


def static_checks(c: Checks, params: dict[str, Any], active: dict[str, Any], evaluator: translate.Evaluator) -> None:
    destination = f"arn:aws:logs:{REGION}:{params['CentralAccountId']}:destination:{params['DestinationName']}"
    policies = [r for r in active.values() if r["Type"] == "AWS::Logs::AccountPolicy"]
    filters = [r for r in active.values() if r["Type"] == "AWS::Logs::SubscriptionFilter"]
    if params["SubscriptionMode"] == "AccountPolicy":
        c.check(len(policies) == 1 and not filters, "one account-level subscription filter policy, no filters")
        if policies:
            props = policies[0]["Properties"]
            c.check(props["PolicyType"] == "SUBSCRIPTION_FILTER_POLICY" and props["Scope"] == "ALL",
                    "policy type SUBSCRIPTION_FILTER_POLICY, scope ALL")
            excluded = params["ExcludedLogGroups"].split(",")
            criteria = evaluator.value(props["SelectionCriteria"])
            c.check(criteria == "LogGroupName NOT IN " + json.dumps(excluded),
                    f"selection criteria exclude the forwarding path ({', '.join(excluded)})", criteria)
            doc = json.loads(evaluator.value(props["PolicyDocument"]))
            c.check(doc == {"DestinationArn": destination, "FilterPattern": params["SubscriptionFilterPattern"],
                            "Distribution": "ByLogStream"},
                    f"policy sends to {destination}, no role, one log stream per shard", json.dumps(doc))
    else:
        groups = [g for g in params["LogGroupNames"].split(",") if g]
        c.check(not policies, "no account-level policy in LogGroups mode")
        got = sorted(evaluator.value(r["Properties"]["LogGroupName"]) for r in filters)
        c.check(got == sorted(groups), f"one subscription filter per listed log group ({len(groups)})", str(got))
        for r in filters:
            props = r["Properties"]
            c.check(evaluator.value(props["DestinationArn"]) == destination and "RoleArn" not in props
                    and evaluator.value(props["FilterPattern"]) == params["SubscriptionFilterPattern"],
                    f"{evaluator.value(props['LogGroupName'])} -> central destination, no role")


def run_scenario(c: Checks, aws: dict[str, Any] | None, template_path: str, name: str,
                 overrides: dict[str, str]) -> None:
    print(f"\n== scenario {name}: " + " ".join(f"{k}={v}" for k, v in overrides.items()))
    template = translate.load_template(template_path)
    c.check("Transform" not in template, "plain CloudFormation (StackSets take no transform)")
    params = translate.resolve_parameters(template, overrides)
    stack = f"logwarden-member-{name}-{RUN_ID}"
    evaluator = translate.Evaluator(template, params, stack_name=stack, region=REGION)
    active = {n: r for n, r in template["Resources"].items()
              if "Condition" not in r or evaluator.condition(r["Condition"])}
    static_checks(c, params, active, evaluator)
    if aws is None:
        return
    cfn = aws["cloudformation"]
    body = Path(template_path).read_text()
    created = c.attempt("create_stack accepted", lambda: cfn.create_stack(
        StackName=stack, TemplateBody=body,
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in overrides.items()]))
    if created is None:
        return
    try:
        desc = wait_stack(cfn, stack, "CREATE_IN_PROGRESS")
        if not c.check(desc["StackStatus"] == "CREATE_COMPLETE", f"stack {stack} CREATE_COMPLETE",
                       f"{desc['StackStatus']} {desc.get('StackStatusReason', '')}"):
            return
        outputs = {o["OutputKey"]: o["OutputValue"] for o in desc.get("Outputs", [])}
        want = f"arn:aws:logs:{REGION}:{params['CentralAccountId']}:destination:{params['DestinationName']}"
        c.check(outputs.get("DestinationArn") == want and outputs.get("Mode") == params["SubscriptionMode"],
                "outputs name the central destination of this region and the mode", str(outputs))
        declared = {r["LogicalResourceId"] for r in cfn.list_stack_resources(StackName=stack)["StackResourceSummaries"]
                    if r.get("LogicalResourceId")}
        missing = sorted(set(active) - declared)
        if missing:
            c.info("not created by moto (not emulated; checked statically): " + ", ".join(missing))
    finally:
        if c.attempt("delete_stack accepted", lambda: cfn.delete_stack(StackName=stack)) is not None:
            try:
                desc = wait_stack(cfn, stack, "DELETE_IN_PROGRESS")
                c.check(desc["StackStatus"] == "DELETE_COMPLETE", f"stack {stack} DELETE_COMPLETE", desc["StackStatus"])
            except cfn.exceptions.ClientError:
                c.check(True, f"stack {stack} deleted")


def in_account(account: str, *names: str) -> list[Any]:
    """Clients of the loopback endpoint acting in `account` (moto's
    x-moto-account-id header)."""
    import boto3

    made = []
    for name in names:
        client = boto3.client(name, endpoint_url=endpoint(), region_name=REGION)

        def header(request: Any, **_: Any) -> None:
            request.headers["x-moto-account-id"] = account

        client.meta.events.register("before-sign.*.*", header)
        made.append(client)
    return made


def multi_account(c: Checks, template_path: str) -> None:
    member_id = "222222222222"
    print(f"\n== multi-account: central {CENTRAL}, member {member_id}")
    kinesis, logs, central_cfn = in_account(CENTRAL, "kinesis", "logs", "cloudformation")
    member_cfn, member_logs = in_account(member_id, "cloudformation", "logs")
    stream = f"logwarden-member-{RUN_ID}"
    name = f"logwarden-{RUN_ID}-logs"
    kinesis.create_stream(StreamName=stream, ShardCount=1)
    stream_arn = kinesis.describe_stream(StreamName=stream)["StreamDescription"]["StreamARN"]
    c.check(stream_arn.split(":")[4] == CENTRAL, f"stream in the central account ({stream_arn})")
    made = logs.put_destination(destinationName=name, targetArn=stream_arn,
                                roleArn=f"arn:aws:iam::{CENTRAL}:role/logwarden-logs-to-kinesis")["destination"]
    member_stack = f"logwarden-member-{RUN_ID}"
    try:
        member_cfn.create_stack(StackName=member_stack, TemplateBody=Path(template_path).read_text(), Parameters=[
            {"ParameterKey": "CentralAccountId", "ParameterValue": CENTRAL},
            {"ParameterKey": "DestinationName", "ParameterValue": name}])
        desc = wait_stack(member_cfn, member_stack, "CREATE_IN_PROGRESS")
        c.check(desc["StackStatus"] == "CREATE_COMPLETE" and desc["StackId"].split(":")[4] == member_id,
                f"member stack CREATE_COMPLETE in account {member_id}", desc["StackId"])
        outputs = {o["OutputKey"]: o["OutputValue"] for o in desc.get("Outputs", [])}
        c.check(outputs.get("DestinationArn") == made["arn"],
                "the member's DestinationArn is the central account's destination", f"{outputs} vs {made['arn']}")
        central_stacks = [s["StackName"] for s in central_cfn.list_stacks()["StackSummaries"]]
        c.check(member_stack not in central_stacks, "the member stack is not in the central account")
        c.check(not member_logs.describe_destinations(DestinationNamePrefix=name)["destinations"],
                "the destination is not in the member account")
    finally:
        member_cfn.delete_stack(StackName=member_stack)
        try:
            wait_stack(member_cfn, member_stack, "DELETE_IN_PROGRESS")
        except member_cfn.exceptions.ClientError:
            pass  # moto forgets a deleted stack at once: gone is what was asked
        logs.delete_destination(destinationName=name)
        kinesis.delete_stream(StreamName=stream)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--template", default=str(Path(__file__).resolve().parent / "member.yaml"))
    parser.add_argument("--offline", action="store_true", help="static checks only, no emulator")
    args = parser.parse_args(argv)
    c = Checks()
    aws = None if args.offline else clients()
    started = time.monotonic()
    print("\n== parameter validation")
    parameter_checks(c, translate.load_template(args.template))
    for name, overrides in scenarios().items():
        try:
            run_scenario(c, aws, args.template, name, overrides)
        except translate.TranslateError as error:
            c.check(False, f"{name}: evaluate", str(error))
    if aws is not None:
        multi_account(c, args.template)
    print(f"\nmember {'static' if args.offline else 'smoke'}: {c.passed} passed, {len(c.failures)} failed "
          f"({time.monotonic() - started:.1f} s)")
    for failure in c.failures:
        print(f"  failed: {failure}")
    return 1 if c.failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
