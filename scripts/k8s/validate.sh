#!/usr/bin/env bash
# Validates the Indexed Job manifest without a cluster:
# 1. against the Kubernetes OpenAPI schemas of several versions, strictly
#    (unknown fields rejected), with the kubernetes-validate package (PyPI;
#    installed into a virtual environment under $VENV);
# 2. the sweep in its ConfigMap parses, and `completions` equals the job
#    count burn-lottery-sweep plans for it;
# 3. the container runs `burn-lottery-sweep run` with the root on the
#    volume's mount path.
#   scripts/k8s/validate.sh [path/to/burn-lottery-sweep]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
manifest="$here/sweep-indexed-job.yaml"
bin="${1:-burn-lottery-sweep}"
VENV="${VENV:-/tmp/k8s-validate-venv}"
if [ ! -x "$VENV/bin/kubernetes-validate" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q kubernetes-validate==1.37.0 pyyaml
fi
for version in 1.28.0 1.31.0 1.37.0; do
  "$VENV/bin/kubernetes-validate" --strict --quiet -k "$version" "$manifest"
  echo "schema $version: passed (strict)"
done
work="$(mktemp -d)"
"$VENV/bin/python" - "$manifest" "$work" <<'PY'
import json, sys, yaml
docs = {d["kind"]: d for d in yaml.safe_load_all(open(sys.argv[1]))}
job, config = docs["Job"], docs["ConfigMap"]
spec = job["spec"]
assert spec["completionMode"] == "Indexed", "completionMode must be Indexed"
pod = spec["template"]["spec"]
container = pod["containers"][0]
args = container["args"]
assert container["command"] == ["burn-lottery-sweep"] and args[0] == "run", args
assert not any(a.startswith("--job") for a in args), "the job number comes from JOB_COMPLETION_INDEX"
assert any(a.startswith("--wait=") for a in args), "pods must wait for their dependencies"
mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
volumes = {v["name"]: v for v in pod["volumes"]}
root = next(a.split("=", 1)[1] for a in args if a.startswith("--root="))
sweep = next(a.split("=", 1)[1] for a in args if a.startswith("--sweep="))
assert mounts["experiments"] == root, "the experiment root is the shared volume"
assert "persistentVolumeClaim" in volumes["experiments"]
claim = docs["PersistentVolumeClaim"]
assert volumes["experiments"]["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]
assert "ReadWriteMany" in claim["spec"]["accessModes"], "every pod mounts the root"
assert sweep.startswith(mounts["config"] + "/")
key = sweep[len(mounts["config"]) + 1:]
json.loads(config["data"][key])
open(sys.argv[2] + "/sweep.json", "w").write(config["data"][key])
open(sys.argv[2] + "/completions", "w").write(str(spec["completions"]))
print("manifest structure: passed")
PY
planned="$("$bin" plan --sweep "$work/sweep.json" --format count)"
completions="$(cat "$work/completions")"
if [ "$planned" != "$completions" ]; then
  echo "completions is $completions but the sweep has $planned jobs" >&2
  exit 1
fi
echo "completions: $completions = the planned job count"
