#!/usr/bin/env bash
# Node.js for the TypeScript client:   node.sh check
# The client needs Node 20 or later and npm; Mastra's packages declare >= 22.13 but install and
# run on 20 (npm warns). Nothing is installed here: say what to do instead.
set -euo pipefail
case "${1:-check}" in
  check)
    if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
      echo "Node.js 20 or later and npm are needed for clients/typescript: install them (Debian: apt-get install nodejs npm; or https://nodejs.org), then run this again" >&2
      exit 1
    fi
    major=$(node -p 'process.versions.node.split(".")[0]')
    if [ "$major" -lt 20 ]; then
      echo "Node.js $(node --version) is too old for clients/typescript: install Node.js 20 or later (https://nodejs.org)" >&2
      exit 1
    fi
    ;;
  *) echo "usage: node.sh check" >&2; exit 2 ;;
esac
