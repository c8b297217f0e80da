#!/usr/bin/env bash
# Audit the installed packages of .venv with pip-audit (issue 19 §6).
#   exit 1: a known vulnerability with a fixed version exists (upgrade it); vulnerabilities without a fix are listed
#   exit 3: no package could be audited: pip-audit's vulnerability service did not answer (on the project's
#           machines the PyPI JSON API answers 404 and api.osv.dev does not resolve), so nothing was checked
#   --allow-unreachable: exit 0 in the exit-3 case, after printing the same banner (CI uses it; see .ci/run)
#   AUDIT_SERVICE=osv|pypi (default pypi) chooses pip-audit's service; AUDIT_REPORT=file judges a saved report.
set -euo pipefail
cd "$(dirname "$0")/.."
ALLOW_UNREACHABLE=0
[ "${1:-}" = "--allow-unreachable" ] && ALLOW_UNREACHABLE=1
PY=.venv/bin/python
REPORT="$(mktemp)"
trap 'rm -f "$REPORT" "$REPORT.err"' EXIT
# pip-audit exits 1 when it finds vulnerabilities; the verdict is made below from its JSON report.
# AUDIT_REPORT=file judges a report made elsewhere (the verdict's own test uses it).
if [ -n "${AUDIT_REPORT:-}" ]; then
  cp "$AUDIT_REPORT" "$REPORT"
else
  "$PY" -m pip_audit --skip-editable --vulnerability-service "${AUDIT_SERVICE:-pypi}" --progress-spinner off \
    --format json --output "$REPORT" 2>"$REPORT.err" || true
fi
if [ ! -s "$REPORT" ]; then  # pip-audit stopped before writing a report (e.g. the service's host does not resolve)
  echo "DEPENDENCY AUDIT NOT DONE: pip-audit failed: $(tail -n 1 "$REPORT.err" 2>/dev/null)"
  [ "$ALLOW_UNREACHABLE" = 1 ] && exit 0
  exit 3
fi
"$PY" - "$REPORT" "$ALLOW_UNREACHABLE" <<'EOF'
import json
import sys

report, allow_unreachable = json.load(open(sys.argv[1])), sys.argv[2] == "1"
deps = report["dependencies"]
skipped = [d for d in deps if "skip_reason" in d]
audited = [d for d in deps if "skip_reason" not in d]
fixable, unfixed = [], []
for dep in audited:
    for vuln in dep.get("vulns", []):
        row = f"{dep['name']} {dep['version']}: {vuln['id']} (fixed in: {', '.join(vuln['fix_versions']) or 'no fix yet'})"
        (fixable if vuln["fix_versions"] else unfixed).append(row)
print(f"pip-audit: {len(deps)} installed packages, {len(audited)} audited, {len(skipped)} not audited")
for row in unfixed:
    print(f"  known vulnerability, no fixed version yet: {row}")
for row in fixable:
    print(f"  KNOWN VULNERABILITY WITH A FIX: {row}")
if fixable:
    sys.exit(1)
if deps and not audited:
    banner = "=" * 100
    print(banner)
    print("DEPENDENCY AUDIT NOT DONE: pip-audit's vulnerability service answered for none of the packages")
    print(f"(first reason: {skipped[0]['skip_reason']}).")
    print("Nothing was checked; this is not a pass. Run it where pypi.org's JSON API or api.osv.dev is reachable.")
    print(banner)
    sys.exit(0 if allow_unreachable else 3)
for dep in skipped:
    print(f"  not audited: {dep['name']}: {dep['skip_reason']}")
EOF
