#!/usr/bin/env bash
# Totals the suites recorded by scripts/run-tests.sh (FRUITPIPE_TEST_SUMMARY) and prints one
# line in CTest's format, last, for CI runners:
#   scripts/test-summary.sh FILE
set -euo pipefail
file=$1
cat "$file"
failed=0 total=0
while IFS= read -r line; do
  if [[ $line =~ ([0-9]+)\ tests?\ failed\ out\ of\ ([0-9]+) ]]; then
    failed=$((failed + BASH_REMATCH[1])) total=$((total + BASH_REMATCH[2]))
  else
    echo "test summary: a suite did not report: $line"
    exit 1
  fi
done <"$file"
[ "$total" -gt 0 ] || { echo "test summary: no tests ran"; exit 1; }
echo "$((100 * (total - failed) / total))% tests passed, $failed tests failed out of $total"
[ "$failed" -eq 0 ]
