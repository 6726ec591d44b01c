#!/usr/bin/env node
// Copies the ABI and bytecode of the deployable contracts from forge's out/
// into lilypad-sdk/artifacts/<Name>.json: the committed files the Rust SDK binds
// with alloy's `sol!(Name, "artifacts/Name.json")`. They live inside the crate
// that binds them, so a packaged lilypad-sdk (crates.io) carries them.
//
//   node contracts/export-artifacts.js          write the artifacts
//   node contracts/export-artifacts.js --check  exit 1 if they differ from out/
// Run `scripts/forge.sh build` first.
'use strict';
const fs = require('fs');
const path = require('path');

const CONTRACTS = ['LilypadController', 'LilypadToken', 'LilypadModuleRegistry', 'LilypadUsers', 'LilypadPow', 'LilypadJobManager', 'ExampleClient'];
const here = __dirname;
const check = process.argv.includes('--check');
let stale = [];

const artifacts = path.join(here, '..', 'lilypad-sdk', 'artifacts');
fs.mkdirSync(artifacts, { recursive: true });
for (const name of CONTRACTS) {
  const src = path.join(here, 'out', `${name}.sol`, `${name}.json`);
  if (!fs.existsSync(src)) {
    console.error(`export-artifacts: ${src} is missing: run scripts/forge.sh build first`);
    process.exit(2);
  }
  const j = JSON.parse(fs.readFileSync(src, 'utf8'));
  const out = {
    contractName: name,
    abi: j.abi,
    bytecode: { object: j.bytecode.object },
    deployedBytecode: { object: j.deployedBytecode.object },
    methodIdentifiers: j.methodIdentifiers,
  };
  const text = JSON.stringify(out, null, 1) + '\n';
  const dst = path.join(artifacts, `${name}.json`);
  if (check) {
    if (!fs.existsSync(dst) || fs.readFileSync(dst, 'utf8') !== text) stale.push(dst);
  } else {
    fs.writeFileSync(dst, text);
  }
}
if (stale.length) {
  console.error(`export-artifacts: out of date (run: scripts/forge.sh build && node contracts/export-artifacts.js):\n  ${stale.join('\n  ')}`);
  process.exit(1);
}
console.error(check ? 'export-artifacts: artifacts match the build' : 'export-artifacts: wrote lilypad-sdk/artifacts/');
