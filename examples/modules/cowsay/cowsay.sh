#!/bin/sh
# A small cowsay in busybox sh (the image has no perl for the real one).
# Usage: cowsay MESSAGE...   Environment: COW=default|tux, COWSAY_WIDTH (40).
# Prints the message in a speech bubble with the cow below it, and writes the
# same picture to /outputs/cowsay.txt.
set -eu

msg="$*"
[ -n "$msg" ] || msg="moo"
width=${COWSAY_WIDTH:-40}

# Wrap at word boundaries, then pad every line to the longest one.
wrapped=$(printf '%s\n' "$msg" | fold -s -w "$width" | sed 's/ *$//')
max=0
count=0
while IFS= read -r line; do
  count=$((count + 1))
  [ ${#line} -gt "$max" ] && max=${#line}
done <<EOT
$wrapped
EOT

bar() { printf "%$((max + 2))s" '' | tr ' ' "$1"; }

picture() {
  printf ' %s\n' "$(bar _)"
  i=0
  while IFS= read -r line; do
    i=$((i + 1))
    if [ "$count" -eq 1 ]; then l='<' r='>'
    elif [ "$i" -eq 1 ]; then l='/' r='\'
    elif [ "$i" -eq "$count" ]; then l='\' r='/'
    else l='|' r='|'
    fi
    printf '%s %-*s %s\n' "$l" "$max" "$line" "$r"
  done <<EOT
$wrapped
EOT
  printf ' %s\n' "$(bar -)"
  case "${COW:-default}" in
    tux)
      cat <<'ART'
   \
    \
        .--.
       |o_o |
       |:_/ |
      //   \ \
     (|     | )
    /'\_   _/`\
    \___)=(___/
ART
      ;;
    *)
      cat <<'ART'
        \   ^__^
         \  (oo)\_______
            (__)\       )\/\
                ||----w |
                ||     ||
ART
      ;;
  esac
}

out=$(picture)
printf '%s\n' "$out"
if [ -d /outputs ]; then
  printf '%s\n' "$out" >/outputs/cowsay.txt
fi
