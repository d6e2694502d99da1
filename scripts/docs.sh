#!/usr/bin/env bash
# Builds the documentation book (docs/, mdBook) into docs/book and checks that every
# relative link and image in it points at a file that exists. mdBook is installed from
# crates.io into .data/tools the first time (a pinned version, unoptimised: a minute or two).
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/.."
MDBOOK_VERSION=0.5.4
TOOLS=$PWD/.data/tools
if ! "$TOOLS/bin/mdbook" --version 2>/dev/null | grep -q "v$MDBOOK_VERSION"; then
  echo "==> installing mdbook $MDBOOK_VERSION (crates.io) into $TOOLS"
  # Unoptimised: it compiles in half the time (a cold CI run pays for it) and still renders
  # the book in under a second.
  CARGO_PROFILE_RELEASE_OPT_LEVEL=0 CARGO_PROFILE_RELEASE_DEBUG=false \
  cargo install mdbook --locked --version "$MDBOOK_VERSION" --no-default-features --features search \
    --root "$TOOLS" --quiet
fi
rm -rf docs/book
"$TOOLS/bin/mdbook" build docs 2>&1 | grep -v '^\s*$' | sed 's/^/  /'
python3 - docs/book <<'PY'
import html.parser, os, sys, urllib.parse
root = sys.argv[1]
bad = []
class Links(html.parser.HTMLParser):
    def __init__(self, page):
        super().__init__(); self.page = page
    def handle_starttag(self, tag, attrs):
        for k, v in attrs:
            if k not in ("href", "src") or not v: continue
            u = urllib.parse.urlparse(v)
            if u.scheme or v.startswith(("#", "//", "mailto:")): continue
            target = os.path.normpath(os.path.join(os.path.dirname(self.page), urllib.parse.unquote(u.path)))
            if not os.path.exists(target): bad.append(f"{os.path.relpath(self.page, root)}: {v}")
pages = 0
for d, _, files in os.walk(root):
    for f in files:
        if f.endswith(".html"):
            pages += 1
            p = os.path.join(d, f)
            Links(p).feed(open(p, encoding="utf-8").read())
if bad:
    print("broken links in the book:\n  " + "\n  ".join(sorted(set(bad)))); sys.exit(1)
print(f"docs: {pages} pages, no broken links")
PY
