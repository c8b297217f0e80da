#!/usr/bin/env bash
# The whole test suite (`make test`): the input fuzz (tests/fuzz: pure CPU, about 7 minutes) runs in a second
# process beside the rest, so a 2-core machine finishes in the time of the longer of the two. Its output is
# printed after the rest's; the exit code is non-zero when either failed. Arguments go to the main run.
set -uo pipefail
cd "$(dirname "$0")/.."
PY="${PY:-.venv/bin/python}"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
"$PY" -m pytest tests/fuzz -p no:cacheprovider >"$log" 2>&1 &
fuzz_pid=$!
"$PY" -m pytest --ignore=tests/fuzz "$@"
main=$?
wait "$fuzz_pid"
fuzz=$?
echo
echo "============ the input fuzz (tests/fuzz), run beside the rest: exit $fuzz ============"
cat "$log"
exit $(( main != 0 || fuzz != 0 ))
