import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { modulesLoadedBy } from '../../helpers/imports.js';

const AGENT = fileURLToPath(new URL('../../../agent/src/', import.meta.url));

describe("the agent's memory: what runs rarely loads nothing for good", () => {
  test('the agent, enrollment and renewal included (key, CSR, CA check, validity), loads no X.509 library', () => {
    const dir = mkdtempSync(join(tmpdir(), 'fleet-agent-imports-'));
    const entry = join(dir, 'entry.mjs');
    const at = (m: string) => JSON.stringify(pathToFileURL(join(AGENT, m)).href);
    writeFileSync(
      entry,
      `await import(${at('main.js')});
const keys = await import(${at('enroll/keys.js')});
const { verifyCa } = await import(${at('enroll/verify-ca.js')});
await import(${at('enroll/renew.js')});
const { key } = await keys.loadOrCreateNodeKey(${JSON.stringify(join(dir, 'tls'))});
const csr = await keys.createCsr(key, 'n1');
if (!csr.includes('BEGIN CERTIFICATE REQUEST')) throw new Error('no CSR');
if (verifyCa('not pem', 'ab').ok) throw new Error('verifyCa');
process.stdout.write('done');
`,
    );
    const { urls, stderr } = modulesLoadedBy([], entry);
    assert.equal(stderr, '');
    for (const pkg of ['@peculiar/x509', 'reflect-metadata', 'tsyringe', 'diff'])
      assert.deepEqual(
        urls.filter((u) => u.includes(`/node_modules/${pkg}/`)),
        [],
        `the agent loaded ${pkg}`,
      );
  });
});
