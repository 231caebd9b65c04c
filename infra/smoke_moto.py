#!/usr/bin/env python3
"""Smoke test of infra/template.yaml in the moto emulator.

For each scenario (a set of parameter values) this script:
1. translates SAM with infra/translate.py, pointing every CodeUri at a dummy
   code zip uploaded to a moto S3 bucket;
2. checks the translated template statically, after evaluating its conditions
   for the scenario, above all what moto does not emulate (subscription
   filters, the account policy, EventInvokeConfig, alarms, SNS subscriptions,
   TTL, encryption settings);
3. creates the stack in moto, waits for CREATE_COMPLETE, checks that every
   Output resolved and that the key resources exist with the right settings;
4. deletes the stack and waits for DELETE_COMPLETE.

Runs only against a loopback endpoint (AWS_ENDPOINT_URL or MOTO_ENDPOINT), so it
can never touch a real account. Prints one line per check; exits 1 on failure.

Usage: smoke_moto.py [--template infra/template.yaml] [--scenario NAME ...] [--keep DIR]
       smoke_moto.py --offline DIR   steps 1-2 only, with made-up ARNs, no emulator

--keep/--offline DIR receive, for each scenario, NAME.translated.json and
NAME.template.json: the source template with each parameter's Default set to
the scenario's value, for scanners that pick resources by evaluating
conditions with the defaults (checkov drops the others unseen).
"""

from __future__ import annotations

import argparse
import ast
import io
import json
import os
import sys
import time
import urllib.parse
import uuid
import zipfile
from pathlib import Path
from typing import Any, Callable

import boto3
from botocore.config import Config

sys.path.insert(0, str(Path(__file__).resolve().parent))
import translate  # noqa: E402

REGION = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
RUN_ID = uuid.uuid4().hex[:8]


