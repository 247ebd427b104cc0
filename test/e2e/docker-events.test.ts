import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import Docker from 'dockerode';
import { type ContainerEvent, watchContainerEvents } from '../../agent/src/docker/events.js';
import { httpProbe } from '../../agent/src/health/probe.js';
import { createLogger } from '../../common/log.js';
import { docker, REGISTRY, requireEngines } from '../helpers/engines.js';
import { waitFor } from '../helpers/procs.js';

/**
 * Docker's real /events stream: the watcher sees this node's managed containers die (with the exit
 * code and the replica key, well within a second), ignores other nodes, survives a broken stream,
 * and the test image's health switch works through a port published on 127.0.0.1.
 */
const IMAGE = `${REGISTRY}/fleet-test/web:1`;
const NODE = `ev-${process.pid}-${Date.now().toString(36)}`;
const OTHER = `${NODE}-other`;
const log = createLogger('docker-events-e2e', 'silent');
const created: string[] = [];

async function ensureImage(ref: string) {
  try {
    await docker.getImage(ref).inspect();
  } catch {
    const stream = await docker.pull(ref);
    await new Promise<void>((resolve, reject) =>
      docker.modem.followProgress(stream, (err: Error | null) => (err ? reject(err) : resolve())),
    );
  }
}

/** A managed-looking container (labels as the agent sets them) running `script` under sh. */
async function run(node: string, replica: number, script: string): Promise<Docker.Container> {
  const c = await docker.createContainer({
    Image: IMAGE,
    name: `${node}-r${replica}-${Math.random().toString(36).slice(2, 8)}`,
    Cmd: ['/bin/sh', '-c', script],
    Labels: {
      'fleet.managed': 'true',
      'fleet.node': node,
      'fleet.deployment': 'evd',
      'fleet.service': 'evs',
      'fleet.replica': String(replica),
    },
    HostConfig: { RestartPolicy: { Name: 'no' } },
  });
  created.push(c.id);
  await c.start();
  return c;
}

/** Collects events; `next` waits for the first one matching. */
function collector() {
  const events: (ContainerEvent & { receivedAtMs: number })[] = [];
  return {
    events,
    onEvent: (e: ContainerEvent) => events.push({ ...e, receivedAtMs: Date.now() }),
    next: (what: string, pred: (e: ContainerEvent) => boolean, timeoutMs = 15_000) =>
      waitFor(what, () => events.find(pred), timeoutMs, 20),
  };
}

before(async () => {
  await requireEngines([IMAGE]);
  await ensureImage(IMAGE);
});

after(async () => {
  for (const id of created) {
    await docker
      .getContainer(id)
      .remove({ force: true })
      .catch(() => {});
  }
});

