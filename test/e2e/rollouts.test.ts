import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { describe, test } from 'node:test';
import { clusterOf, jsonLines } from '../helpers/cluster.js';
import { docker, managedContainers, REGISTRY } from '../helpers/engines.js';
import { waitFor } from '../helpers/procs.js';

/**
 * Rollouts across three agents on one Docker daemon (distinct node names), a real control plane
 * and registry: batches one node at a time, a revision whose health never passes halts after its
 * first batch and rolls back, and a control plane killed with SIGKILL mid-rollout goes on at the
 * same batch after its restart.
 */
const NODES = ['roll-1', 'roll-2', 'roll-3'];
const WEB = (tag: string) => `${REGISTRY}/fleet-test/web:${tag}`;

const playbook = (o: {
  tag: string;
  greeting: string;
  healthPath?: string;
  minHealthy?: string;
  window?: string;
  autoRollback?: boolean;
}) => `
name: rolling
hosts: group=roll
serial: 1
rollout:
  min_healthy_time: ${o.minHealthy ?? '2s'}
  healthy_deadline: 12s
  auto_rollback: ${o.autoRollback ?? true}
${o.window ? `  window: { cron: "${o.window}", duration: 1m }\n` : ''}services:
  web:
    image: ${WEB(o.tag)}
    env: { GREETING: ${JSON.stringify(o.greeting)} }
    port: 8080
    health: { path: ${o.healthPath ?? '/cgi-bin/health'}, interval: 500ms, timeout: 400ms, retries: 2, start_period: 1s }
`;

