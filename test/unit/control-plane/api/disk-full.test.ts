import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import Database from 'better-sqlite3';
import Fastify from 'fastify';
import {
  DISK_FULL_MESSAGE,
  installErrorHandler,
  isDiskFull,
} from '../../../../control-plane/src/api/errors.js';

/**
 * A full disk is the operator's to fix, not an internal error: SQLite's SQLITE_FULL (here for real,
 * from a database capped with max_page_count) and the OS's ENOSPC answer 507 with a message naming
 * the disk, and the failed write stored nothing.
 */
describe('disk full', () => {
  test('SQLITE_FULL from a real write is 507 disk_full, and nothing was stored', async () => {
    const db = new Database(':memory:');
    db.exec('CREATE TABLE t (v TEXT)');
    db.pragma('max_page_count = 3');
    const insert = db.prepare('INSERT INTO t (v) VALUES (?)');
    const app = Fastify();
    installErrorHandler(app);
    app.post('/write', async () => {
      db.transaction(() => {
        for (let i = 0; i < 100; i++) insert.run('x'.repeat(2_000));
      })();
      return { ok: true };
    });
    const res = await app.inject({ method: 'POST', url: '/write' });
    assert.equal(res.statusCode, 507, res.body);
    assert.deepEqual(res.json(), { error: 'disk_full', message: DISK_FULL_MESSAGE });
    assert.match(DISK_FULL_MESSAGE, /disk is full/);
    assert.equal((db.prepare('SELECT count(*) AS n FROM t').get() as { n: number }).n, 0, 'rolled back');
    await app.close();
  });

  test('ENOSPC and EDQUOT count as full; other errors stay 500 internal', async () => {
    const app = Fastify({ logger: false });
    installErrorHandler(app);
    const fail = (code: string) => Object.assign(new Error(`${code}: boom`), { code });
    app.get('/:code', async (req) => {
      throw fail((req.params as { code: string }).code);
    });
    for (const code of ['ENOSPC', 'EDQUOT', 'SQLITE_FULL']) {
      assert.equal(isDiskFull(fail(code)), true);
      assert.equal((await app.inject({ url: `/${code}` })).statusCode, 507, code);
    }
    assert.equal(isDiskFull(fail('SQLITE_BUSY')), false);
    assert.equal(isDiskFull(undefined), false);
    const other = await app.inject({ url: '/EIO' });
    assert.equal(other.statusCode, 500);
    assert.equal(other.json().error, 'internal');
  });
});
