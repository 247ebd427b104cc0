import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import BetterSqlite3 from 'better-sqlite3';
import { migrations } from '../../../../control-plane/src/db/migrations.js';
import { Store } from '../../../../control-plane/src/db/store.js';
import type { Playbook } from '../../../../control-plane/src/playbook/types.js';

const root = mkdtempSync(join(tmpdir(), 'fleet-store-'));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
/** A database file in a folder that does not exist yet (open creates it). */
const freshFile = () => join(root, `db${n++}`, 'fleet.db');

const SPEC: Playbook = {
  name: 'web',
  hosts: ['all'],
  vars: {},
  services: { web: { image: '127.0.0.1:5000/x/web:1', replicas: 1, env: {}, volumes: [], port: 8080 } },
};
const rev = (hash: string, createdMs = 1) => ({
  deployment: 'web',
  hash,
  file: 'web.yml',
  source: 'name: web',
  spec: SPEC,
  createdMs,
});

describe('Store', () => {
  test('migrations set user_version, and reopening is idempotent and keeps data', () => {
    const file = freshFile();
    const s1 = Store.open(file);
    assert.equal(s1.db.pragma('user_version', { simple: true }), migrations.length);
    s1.deployments.addRevision(rev('h1'));
    s1.close();

    const s2 = Store.open(file);
    assert.equal(s2.db.pragma('user_version', { simple: true }), migrations.length);
    assert.equal(s2.deployments.current('web')?.revision, 1);
    s2.close();
    const s3 = Store.open(file);
    assert.equal(s3.deployments.listCurrent().length, 1);
    s3.close();
  });

  test('refuses a database from a newer fleet', () => {
    const file = freshFile();
    Store.open(file).close();
    const raw = new BetterSqlite3(file);
    raw.pragma(`user_version = ${migrations.length + 1}`);
    raw.close();
    assert.throws(() => Store.open(file), /newer than this fleet/);
  });

  test('WAL mode is on', () => {
    const s = Store.open(freshFile());
    assert.equal(s.db.pragma('journal_mode', { simple: true }), 'wal');
    assert.equal(s.db.pragma('foreign_keys', { simple: true }), 1);
    s.close();
  });

  test('addRevision increments and moves current; older revisions stay readable', () => {
    const s = Store.open(freshFile());
    assert.equal(s.deployments.current('web'), undefined);
    assert.equal(s.deployments.addRevision(rev('h1', 10)), 1);
    assert.equal(s.deployments.addRevision(rev('h2', 20)), 2);
    assert.equal(s.deployments.addRevision(rev('h3', 30)), 3);
    const cur = s.deployments.current('web');
    assert.equal(cur?.revision, 3);
    assert.equal(cur?.hash, 'h3');
    assert.deepEqual(cur?.spec, SPEC);
    assert.equal(s.deployments.revision('web', 1)?.hash, 'h1');
    assert.equal(s.deployments.revision('web', 1)?.createdMs, 10);
    assert.equal(s.deployments.revision('web', 4), undefined);
    s.close();
  });

  test('revisions are immutable: UPDATE throws', () => {
    const s = Store.open(freshFile());
    s.deployments.addRevision(rev('h1'));
    assert.throws(
      () => s.db.prepare("UPDATE revisions SET hash = 'tampered' WHERE deployment = 'web'").run(),
      /revisions are immutable/,
    );
    assert.equal(s.deployments.current('web')?.hash, 'h1');
    s.close();
  });

  test('a failed transaction leaves no trace', () => {
    const s = Store.open(freshFile());
    assert.throws(() =>
      s.transaction(() => {
        s.deployments.addRevision(rev('h1'));
        s.deployments.setAssignments('web', ['n1'], 1);
        throw new Error('boom');
      }),
    );
    assert.equal(s.deployments.current('web'), undefined);
    assert.deepEqual(s.deployments.assignments('web'), []);
    s.close();
  });

  test('assignments can only reference existing deployments', () => {
    const s = Store.open(freshFile());
    assert.throws(() => s.deployments.setAssignments('ghost', ['n1'], 1), /FOREIGN KEY/);
    s.close();
  });

  test('nodes: upsertHello inserts, then updates while keeping first_seen and the labels', () => {
    const s = Store.open(freshFile());
    s.nodes.upsertHello({ name: 'n1', labels: { gpu: 'a100' }, agentVersion: '1', facts: {} }, 100);
    s.nodes.setConnected('n1', false, 150);
    s.nodes.upsertHello({ name: 'n1', labels: {}, agentVersion: '2', facts: { cpus: 4 } }, 200);
    const node = s.nodes.get('n1');
    assert.deepEqual(node, {
      name: 'n1',
      labels: { gpu: 'a100' }, // labels belong to the control plane: a hello only seeds them
      agentVersion: '2',
      facts: { cpus: 4 },
      connected: true,
      firstSeenMs: 100,
      lastSeenMs: 200,
      ackedVersion: '',
    });
    assert.equal(s.nodes.setLabels('n1', { gpu: 'h100' }), true);
    assert.deepEqual(s.nodes.get('n1')?.labels, { gpu: 'h100' });
    assert.equal(s.nodes.setLabels('ghost', {}), false);
    s.close();
  });
});
