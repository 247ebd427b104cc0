import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { Cluster } from '../helpers/cluster.js';
import { docker, REGISTRY, removeManaged, requireEngines } from '../helpers/engines.js';
import { runningOf, say, scaled } from '../helpers/faults.js';
import { ROOT, waitFor } from '../helpers/procs.js';

/**
 * Fault suite, Docker: dockerd restarted (SIGTERM, then started again: without live-restore every
 * container stops with it) several times under a running deployment; each time the agent brings the
 * deployment back to healthy. The registries are processes beside dockerd (scripts/services.sh), so
 * they keep running; the test checks dockerd and both registries answer when it ends, as the rest of
 * the suite needs them. Runs under the e2e lock like every e2e file: nobody else uses Docker meanwhile.
 */
const WEB = `${REGISTRY}/fleet-test/web:1`;
const NODE = 'e2e-fault-dockerd';
const RESTARTS = scaled(2, 6);

const PLAYBOOK = `name: fault-dockerd
hosts: role=fault-dockerd
services:
  web:
    image: ${WEB}
    port: 8080
    replicas: 2
    health: { path: /cgi-bin/health, interval: 1s, timeout: 800ms, retries: 3, start_period: 5s }
`;

interface Detail {
  nodes: { services: { service: string; state: string }[] }[];
}

function services(fn: string) {
  // Its progress lines go to stderr (not into the test's TAP output on stdout).
  execFileSync('bash', ['-c', `source scripts/services.sh && ${fn}`], { cwd: ROOT, stdio: ['ignore', 2, 2] });
}

async function enginesUp() {
  await docker.ping();
  const plain = await fetch('http://127.0.0.1:5000/v2/', { signal: AbortSignal.timeout(3_000) });
  const auth = await fetch('http://127.0.0.1:5001/v2/', { signal: AbortSignal.timeout(3_000) });
  return { plain: plain.status, auth: auth.status };
}

describe('fault: dockerd restarted under a running deployment', { timeout: 600_000 }, () => {
  const cluster = new Cluster();
  const healthy = async () => {
    const d = await cluster.apiJson<Detail>('/v1/deployments/fault-dockerd');
    return d.nodes[0]?.services.find((s) => s.service === 'web')?.state === 'healthy';
  };

  before(async () => {
    await requireEngines([WEB]);
    await removeManaged([NODE]);
    await cluster.startServer();
    cluster.startAgent(NODE, { role: 'fault-dockerd' });
    await cluster.nodeConnected(NODE);
    const r = await cluster.cli('apply', cluster.playbook('dockerd.yaml', PLAYBOOK), '--no-wait');
    assert.equal(r.code, 0, r.stderr);
    await waitFor('web healthy', healthy, 60_000, 250);
  });

  after(async () => {
    // Whatever happened, leave the engines running for the rest of the suite.
    services('ensure_dockerd && ensure_registry && ensure_auth_registry');
    await cluster.close();
    await removeManaged([NODE]);
  });

  test(`${RESTARTS}× dockerd restarted: the deployment ends healthy each time`, async () => {
    for (let i = 1; i <= RESTARTS; i++) {
      const before = await runningOf(NODE, 'web');
      assert.equal(before.length, 2);
      const t0 = Date.now();
      services('restart_dockerd');
      const daemonMs = Date.now() - t0;
      await waitFor(
        'both replicas running again',
        async () => (await runningOf(NODE, 'web')).length === 2,
        90_000,
        250,
      );
      const runningMs = Date.now() - t0;
      await waitFor('web healthy again', healthy, 90_000, 250);
      const healthyMs = Date.now() - t0;
      const afterList = await runningOf(NODE, 'web');
      const same = afterList.filter((c) => before.some((b) => b.id === c.id)).length;
      say(
        `dockerd restart ${i}/${RESTARTS}: daemon back after ${daemonMs} ms; both replicas running after ${runningMs} ms, ` +
          `healthy after ${healthyMs} ms; ${same} of 2 containers started again (same id), ${2 - same} recreated`,
      );
      // Nothing else was left behind: two web containers for the node, in any state.
      const all = await docker.listContainers({ all: true, filters: { label: [`fleet.node=${NODE}`] } });
      assert.equal(all.filter((c) => c.Labels['fleet.service'] === 'web').length, 2, 'leftover containers');
    }
    const up = await enginesUp();
    say(
      `after the restarts: dockerd answers, registry 5000 HTTP ${up.plain}, auth registry 5001 HTTP ${up.auth}`,
    );
    assert.deepEqual(up, { plain: 200, auth: 401 });
  });
});
