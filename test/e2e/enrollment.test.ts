/**
 * Enrollment and mutual TLS with real processes: `fleet server` (agent certificates living 90 s,
 * so renewal happens within the test) and `fleet agent`s enrolling with join tokens from the CLI.
 * Each refusal is checked for its clear reason (the agent's log or exit) and its event.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { x509 } from '../../common/pki.js';
import { AgentServiceClient } from '../../proto/gen/fleet/v1/agent.js';
import { Cluster } from '../helpers/cluster.js';
import { startFleet, waitFor } from '../helpers/procs.js';

const A = 'enr-a';

interface EventRow {
  kind: string;
  node: string;
  message: string;
}

/** Resolves with the exit code once `p` exited (it must, within `ms`). */
function exited(p: ChildProcess, ms = 30_000): Promise<number> {
  if (p.exitCode !== null) return Promise.resolve(p.exitCode);
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('the agent did not exit')), ms);
    p.once('exit', (code) => {
      clearTimeout(t);
      resolve(code ?? -1);
    });
  });
}

const serialOf = (certFile: string) => new x509.X509Certificate(readFileSync(certFile, 'utf8')).serialNumber;

describe('enrollment and mutual TLS (real processes, real TLS)', { timeout: 300_000 }, () => {
  const cluster = new Cluster();
  const extra: ChildProcess[] = [];
  let expiring = '';
  let expiringMintedAt = 0;

  /** An agent outside the cluster's bookkeeping: its own state folder and log. */
  function agent(node: string, token: string | undefined, stateDir = mkdtempSync(join(cluster.dir, 'st-'))) {
    const args = ['agent', '--node', node, '--control-plane', `127.0.0.1:${cluster.grpcPort}`];
    if (token) args.push('--join-token', token);
    args.push('--state-dir', stateDir, '--metrics-listen', '', '--heartbeat', '1s');
    const p = startFleet(args, join(cluster.dir, `agent-${node}-${extra.length}.log`));
    extra.push(p);
    return { p, log: () => readFileSync(join(cluster.dir, `agent-${node}-${extra.indexOf(p)}.log`), 'utf8') };
  }

  const events = async (kind: string) =>
    ((await (await cluster.api(`/v1/events?limit=500`)).json()) as { events: EventRow[] }).events.filter(
      (e) => e.kind === kind,
    );
  const tokens = async () =>
    (await cluster.cliJson<{ tokens: { id: string; state: string; usedBy: string }[] }>('join-token', 'list'))
      .tokens;
  const idOf = (token: string) => token.split('::')[1]!.split('.')[0]!;

  before(async () => {
    await cluster.startServer(['--agent-cert-lifetime', '90s']);
    // Minted first: the shortest lifetime there is (1 minute); used once it has run out.
    expiring = cluster.joinTokenSync({}, '1m');
    expiringMintedAt = Date.now();
  });
  after(async () => {
    for (const p of extra) if (p.exitCode === null) p.kill('SIGTERM');
    await cluster.close();
  });

  test("enrolls end to end: the token's labels become the node's, the token is spent", async () => {
    cluster.startAgent(A, { tier: 'gold', zone: 'z1' });
    await cluster.nodeConnected(A);
    const node = await cluster.cliJson<{ labels: Record<string, string> }>('nodes', A);
    assert.deepEqual(node.labels, { tier: 'gold', zone: 'z1' });
    const used = (await tokens()).filter((t) => t.usedBy === A);
    assert.deepEqual(
      used.map((t) => t.state),
      ['used'],
    );
    assert.ok((await events('node.enrolled')).some((e) => e.node === A));
    assert.ok((await events('join-token.created')).length >= 1);
    const text = await cluster.cli('join-token', 'list');
    assert.match(text.stdout, new RegExp(`used\\s+${A}`));
    // It dialed 127.0.0.1: no IP was sent as the TLS server name (Node's DEP0123 on stderr).
    assert.doesNotMatch(cluster.log(`agent-${A}.log`), /DEP0123|ServerName to an IP/);
  });

  test('a token used twice is refused the second time, with the reason in the event', async () => {
    const token = cluster.joinTokenSync();
    const first = agent('enr-b', token);
    await cluster.nodeConnected('enr-b');
    const second = agent('enr-c', token);
    assert.notEqual(await exited(second.p), 0);
    assert.match(second.log(), /join token refused/);
    await waitFor('enroll.refused (used)', async () =>
      (await events('enroll.refused')).some((e) => e.node === 'enr-c' && /refused: used$/.test(e.message)),
    );
    first.p.kill('SIGTERM');
  });

  test("a token naming another CA's hash: the agent stops before sending the secret", async () => {
    const token = cluster.joinTokenSync();
    const forged = `K10${'ab'.repeat(32)}::${token.split('::')[1]}`;
    const a = agent('enr-d', forged);
    assert.notEqual(await exited(a.p), 0);
    assert.match(a.log(), /does not match the join token/);
    const t = (await tokens()).find((x) => x.id === idOf(token));
    assert.equal(t?.state, 'active', 'the secret never reached the control plane');
    assert.ok(!(await events('enroll.refused')).some((e) => e.node === 'enr-d'));
  });

  test('without a certificate and without a token: a clear error naming fleet join-token create', async () => {
    const a = agent('enr-e', undefined);
    assert.notEqual(await exited(a.p), 0);
    assert.match(a.log(), /fleet join-token create/);
  });

  test('a plaintext connection to the agent port is refused', async () => {
    const c = new AgentServiceClient(`127.0.0.1:${cluster.grpcPort}`, grpc.credentials.createInsecure());
    const code = await new Promise<number>((resolve) =>
      c.getCa({}, new grpc.Metadata(), { deadline: Date.now() + 3_000 }, (err) => resolve(err?.code ?? 0)),
    );
    c.close();
    assert.ok(code === grpc.status.UNAVAILABLE || code === grpc.status.DEADLINE_EXCEEDED, `code ${code}`);
  });

  test("node A's certificate used as node B is refused, with an event", async () => {
    const stateDir = mkdtempSync(join(cluster.dir, 'st-'));
    cpSync(cluster.tlsDir(A), join(stateDir, 'enr-f', 'tls'), { recursive: true });
    const a = agent('enr-f', undefined, stateDir);
    await waitFor(
      'the refusal in the agent log',
      () => /control plane refused this agent/.test(a.log()),
      20_000,
    );
    assert.match(a.log(), /cannot act as/);
    await waitFor('agent.refused for A', async () =>
      (await events('agent.refused')).some((e) => e.node === A && /enr-f/.test(e.message)),
    );
    a.p.kill('SIGTERM');
  });

  test('a duplicate name with a new key is refused with an event; the token stays unspent', async () => {
    const token = cluster.joinTokenSync();
    const a = agent(A, token);
    assert.notEqual(await exited(a.p), 0);
    assert.match(a.log(), /enrolled with another key/);
    await waitFor('node.name-taken', async () => (await events('node.name-taken')).some((e) => e.node === A));
    assert.equal((await tokens()).find((t) => t.id === idOf(token))?.state, 'active');
  });

  test('renewal is picked up without a restart: new serial, same pid, the stream stays usable', async () => {
    const pid = cluster.agents.get(A)?.pid;
    const certFile = join(cluster.tlsDir(A), 'node.crt');
    const before = serialOf(certFile);
    await waitFor('a renewed certificate', () => serialOf(certFile) !== before, 120_000, 500);
    assert.equal(cluster.agents.get(A)?.pid, pid);
    assert.equal(cluster.agents.get(A)?.exitCode, null);
    assert.ok((await events('cert.renewed')).some((e) => e.node === A));
    // Usable: a label change reaches the node's stream and the node stays connected.
    const labeled = await cluster.cli('label', A, 'renewed=yes');
    assert.equal(labeled.code, 0, labeled.stderr);
    await cluster.nodeConnected(A);
    const since = Date.now();
    await waitFor('heartbeats after the renewal', async () => {
      const n = await cluster.cliJson<{ lastSeenMs: number; connected: boolean }>('nodes', A);
      return n.connected && n.lastSeenMs > since;
    });
    // Nor on the renewed certificate's channel.
    assert.doesNotMatch(cluster.log(`agent-${A}.log`), /DEP0123|ServerName to an IP/);
  });

  test('an expired token is refused', async () => {
    const wait = expiringMintedAt + 61_000 - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const a = agent('enr-g', expiring);
    assert.notEqual(await exited(a.p), 0);
    assert.match(a.log(), /join token refused/);
    await waitFor('enroll.refused (expired)', async () =>
      (await events('enroll.refused')).some((e) => e.node === 'enr-g' && /refused: expired$/.test(e.message)),
    );
  });
});
