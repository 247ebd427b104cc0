/**
 * The layout DESIGN.md fixes, checked on the source tree: no part imports another (each may use
 * common/ and proto/), the shared core and the contract import no part, dockerode is reached through
 * one adapter folder, and files stay small.
 * A cross-part import or a 500-line file fails here, not in review.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** What each top-level folder may import besides itself. */
const ALLOWED: Record<string, string[]> = {
  agent: ['common', 'proto'],
  'control-plane': ['common', 'proto'],
  inference: ['common', 'proto'],
  common: [],
  proto: [],
};

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) return name === 'node_modules' ? [] : sources(p);
    return p.endsWith('.ts') ? [p] : [];
  });
}

const files = Object.keys(ALLOWED).flatMap((top) => sources(join(ROOT, top)));
const topOf = (file: string) => relative(ROOT, file).split('/')[0]!;

/** Relative import specifiers of a file (static and dynamic). */
function imports(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(/(?:from\s+|import\(\s*)'(\.{1,2}\/[^']+)'/g)].map((m) => m[1]!);
}

describe('layout', () => {
  test('the source tree is where the test expects it', () => {
    assert.ok(files.length > 100, `found ${files.length} source files under ${ROOT}`);
  });

  test('no part imports another; common/ and proto/ import no part', () => {
    const bad: string[] = [];
    for (const file of files) {
      const from = topOf(file);
      for (const spec of imports(file)) {
        const to = topOf(resolve(dirname(file), spec));
        if (to !== from && !ALLOWED[from]!.includes(to)) bad.push(`${relative(ROOT, file)} → ${spec}`);
      }
    }
    assert.deepEqual(bad, []);
  });

  test('one Docker adapter: only agent/src/docker/ imports dockerode', () => {
    const importers = files
      .filter((f) => /from\s+'dockerode'|import\(\s*'dockerode'\s*\)/.test(readFileSync(f, 'utf8')))
      .map((f) => relative(ROOT, f));
    assert.ok(importers.length > 0, 'the adapter itself imports dockerode');
    assert.deepEqual(
      importers.filter((f) => !f.startsWith('agent/src/docker/')),
      [],
    );
  });

  test('no source file over 400 lines outside generated code', () => {
    const long = files
      .filter((f) => !relative(ROOT, f).startsWith('proto/gen/'))
      .map((f) => ({ f: relative(ROOT, f), lines: readFileSync(f, 'utf8').split('\n').length }))
      .filter((x) => x.lines > 400);
    assert.deepEqual(long, []);
  });
});
