#!/usr/bin/env node
// Regenerates proto/gen from proto/fleet/v1 with buf + ts-proto (no system protoc needed).
// `--check` generates into a temporary folder and fails when the committed code is stale.
import { execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const protoDir = join(root, 'proto');
const check = process.argv.includes('--check');

function files(dir) {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? files(p) : [p];
  });
}

const work = mkdtempSync(join(tmpdir(), 'fleet-proto-'));
try {
  cpSync(protoDir, work, { recursive: true, filter: (src) => !src.includes(`${protoDir}/gen`) });
  execFileSync(join(root, 'node_modules/.bin/buf'), ['generate', '--template', 'buf.gen.yaml'], {
    cwd: work,
    stdio: 'inherit',
    env: { ...process.env, PATH: `${join(root, 'node_modules/.bin')}:${process.env.PATH}` },
  });
  const fresh = join(work, 'gen');
  const committed = join(protoDir, 'gen');
  if (check) {
    const a = files(fresh)
      .map((f) => relative(fresh, f))
      .sort();
    const b = files(committed)
      .map((f) => relative(committed, f))
      .sort();
    const stale =
      a.join() !== b.join() ||
      a.some((f) => readFileSync(join(fresh, f), 'utf8') !== readFileSync(join(committed, f), 'utf8'));
    if (stale) {
      console.error('proto/gen is stale: run `npm run gen` and commit the result');
      process.exit(1);
    }
    console.log('proto/gen is current');
  } else {
    rmSync(committed, { recursive: true, force: true });
    cpSync(fresh, committed, { recursive: true });
    console.log('generated proto/gen');
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}
