#!/usr/bin/env python3
"""Renders every deploy/ overlay with `kubectl kustomize` (offline) and checks what the daemon
needs: the DaemonSet's host paths and mounts, capabilities, environment, probe port and
resources; the config file each overlay mounts (keys the daemon accepts, checked with
`cloud-api-adaptor <provider> -print-config` when the binary is given); the PeerPod CRD and the
RuntimeClass; and that the RBAC rules grant exactly the verbs of the client's calls, read from
adaptor/k8s_*.c, so that a new call without its RBAC rule fails here.

usage: check_deploy.py <deploy-dir> <kubectl> [<bin-dir>]
"""
import json
import os
import re
import subprocess
import sys

import yaml  # Debian python3-yaml

OVERLAYS = ("aws", "azure", "gcp", "libvirt")

# Every k8s_client_request operation name in adaptor/k8s_*.c -> (apiGroup, resource, verb).
CALLS = {
    "GetNode": ("", "nodes", "get"),
    "PatchNode": ("", "nodes", "patch"),
    "PatchNodeStatus": ("", "nodes/status", "patch"),
    "GetPod": ("", "pods", "get"),
    "ListPods": ("", "pods", "list"),
    "GetServiceAccount": ("", "serviceaccounts", "get"),
    "GetSecret": ("", "secrets", "get"),
    "CreatePeerPod": ("confidentialcontainers.org", "peerpods", "create"),
    "ReleasePeerPod": ("confidentialcontainers.org", "peerpods", "patch"),
}

HOST_PATHS = {
    "/run/peerpod": "/run/peerpod",
    "/run/netns": "/run/netns",
    "/var/lib/cloud-api-adaptor": "/var/lib/cloud-api-adaptor",
    "/run/xtables.lock": "/run/xtables.lock",
    "/lib/modules": "/lib/modules",
    "/run/kata-containers/shared/direct-volumes": "/run/kata-containers/shared/direct-volumes",
}

failures = []


def check(cond, what):
    if not cond:
        failures.append(what)


