import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Cluster } from '../helpers/cluster.js';
import { docker, managedContainers, REGISTRY, removeManaged, requireEngines } from '../helpers/engines.js';
import { freePort } from '../helpers/procs.js';

/**
 * `fleet apply --check --diff` and `--detailed-exitcode` end to end: a real control plane, two
 * real agents (distinct node names on one Docker daemon), the real registry. Revision 1 runs on
 * the edge node (web:1 behind nginx); the check of revision 2 (a tag the daemon has never pulled,
 * an env change with a token, a new rate limit, both nodes) shows the field diff with the token
 * masked, the containers each agent would replace or create, the image each would pull, the
 * unified diff of the nginx config each would render, the batches, and the exact
 * `--expect-revision` command; and it stores nothing and touches no container.
 */
const NODES = ['cd-1', 'cd-2'];
const WEB1 = `${REGISTRY}/fleet-test/web:1`;
/** Pushed to the registry by this file and removed from the daemon: no node has it. */
const FRESH = `${REGISTRY}/fleet-test/web:checkdiff`;
const NGINX = `${REGISTRY}/fleet/nginx:1`;
const TOKENS = ['tok-one-0123456789', 'tok-two-0123456789'];

const book = (
  o: { hosts: string; image: string; greeting: string; token: string; rate: number; gpus?: number },
  port: number,
) => `
name: checked
hosts: ${o.hosts}
serial: 1
rollout: { min_healthy_time: 1s, healthy_deadline: 60s }
services:
  web:
    image: ${o.image}
    env: { GREETING: "${o.greeting}", API_TOKEN: "${o.token}" }
    port: 8080
    health: { path: /cgi-bin/health, interval: 500ms, timeout: 400ms, retries: 2, start_period: 1s }
${o.gpus ? `    gpus: ${o.gpus}\n` : ''}proxy:
  image: ${NGINX}
  listen: "127.0.0.1:${port}"
  routes:
    - { path: /api/, service: web }
  rate_limit: { per_second: ${o.rate}, burst: ${o.rate * 2} }
`;

const V1 = { hosts: 'tier=edge', image: WEB1, greeting: 'one', token: TOKENS[0]!, rate: 10 };
const V2 = { hosts: 'group=cd', image: FRESH, greeting: 'two', token: TOKENS[1]!, rate: 20 };

const reEscape = (s: string) => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

/** Tags web:1 as FRESH, pushes it to the registry, and drops the local tag again. */
async function pushFreshTag() {
  const [repo, tag] = [FRESH.slice(0, FRESH.lastIndexOf(':')), FRESH.slice(FRESH.lastIndexOf(':') + 1)];
  await docker.getImage(WEB1).tag({ repo, tag });
  // An anonymous push to the local registry still needs the auth header (an empty one).
  const stream = await docker.getImage(FRESH).push({ authconfig: {} });
  await new Promise<void>((resolve, reject) =>
    docker.modem.followProgress(stream, (err: Error | null, out: { error?: string }[]) => {
      const failed = err ?? out.find((o) => o.error);
      if (failed) reject(new Error(`push ${FRESH}: ${(failed as { error?: string }).error ?? failed}`));
      else resolve();
    }),
  );
  await docker.getImage(FRESH).remove();
}

const imagePresent = (ref: string) =>
  docker
    .getImage(ref)
    .inspect()
    .then(
      () => true,
      () => false,
    );

/** Every managed container of the nodes (replicas and proxies) by id, with when Docker started it. */
async function containers() {
  const out: Record<string, string> = {};
  for (const n of NODES)
    for (const c of await managedContainers(n))
      out[c.Id] = (await docker.getContainer(c.Id).inspect()).State.StartedAt;
  return out;
}

interface Preview {
  containers: { action: string; service: string; replica: number; name: string; ids: string[] }[];
  images: { image: string; present: boolean }[];
  proxyDiff: string;
}
interface Plan {
  revision: number;
  previousRevision: number;
  batches: string[][];
  command: string;
  nodes: {
    node: string;
    services: { service: string; action: string; changes: { field: string; from?: string; to?: string }[] }[];
    preview?: Preview;
  }[];
}

