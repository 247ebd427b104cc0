import { CliError } from '../../../common/cli.js';
import type { ApplyReply, FleetClient, RolloutReply } from '../api/client.js';
import { type OutputFormat, printJson } from './output.js';

type Rollout = RolloutReply;
type RolloutNode = Rollout['nodes'][number];

const FINISHED = new Set(['succeeded', 'halted', 'rolled-back', 'aborted', 'superseded']);

/** One line per node whose state changed since the last look: batch, node, state, reason. */
function printChanges(r: Rollout, seen: Map<string, string>, output: OutputFormat, prefix = '') {
  for (const n of r.nodes) {
    const line = `${prefix}${nodeLine(r, n)}`;
    if (seen.get(prefix + n.node) === line) continue;
    seen.set(prefix + n.node, line);
    // `-o json` prints one document at the end; progress is for people.
    if (output === 'text') process.stdout.write(`${line}\n`);
  }
}

/** "prefetched 2 of 3 nodes" when it changed since the last look (the images of later batches arriving). */
function printPrefetch(r: Rollout, seen: Map<string, string>, output: OutputFormat) {
  if (!r.prefetched) return;
  const line = `prefetched ${r.prefetched.nodes} of ${r.prefetched.of} nodes`;
  if (seen.get('\0prefetch') === line) return;
  seen.set('\0prefetch', line);
  if (output === 'text') process.stdout.write(`${line}\n`);
}

function nodeLine(r: Rollout, n: RolloutNode): string {
  const batch = `batch ${n.batch + 1}/${r.batches}`;
  if (n.state === 'pushed' && n.healthySinceMs > 0)
    return `${batch} ${n.node}: healthy, watching for ${Math.round(r.policy.minHealthyMs / 1000)} s`;
  return `${batch} ${n.node}: ${n.state}${n.reason ? ` (${n.reason})` : ''}`;
}

/**
 * Follows a rollout until it finishes (or `timeoutMs`), printing each node's progress as it
 * changes. A rollout that rolled back is followed into its rollback, so the command ends when the
 * nodes are back on the stable revision. Returns the rollout the apply started, finished.
 */
export async function followRollout(
  client: FleetClient,
  deployment: string,
  id: number,
  timeoutMs: number,
  output: OutputFormat,
): Promise<{ rollout: Rollout; rollback?: Rollout }> {
  const deadline = Date.now() + timeoutMs;
  const seen = new Map<string, string>();
  for (;;) {
    const started = await client.rolloutById(deployment, id);
    const latest = (await client.deployment(deployment)).rollout;
    printChanges(started, seen, output);
    printPrefetch(started, seen, output);
    const rollback = latest && latest.id > id && latest.kind === 'rollback' ? latest : undefined;
    if (rollback) printChanges(rollback, seen, output, 'rollback: ');
    if (FINISHED.has(started.state)) {
      if (started.state !== 'rolled-back') return { rollout: started };
      if (rollback && FINISHED.has(rollback.state)) return { rollout: started, rollback };
    }
    if (Date.now() > deadline)
      throw new CliError(`${deployment}: rollout ${id} not finished after ${Math.round(timeoutMs / 1000)}s`);
    await new Promise((res) => setTimeout(res, 250));
  }
}

/**
 * PLAY RECAP in Ansible's words, one line per node: ok = services already at the revision,
 * changed = services created, replaced or removed, then failed, unreachable, skipped.
 */
export function recap(apply: ApplyReply, r: Rollout): string {
  const lines = r.nodes.map((n) => {
    const plan = apply.nodes.find((p) => p.node === n.node)?.services ?? [];
    const unchanged = plan.filter((s) => s.action === 'unchanged').length;
    const healthy = n.state === 'healthy';
    const counts = {
      ok: healthy ? unchanged : 0,
      changed: healthy ? plan.length - unchanged : 0,
      unreachable: n.state === 'unreachable' ? 1 : 0,
      failed: n.state === 'failed' ? 1 : 0,
      skipped: n.state === 'skipped' || n.state === 'waiting' ? 1 : 0,
    };
    return `${n.node.padEnd(20)} : ${Object.entries(counts)
      .map(([k, v]) => `${k}=${v}`)
      .join(' ')}`;
  });
  return `PLAY RECAP ${'*'.repeat(60)}\n${lines.join('\n')}`;
}

/**
 * The verdict and the exit code, documented in the README: 0 every node healthy; 1 the rollout
 * halted, rolled back or was aborted (or a node failed); 4 it finished with unreachable nodes only.
 */
export function verdict(r: Rollout, rollback?: Rollout): { line: string; exitCode: number } {
  const count = (s: string) => r.nodes.filter((n) => n.state === s).length;
  if (r.state === 'succeeded') {
    const unreachable = count('unreachable');
    if (count('failed') > 0)
      return { line: `revision ${r.revision} rolled out with failed nodes`, exitCode: 1 };
    if (unreachable > 0)
      return { line: `revision ${r.revision} rolled out; ${unreachable} node(s) unreachable`, exitCode: 4 };
    return { line: `revision ${r.revision} healthy on all ${r.nodes.length} node(s)`, exitCode: 0 };
  }
  const back = rollback
    ? `; rolled back to revision ${r.stableRevision} (as revision ${rollback.revision}: ${rollback.state})`
    : '';
  return { line: `rollout of revision ${r.revision} ${r.state}: ${r.reason}${back}`, exitCode: 1 };
}

/** `fleet rollout status|pause|resume|abort DEPLOYMENT`. */
export async function rolloutCommand(
  client: FleetClient,
  action: 'status' | 'pause' | 'resume' | 'abort',
  deployment: string,
  output: OutputFormat,
) {
  const r =
    action === 'status'
      ? (await client.deployment(deployment)).rollout
      : await client.rollout(deployment, action);
  if (!r) throw new CliError(`${deployment}: no rollout yet`, 1);
  if (output === 'json') return printJson(r);
  process.stdout.write(
    `${deployment}: rollout ${r.id} of revision ${r.revision} (${r.kind}) ${r.state}, batch ${r.batch + 1} of ${r.batches}` +
      `${r.reason ? `: ${r.reason}` : ''}\n`,
  );
  for (const n of r.nodes) process.stdout.write(`  ${nodeLine(r, n)}\n`);
}