def render(kubectl, path):
    out = subprocess.run([kubectl, "kustomize", path], capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit("kubectl kustomize %s failed:\n%s" % (path, out.stderr))
    return [o for o in yaml.safe_load_all(out.stdout) if o]


def calls_in_source(src_dir):
    ops = set()
    for name in os.listdir(src_dir):
        if name.startswith("k8s_") and name.endswith(".c"):
            with open(os.path.join(src_dir, name)) as f:
                ops |= set(re.findall(r'k8s_client_request\(\s*c,\s*"(\w+)"', f.read()))
    return ops


def check_rbac(objs, overlay, src_dir):
    ops = calls_in_source(src_dir)
    check(ops == set(CALLS), "%s: client calls %s do not match the RBAC table %s"
          % (overlay, sorted(ops), sorted(CALLS)))
    need = {(g, r, v) for g, r, v in CALLS.values()}
    roles = [o for o in objs if o["kind"] == "ClusterRole" and o["metadata"]["name"] == "cloud-api-adaptor"]
    check(len(roles) == 1, "%s: one ClusterRole cloud-api-adaptor" % overlay)
    granted = set()
    for rule in roles[0]["rules"] if roles else []:
        for g in rule["apiGroups"]:
            for r in rule["resources"]:
                for v in rule["verbs"]:
                    granted.add((g, r, v))
    check(granted == need, "%s: RBAC grants %s, the client needs %s (extra: %s, missing: %s)"
          % (overlay, sorted(granted), sorted(need), sorted(granted - need), sorted(need - granted)))
    bindings = [o for o in objs if o["kind"] == "ClusterRoleBinding"]
    check(any(s["name"] == "cloud-api-adaptor" and s["namespace"] == "confidential-containers-system"
              for b in bindings for s in b["subjects"]), "%s: binding to the daemon's service account" % overlay)


def check_daemonset(objs, overlay):
    ds = [o for o in objs if o["kind"] == "DaemonSet"]
    check(len(ds) == 1, "%s: one DaemonSet" % overlay)
    if not ds:
        return None
    spec = ds[0]["spec"]["template"]["spec"]
    c = spec["containers"][0]
    check(spec.get("hostNetwork") is True, "%s: hostNetwork" % overlay)
    check(spec.get("serviceAccountName") == "cloud-api-adaptor", "%s: service account" % overlay)
    check(c["args"] == [overlay], "%s: args %r" % (overlay, c["args"]))
    caps = c.get("securityContext", {}).get("capabilities", {}).get("add", [])
    check({"NET_ADMIN", "SYS_ADMIN"} <= set(caps), "%s: capabilities %r" % (overlay, caps))
    vols = {v["name"]: v for v in spec["volumes"]}
    mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
    for host, mpath in HOST_PATHS.items():
        m = mounts.get(mpath)
        check(m is not None, "%s: %s is mounted" % (overlay, mpath))
        if m:
            check(vols[m["name"]].get("hostPath", {}).get("path") == host,
                  "%s: %s comes from host path %s" % (overlay, mpath, host))
    check(mounts.get("/run/netns", {}).get("mountPropagation") == "HostToContainer",
          "%s: /run/netns propagation HostToContainer" % overlay)
    check(mounts.get("/lib/modules", {}).get("readOnly") is True, "%s: /lib/modules read-only" % overlay)
    cfg = mounts.get("/etc/cloud-api-adaptor")
    check(cfg is not None and vols[cfg["name"]].get("configMap", {}).get("name") == "peer-pods-cm",
          "%s: peer-pods-cm mounted at /etc/cloud-api-adaptor" % overlay)
    env = {e["name"]: e for e in c.get("env", [])}
    check(env.get("NODE_NAME", {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "spec.nodeName",
          "%s: NODE_NAME from spec.nodeName" % overlay)
    check(env.get("POD_UID", {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "metadata.uid",
          "%s: POD_UID from metadata.uid" % overlay)
    check(env.get("CLOUD_PROVIDER", {}).get("value") == overlay, "%s: CLOUD_PROVIDER" % overlay)
    check(env.get("STATE_DIR", {}).get("value") == "/var/lib/cloud-api-adaptor", "%s: STATE_DIR" % overlay)
    probe = c.get("startupProbe", {}).get("httpGet", {})
    port = env.get("PROBE_PORT", {}).get("value")
    check(probe.get("path") == "/startup" and probe.get("host") == "127.0.0.1" and str(probe.get("port")) == port,
          "%s: startupProbe 127.0.0.1:%s/startup (got %r)" % (overlay, port, probe))
    res = c.get("resources", {})
    check(res.get("requests", {}).get("memory") == "32Mi" and res.get("limits", {}).get("memory") == "128Mi",
          "%s: memory request 32Mi, limit 128Mi" % overlay)
    ru = ds[0]["spec"].get("updateStrategy", {}).get("rollingUpdate", {})
    check(ru.get("maxSurge") == 1 and ru.get("maxUnavailable") == 0, "%s: rolling update maxSurge 1" % overlay)
    check(any(e.get("secretRef", {}).get("name") == "peer-pods-secret" for e in c.get("envFrom", [])),
          "%s: peer-pods-secret in the environment" % overlay)
    return ds[0]


def check_config(objs, overlay, bin_dir, tmp):
    cms = [o for o in objs if o["kind"] == "ConfigMap" and o["metadata"]["name"] == "peer-pods-cm"]
    check(len(cms) == 1 and "%s.conf" % overlay in cms[0].get("data", {}),
          "%s: peer-pods-cm holds %s.conf" % (overlay, overlay))
    secrets = [o for o in objs if o["kind"] == "Secret" and o["metadata"]["name"] == "peer-pods-secret"]
    check(len(secrets) == 1, "%s: peer-pods-secret" % overlay)
    if not bin_dir or not cms:
        return
    path = os.path.join(tmp, "%s.conf" % overlay)
    with open(path, "w") as f:
        f.write(cms[0]["data"].get("%s.conf" % overlay, ""))
    r = subprocess.run([os.path.join(bin_dir, "cloud-api-adaptor"), overlay, "-config-file", path,
                        "-print-config"], capture_output=True, text=True)
    check(r.returncode == 0, "%s: the daemon refuses %s.conf: %s" % (overlay, overlay, r.stderr.strip()))


def check_cluster_objects(objs, overlay):
    crd = [o for o in objs if o["kind"] == "CustomResourceDefinition"]
    check(len(crd) == 1 and crd[0]["metadata"]["name"] == "peerpods.confidentialcontainers.org",
          "%s: PeerPod CRD" % overlay)
    if crd:
        s = crd[0]["spec"]
        check(s["scope"] == "Namespaced" and s["versions"][0]["name"] == "v1alpha1"
              and "status" in s["versions"][0].get("subresources", {}), "%s: CRD shape" % overlay)
    rc = [o for o in objs if o["kind"] == "RuntimeClass"]
    check(len(rc) == 1 and rc[0]["metadata"]["name"] == "kata-remote" and rc[0]["handler"] == "kata-remote"
          and rc[0].get("overhead", {}).get("podFixed"), "%s: RuntimeClass kata-remote with overhead" % overlay)
    # cluster-scoped objects must not get a namespace
    for o in crd + rc:
        check("namespace" not in o["metadata"], "%s: %s is cluster-scoped" % (overlay, o["kind"]))


def main():
    deploy, kubectl = sys.argv[1], sys.argv[2]
    bin_dir = sys.argv[3] if len(sys.argv) > 3 else ""
    src_dir = os.path.join(os.path.dirname(os.path.abspath(deploy)), "adaptor")
    tmp = subprocess.run(["mktemp", "-d"], capture_output=True, text=True).stdout.strip()
    try:
        for overlay in OVERLAYS:
            objs = render(kubectl, os.path.join(deploy, "overlays", overlay))
            check_daemonset(objs, overlay)
            check_rbac(objs, overlay, src_dir)
            check_config(objs, overlay, bin_dir, tmp)
            check_cluster_objects(objs, overlay)
            print("%s: %d objects checked" % (overlay, len(objs)))
    finally:
        subprocess.run(["rm", "-rf", tmp])
    for f in failures:
        print("FAIL:", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