describe('docker events (real daemon)', () => {
  test('a managed container that exits gives a die event with its code and key, within 1 s', async () => {
    const c = collector();
    // A client idle timeout shorter than the test: the event stream must not be cut by it.
    const client = new Docker({ socketPath: '/var/run/docker.sock', timeout: 500 });
    let reconnects = 0;
    const w = watchContainerEvents({
      docker: client,
      node: NODE,
      onEvent: c.onEvent,
      onReconnect: () => reconnects++,
      log,
    });
    try {
      await waitFor('subscription', () => w.connected(), 5_000, 10);
      await new Promise((r) => setTimeout(r, 1_200)); // idle longer than the client timeout
      assert.equal(w.connected(), true, 'the idle stream survived the client timeout');
      const other = await run(OTHER, 0, 'sleep 0.3; exit 5');
      const mine = await run(NODE, 3, 'sleep 1; exit 7');
      const start = await c.next('start event', (e) => e.id === mine.id && e.action === 'start');
      assert.equal(start.key, 'evd/evs/3');
      const die = (await c.next(
        'die event',
        (e) => e.id === mine.id && e.action === 'die',
      )) as ContainerEvent & {
        receivedAtMs: number;
      };
      assert.equal(die.exitCode, 7);
      assert.equal(die.key, 'evd/evs/3');
      const state = (await mine.inspect()).State;
      const finishedMs = Date.parse(state.FinishedAt);
      assert.equal(state.ExitCode, 7);
      const latency = die.receivedAtMs - finishedMs;
      console.log(
        `die event delivered ${latency} ms after the exit (event time ${die.atMs - finishedMs} ms)`,
      );
      assert.ok(latency < 1_000, `event arrived ${latency} ms after the exit`);
      assert.ok(Math.abs(die.atMs - finishedMs) < 1_000, 'the event time is the exit time');
      // The other node's container has long exited too: nothing of it may have arrived.
      await waitFor('other container exited', async () => !(await other.inspect()).State.Running, 5_000, 50);
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(c.events.filter((e) => e.id === other.id).length, 0, "another node's events leaked");
      await mine.remove({ force: true });
      const destroy = await c.next('destroy event', (e) => e.id === mine.id && e.action === 'destroy');
      assert.equal(destroy.key, 'evd/evs/3');
      assert.equal(reconnects, 0);
    } finally {
      w.stop();
    }
    assert.equal(w.connected(), false);
  });

  test('a broken stream (daemon gone, then back) is re-subscribed and the caller told once', async () => {
    // A relay socket in front of the daemon stands in for a daemon restart: cutting it breaks the
    // real stream, closing it refuses connections, reopening it lets the watcher back in.
    const dir = mkdtempSync(join(tmpdir(), 'fleet-ev-'));
    const sock = join(dir, 'docker.sock');
    const conns = new Set<net.Socket>();
    const relay = net.createServer((down) => {
      const up = net.connect('/var/run/docker.sock');
      conns.add(down).add(up);
      down.pipe(up).pipe(down);
      const done = () => {
        down.destroy();
        up.destroy();
        conns.delete(down);
        conns.delete(up);
      };
      down.on('error', done).on('close', done);
      up.on('error', done).on('close', done);
    });
    const listen = () => new Promise<void>((r) => relay.listen(sock, r));
    await listen();
    const c = collector();
    let reconnects = 0;
    const w = watchContainerEvents({
      docker: new Docker({ socketPath: sock }),
      node: NODE,
      onEvent: c.onEvent,
      onReconnect: () => reconnects++,
      log,
      retryMinMs: 100,
      retryMaxMs: 400,
    });
    try {
      await waitFor('subscription', () => w.connected(), 5_000, 10);
      await new Promise<void>((r) => {
        relay.close(() => r());
        for (const s of conns) s.destroy();
      });
      await waitFor('disconnect noticed', () => !w.connected(), 5_000, 10);
      await new Promise((r) => setTimeout(r, 1_000)); // several refused attempts
      assert.equal(reconnects, 0);
      await listen();
      await waitFor('re-subscribed', () => w.connected() && reconnects === 1, 5_000, 10);
      const mine = await run(NODE, 4, 'exit 9');
      const die = await c.next('die after reconnect', (e) => e.id === mine.id && e.action === 'die');
      assert.equal(die.exitCode, 9);
      assert.equal(die.key, 'evd/evs/4');
      assert.equal(reconnects, 1, 'onReconnect once per re-subscription, not per failed attempt');
    } finally {
      w.stop();
      for (const s of conns) s.destroy();
      relay.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('web test image health switch', () => {
  test('/cgi-bin/health 200 → /cgi-bin/sick → 500 → /cgi-bin/well → 200; /version still answers', async () => {
    const c = await docker.createContainer({
      Image: IMAGE,
      name: `${NODE}-web`,
      ExposedPorts: { '8080/tcp': {} },
      HostConfig: { PortBindings: { '8080/tcp': [{ HostIp: '127.0.0.1', HostPort: '' }] } },
    });
    created.push(c.id);
    await c.start();
    const info = await c.inspect();
    const port = info.NetworkSettings.Ports['8080/tcp']?.[0]?.HostPort;
    assert.ok(port, 'published port');
    const base = `http://127.0.0.1:${port}`;
    const health = await waitFor('web up', async () => {
      const r = await httpProbe(`${base}/cgi-bin/health`, 2_000);
      return r.status ? r : undefined;
    });
    assert.deepEqual([health.ok, health.status], [true, 200]);
    assert.equal(await (await fetch(`${base}/cgi-bin/health`)).text(), 'ok\n');
    assert.equal((await fetch(`${base}/cgi-bin/sick`)).status, 200);
    const sick = await httpProbe(`${base}/cgi-bin/health`, 2_000);
    assert.deepEqual([sick.ok, sick.status, sick.error], [false, 500, 'HTTP 500: sick']);
    assert.equal((await fetch(`${base}/cgi-bin/well`)).status, 200);
    const well = await httpProbe(`${base}/cgi-bin/health`, 2_000);
    assert.deepEqual([well.ok, well.status], [true, 200]);
    assert.equal((await (await fetch(`${base}/version`)).text()).trim(), '1');
    assert.match(await (await fetch(`${base}/cgi-bin/env`)).text(), /^GREETING=/m);
  });
});
