#!/bin/sh
# Counts the words of every file mounted under /inputs (sorted by path) and
# writes one line per file, "<words> <path>", then "<total> total", to stdout
# and /outputs/counts.txt. Exits 2 when there is no input file.
set -eu

files=$(find /inputs -type f 2>/dev/null | sort)
if [ -z "$files" ]; then
  echo "wordcount: no input files under /inputs (give the module its Text input file)" >&2
  exit 2
fi

total=0
report=""
while IFS= read -r f; do
  n=$(wc -w <"$f" | tr -d ' ')
  total=$((total + n))
  report="${report}${n} ${f}
"
done <<EOT
$files
EOT
report="${report}${total} total"

printf '%s\n' "$report"
printf '%s\n' "$report" >/outputs/counts.txt
