#!/usr/bin/env node
// Compiler driver behind solc-wrapper.sh: runs solcjs's standard-JSON compile
// through its JS API (no solcjs CLI, so no process.exit before a flush) and
// writes the result to a file given by --output.
//
//   node solc-wrapper.js --version
//   node solc-wrapper.js --standard-json --input IN.json --output OUT.json
//        [--base-path DIR] [--include-path DIR]...
'use strict';

const fs = require('fs');
const path = require('path');

function loadSolc() {
  // Resolve from the repository's node_modules whatever the working directory.
  const root = path.resolve(__dirname, '..');
  return require(require.resolve('solc', { paths: [root, __dirname] }));
}

function main(argv) {
  const opts = { includePaths: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    const eq = a.indexOf('=');
    const [flag, inline] = eq > 0 && a.startsWith('--') ? [a.slice(0, eq), a.slice(eq + 1)] : [a, null];
    const value = () => (inline !== null ? inline : next());
    switch (flag) {
      case '--version': opts.version = true; break;
      case '--standard-json': opts.json = true; break;
      case '--input': opts.input = value(); break;
      case '--output': opts.output = value(); break;
      case '--base-path': opts.basePath = value(); break;
      case '--include-path': opts.includePaths.push(value()); break;
      case '--allow-paths': value(); break; // solcjs has no such restriction
      default:
        // Unknown flags are ignored: forge only relies on standard JSON.
        break;
    }
  }

  const solc = loadSolc();
  if (opts.version) {
    process.stdout.write(solc.version() + '\n');
    return;
  }
  if (!opts.json || !opts.input || !opts.output) {
    throw new Error('usage: solc-wrapper.js --standard-json --input IN --output OUT');
  }
  const input = fs.readFileSync(opts.input, 'utf8');
  const prefixes = [opts.basePath || process.cwd(), ...opts.includePaths];
  const findImports = (p) => {
    for (const prefix of prefixes) {
      const full = path.isAbsolute(p) ? p : path.join(prefix, p);
      if (fs.existsSync(full)) return { contents: fs.readFileSync(full, 'utf8') };
    }
    return { error: `File not found: ${p} (searched ${prefixes.join(', ')})` };
  };
  const output = solc.compile(input, { import: findImports });
  fs.writeFileSync(opts.output, output);
}

try {
  main(process.argv.slice(2));
} catch (e) {
  process.stderr.write(`solc-wrapper: ${e && e.message ? e.message : e}\n`);
  process.exitCode = 1;
}
