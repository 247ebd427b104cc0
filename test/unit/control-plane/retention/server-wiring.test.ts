/**
 * The wiring point: `fleet server` schedules the housekeeping job with the policy it was given,
 * a tick deletes expired rows from the server's own database and counts in /metrics, and close
 * stops the schedule.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import BetterSqlite3 from 'better-sqlite3';
import type { Scheduler } from '../../../../control-plane/src/retention/housekeeping.js';
import { runServer } from '../../../../control-plane/src/server.js';
import { fetchTrusting } from '../../../helpers/https.js';

const HOUR = 3_600_000;
const dir = mkdtempSync(join(tmpdir(), 'fleet-retention-server-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('fleet server housekeeping', () => {
  test('scheduled once with the given policy, deletes on a tick, counted, stopped by close', async () => {
    const ticks: { expression: string; run: () => Promise<unknown>; stopped: boolean }[] = [];
    const scheduler: Scheduler = {
      schedule(expression, run) {
        const t = { expression, run, stopped: false };
        ticks.push(t);
        return {
          stop: () => {
            t.stopped = true;
          },
        };
      },
    };
    const server = await runServer({
      dataDir: join(dir, 'data'),
      listen: '127.0.0.1:0',
      grpcListen: '127.0.0.1:0',
      retention: { eventsMs: HOUR },
      housekeepingCron: '*/10 * * * *',
      scheduler,
    });
    try {
      assert.equal(ticks.length, 1);
      assert.equal(ticks[0]!.expression, '*/10 * * * *');
      // A second connection to the server's file, as an operator's sqlite3 would be.
      const db = new BetterSqlite3(join(dir, 'data', 'fleet.db'));
      const insert = db.prepare(`INSERT INTO events (at_ms, kind, message) VALUES (?, 'node.online', '')`);
      for (let i = 0; i < 3; i++) insert.run(Date.now() - 2 * HOUR);
      insert.run(Date.now());
      await ticks[0]!.run();
      const left = db.prepare(`SELECT COUNT(*) AS n FROM events WHERE kind = 'node.online'`).get() as {
        n: number;
      };
      assert.equal(left.n, 1);
      db.close();
      const token = readFileSync(server.adminTokenFile, 'utf8').trim();
      const res = await fetchTrusting(server.caFile)(`${server.httpUrl}/metrics`, {
        headers: { authorization: `Bearer ${token}` },
      });
      assert.match(await res.text(), /^fleet_controlplane_retention_deleted_total\{target="events"\} 3$/m);
    } finally {
      await server.close();
    }
    assert.ok(ticks[0]!.stopped, 'close stops the schedule');
  });
});
