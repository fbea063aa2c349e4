#!/usr/bin/env bash
# Best effort: install Debian's headless Chromium, used to print the brief to PDF and to test it in a
# real browser. Without it the brief is still written as HTML and the browser test is skipped with a
# message. Needs root and apt-get; does nothing otherwise.
set -u
command -v chromium >/dev/null 2>&1 && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "note: chromium not found and cannot be installed here (needs root + apt-get); the brief PDF and browser test will be skipped"
  exit 0
fi
echo "installing chromium (Debian package) for the brief PDF and the browser test ..."
if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-noto-cjk >/dev/null; }; then
  echo "note: chromium could not be installed; the brief PDF and browser test will be skipped"
fi
exit 0
