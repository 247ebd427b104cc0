import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import BetterSqlite3 from 'better-sqlite3';
import { Store } from '../../../../control-plane/src/db/store.js';

const root = mkdtempSync(join(tmpdir(), 'fleet-batch-'));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;

/** A store, and a second connection to its file: what another reader (or a restart) would see. */
function rig() {
  const file = join(root, `db${n++}`, 'fleet.db');
  const store = Store.open(file);
  const other = new BetterSqlite3(file, { readonly: true });
  const seen = () => (other.prepare('SELECT COUNT(*) AS n FROM nodes').get() as { n: number }).n;
  const hello = (name: string) =>
    store.nodes.upsertHello({ name, labels: {}, agentVersion: 't', facts: {} as never }, 1);
  return { store, other, seen, hello };
}
const turn = () => new Promise((r) => setImmediate(r));

describe('Store.batched: one group commit per event-loop turn', () => {
  test('writes of one turn share one transaction: this connection sees them at once, the disk after the turn', async () => {
    const r = rig();
    r.store.batched(() => r.hello('a'));
    r.store.batched(() => r.hello('b'));
    assert.equal(r.store.db.inTransaction, true, 'one group open');
    assert.equal(r.store.nodes.get('b')?.name, 'b', 'readers on this connection see it');
    assert.equal(r.seen(), 0, 'not committed yet');
    await turn();
    assert.equal(r.store.db.inTransaction, false);
    assert.equal(r.seen(), 2, 'committed together');
    r.other.close();
    r.store.close();
  });

  test('a writer that throws loses only its own writes (a savepoint), the group commits the rest', async () => {
    const r = rig();
    r.store.batched(() => r.hello('a'));
    assert.throws(() =>
      r.store.batched(() => {
        r.hello('b');
        throw new Error('boom');
      }),
    );
    await turn();
    assert.equal(r.seen(), 1);
    assert.equal(r.store.nodes.get('b'), undefined);
    r.other.close();
    r.store.close();
  });

  test('a transaction of its own commits the open group first: what it acknowledges is durable at once', () => {
    const r = rig();
    r.store.batched(() => r.hello('a'));
    r.store.transaction(() => r.hello('z'));
    assert.equal(r.store.db.inTransaction, false);
    assert.equal(r.seen(), 2, 'both on disk before the turn ends');
    r.other.close();
    r.store.close();
  });

  test('a transaction inside a batched writer nests (no commit in the middle of a writer)', async () => {
    const r = rig();
    r.store.batched(() => {
      r.hello('a');
      r.store.transaction(() => r.hello('b'));
    });
    assert.equal(r.seen(), 0);
    await turn();
    assert.equal(r.seen(), 2);
    r.other.close();
    r.store.close();
  });

  test('events written in a group are published once it commits, in order', async () => {
    const r = rig();
    const sub = r.store.events.subscribe();
    r.store.batched(() => r.store.events.add({ atMs: 1, kind: 'node.connected', message: 'one' }));
    r.store.batched(() => r.store.events.add({ atMs: 2, kind: 'node.connected', message: 'two' }));
    await turn();
    assert.equal((await sub.next())?.message, 'one');
    assert.equal((await sub.next())?.message, 'two');
    sub.close();
    r.other.close();
    r.store.close();
  });

  test('close commits the open group', () => {
    const r = rig();
    r.store.batched(() => r.hello('a'));
    r.store.close();
    assert.equal(r.seen(), 1);
    r.other.close();
  });
});
