import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { modulesLoadedBy } from '../../../helpers/imports.js';

/** What a client command must not load: the daemons' libraries and the heavy optional ones. */
const DAEMON_ONLY = [
  'fastify',
  'better-sqlite3',
  '@grpc/grpc-js',
  '@bufbuild/protobuf',
  '@peculiar/x509',
  'node-llama-cpp',
  'dockerode',
  'systeminformation',
  'prom-client',
  'pino',
  'log-update',
];

const loaded = (urls: string[], pkg: string) => urls.filter((u) => u.includes(`/node_modules/${pkg}/`));

describe('the CLI loads only what the command it runs needs', () => {
  test('fleet apply (its whole run, to the REST call) loads no daemon library', () => {
    const dir = mkdtempSync(join(tmpdir(), 'fleet-apply-'));
    const file = join(dir, 'p.yaml');
    writeFileSync(file, 'name: x\nhosts: all\nservices:\n  web: { image: "r/web:1", port: 80 }\n');
    // Port 1 refuses the connection: the run goes through the apply module to the request.
    const { urls, stderr } = modulesLoadedBy(['--server', 'https://127.0.0.1:1', 'apply', file, '--no-wait']);
    assert.match(stderr, /ECONNREFUSED/, 'the apply got as far as the request');
    assert.ok(
      urls.some((u) => u.endsWith('/control-plane/src/cli/apply.js')),
      'the apply module was loaded',
    );
    for (const pkg of DAEMON_ONLY) assert.deepEqual(loaded(urls, pkg), [], `fleet apply loaded ${pkg}`);
    // bin/fleet.js loads only the part that owns the command named.
    assert.deepEqual(
      urls.filter((u) => u.includes('/agent/src/')),
      [],
      "fleet apply loaded the agent's command definitions",
    );
  });

  test('fleet agent --help loads none of the daemon either (the agent loads it when it runs)', () => {
    const { urls } = modulesLoadedBy(['agent', '--help']);
    for (const pkg of DAEMON_ONLY)
      assert.deepEqual(loaded(urls, pkg), [], `fleet agent --help loaded ${pkg}`);
  });
});