class Checks:
    """Collects pass/fail lines; a failure never stops the remaining checks."""

    def __init__(self) -> None:
        self.failures: list[str] = []
        self.passed = 0

    def check(self, ok: bool, what: str, detail: str = "") -> bool:
        if ok:
            self.passed += 1
            print(f"  ok    {what}")
        else:
            self.failures.append(what)
            print(f"  FAIL  {what}{': ' + detail if detail else ''}")
        return ok

    def info(self, what: str) -> None:
        print(f"  info  {what}")

    def attempt(self, what: str, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except Exception as error:  # noqa: BLE001 - report any client error as a failed check
            self.check(False, what, f"{type(error).__name__}: {error}")
            return None


def endpoint() -> str:
    url = os.environ.get("AWS_ENDPOINT_URL") or os.environ.get("MOTO_ENDPOINT")
    if not url:
        sys.exit("smoke_moto.py: set AWS_ENDPOINT_URL or MOTO_ENDPOINT to the moto server")
    host = urllib.parse.urlparse(url).hostname
    if host not in ("127.0.0.1", "localhost", "::1"):
        sys.exit(f"smoke_moto.py: refusing a non-loopback endpoint {url}")
    return url


def clients() -> dict[str, Any]:
    url = endpoint()
    cfg = Config(retries={"max_attempts": 2})
    names = ["cloudformation", "s3", "sns", "dynamodb", "lambda", "sqs", "kms", "logs",
             "cloudwatch", "events", "kinesis", "secretsmanager", "iam"]
    return {n: boto3.client(n, endpoint_url=url, region_name=REGION, config=cfg) for n in names}


def code_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        info = zipfile.ZipInfo("bootstrap")
        info.external_attr = 0o755 << 16
        archive.writestr(info, "#!/bin/sh\necho 'placeholder: build with cargo lambda'\nexit 1\n")
    return buffer.getvalue()


# ------------------------------------------------------------------ scenarios


MANY_GROUPS = [f"/aws/lambda/fn-{i:02d}" for i in range(1, 21)]
ORG_ID = "o-a1b2c3d4e5"
MEMBERS = ["222222222222", "333333333333"]
ACCOUNTS_MAP = 'accounts: {"222222222222": {name: payments-prod, team: payments}}'


def scenarios(fixtures: dict[str, str]) -> dict[str, dict[str, str]]:
    groups = f"{fixtures['group_a']},{fixtures['group_b']}"
    return {
        # Every parameter at its default: no email, no Slack, nothing subscribed.
        "defaults": {},
        "direct-loggroups": {
            "LogGroupNames": groups,
            "AlertEmail": "ops@example.com",
            "MinEmailSeverity": "high",
            "SlackWebhookSecretArn": fixtures["secret_arn"],
        },
        "kinesis-loggroups": {
            "IngestPath": "kinesis",
            "LogGroupNames": groups,
            "Architecture": "arm64",
            "SlackWebhookSecretArn": fixtures["secret_arn"],
            "SlackWebhookSecretKmsKeyArn": fixtures["secret_key_arn"],
            "RulesDirectory": "/opt/detectors",
            "DetectorReservedConcurrency": "-1",
        },
        # Every slot in use (the most LogGroupNames accepts).
        "direct-20-loggroups": {"LogGroupNames": ",".join(MANY_GROUPS), "MinEmailSeverity": "critical"},
        "account-direct": {"SubscriptionMode": "AccountPolicy", "AlertEmail": "ops@example.com"},
        # Slack by bot token (messages that follow the incident) and PagerDuty.
        "bot-pagerduty": {
            "SlackBotTokenSecretArn": fixtures["secret_arn"],
            "SlackChannel": "C0LOGWARDEN",
            "PagerDutyRoutingKeySecretArn": fixtures["secret_arn"],
        },
        "account-kinesis": {"SubscriptionMode": "AccountPolicy", "IngestPath": "kinesis"},
        # Central account of an organisation: a destination in front of the
        # stream, names and teams of accounts, links through the access portal.
        "org-central": {
            "SubscriptionMode": "AccountPolicy", "IngestPath": "kinesis", "OrganizationId": ORG_ID,
            "AccountsMap": ACCOUNTS_MAP, "AccessPortalUrl": "https://d-1234567890.awsapps.com/start",
            "AccessRole": "SecurityResponder",
        },
        # Central account admitting listed accounts instead of an organisation.
        "accounts-central": {"IngestPath": "kinesis", "SourceAccountIds": ",".join(MEMBERS)},
    }


# ------------------------------------------------------------- static checks


def has_notifier(params: dict[str, Any]) -> bool:
    """The notifier exists when any of its destinations is configured."""
    return any(params.get(p) for p in ("SlackWebhookSecretArn", "SlackBotTokenSecretArn",
                                        "PagerDutyRoutingKeySecretArn"))


def notifier_env(params: dict[str, Any]) -> dict[str, str]:
    """The notifier's environment for these parameters: only what is configured."""
    env = {"LOGWARDEN_REDACT_EMAILS": params["RedactEmails"]}
    if params.get("SlackWebhookSecretArn"):
        env["LOGWARDEN_SLACK_WEBHOOK_SECRET_ARN"] = params["SlackWebhookSecretArn"]
    if params.get("SlackBotTokenSecretArn"):
        env["LOGWARDEN_SLACK_BOT_TOKEN_SECRET_ARN"] = params["SlackBotTokenSecretArn"]
        env["LOGWARDEN_SLACK_CHANNEL"] = params["SlackChannel"]
    if params.get("PagerDutyRoutingKeySecretArn"):
        env["LOGWARDEN_PAGERDUTY_ROUTING_KEY_SECRET_ARN"] = params["PagerDutyRoutingKeySecretArn"]
    return env


def active_resources(translated: dict[str, Any], evaluator: translate.Evaluator) -> dict[str, Any]:
    return {
        name: res for name, res in translated["Resources"].items()
        if "Condition" not in res or evaluator.condition(res["Condition"])
    }


def parameter_checks(c: Checks, template: dict[str, Any]) -> None:
    """LogGroupNames must refuse what the 20 slots cannot subscribe."""
    too_many = ",".join(MANY_GROUPS + ["/aws/lambda/fn-21"])
    for value, why in ((too_many, "21 names"), ("/aws/lambda/a, /aws/lambda/b", "a space"),
                       ("/aws/lambda/a,,/aws/lambda/b", "an empty name"), ("/aws/lambda/a*", "a '*'")):
        try:
            translate.resolve_parameters(template, {"LogGroupNames": value})
            c.check(False, f"LogGroupNames with {why} is refused")
        except translate.TranslateError:
            c.check(True, f"LogGroupNames with {why} is refused")


def static_checks(c: Checks, name: str, overrides: dict[str, str], params: dict[str, Any],
                  active: dict[str, Any], evaluator: translate.Evaluator) -> None:
    by_type: dict[str, list[tuple[str, Any]]] = {}
    for logical_id, res in active.items():
        by_type.setdefault(res["Type"], []).append((logical_id, res))
    filters = by_type.get("AWS::Logs::SubscriptionFilter", [])
    permissions = dict(by_type.get("AWS::Lambda::Permission", []))
    policies = by_type.get("AWS::Logs::AccountPolicy", [])
    groups = [g for g in params["LogGroupNames"].split(",") if g]
    mode, path = params["SubscriptionMode"], params["IngestPath"]
    logs_permissions = {i: r for i, r in permissions.items() if r["Properties"]["Principal"] == "logs.amazonaws.com"}

    if mode == "LogGroups" and groups:
        names = sorted(evaluator.value(r["Properties"]["LogGroupName"]) for _, r in filters)
        c.check(names == sorted(groups), f"one subscription filter per log group ({len(groups)})", str(names))
        for logical_id, res in filters:
            props = res["Properties"]
            group = evaluator.value(props["LogGroupName"])
            if path == "direct":
                ok = c.check(props["DestinationArn"] == {"Fn::GetAtt": ["DetectorFunction", "Arn"]}
                             and res.get("DependsOn") in permissions,
                             f"{logical_id} ({group}) -> detector, after its invoke permission",
                             f"DependsOn={res.get('DependsOn')}")
                if ok:
                    source = evaluator.value(permissions[res["DependsOn"]]["Properties"]["SourceArn"])
                    c.check(source == f"arn:aws:logs:us-east-1:123456789012:log-group:{group}:*",
                            f"{res['DependsOn']} scoped to {group} only", source)
            else:
                c.check(props["DestinationArn"] == {"Fn::GetAtt": ["LogStream", "Arn"]}
                        and props.get("RoleArn") == {"Fn::GetAtt": ["LogsToKinesisRole", "Arn"]},
                        f"{logical_id} ({group}) -> Kinesis stream through LogsToKinesisRole")
        c.check(len(logs_permissions) == (len(groups) if path == "direct" else 0),
                "logs.amazonaws.com invoke permissions: one per log group on the direct path, none on Kinesis",
                str(sorted(logs_permissions)))
        c.check(not policies, "no account-level policy in LogGroups mode")
    else:
        c.check(not filters, "no per-log-group subscription filters", f"found {[i for i, _ in filters]}")

    if mode == "AccountPolicy":
        if c.check(len(policies) == 1, "one account-level subscription filter policy"):
            props = policies[0][1]["Properties"]
            c.check(props["PolicyType"] == "SUBSCRIPTION_FILTER_POLICY" and props["Scope"] == "ALL",
                    "policy type SUBSCRIPTION_FILTER_POLICY, scope ALL")
            criteria = json.dumps(props["SelectionCriteria"])
            c.check("LogGroupName NOT IN" in criteria and "DetectorLogGroup" in criteria
                    and "-notifier" in criteria,
                    "selection criteria exclude logwarden's own log groups (recursion guard)", criteria)
            doc = json.dumps(props["PolicyDocument"])
            want = "DetectorFunction" if path == "direct" else "LogStream"
            c.check(want in doc, f"policy destination is {want}", doc)
            if path == "direct":
                c.check(policies[0][1].get("DependsOn") == "AccountPolicyPermission",
                        "account policy waits for its invoke permission")
        if path == "direct":
            source = evaluator.value(logs_permissions["AccountPolicyPermission"]["Properties"]["SourceArn"]) \
                if "AccountPolicyPermission" in logs_permissions else None
            c.check(list(logs_permissions) == ["AccountPolicyPermission"]
                    and source == "arn:aws:logs:us-east-1:123456789012:log-group:*",
                    "one logs.amazonaws.com permission, for this account's log groups", str(source))
    elif mode == "None" or not groups:
        c.check(not logs_permissions, "no logs.amazonaws.com invoke permission", str(sorted(logs_permissions)))

    slack, kinesis = has_notifier(params), path == "kinesis"
    alarms = dict(by_type.get("AWS::CloudWatch::Alarm", []))
    want_alarms = {"DetectorErrorsAlarm", "DetectorThrottlesAlarm", "OnFailureQueueAlarm"}
    want_alarms |= {"NotifierErrorsAlarm"} if slack else set()
    want_alarms |= {"DetectorIteratorAgeAlarm"} if kinesis else set()
    c.check(set(alarms) == want_alarms, "alarms " + ", ".join(sorted(want_alarms)), str(sorted(alarms)))
    c.check(all(a["Properties"].get("AlarmActions") == [{"Ref": "AlertTopic"}] for a in alarms.values()),
            "every alarm publishes to the alert topic")

    for fn_id in ("DetectorFunction", "NotifierFunction"):
        if fn_id in active:
            c.check(active[fn_id]["Properties"].get("Architectures") == [{"Ref": "Architecture"}],
                    f"{fn_id} architecture from the Architecture parameter ({params['Architecture']})")
    c.check(active["DataKey"]["Properties"].get("EnableKeyRotation") is True, "data key rotation enabled")
    c.check(active["AlertTopic"]["Properties"].get("KmsMasterKeyId") == {"Ref": "DataKey"},
            "topic encrypted with the data key")
    if kinesis:
        c.check(active["LogStream"]["Properties"].get("StreamEncryption")
                == {"EncryptionType": "KMS", "KeyId": {"Ref": "DataKey"}}, "stream encrypted with the data key")
    levels = ["low", "medium", "high", "critical"]
    subscriptions = dict(by_type.get("AWS::SNS::Subscription", []))
    want_subs = ({"EmailSubscription"} if params["AlertEmail"] else set()) | ({"NotifierFunctionAlerts"} if slack else set())
    c.check(set(subscriptions) == want_subs, "topic subscriptions " + (", ".join(sorted(want_subs)) or "none"),
            str(sorted(subscriptions)))
    for sub_id, sub in subscriptions.items():
        floor = params["MinEmailSeverity"] if sub_id == "EmailSubscription" else params["MinSlackSeverity"]
        policy = sub["Properties"].get("FilterPolicy", {})
        branches = policy.get("$or", [])
        floor_param = "MinEmailSeverity" if sub_id == "EmailSubscription" else "MinSlackSeverity"
        by_floor = {"Fn::FindInMap": ["SeverityAtLeast", {"Ref": floor_param}, "Values"]}
        ok = (len(branches) == 2 and branches[0] == {"severity": by_floor}
              and branches[1] == {"severity": [{"exists": False}]})
        c.check(ok, f"{sub_id} filter policy: severity >= {floor} ({', '.join(levels[levels.index(floor):])}) or none (alarms)",
                json.dumps(policy))
        c.check(sub["Properties"].get("Protocol") == ("email" if sub_id == "EmailSubscription" else "lambda"),
                f"{sub_id} protocol")

    central_checks(c, params, active, evaluator)

    table = active["StateTable"]["Properties"]
    c.check(table.get("TimeToLiveSpecification") == {"AttributeName": "expires_at", "Enabled": True},
            "table TTL on attribute expires_at")
    c.check(table.get("PointInTimeRecoverySpecification", {}).get("PointInTimeRecoveryEnabled") is True,
            "table point-in-time recovery")
    c.check(table.get("SSESpecification", {}).get("KMSMasterKeyId") == {"Ref": "DataKey"},
            "table encrypted with the data key")
    c.check(table.get("BillingMode") == "PAY_PER_REQUEST", "table on demand")

    invoke_configs = by_type.get("AWS::Lambda::EventInvokeConfig", [])
    want_configs = 2 if has_notifier(params) else 1
    c.check(len(invoke_configs) == want_configs
            and all("OnFailure" in r["Properties"]["DestinationConfig"] for _, r in invoke_configs),
            f"{want_configs} EventInvokeConfig with an on-failure destination")
    if path == "kinesis":
        mappings = by_type.get("AWS::Lambda::EventSourceMapping", [])
        if c.check(len(mappings) == 1, "one Kinesis event source mapping"):
            props = mappings[0][1]["Properties"]
            c.check(props.get("BisectBatchOnFunctionError") is True
                    and props.get("FunctionResponseTypes") == ["ReportBatchItemFailures"]
                    and "OnFailure" in props.get("DestinationConfig", {}),
                    "mapping bisects on error, reports batch item failures, has an on-failure destination")


def central_checks(c: Checks, params: dict[str, Any], active: dict[str, Any],
                   evaluator: translate.Evaluator) -> None:
    """The central account's destination, its policy and the role behind it."""
    org, members = params["OrganizationId"], [a for a in params["SourceAccountIds"].split(",") if a]
    cross = params["IngestPath"] == "kinesis" and bool(org or members)
    if not c.check(("LogDestination" in active) == cross,
                   f"CloudWatch Logs destination in front of the stream: {'yes' if cross else 'no'}"):
        return
    env = active["DetectorFunction"]["Properties"]["Environment"]["Variables"]
    c.check(env.get("LOGWARDEN_HOME_ACCOUNT") == {"Ref": "AWS::AccountId"},
            "detector's home account is the stack's account (LOGWARDEN_HOME_ACCOUNT)")
    if not cross:
        return
    props = active["LogDestination"]["Properties"]
    c.check(props["TargetArn"] == {"Fn::GetAtt": ["LogStream", "Arn"]}
            and props["RoleArn"] == {"Fn::GetAtt": ["LogsToKinesisRole", "Arn"]},
            "destination writes into the stream through LogsToKinesisRole")
    name = evaluator.value(props["DestinationName"])
    policy = json.loads(evaluator.value(props["DestinationPolicy"]))
    [statement] = policy["Statement"]
    c.check(statement["Resource"] == f"arn:aws:logs:{REGION}:123456789012:destination:{name}"
            and sorted(statement["Action"]) == ["logs:PutAccountPolicy", "logs:PutSubscriptionFilter"],
            "destination policy: subscription filters and account policies on this destination only",
            json.dumps(statement))
    if org:
        c.check(statement["Principal"] == "*"
                and statement.get("Condition") == {"StringEquals": {"aws:PrincipalOrgID": org}},
                f"destination policy admits organisation {org} only", json.dumps(statement))
    else:
        c.check(statement["Principal"] == {"AWS": members} and "Condition" not in statement,
                f"destination policy admits accounts {', '.join(members)} only", json.dumps(statement))
    trust = active["LogsToKinesisRole"]["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]
    condition = evaluator.value(trust["Condition"])
    want = ({"StringEquals": {"aws:SourceOrgID": org}} if org
            else {"StringEquals": {"aws:SourceAccount": ["123456789012", *members]}})
    c.check(condition == want, "CloudWatch Logs may assume the role only for the admitted accounts",
            json.dumps(condition))
    if params["AccountsMap"]:
        c.check(evaluator.value(env["LOGWARDEN_ACCOUNTS"]) == params["AccountsMap"],
                "accounts map passed as LOGWARDEN_ACCOUNTS")


# ----------------------------------------------------------- deployed checks


def policy_document(doc: Any) -> dict[str, Any]:
    """Role policy as a dict (moto returns the Python repr of the stored document)."""
    if isinstance(doc, dict):
        return doc
    text = urllib.parse.unquote(doc)
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError:
        parsed = ast.literal_eval(text)
    # moto keeps an Fn::If that chose AWS::NoValue as None; CloudFormation drops it.
    parsed["Statement"] = [s for s in parsed["Statement"] if s is not None]
    return parsed


def wait_stack(cfn: Any, stack: str, pending: str, timeout: float = 120.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        desc = cfn.describe_stacks(StackName=stack)["Stacks"][0]
        if desc["StackStatus"] != pending or time.monotonic() > deadline:
            return desc
        time.sleep(0.5)


def deployed_checks(c: Checks, aws: dict[str, Any], stack: str, params: dict[str, Any],
                    outputs: dict[str, str]) -> None:
    slack = has_notifier(params)
    kinesis = params["IngestPath"] == "kinesis"
    want = {"AlertTopicArn", "StateTableName", "DetectorFunctionName", "DetectorFunctionArn",
            "OnFailureQueueUrl", "DataKeyArn"}
    if slack:
        want |= {"NotifierFunctionName"}
    if kinesis:
        want |= {"LogStreamArn", "LogsToKinesisRoleArn"}
    if kinesis and (params["OrganizationId"] or params["SourceAccountIds"]):
        want |= {"LogDestinationArn"}
    c.check(set(outputs) == want, "outputs present: " + ", ".join(sorted(want)),
            f"got {sorted(outputs)}")
    unresolved = {k: v for k, v in outputs.items() if not v or "Fn::" in v or "{" in v or "Ref" in v}
    c.check(not unresolved, "every output resolved to a value", str(unresolved))

    topic = outputs.get("AlertTopicArn", "")
    attrs = c.attempt("topic exists", lambda: aws["sns"].get_topic_attributes(TopicArn=topic)["Attributes"])
    if attrs is not None:
        c.check(topic.startswith(f"arn:aws:sns:{REGION}:"), f"topic {topic.split(':')[-1]} exists")
        c.check(bool(attrs.get("KmsMasterKeyId")), "topic encrypted with the data key")

    table = outputs.get("StateTableName", "")
    desc = c.attempt("table exists", lambda: aws["dynamodb"].describe_table(TableName=table)["Table"])
    if desc is not None:
        c.check(True, f"table {table} exists")
        c.check(desc.get("BillingModeSummary", {}).get("BillingMode") == "PAY_PER_REQUEST", "table on demand")
        keys = {k["AttributeName"]: k["KeyType"] for k in desc["KeySchema"]}
        c.check(keys == {"pk": "HASH", "sk": "RANGE"}, "table key schema pk (hash) + sk (range)", str(keys))
        if desc.get("SSEDescription"):
            c.check(desc["SSEDescription"].get("SSEType") == "KMS", "table encrypted with KMS")
        else:
            c.info("moto does not apply SSESpecification from CloudFormation (checked statically)")
        pitr = c.attempt("point-in-time recovery readable", lambda: aws["dynamodb"].describe_continuous_backups(
            TableName=table)["ContinuousBackupsDescription"])
        if pitr is not None:
            status = pitr.get("PointInTimeRecoveryDescription", {}).get("PointInTimeRecoveryStatus")
            if status == "ENABLED":
                c.check(True, "point-in-time recovery enabled")
            else:
                c.info(f"point-in-time recovery shows {status} in moto (CloudFormation property not applied by moto)")
        ttl = aws["dynamodb"].describe_time_to_live(TableName=table)["TimeToLiveDescription"]
        c.info(f"TTL in moto: {ttl.get('TimeToLiveStatus')} (moto ignores TimeToLiveSpecification; checked statically)")

    detector = outputs.get("DetectorFunctionName", "")
    fn = c.attempt("detector exists", lambda: aws["lambda"].get_function(FunctionName=detector)["Configuration"])
    if fn is not None:
        c.check(fn["Runtime"] == "provided.al2023" and fn["Handler"] == "bootstrap",
                f"detector {detector}: provided.al2023, handler bootstrap")
        if fn.get("Architectures") == [params["Architecture"]]:
            c.check(True, f"detector architecture {params['Architecture']}")
        else:
            c.info(f"moto reports {fn.get('Architectures')}: it ignores Architectures from CloudFormation (checked statically)")
        env = {k: str(v) for k, v in fn.get("Environment", {}).get("Variables", {}).items()}
        expect_env = {"LOGWARDEN_TOPIC_ARN": topic, "LOGWARDEN_STATE_TABLE": table,
                      "LOGWARDEN_MAX_DECODED_BYTES": params["MaxDecodedBytes"],
                      "LOGWARDEN_MAX_ALERTS_PER_BATCH": str(params["MaxAlertsPerBatch"]),
                      "LOGWARDEN_REDACT_EMAILS": params["RedactEmails"],
                      "LOGWARDEN_IGNORE_LOG_GROUPS": f"/aws/lambda/{stack}-notifier",
                      "LOGWARDEN_HOME_ACCOUNT": "123456789012"}
        if params["AccountsMap"]:
            expect_env["LOGWARDEN_ACCOUNTS"] = params["AccountsMap"]
        if params["AccessPortalUrl"] and params["AccessRole"]:
            expect_env["LOGWARDEN_ACCESS_PORTAL_URL"] = params["AccessPortalUrl"]
            expect_env["LOGWARDEN_ACCESS_ROLE"] = params["AccessRole"]
        if params["RulesDirectory"]:
            expect_env["LOGWARDEN_RULES"] = params["RulesDirectory"]
        c.check(env == expect_env, "detector environment " + ", ".join(sorted(expect_env)), str(env))
        role = fn["Role"].split("/")[-1]
        policies = c.attempt("detector role readable", lambda: aws["iam"].list_role_policies(RoleName=role))
        if policies is not None:
            doc = policy_document(aws["iam"].get_role_policy(RoleName=role, PolicyName="detector")["PolicyDocument"])
            actions = set()
            for statement in doc["Statement"]:
                action = statement["Action"]
                actions |= {action} if isinstance(action, str) else set(action)
            star = [st for st in doc["Statement"] if st.get("Resource") in ("*", ["*"])]
            c.check(not star, "detector policy names its resources (no Resource: *)")
            c.check(("kinesis:GetRecords" in actions) == kinesis, "detector may read Kinesis only on the scale path")
        policy = c.attempt("detector resource policy readable",
                           lambda: json.loads(aws["lambda"].get_policy(FunctionName=detector)["Policy"]))
        if policy is not None:
            sources = sorted(
                st.get("Condition", {}).get("ArnLike", {}).get("AWS:SourceArn", "")
                for st in policy["Statement"]
                if "logs.amazonaws.com" in json.dumps(st.get("Principal")))
            groups = [g for g in params["LogGroupNames"].split(",") if g]
            prefix = f"arn:aws:logs:{REGION}:123456789012:log-group:"
            if params["IngestPath"] != "direct":
                want = []
            elif params["SubscriptionMode"] == "AccountPolicy":
                want = [prefix + "*"]
            elif params["SubscriptionMode"] == "LogGroups":
                want = sorted(f"{prefix}{g}:*" for g in groups)
            else:
                want = []
            c.check(sources == want, f"detector may be invoked by CloudWatch Logs for exactly {len(want)} source(s)"
                    + (f" ({want[0]}{', ...' if len(want) > 1 else ''})" if want else ""), str(sources))
        reserved = c.attempt("detector concurrency readable",
                             lambda: aws["lambda"].get_function_concurrency(FunctionName=detector))
        if reserved is not None:
            want_reserved = None if params["DetectorReservedConcurrency"] == "-1" else int(params["DetectorReservedConcurrency"])
            c.check(reserved.get("ReservedConcurrentExecutions") == want_reserved,
                    f"detector reserved concurrency {want_reserved}", str(reserved.get("ReservedConcurrentExecutions")))

    if slack:
        notifier = outputs.get("NotifierFunctionName", "")
        nfn = c.attempt("notifier exists", lambda: aws["lambda"].get_function(FunctionName=notifier)["Configuration"])
        if nfn is not None:
            env = nfn.get("Environment", {}).get("Variables", {})
            want_env = notifier_env(params)
            bot = bool(params.get("SlackBotTokenSecretArn"))
            # The state table's name is moto's; its presence is what matters.
            table = env.pop("LOGWARDEN_STATE_TABLE", None)
            c.check(env == want_env and (table is not None) == bot,
                    f"notifier {notifier}: {', '.join(sorted(want_env))}"
                    + (" and LOGWARDEN_STATE_TABLE" if bot else "") + " in its environment",
                    str(env))
            role = nfn["Role"].split("/")[-1]
            doc = policy_document(aws["iam"].get_role_policy(RoleName=role, PolicyName="notifier")["PolicyDocument"])
            text = json.dumps(doc)
            secrets = [params[p] for p in ("SlackWebhookSecretArn", "SlackBotTokenSecretArn",
                                           "PagerDutyRoutingKeySecretArn") if params.get(p)]
            dynamo = [st for st in doc["Statement"] if "dynamodb:" in json.dumps(st.get("Action"))]
            c.check("secretsmanager:GetSecretValue" in text and all(a in text for a in secrets)
                    and "sns:Publish" not in text,
                    "notifier may read only its secrets (no SNS)")
            if bot:
                c.check(len(dynamo) == 1 and sorted(dynamo[0]["Action"]) == ["dynamodb:GetItem", "dynamodb:PutItem"]
                        and "slack|*" in json.dumps(dynamo[0].get("Condition")),
                        "the bot may get and put only its slack|* items of the state table", str(dynamo))
            else:
                c.check(not dynamo, "no DynamoDB for the notifier without a bot", str(dynamo))
            decrypt = [st for st in doc["Statement"] if st.get("Sid") == "DecryptSlackWebhook"]
            if params["SlackWebhookSecretKmsKeyArn"]:
                c.check(len(decrypt) == 1 and decrypt[0]["Resource"] == params["SlackWebhookSecretKmsKeyArn"],
                        "notifier may decrypt the secret's own KMS key", str(decrypt))
            else:
                c.check(not decrypt, "notifier gets no kms:Decrypt for the secret without SlackWebhookSecretKmsKeyArn")
    else:
        c.check(len([f for f in aws["lambda"].list_functions()["Functions"]
                     if f["FunctionName"] == f"{stack}-notifier"]) == 0, "no notifier without a Slack secret")

    subs = aws["sns"].list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"] if topic else []
    protocols = sorted(s["Protocol"] for s in subs)
    want_protocols = sorted((["email"] if params["AlertEmail"] else []) + (["lambda"] if slack else []))
    if subs:
        c.check(protocols == want_protocols, f"topic subscriptions {want_protocols}", str(protocols))
    else:
        c.info("moto has no CloudFormation support for AWS::SNS::Subscription (checked statically)")
    for sub in subs:
        sub_attrs = aws["sns"].get_subscription_attributes(SubscriptionArn=sub["SubscriptionArn"])["Attributes"]
        policy = json.loads(sub_attrs.get("FilterPolicy", "{}"))
        floor = params["MinEmailSeverity"] if sub["Protocol"] == "email" else params["MinSlackSeverity"]
        levels = ["low", "medium", "high", "critical"]
        expected = {"$or": [{"severity": levels[levels.index(floor):]}, {"severity": [{"exists": False}]}]}
        c.check(policy == expected, f"{sub['Protocol']} filter policy: severity >= {floor} or no severity (alarms)",
                json.dumps(policy))

    queue_url = outputs.get("OnFailureQueueUrl", "")
    qattrs = c.attempt("on-failure queue exists", lambda: aws["sqs"].get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["All"])["Attributes"])
    if qattrs is not None:
        c.check(bool(qattrs.get("KmsMasterKeyId")), "on-failure queue encrypted with the data key")

    # DescribeKey fails in moto for keys made by CloudFormation (it stores the
    # policy as a dict), so the alias is what shows that the key exists.
    key_id = outputs.get("DataKeyArn", "").split("/")[-1]
    aliases = {a["AliasName"]: a.get("TargetKeyId") for a in aws["kms"].list_aliases()["Aliases"]}
    c.check(aliases.get(f"alias/{stack}-data") == key_id, f"data key exists behind alias/{stack}-data",
            str(aliases.get(f"alias/{stack}-data")))

    groups = aws["logs"].describe_log_groups(logGroupNamePrefix=f"/aws/lambda/{stack}-")["logGroups"]
    names = sorted(g["logGroupName"] for g in groups)
    want_groups = sorted([f"/aws/lambda/{stack}-detector"] + ([f"/aws/lambda/{stack}-notifier"] if slack else []))
    c.check(names == want_groups, "own log groups " + ", ".join(want_groups), str(names))
    c.check(all(g.get("retentionInDays") == int(params["LogRetentionDays"]) for g in groups),
            f"own log groups keep {params['LogRetentionDays']} days")

    alarms = aws["cloudwatch"].describe_alarms(AlarmNamePrefix=f"{stack}-")["MetricAlarms"]
    if alarms:
        c.check(all(a.get("AlarmActions") == [topic] for a in alarms), "every alarm publishes to the alert topic")
    else:
        c.info("moto has no CloudFormation support for AWS::CloudWatch::Alarm (checked statically)")

    detector_arn = outputs.get("DetectorFunctionArn", "")
    sweep = []
    for rule in aws["events"].list_rules()["Rules"]:
        if rule.get("ScheduleExpression") == "rate(1 minute)":
            targets = aws["events"].list_targets_by_rule(Rule=rule["Name"])["Targets"]
            if any(t["Arn"] == detector_arn for t in targets):
                sweep.append(rule["Name"])
    c.check(len(sweep) == 1, "sweep rule rate(1 minute) -> detector", str(sweep))

    if "LogDestinationArn" in outputs:
        destination_checks(c, aws, stack, params, outputs)

    if kinesis:
        stream = c.attempt("Kinesis stream exists", lambda: aws["kinesis"].describe_stream_summary(
            StreamARN=outputs.get("LogStreamArn", ""))["StreamDescriptionSummary"])
        if stream is not None:
            c.check(stream.get("StreamStatus") == "ACTIVE", "Kinesis stream ACTIVE")
            if stream.get("EncryptionType") != "KMS":
                c.info("moto ignores StreamEncryption from CloudFormation (checked statically)")
        mappings = aws["lambda"].list_event_source_mappings(FunctionName=detector)["EventSourceMappings"]
        if c.check(len(mappings) == 1, "one event source mapping on the detector", str(len(mappings))):
            m = mappings[0]
            c.check(m.get("EventSourceArn") == outputs.get("LogStreamArn"), "mapping reads the log stream")
            for field, expected in (("BisectBatchOnFunctionError", True),
                                    ("FunctionResponseTypes", ["ReportBatchItemFailures"])):
                if field in m:
                    c.check(m[field] == expected, f"mapping {field}={expected}", str(m[field]))
                else:
                    c.info(f"moto does not return {field} (checked statically)")


def destination_checks(c: Checks, aws: dict[str, Any], stack: str, params: dict[str, Any],
                       outputs: dict[str, str]) -> None:
    """moto has no CloudFormation support for AWS::Logs::Destination: create
    the destination the template declares through the API, in front of the
    stack's stream, and check that the output names it."""
    name = f"{stack}-logs"
    made = c.attempt("destination created by API in front of the stack's stream", lambda: aws["logs"].put_destination(
        destinationName=name, targetArn=outputs["LogStreamArn"], roleArn=outputs["LogsToKinesisRoleArn"]))
    if made is None:
        return
    c.check(made["destination"]["arn"] == outputs["LogDestinationArn"],
            "output LogDestinationArn is the destination's ARN", f"{made['destination']['arn']} vs {outputs['LogDestinationArn']}")
    statement = {"Effect": "Allow", "Action": ["logs:PutSubscriptionFilter", "logs:PutAccountPolicy"],
                 "Resource": outputs["LogDestinationArn"], "Principal": "*",
                 "Condition": {"StringEquals": {"aws:PrincipalOrgID": params["OrganizationId"] or "o-none"}}}
    aws["logs"].put_destination_policy(destinationName=name, accessPolicy=json.dumps(
        {"Version": "2012-10-17", "Statement": [statement]}))
    listed = aws["logs"].describe_destinations(DestinationNamePrefix=name)["destinations"]
    c.check(len(listed) == 1 and listed[0]["targetArn"] == outputs["LogStreamArn"],
            "destination targets the stack's Kinesis stream", str(listed))
    aws["logs"].delete_destination(destinationName=name)


def run_scenario(c: Checks, aws: dict[str, Any] | None, template_path: str, name: str, overrides: dict[str, str],
                 bucket: str, key: str, keep: str | None) -> None:
    offline = aws is None
    print(f"\n== scenario {name}: " + (" ".join(f"{k}={v}" for k, v in overrides.items()) or "all defaults"))
    template = translate.load_template(template_path)
    params = translate.resolve_parameters(template, overrides)
    sam_input = json.loads(json.dumps(template))
    translate.set_code_location(sam_input, bucket, key)
    started = time.monotonic()
    translated = translate.translate_sam(sam_input, params)
    c.check(True, f"translated with aws-sam-translator ({time.monotonic() - started:.1f} s, "
                  f"{len(translated['Resources'])} resources before conditions)")
    if keep:
        Path(keep, f"{name}.translated.json").write_text(json.dumps(translated, indent=2))
        variant = json.loads(json.dumps(template))
        for key, value in overrides.items():
            variant["Parameters"][key]["Default"] = value
        Path(keep, f"{name}.template.json").write_text(json.dumps(variant, indent=2))
    c.check("Transform" not in translated, "no transform left for CloudFormation/moto")
    stack = f"logwarden-smoke-{name}-{RUN_ID}"
    evaluator = translate.Evaluator(translated, params, stack_name=stack, region=REGION)
    active = active_resources(translated, evaluator)
    static_checks(c, name, overrides, params, active, evaluator)
    if offline:
        return

    cfn = aws["cloudformation"]
    cfn_params = [{"ParameterKey": k, "ParameterValue": v} for k, v in overrides.items()]
    created = c.attempt("create_stack accepted", lambda: cfn.create_stack(
        StackName=stack, TemplateBody=json.dumps(translated), Parameters=cfn_params,
        Capabilities=["CAPABILITY_IAM"]))
    if created is None:
        return
    try:
        desc = wait_stack(cfn, stack, "CREATE_IN_PROGRESS")
        ok = c.check(desc["StackStatus"] == "CREATE_COMPLETE", f"stack {stack} CREATE_COMPLETE",
                     f"{desc['StackStatus']} {desc.get('StackStatusReason', '')}")
        if not ok:
            for event in cfn.describe_stack_events(StackName=stack)["StackEvents"][:15]:
                print(f"        {event['LogicalResourceId']} {event['ResourceStatus']} {event.get('ResourceStatusReason', '')}")
            return
        # moto lists resources whose condition is false as blank entries.
        resources = [r for r in cfn.list_stack_resources(StackName=stack)["StackResourceSummaries"]
                     if r.get("LogicalResourceId")]
        c.check(all(r["ResourceStatus"] == "CREATE_COMPLETE" for r in resources),
                f"{len(resources)} stack resources CREATE_COMPLETE (of {len(active)} active in the template)")
        declared = {r["LogicalResourceId"] for r in resources}
        missing = sorted(set(active) - declared)
        if missing:
            c.info("not created by moto (not emulated): " + ", ".join(
                f"{m} ({active[m]['Type']})" for m in missing))
        outputs = {o["OutputKey"]: o["OutputValue"] for o in desc.get("Outputs", [])}
        try:
            deployed_checks(c, aws, stack, params, outputs)
        except Exception as error:  # noqa: BLE001 - a crash in a check is a failed check
            c.check(False, "deployed checks ran to the end", f"{type(error).__name__}: {error}")
    finally:
        deleted = c.attempt("delete_stack accepted", lambda: cfn.delete_stack(StackName=stack))
        if deleted is not None:
            try:
                desc = wait_stack(cfn, stack, "DELETE_IN_PROGRESS")
                c.check(desc["StackStatus"] == "DELETE_COMPLETE", f"stack {stack} DELETE_COMPLETE", desc["StackStatus"])
            except aws["cloudformation"].exceptions.ClientError:
                c.check(True, f"stack {stack} deleted")
            left = [f["FunctionName"] for f in aws["lambda"].list_functions()["Functions"]
                    if f["FunctionName"].startswith(f"{stack}-")]
            c.check(not left, "stack's functions removed with it", str(left))


def make_fixtures(aws: dict[str, Any], bucket: str, key: str) -> dict[str, str]:
    aws["s3"].create_bucket(Bucket=bucket)
    aws["s3"].put_object(Bucket=bucket, Key=key, Body=code_zip())
    secret = aws["secretsmanager"].create_secret(
        Name=f"logwarden-smoke-{RUN_ID}/slack-webhook", SecretString="https://hooks.slack.invalid/services/T0/B0/x")
    secret_key = aws["kms"].create_key(Description="logwarden smoke: secret key")["KeyMetadata"]
    fixtures = {"secret_arn": secret["ARN"], "secret_key_arn": secret_key["Arn"], "secret_key_id": secret_key["KeyId"],
                "group_a": f"/aws/lambda/smoke-{RUN_ID}-checkout", "group_b": f"/aws/lambda/smoke-{RUN_ID}-login.v2"}
    for group in (fixtures["group_a"], fixtures["group_b"]):
        aws["logs"].create_log_group(logGroupName=group)
    return fixtures


def cleanup_fixtures(aws: dict[str, Any], bucket: str, key: str, fixtures: dict[str, str]) -> None:
    for action in (
        lambda: aws["s3"].delete_object(Bucket=bucket, Key=key),
        lambda: aws["s3"].delete_bucket(Bucket=bucket),
        lambda: aws["secretsmanager"].delete_secret(SecretId=fixtures["secret_arn"], ForceDeleteWithoutRecovery=True),
        lambda: aws["logs"].delete_log_group(logGroupName=fixtures["group_a"]),
        lambda: aws["logs"].delete_log_group(logGroupName=fixtures["group_b"]),
        lambda: aws["kms"].schedule_key_deletion(KeyId=fixtures["secret_key_id"], PendingWindowInDays=7),
    ):
        try:
            action()
        except Exception as error:  # noqa: BLE001 - cleanup is best effort
            print(f"  info  cleanup: {error}")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--template", default=str(Path(__file__).resolve().parent / "template.yaml"))
    parser.add_argument("--scenario", action="append", help="run only these scenarios")
    parser.add_argument("--keep", metavar="DIR",
                        help="write the translated template and a defaults variant of each scenario here")
    parser.add_argument("--offline", metavar="DIR", help="translate and check statically only; keep files in DIR")
    args = parser.parse_args(argv)

    c = Checks()
    keep = args.offline or args.keep
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
    bucket, key = f"logwarden-smoke-{RUN_ID}", "code/bootstrap.zip"
    if args.offline:
        aws = None
        account = "123456789012"
        fixtures = {
            "secret_arn": f"arn:aws:secretsmanager:{REGION}:{account}:secret:logwarden/slack-webhook-AbCdEf",
            "secret_key_arn": f"arn:aws:kms:{REGION}:{account}:key/00000000-0000-4000-8000-000000000000",
            "group_a": "/aws/lambda/checkout", "group_b": "/aws/lambda/login.v2",
        }
        print(f"offline: translate and check statically, region {REGION}")
    else:
        aws = clients()
        print(f"moto endpoint {endpoint()}, region {REGION}, run id {RUN_ID}")
        fixtures = make_fixtures(aws, bucket, key)
    try:
        print("\n== parameter validation")
        parameter_checks(c, translate.load_template(args.template))
        all_scenarios = scenarios(fixtures)
        chosen = args.scenario or list(all_scenarios)
        for name in chosen:
            if name not in all_scenarios:
                c.check(False, f"scenario {name} exists", f"known: {', '.join(all_scenarios)}")
                continue
            try:
                run_scenario(c, aws, args.template, name, all_scenarios[name], bucket, key, keep)
            except translate.TranslateError as error:
                c.check(False, f"{name}: translate", str(error))
    finally:
        if aws is not None:
            cleanup_fixtures(aws, bucket, key, fixtures)
    print(f"\n{'static' if args.offline else 'smoke'}: {c.passed} passed, {len(c.failures)} failed")
    for failure in c.failures:
        print(f"  failed: {failure}")
    return 1 if c.failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
