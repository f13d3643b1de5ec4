#!/usr/bin/env bash
# Every relative link in README.md and docs/**/*.md (and the other Markdown
# pages they lead to: conf/examples, docker, tests/fixtures/corpus,
# tests/upstream, profiles) resolves: the file or folder exists, and a
# #fragment names a heading of the target page (GitHub's anchors: lower case,
# punctuation dropped, spaces as hyphens). One case per page.
. "$(dirname "$0")/tap.sh"
export LC_ALL=C
pages=(README.md $(find docs -name '*.md' | sort) conf/examples/README.md docker/README.md
       tests/fixtures/corpus/SOURCES.md tests/upstream/README.md profiles/README.md profiles/codes/README.md)
tap_plan ${#pages[@]}

# The anchors of a Markdown page, one a line (headings outside code blocks).
anchors() {
  awk '/^```/ { code = !code; next } !code && /^#+ / { sub(/^#+ +/, ""); print }' "$1" |
    tr 'A-Z' 'a-z' | sed -e 's/[^a-z0-9 _-]//g' -e 's/ /-/g'
}
# The link targets of a page, one a line (outside code blocks and code spans).
links() {
  awk '/^```/ { code = !code; next } !code { gsub(/`[^`]*`/, ""); print }' "$1" |
    grep -o '\]([^)[:space:]]*)' | sed -e 's/^](//' -e 's/)$//'
}

for page in "${pages[@]}"; do
  bad=""
  dir=$(dirname "$page")
  while read -r target; do
    case "$target" in ''|http://*|https://*|mailto:*) continue ;; esac
    file=${target%%#*}; frag=""
    [ "$file" != "$target" ] && frag=${target#*#}
    path=$page
    [ -n "$file" ] && path="$dir/$file"
    if [ ! -e "$path" ]; then bad+=$'\n'"$target: no such file ($path)"; continue; fi
    if [ -n "$frag" ] && { [ -d "$path" ] || ! anchors "$path" | grep -qxF -- "$frag"; }; then
      bad+=$'\n'"$target: no heading #$frag in $path"
    fi
  done < <(links "$page")
  if [ -z "$bad" ]; then tap_ok "the links of $page resolve"; else tap_fail "the links of $page resolve" "${bad#$'\n'}"; fi
done
tap_done
