import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Cluster } from '../helpers/cluster.js';
import { managedContainers, REGISTRY, removeManaged, requireEngines } from '../helpers/engines.js';
import { runningOf, say, scaled, sleep } from '../helpers/faults.js';
import { waitFor } from '../helpers/procs.js';

/**
 * Fault suite, agent: SIGKILL at random moments while a service crash-loops (restart counts never
 * go backwards: the streaks survive in the state folder; never two containers for one replica), and
 * its state folder deleted, then corrupted, under running containers (it converges with no orphans,
 * no duplicates, the healthy replicas adopted as they are).
 *
 * GPUs: this machine's Docker has no nvidia runtime, so preflight holds back any revision asking
 * for GPUs (fake nvidia-smi or not) and no GPU replica can run here; the GPU ledger's "never two
 * replicas on one GPU" is checked on what can exist: no GPU UUID (label fleet.gpus) on two
 * containers, and no replica key on two containers, at every sample.
 */
const WEB = `${REGISTRY}/fleet-test/web:1`;
const NODE = 'e2e-fault-agent';
const DEPLOYMENT = 'fault-agent';
const KILL_FOR_MS = scaled(20_000, 120_000);

const PLAYBOOK = `name: ${DEPLOYMENT}
hosts: role=fault-agent
services:
  web:
    image: ${WEB}
    port: 8080
    replicas: 2
    health: { path: /cgi-bin/health, interval: 1s, timeout: 800ms, retries: 3, start_period: 5s }
  crash:
    image: ${WEB}
    command: ["/bin/sh", "-c", "sleep 0.3; exit 3"]
`;

interface Detail {
  nodes: {
    node: string;
    services: { service: string; state: string; containers: { id: string; restartCount: number }[] }[];
  }[];
}

/** Containers per replica key and per GPU UUID: each must be one. */
async function duplicates() {
  const byKey = new Map<string, number>();
  const byGpu = new Map<string, number>();
  for (const c of await managedContainers(NODE)) {
    if (c.Labels['fleet.role'] === 'proxy') continue;
    const key = `${c.Labels['fleet.deployment']}/${c.Labels['fleet.service']}/${c.Labels['fleet.replica']}`;
    byKey.set(key, (byKey.get(key) ?? 0) + 1);
    for (const g of (c.Labels['fleet.gpus'] ?? '').split(',').filter(Boolean))
      byGpu.set(g, (byGpu.get(g) ?? 0) + 1);
  }
  const dup = [...byKey, ...byGpu].filter(([, n]) => n > 1);
  return { keys: [...byKey.keys()].sort(), dup };
}