describe('fleet apply --check --diff and --detailed-exitcode', { timeout: 240_000 }, () => {
  const cluster = new Cluster();
  let port = 0;
  let v1 = '';
  let v2 = '';
  let before1: Record<string, string> = {};
  const history = () => cluster.cliJson<{ current: number; revisions: unknown[] }>('history', 'checked');
  const rolloutId = async () =>
    ((await (await cluster.api(`/v1/deployments/checked`)).json()) as { rollout?: { id: number } }).rollout
      ?.id;

  before(async () => {
    await requireEngines([WEB1, NGINX]);
    await removeManaged(NODES);
    await pushFreshTag();
    port = await freePort();
    await cluster.startServer();
    cluster.startAgent('cd-1', { group: 'cd', tier: 'edge' });
    cluster.startAgent('cd-2', { group: 'cd', tier: 'back' });
    for (const n of NODES) await cluster.nodeConnected(n);
    v1 = cluster.playbook('v1.yaml', book(V1, port));
    v2 = cluster.playbook('v2.yaml', book(V2, port));
    const r = await cluster.cli('apply', v1, '--wait', '--timeout', '90s');
    assert.equal(r.code, 0, r.stdout + r.stderr);
    before1 = await containers();
    assert.equal(Object.keys(before1).length, 2, 'cd-1 runs web and its nginx; cd-2 nothing');
    assert.equal(await imagePresent(FRESH), false);
  });

  after(async () => {
    await cluster.close();
    await removeManaged(NODES);
  });

  test('the same playbook again: no changes, exit 0 with --detailed-exitcode', async () => {
    const r = await cluster.cli('apply', v1, '--check', '--diff', '--detailed-exitcode');
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /^ {4}keep +web\/0 /m);
    assert.match(r.stdout, /^ {2}nginx config: unchanged$/m);
    assert.match(r.stdout, /^no changes: nothing to apply$/m);
    assert.doesNotMatch(r.stdout, /--expect-revision/);
  });

  test('a new revision: field diff (token masked), containers, images to pull, nginx diff, batches, command; exit 2', async () => {
    const r = await cluster.cli('apply', v2, '--check', '--diff', '--detailed-exitcode');
    assert.equal(r.code, 2, r.stdout + r.stderr);
    const out = r.stdout;
    const section = (n: string) => out.slice(out.indexOf(`node ${n} (connected)`)).split(/\n\n/)[0]!;
    const one = section('cd-1');
    const two = section('cd-2');
    assert.match(out, /^checked: would apply revision 2 \(was 1\)$/m);
    // Field diff: image a → b, the env key changed, its token masked everywhere.
    assert.match(one, new RegExp(`^ {4}~ image: ${reEscape(WEB1)} → ${reEscape(FRESH)}$`, 'm'));
    assert.match(one, /^ {4}~ env\.API_TOKEN: \[redacted\] → \[redacted\]$/m);
    assert.match(one, /^ {4}~ env\.GREETING: one → two$/m);
    assert.match(two, /^ {2}service web: create$/m);
    assert.match(two, /^ {4}\+ env\.API_TOKEN: \[redacted\]$/m);
    for (const t of TOKENS) assert.ok(!out.includes(t), `token ${t} printed`);
    assert.match(out, /^ {2}~ hosts: \["tier=edge"\] → \["group=cd"\]$/m);
    assert.match(out, /^ {2}~ proxy\.rate_limit\.per_second: 10 → 20$/m);
    // The agents' answers: the replica cd-1 replaces (its running container), the one cd-2 creates.
    const web = (await managedContainers('cd-1')).find((c) => c.Labels['fleet.service'] === 'web')!;
    assert.match(
      one,
      new RegExp(`^ {4}replace +web/0 +${reEscape(web.Names[0]!.slice(1))} +${web.Id.slice(0, 12)} `, 'm'),
    );
    assert.match(two, /^ {4}create +web\/0 +fleet-cd-2-checked-web-0-[0-9a-f]{8} /m);
    // Images: neither node has the fresh tag; both have nginx.
    for (const s of [one, two]) {
      assert.match(s, new RegExp(`^ {4}pull {5}${reEscape(FRESH)}$`, 'm'));
      assert.match(s, new RegExp(`^ {4}present {2}${reEscape(NGINX)}$`, 'm'));
      assert.match(s, /^ {2}GPU fit: no GPUs asked for$/m);
    }
    // nginx: cd-1 diffs the config it serves; cd-2 has none yet.
    assert.match(one, /^ {4}--- nginx\.conf \(serving\)\n {4}\+\+\+ nginx\.conf \(revision 2\)$/m);
    assert.match(one, /^ {4}- +limit_req_zone \$binary_remote_addr zone=fleet_rate:10m rate=10r\/s;$/m);
    assert.match(one, /^ {4}\+ +limit_req_zone \$binary_remote_addr zone=fleet_rate:10m rate=20r\/s;$/m);
    assert.match(one, /^ {4}- +limit_req zone=fleet_rate burst=20 nodelay;$/m);
    assert.match(one, /^ {4}\+ +limit_req zone=fleet_rate burst=40 nodelay;$/m);
    assert.match(two, /^ {4}--- \/dev\/null$/m);
    assert.match(two, /^ {4}\+ +limit_req_zone .* rate=20r\/s;$/m);
    // Then the batches (serial 1) and the command that applies exactly this.
    assert.match(out, /^rollout: 2 batches\n {2}batch 1: cd-1\n {2}batch 2: cd-2$/m);
    assert.ok(
      out
        .trimEnd()
        .endsWith(`apply exactly this: fleet --server ${cluster.url} apply ${v2} --expect-revision 1`),
      out,
    );
  });

  test('-o json carries the same, and the command', async () => {
    const r = await cluster.cli('apply', v2, '--check', '--diff', '-o', 'json');
    assert.equal(r.code, 0, r.stderr);
    const plan = JSON.parse(r.stdout) as Plan;
    assert.equal(plan.revision, 2);
    assert.deepEqual(plan.batches, [['cd-1'], ['cd-2']]);
    assert.equal(plan.command, `fleet --server ${cluster.url} apply ${v2} --expect-revision 1`);
    for (const n of plan.nodes) {
      assert.deepEqual(
        n.preview?.images,
        [
          { image: FRESH, present: false },
          { image: NGINX, present: true },
        ],
        n.node,
      );
    }
    const changes = plan.nodes.find((n) => n.node === 'cd-1')!.services[0]!.changes;
    assert.deepEqual(
      changes.find((c) => c.field === 'env.API_TOKEN'),
      { field: 'env.API_TOKEN', change: 'changed', from: '[redacted]', to: '[redacted]' },
    );
    assert.ok(!r.stdout.includes(TOKENS[1]!));
  });

  test('a failing check (GPUs on nodes without any): exit 1 with --detailed-exitcode, GPU fit says why', async () => {
    const file = cluster.playbook('gpus.yaml', book({ ...V2, gpus: 1 }, port));
    const r = await cluster.cli('apply', file, '--check', '--diff', '--detailed-exitcode');
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(
      r.stdout,
      /^ {2}GPU fit:\n {4}FAIL nvidia-runtime: GPUs requested but Docker has no nvidia runtime/m,
    );
    assert.match(r.stdout, /^ {4}FAIL gpus: needs 1 GPU\(s\); this node has no nvidia-smi/m);
    assert.match(r.stderr, /preflight checks fail on cd-1, cd-2; nothing was applied/);
    // Without --detailed-exitcode the exit codes stay as they were: 1 for a failing check, 0 for changes.
    assert.equal((await cluster.cli('apply', file, '--check', '--diff')).code, 1);
    assert.equal((await cluster.cli('apply', v2, '--check', '--diff')).code, 0);
  });

  test('bad input: a playbook error keeps file:line:col (exit 2; 1 under --detailed-exitcode); --diff needs --check', async () => {
    const bad = cluster.playbook('bad.yaml', book(V2, port).replace('    port: 8080', '    port: "8080"'));
    const plain = await cluster.cli('apply', bad, '--check', '--diff');
    assert.equal(plain.code, 2, plain.stdout + plain.stderr);
    assert.match(plain.stderr, new RegExp(`^${reEscape(bad)}:10:11: `, 'm'));
    const detailed = await cluster.cli('apply', bad, '--check', '--diff', '--detailed-exitcode');
    assert.equal(detailed.code, 1, detailed.stderr);
    assert.match(detailed.stderr, /playbook rejected, nothing applied/);
    const usage = await cluster.cli('apply', v2, '--diff');
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /--diff needs --check/);
  });

  test('nothing was stored, pushed or touched by any of it', async () => {
    const h = await history();
    assert.equal(h.current, 1);
    assert.equal(h.revisions.length, 1);
    assert.deepEqual(await containers(), before1, 'same containers, same StartedAt');
    assert.equal(await imagePresent(FRESH), false, 'no node pulled the checked image');
    assert.equal(await rolloutId(), 1, 'no rollout started');
  });

  test('the printed command is the real one: it refuses once the deployment moved past the revision checked', async () => {
    const r = await cluster.cli('apply', v2, '--check', '--diff');
    const line = /^apply exactly this: (.*)$/m.exec(r.stdout)?.[1];
    assert.ok(line, r.stdout);
    const moved = await cluster.cli(
      'apply',
      cluster.playbook('v1b.yaml', book({ ...V1, greeting: 'one-b' }, port)),
    );
    assert.equal(moved.code, 0, moved.stdout + moved.stderr);
    const [fleet, ...args] = line.split(' ');
    assert.equal(fleet, 'fleet');
    const again = await cluster.cli(...args.slice(2)); // cli() passes --server itself
    assert.deepEqual(args.slice(0, 2), ['--server', cluster.url]);
    assert.equal(again.code, 2, again.stdout + again.stderr);
    assert.match(again.stderr, /checked is at revision 2, not 1; nothing applied/);
  });
});
