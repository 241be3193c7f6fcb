#!/usr/bin/env bash
# The browser end-to-end tests drive Debian's Chromium (Playwright never downloads a browser here).
# A CJK font comes with it: the site is bilingual, and without one the screenshots show 中文 as empty boxes.
set -euo pipefail
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium chromium-driver)
if ! { command -v fc-list >/dev/null 2>&1 && [ -n "$(fc-list :lang=zh family 2>/dev/null)" ]; }; then
  missing+=(fonts-wqy-zenhei)
fi
if [ ${#missing[@]} -eq 0 ]; then exit 0; fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing ${missing[*]} for the browser tests..."
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
elif ! command -v chromium >/dev/null 2>&1; then
  echo "chromium is missing and cannot be installed here (need root + apt-get); the e2e tests will fail" >&2
else
  echo "no CJK font and no way to install one: screenshots will show Chinese as boxes" >&2
fi