describe('fault: the agent killed and its state lost', { timeout: 300_000 }, () => {
  const cluster = new Cluster();
  const stateDir = () => join(cluster.dir, 'agents', NODE);
  const detail = () => cluster.apiJson<Detail>(`/v1/deployments/${DEPLOYMENT}`);
  const service = async (name: string) => (await detail()).nodes[0]?.services.find((s) => s.service === name);
  const webHealthy = async () => (await service('web'))?.state === 'healthy';

  before(async () => {
    await requireEngines([WEB]);
    await removeManaged([NODE]);
    await cluster.startServer();
    cluster.startAgent(NODE, { role: 'fault-agent' });
    await cluster.nodeConnected(NODE);
    const r = await cluster.cli('apply', cluster.playbook('agent.yaml', PLAYBOOK), '--no-wait');
    assert.equal(r.code, 0, r.stderr);
    await waitFor('web healthy', webHealthy, 60_000, 250);
  });

  after(async () => {
    await cluster.close();
    await removeManaged([NODE]);
  });

  test('SIGKILL at random moments during a crash loop: restart counts never go backwards, no duplicates', async () => {
    await waitFor(
      'the crash service restarted twice',
      async () => {
        const s = await service('crash');
        return (s?.containers[0]?.restartCount ?? 0) >= 2;
      },
      30_000,
      250,
    );
    const samples: number[] = [];
    let kills = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const s = await service('crash').catch(() => undefined);
        const n = s?.containers[0]?.restartCount;
        if (n !== undefined) samples.push(n);
        const d = await duplicates();
        assert.deepEqual(d.dup, [], `two containers for one replica or GPU: ${JSON.stringify(d.dup)}`);
        await sleep(250);
      }
    })();
    const until = Date.now() + KILL_FOR_MS;
    try {
      while (Date.now() < until) {
        await sleep(1_000 + Math.floor(Math.random() * 3_000));
        await cluster.killAgent(NODE, 'SIGKILL');
        kills++;
        cluster.startAgent(NODE);
      }
      await cluster.nodeConnected(NODE, 30_000);
      await sleep(3_000);
    } finally {
      sampling = false;
      await sampler;
    }
    const backwards = samples.flatMap((n, i) =>
      i > 0 && n < samples[i - 1]! ? [`${samples[i - 1]}→${n}`] : [],
    );
    say(
      `${kills} SIGKILLs in ${KILL_FOR_MS} ms; crash restart counts sampled ${samples.length}×: ` +
        `${samples[0]} → ${samples.at(-1)}; backwards steps: ${backwards.length ? backwards.join(' ') : 'none'}`,
    );
    assert.ok(kills >= 3, `only ${kills} kills`);
    assert.deepEqual(backwards, [], 'a restart count went backwards');
    assert.ok(samples.at(-1)! > samples[0]!, 'the crash loop went on being restarted');
    const d = await duplicates();
    assert.deepEqual(d.keys, [`${DEPLOYMENT}/crash/0`, `${DEPLOYMENT}/web/0`, `${DEPLOYMENT}/web/1`]);
    await waitFor('web healthy after the kills', webHealthy, 30_000, 250);
  });

  /** Kills the agent after `damage` ran on its state folder (the TLS identity kept), then restarts it. */
  async function afterDamage(what: string, damage: (files: string[]) => void) {
    const before = await runningOf(NODE, 'web');
    assert.equal(before.length, 2);
    const files = walk(stateDir()).filter((f) => !f.includes(`${NODE}/tls/`));
    damage(files);
    await sleep(1_000); // the agent runs on a while with its state gone
    await cluster.killAgent(NODE, 'SIGKILL');
    const t0 = Date.now();
    cluster.startAgent(NODE);
    await cluster.nodeConnected(NODE, 30_000);
    await waitFor(`web healthy after ${what}`, webHealthy, 60_000, 250);
    await sleep(3_000); // a few rounds more: nothing else may appear
    const d = await duplicates();
    const after = await runningOf(NODE, 'web');
    say(
      `${what} (${files.length} files): converged ${Date.now() - t0 - 3_000} ms after the restart; ` +
        `containers ${d.keys.join(', ')}; web ids ${after.map((c) => c.id.slice(0, 12)).join(', ')}`,
    );
    assert.deepEqual(d.dup, []);
    assert.deepEqual(
      d.keys,
      [`${DEPLOYMENT}/crash/0`, `${DEPLOYMENT}/web/0`, `${DEPLOYMENT}/web/1`],
      'orphans',
    );
    assert.deepEqual(
      after,
      before,
      'the healthy replicas were adopted as they ran, not recreated or restarted',
    );
  }

  test('state folder deleted under running containers: converges, no orphans, no duplicates', async () => {
    await afterDamage('state folder deleted', (files) => {
      for (const f of files) rmSync(f, { force: true });
      for (const e of readdirSync(stateDir()))
        if (e !== 'tls') rmSync(join(stateDir(), e), { recursive: true });
    });
  });

  test('state files corrupted (garbage bytes): converges, no orphans, no duplicates', async () => {
    await afterDamage('state files corrupted', (files) => {
      for (const f of files) writeFileSync(f, randomBytes(64 + Math.floor(Math.random() * 512)));
    });
  });
});

function walk(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir)) {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) out.push(...walk(p));
    else out.push(p);
  }
  return out;
}