/** Runs `command` on a real pseudo-terminal (util-linux `script`), sized 40×120; its output and exit code. */
function onTerminal(command: string[]): Promise<{ code: number; out: string }> {
  const line = command.map((a) => `'${a.replaceAll("'", "'\\''")}'`).join(' ');
  return new Promise((resolve, reject) => {
    const p = spawn('script', ['-qefc', `stty rows 40 cols 120; ${line}`, '/dev/null'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (out += d));
    p.on('error', reject);
    p.on('close', (code) => resolve({ code: code ?? -1, out }));
  });
}

const ESC = String.fromCharCode(27);

interface Rollout {
  id: number;
  revision: number;
  state: string;
  reason: string;
  batch: number;
  nodes: { node: string; state: string; batch: number; pushedMs: number }[];
}

/** Each node's serving container: its id, image and when Docker started it. */
async function serving(node: string) {
  const list = (await managedContainers(node)).filter(
    (c) => c.Labels['fleet.role'] !== 'proxy' && c.State === 'running',
  );
  assert.equal(list.length, 1, `${node}: ${list.map((c) => c.Names[0]).join(', ')}`);
  const c = await docker.getContainer(list[0]!.Id).inspect();
  return { id: c.Id, image: c.Config.Image, startedMs: Date.parse(c.State.StartedAt) };
}

describe('rollouts across nodes', { timeout: 300_000 }, () => {
  const cluster = clusterOf(NODES, { group: 'roll' }, [WEB('1'), WEB('2')]);
  const rollout = async () =>
    ((await (await cluster.api(`/v1/deployments/rolling`)).json()) as { rollout: Rollout }).rollout;

  test('serial 1 over 3 nodes: one node at a time, each healthy for min_healthy_time first; a plain apply follows it to the recap', async () => {
    const file = cluster.playbook('v1.yaml', playbook({ tag: '1', greeting: 'one' }));
    // No --wait: following the rollout is the default.
    const r = await cluster.cli('apply', file, '--timeout', '120s');
    assert.equal(r.code, 0, r.stdout + r.stderr);
    // Not a terminal: plain progress lines, one per change of a node's state, in order.
    const out = r.stdout;
    const at = (re: RegExp) => {
      const i = out.search(re);
      assert.ok(i >= 0, `${re} in:\n${out}`);
      return i;
    };
    const waiting3 = at(/^batch 3\/3 roll-3: waiting for batch 3$/m);
    const watching1 = at(/^batch 1\/3 roll-1: healthy, watching for 2 s$/m);
    const healthy1 = at(/^batch 1\/3 roll-1: healthy$/m);
    const rolling2 = at(/^rollout \d+ of revision 1: rolling, batch 2 of 3$/m);
    const healthy3 = at(/^batch 3\/3 roll-3: healthy$/m);
    const recapAt = at(/^PLAY RECAP/m);
    assert.ok(waiting3 < healthy3 && watching1 < healthy1 && watching1 < rolling2 && healthy3 < recapAt, out);
    assert.doesNotMatch(out, /healthy for \d+ of/, 'no ticking counters off a terminal');
    for (const n of NODES)
      assert.match(r.stdout, new RegExp(`${n} +: ok=0 changed=1 unreachable=0 failed=0 skipped=0`));
    assert.match(r.stdout, /revision 1 healthy on all 3 node\(s\)/);
    const started = await Promise.all(NODES.map(serving));
    for (let i = 1; i < started.length; i++) {
      const gap = started[i]!.startedMs - started[i - 1]!.startedMs;
      assert.ok(gap >= 2_000, `${NODES[i]} started ${gap} ms after ${NODES[i - 1]} (min_healthy_time 2 s)`);
    }
    process.stdout.write(
      `# serial 1: starts ${started.map((s) => s.startedMs - started[0]!.startedMs).join(', ')} ms\n`,
    );
    assert.equal((await rollout()).state, 'succeeded');
  });

  test('a revision whose health never passes halts after batch 1 and rolls back; the others never ran it', async () => {
    const before = await Promise.all(NODES.map(serving));
    const file = cluster.playbook(
      'bad.yaml',
      playbook({ tag: '2', greeting: 'bad', healthPath: '/cgi-bin/missing' }),
    );
    const r = await cluster.cli('apply', file, '--wait', '--timeout', '120s');
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stdout, /roll-1 +: ok=0 changed=0 unreachable=0 failed=1 skipped=0/);
    assert.match(r.stdout, /roll-2 +: .*skipped=1/);
    assert.match(r.stdout, /rolled-back: .*roll-1.*rolled back to revision 1 \(as revision 3: succeeded\)/s);
    const after = await Promise.all(NODES.map(serving));
    assert.equal(after[0]!.image, WEB('1'), 'node 1 is back on the stable revision');
    for (const i of [1, 2])
      assert.equal(after[i]!.id, before[i]!.id, `${NODES[i]} never ran the bad revision`);
    const d = (await (await cluster.api(`/v1/deployments/rolling`)).json()) as {
      revision: number;
      rollout: Rollout;
    };
    assert.equal(d.revision, 3, 'the rollback is a new revision');
    assert.equal(d.rollout.state, 'succeeded');
    const status = await cluster.cli('rollout', 'status', 'rolling');
    assert.match(status.stdout, /rollout \d+ of revision 3 \(rollback\): succeeded/);
  });

  test('a control plane killed with SIGKILL mid-rollout resumes at the same batch; a second apply meanwhile is refused', async () => {
    const file = cluster.playbook('v2.yaml', playbook({ tag: '2', greeting: 'two', minHealthy: '4s' }));
    const t0 = Date.now();
    const applied = await cluster.cliJson<{ revision: number; rollout: number }>('apply', file, '--no-wait');
    // --no-wait: back with the stored revision while its first batch still runs.
    assert.equal(applied.revision, 4);
    const atReturn = await rollout();
    assert.equal(atReturn.id, applied.rollout);
    assert.equal(atReturn.state, 'running', `returned after ${Date.now() - t0} ms`);
    assert.equal(atReturn.batch, 0);
    await waitFor('batch 2 in progress', async () => (await rollout()).batch === 1, 60_000, 100);
    const first = await serving('roll-1');
    assert.equal(first.image, WEB('2'));

    const other = cluster.playbook('v3.yaml', playbook({ tag: '1', greeting: 'three' }));
    const refused = await cluster.cli('apply', other);
    assert.equal(refused.code, 2, refused.stderr);
    assert.match(refused.stderr, /rollout of revision 4 is running \(batch 2 of 3\).*--expect-revision 4/);

    await cluster.stopServer('SIGKILL');
    const atKill = await serving('roll-3');
    await cluster.startServer();
    const done = await waitFor(
      'rollout finished after the restart',
      async () => {
        const r = await rollout();
        return r.id === applied.rollout && r.state !== 'running' ? r : undefined;
      },
      90_000,
      200,
    );
    assert.equal(done.state, 'succeeded');
    assert.equal((await serving('roll-1')).id, first.id, 'batch 1 was not pushed again');
    const started = await Promise.all(NODES.map(serving));
    assert.ok(started.every((s) => s.image === WEB('2')));
    assert.ok(started[2]!.startedMs > atKill.startedMs, 'roll-3 got the revision only after the restart');
    assert.ok(started[1]!.startedMs < started[2]!.startedMs, 'batches kept their order');
  });

  test('a rollout waiting for its window starts when the window opens, visibly; -o json follows it as JSON lines', async () => {
    const opens = new Date(Date.now() + 8_000);
    const cron = `${opens.getSeconds()} ${opens.getMinutes()} ${opens.getHours()} * * *`;
    const file = cluster.playbook(
      'window.yaml',
      playbook({ tag: '1', greeting: 'window', minHealthy: '1s', window: cron }),
    );
    const following = cluster.cli('apply', file, '-o', 'json', '--timeout', '60s');
    const waiting = await waitFor(
      'the rollout waits for its window',
      async () => {
        const r = await rollout();
        return r.state === 'running' && /waits for the rollout window \(opens /.test(r.reason)
          ? r
          : undefined;
      },
      20_000,
      100,
    );
    assert.ok(
      waiting.nodes.every((n) => n.state === 'waiting'),
      'nothing pushed before the window',
    );
    const r = await following;
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const lines = jsonLines(r.stdout);
    const first = lines[0] as { type: string; apply: { rollout: number } };
    assert.equal(first.type, 'apply');
    assert.equal(first.apply.rollout, waiting.id);
    const nodeLines = lines.filter((l) => l.type === 'node') as {
      node: string;
      state: string;
      text: string;
    }[];
    assert.ok(
      nodeLines.some(
        (l) =>
          l.node === 'roll-1' &&
          l.state === 'window' &&
          /^waiting for the window \(opens \d{4}-/.test(l.text),
      ),
      r.stdout,
    );
    for (const n of NODES)
      assert.deepEqual(
        nodeLines.filter((l) => l.node === n).at(-1),
        {
          type: 'node',
          rollout: waiting.id,
          node: n,
          batch: NODES.indexOf(n) + 1,
          state: 'healthy',
          text: 'healthy',
        },
        n,
      );
    assert.ok(lines.some((l) => l.type === 'rollout' && l.state === 'running' && l.batch === 3));
    const result = lines.at(-1) as {
      type: string;
      exitCode: number;
      verdict: string;
      recap: { node: string; changed: number; failed: number }[];
      rollout: Rollout;
    };
    assert.equal(result.type, 'result');
    assert.equal(result.exitCode, 0);
    assert.match(result.verdict, /healthy on all 3 node\(s\)/);
    assert.deepEqual(
      result.recap.map((c) => [c.node, c.changed, c.failed]),
      NODES.map((n) => [n, 1, 0]),
    );
    const done = result.rollout;
    assert.equal(done.state, 'succeeded');
    const firstPush = Math.min(...done.nodes.map((n) => n.pushedMs));
    const openedMs = Math.floor(opens.getTime() / 1000) * 1000;
    assert.ok(firstPush >= openedMs, `first push ${firstPush - openedMs} ms after the window opened`);
    process.stdout.write(`# window: first push ${firstPush - openedMs} ms after the window opened\n`);
  });

  test('on a terminal the block is redrawn in place, and its last frame stays on screen above the recap', async () => {
    const file = cluster.playbook('tty.yaml', playbook({ tag: '2', greeting: 'tty', minHealthy: '1s' }));
    const r = await onTerminal([process.execPath, ...cluster.cliArgv('apply', file)]);
    assert.equal(r.code, 0, r.out);
    const redraws = r.out.split(`${ESC}[`).filter((s) => /^\d+A/.test(s)).length;
    assert.ok(redraws >= 3, `the cursor moved up to redraw ${redraws} times`);
    assert.match(r.out, /healthy for [01] of 1 s/, 'the live counter, on a terminal only');
    const last = r.out.lastIndexOf('BATCH  NODE');
    const recapAt = r.out.indexOf('PLAY RECAP');
    assert.ok(last > 0 && recapAt > last, r.out);
    const between = r.out.slice(last, recapAt);
    assert.ok(!between.includes(`${ESC}[2K`), 'nothing erased the last frame');
    const plain = between.replace(new RegExp(`${ESC}\\[[0-9;?]*[A-Za-z]`, 'g'), '').replaceAll('\r', '');
    assert.match(
      plain,
      /^BATCH +NODE +STATE\n1\/3 +roll-1 +healthy\n2\/3 +roll-2 +healthy\n3\/3 +roll-3 +healthy\n$/,
    );
    assert.match(r.out.slice(0, last), /rollout \d+ of revision \d+: succeeded/);
  });

  test('without auto_rollback a failing batch halts: exit 1; fleet status says at which batch and why', async () => {
    const file = cluster.playbook(
      'halt.yaml',
      playbook({ tag: '2', greeting: 'halt', healthPath: '/cgi-bin/missing', autoRollback: false }),
    );
    const r = await cluster.cli('apply', file, '--timeout', '120s');
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stdout, /^batch 1\/3 roll-1: failed: \S/m);
    assert.match(r.stdout, /^rollout of revision \d+ halted: batch 1 of 3: 1 node\(s\) failed/m);
    const status = await cluster.cli('status', 'rolling');
    assert.equal(status.code, 0, status.stderr);
    assert.match(
      status.stdout,
      /^rollout \d+ of revision \d+: halted at batch 1 of 3: 1 node\(s\) failed or unreachable \(100% > max_fail_percentage 0\): roll-1 /m,
    );
    assert.match(status.stdout, /^roll-1 +connected +batch 1\/3 failed: \S.* +web +/m);
    assert.match(status.stdout, /^roll-2 +connected +batch 2\/3 skipped +web +healthy/m);
  });
});
