#!/usr/bin/env python3
"""Small JSON reads for scripts/run-demo (standard library only).

  demo_json.py get FILE KEY[.KEY...]     print one value of a JSON file (empty if absent)
  demo_json.py last-call FILE METHOD     print the last call METHOD in a mock-agent agent-calls.jsonl
                                    as "key: value" lines (its OCI namespaces and mounts)
  demo_json.py elide-pem FILE            print FILE with every PEM body replaced by "...elided..."
"""
import json
import re
import sys


def get(path, keys):
    with open(path) as f:
        v = json.load(f)
    for k in keys.split("."):
        if not isinstance(v, dict) or k not in v:
            return ""
        v = v[k]
    return v if isinstance(v, str) else json.dumps(v)


def last_call(path, method):
    last = None
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line:
                call = json.loads(line)
                if call.get("method") == method:
                    last = call
    if last is None:
        return None
    oci = last.get("oci") or {}
    out = ["container_id: %s" % last.get("container_id", "")]
    for ns in oci.get("namespaces") or []:
        out.append("namespace: %s %s" % (ns.get("type", ""), ns.get("path", "") or "(new)"))
    for m in oci.get("mounts") or []:
        out.append("mount: %s -> %s" % (m.get("source", ""), m.get("destination", "")))
    return "\n".join(out)


PEM = re.compile(r"(-----BEGIN ([A-Z0-9 ]+)-----)(\\n|\n).*?(-----END \2-----)", re.S)


def elide_pem(path):
    with open(path) as f:
        text = f.read()
    return PEM.sub(lambda m: m.group(1) + " ...elided... " + m.group(4), text)


def main(argv):
    try:
        if len(argv) == 4 and argv[1] == "get":
            print(get(argv[2], argv[3]))
        elif len(argv) == 4 and argv[1] == "last-call":
            out = last_call(argv[2], argv[3])
            if out is None:
                print("no %s call recorded in %s" % (argv[3], argv[2]), file=sys.stderr)
                return 1
            print(out)
        elif len(argv) == 3 and argv[1] == "elide-pem":
            sys.stdout.write(elide_pem(argv[2]))
        else:
            print(__doc__, file=sys.stderr)
            return 2
    except (OSError, ValueError) as e:
        print("demo_json.py: %s" % e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
