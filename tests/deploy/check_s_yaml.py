"""Validates every fc3 resource's `props` in s.yaml against the fc3 component's own JSON schema.

Run from the repository root: python3 tests/deploy/check_s_yaml.py
"""
import json
import pathlib
import re
import sys

import jsonschema
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "tests" / "fixtures" / "fc3" / "props.schema.json"


def resolve_vars(node, variables):
    """Substitutes `${vars.x}` the way Serverless Devs does before the component sees props.
    `${env(...)}` placeholders stay strings (they only appear in string-typed fields)."""
    if isinstance(node, dict):
        return {k: resolve_vars(v, variables) for k, v in node.items()}
    if isinstance(node, list):
        return [resolve_vars(v, variables) for v in node]
    if isinstance(node, str):
        whole = re.fullmatch(r"\$\{vars\.(\w+)\}", node)
        if whole:
            return variables[whole.group(1)]
        return re.sub(r"\$\{vars\.(\w+)\}", lambda m: str(variables[m.group(1)]), node)
    return node


def is_int_above(value, floor):
    return isinstance(value, int) and value > floor


def fc_size_ok(props):
    """FC's rules the schema leaves out: vCPU in steps of 0.05 and memory (GB) / vCPU within 1-4."""
    cpu, memory = props.get("cpu", 0.35), props.get("memorySize", 512)
    steps = cpu / 0.05
    return abs(steps - round(steps)) < 1e-9 and 1.0 <= memory / 1024 / cpu <= 4.0


def main() -> int:
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    validator = jsonschema.Draft7Validator(schema)
    doc = yaml.safe_load((ROOT / "s.yaml").read_text())
    failures = 0
    resources = doc.get("resources") or {}
    if not resources:
        print("s.yaml: no resources")
        return 1
    for name, resource in resources.items():
        if resource.get("component") != "fc3":
            continue
        props = resolve_vars(resource["props"], doc.get("vars") or {})
        for error in sorted(validator.iter_errors(props), key=lambda e: list(e.path)):
            failures += 1
            print(f"s.yaml resources.{name}.props.{'.'.join(map(str, error.path))}: {error.message}")
        # What the schema cannot say but the function needs.
        checks = {
            "runtime is custom.debian10 (glibc 2.28, what make release targets)": props.get("runtime") == "custom.debian10",
            "explicit timeout above fc3's 3 s default": is_int_above(props.get("timeout", 3), 3),
            "command is /code/bootstrap": props.get("customRuntimeConfig", {}).get("command") == ["/code/bootstrap"],
            "port 9000": props.get("customRuntimeConfig", {}).get("port") == 9000,
            "instanceConcurrency > 1": is_int_above(props.get("instanceConcurrency", 1), 1),
            "an http trigger with GET and POST": any(
                t.get("triggerType") == "http" and {"GET", "POST"} <= set(t["triggerConfig"].get("methods", []))
                for t in props.get("triggers", [])
            ),
            "FC's instance rules: cpu a multiple of 0.05, 1-4 GB of memory per vCPU": fc_size_ok(props),
            "a pre-deploy build": any("make release" in a.get("run", "") for a in resource.get("actions", {}).get("pre-deploy", [])),
        }
        for what, ok in checks.items():
            if not ok:
                failures += 1
                print(f"s.yaml resources.{name}: expected {what}")
    print("s.yaml props valid" if failures == 0 else f"{failures} problem(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
