"""Validates example custom resources against the generated CRD schemas (openAPIV3Schema).

usage: validate_examples.py CRD_DIR EXAMPLES_DIR
Every file in EXAMPLES_DIR must validate; every file in EXAMPLES_DIR/invalid must not.
The API server also evaluates the CEL rules (x-kubernetes-validations); jsonschema cannot.
"""
import glob
import os
import sys

import jsonschema
import yaml


def schemas(crd_dir):
    out = {}
    for path in glob.glob(os.path.join(crd_dir, "*.yaml")):
        crd = yaml.safe_load(open(path))
        kind = crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            out[(f'{crd["spec"]["group"]}/{version["name"]}', kind)] = version["schema"]["openAPIV3Schema"]
    return out


def check(doc, known):
    key = (doc.get("apiVersion"), doc.get("kind"))
    if key not in known:
        raise jsonschema.ValidationError(f"no CRD for {key}")
    body = {k: v for k, v in doc.items() if k not in ("apiVersion", "kind", "metadata")}
    jsonschema.Draft7Validator(known[key]).validate(body)


def main():
    crd_dir, examples = sys.argv[1:3]
    known = schemas(crd_dir)
    failures = []
    good = sorted(glob.glob(os.path.join(examples, "*.yaml")))
    bad = sorted(glob.glob(os.path.join(examples, "invalid", "*.yaml")))
    if not good or not bad:
        failures.append("no examples found")
    for path in good:
        try:
            check(yaml.safe_load(open(path)), known)
            print(f"valid as expected: {path}")
        except jsonschema.ValidationError as e:
            failures.append(f"{path} should be valid: {e.message}")
    for path in bad:
        try:
            check(yaml.safe_load(open(path)), known)
            failures.append(f"{path} should be rejected")
        except jsonschema.ValidationError as e:
            print(f"rejected as expected: {path}: {e.message}")
    for f in failures:
        print(f"FAIL: {f}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
