#!/bin/sh
# Installs the upstream test server's npm packages into tests/upstream/node_modules,
# exactly as pinned in package-lock.json. Does nothing when they are already there.
# With a directory argument (tests/idp), installs that test server's packages instead.
set -u
cd "${1:-$(dirname "$0")}" || exit 1

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    echo "upstream/install.sh: node and npm are required (node 20 or newer)" >&2
    exit 1
fi

# Installed when every package pinned in package.json is present at its pinned version.
if node -e '
const fs = require("fs");
const want = JSON.parse(fs.readFileSync("package.json", "utf8")).dependencies;
for (const [name, version] of Object.entries(want)) {
  const p = "node_modules/" + name + "/package.json";
  if (!fs.existsSync(p) || JSON.parse(fs.readFileSync(p, "utf8")).version !== version) process.exit(1);
}' 2>/dev/null; then
    exit 0
fi

log=$(mktemp)
if ! npm ci --no-audit --no-fund --loglevel=error >"$log" 2>&1; then
    cat "$log" >&2
    rm -f "$log"
    echo "upstream/install.sh: 'npm ci' failed in $(pwd): is the npm registry reachable?" >&2
    exit 1
fi
rm -f "$log"
exit 0
