import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync, statfsSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { Cluster } from '../helpers/cluster.js';
import { docker, managedContainers, REGISTRY, removeManaged, requireEngines } from '../helpers/engines.js';
import { say, scaled, sleep } from '../helpers/faults.js';
import { waitFor } from '../helpers/procs.js';

/**
 * Fault suite, control plane: its disk full. The data folder is a small tmpfs the test mounts; a
 * filler file takes every free byte. Then an apply fails clearly (HTTP 507 naming the disk; the CLI
 * exits non-zero with that message), the control plane keeps running, nothing acknowledged before
 * is lost, and once the filler is gone applies succeed again.
 */
const WEB = `${REGISTRY}/fleet-test/web:1`;
const NODE = 'e2e-fault-disk';
const SIZE_MB = 24;
/** Longer than the liveness TTL (5.5 s): the frozen agent is declared silent while the disk is full. */
const FULL_FOR_MS = scaled(7_500, 30_000);

const playbook = (mark: string) => `name: fault-disk
hosts: role=disk
services:
  web:
    image: ${WEB}
    port: 8080
    env: { MARK: "${mark}" }
`;

describe('fault: the control plane’s disk full', { timeout: 180_000 }, () => {
  const cluster = new Cluster();
  const dataDir = join(cluster.dir, 'cp');
  const filler = join(dataDir, 'filler');
  let mounted = false;

  before(async () => {
    await requireEngines([WEB]);
    await removeManaged([NODE]);
    mkdirSync(dataDir, { recursive: true });
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${SIZE_MB}m,mode=0700`, 'fleet-fault-disk', dataDir]);
    mounted = true;
    await cluster.startServer();
    cluster.startAgent(NODE, { role: 'disk' });
    await cluster.nodeConnected(NODE);
  });

  after(async () => {
    cluster.agents.get(NODE)?.kill('SIGCONT');
    await cluster.close();
    await removeManaged([NODE]);
    if (mounted) execFileSync('umount', ['-l', dataDir]);
  });

  let current = 0;
  /** One apply, naming the revision it supersedes (the previous rollout is still watching the node). */
  const apply = async (mark: string) => {
    const res = await cluster.api('/v1/apply', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ source: playbook(mark), file: 'fault-disk.yaml', expectRevision: current }),
    });
    if (res.status === 200) current = ((await res.clone().json()) as { revision: number }).revision;
    return res;
  };

  test('applies fail with 507 naming the disk, nothing acknowledged is lost, service resumes', async () => {
    const acked: { revision: number; mark: string }[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await apply(`before-${i}`);
      assert.equal(res.status, 200, await res.clone().text());
      acked.push({ revision: ((await res.json()) as { revision: number }).revision, mark: `before-${i}` });
    }
    // Take every free byte (dd stops at ENOSPC, exiting non-zero).
    try {
      execFileSync('dd', ['if=/dev/zero', `of=${filler}`, 'bs=64k'], { stdio: 'ignore' });
    } catch {
      // no space left: what the test wants
    }
    const free = statfsSync(dataDir);
    say(`data dir tmpfs ${SIZE_MB} MB, ${free.bavail * free.bsize} bytes free after the filler`);
    // SQLite may still fit a write or two into pages its WAL already holds: apply until one fails.
    let refused: { status: number; body: { error: string; message: string } } | undefined;
    let accepted = 0;
    for (let i = 0; i < scaled(40, 200) && !refused; i++) {
      const mark = `full-${i}`;
      const res = await apply(mark);
      if (res.status === 200) {
        accepted++;
        acked.push({ revision: ((await res.json()) as { revision: number }).revision, mark });
      } else refused = { status: res.status, body: (await res.json()) as { error: string; message: string } };
    }
    assert.ok(refused, `every apply succeeded on a full disk (${accepted})`);
    say(`after ${accepted} more applies fit, an apply got HTTP ${refused.status}: ${refused.body.message}`);
    assert.equal(refused.status, 507);
    assert.equal(refused.body.error, 'disk_full');
    assert.match(refused.body.message, /disk is full/);
    // The CLI: non-zero, with the server's message.
    const cli = await cluster.cli(
      'apply',
      cluster.playbook('full.yaml', playbook('cli-full')),
      '--no-wait',
      '--expect-revision',
      String(current),
    );
    say(`fleet apply on a full disk: exit ${cli.code}, stderr ${JSON.stringify(cli.stderr.trim())}`);
    assert.notEqual(cli.code, 0);
    assert.match(cli.stderr, /disk is full/);
    // The disk stays full a while: heartbeats, status reports and events keep arriving and cannot be
    // written, and the agent, frozen longer than the liveness TTL (5.5 s), goes silent and comes back:
    // liveness changes that cannot be written either. The control plane stays up and answers reads.
    const agent = cluster.agents.get(NODE);
    agent?.kill('SIGSTOP');
    await sleep(FULL_FOR_MS);
    agent?.kill('SIGCONT');
    await sleep(1_500);
    const log = cluster.log('server.log');
    const unwritten = log.split('\n').filter((l) => l.includes('agent liveness not written')).length;
    say(
      `disk held full ${FULL_FOR_MS + 1_500} ms, the agent frozen for ${FULL_FOR_MS} ms of it: ${unwritten} liveness writes (heartbeat batches, offline/online) failed and were logged; control plane up`,
    );
    assert.equal(cluster.server?.exitCode, null, 'the control plane is still running');
    assert.equal(cluster.server?.signalCode, null, 'the control plane is still running');
    await cluster.nodeConnected(NODE, 5_000);
    assert.equal((await cluster.api('/v1/deployments/fault-disk')).status, 200);

    rmSync(filler);
    const back = await apply('after');
    assert.equal(back.status, 200, await back.clone().text());
    acked.push({ revision: ((await back.json()) as { revision: number }).revision, mark: 'after' });
    // The agent, whose reports could not be written meanwhile, is back and runs the new revision.
    const t0 = Date.now();
    await waitFor(
      'the node runs the revision applied after the disk emptied',
      async () => {
        for (const c of await managedContainers(NODE)) {
          const env = (await docker.getContainer(c.Id).inspect()).Config.Env ?? [];
          if (c.State === 'running' && env.includes('MARK=after')) return true;
        }
        return false;
      },
      60_000,
      250,
    );
    await cluster.nodeConnected(NODE, 10_000);
    say(`after the filler was removed: the node runs the new revision ${Date.now() - t0} ms after its apply`);
    const db = new Database(join(dataDir, 'fleet.db'), { readonly: true, fileMustExist: true });
    try {
      assert.equal(db.pragma('integrity_check', { simple: true }), 'ok');
      const get = db.prepare("SELECT source FROM revisions WHERE deployment = 'fault-disk' AND revision = ?");
      for (const a of acked) {
        const row = get.get(a.revision) as { source: string } | undefined;
        assert.ok(row?.source.includes(`MARK: "${a.mark}"`), `revision ${a.revision} (${a.mark}) lost`);
      }
    } finally {
      db.close();
    }
    say(
      `${acked.length} acknowledged revisions all in the db after the disk filled and emptied; integrity ok`,
    );
  });
});
