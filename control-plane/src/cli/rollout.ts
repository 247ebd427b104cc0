import { CliError } from '../../../common/cli.js';
import type { ApplyReply, FleetClient, RolloutReply } from '../api/client.js';
import { type OutputFormat, printJson } from './output.js';
import { rolloutProgress } from './progress.js';
import { frame, type ProgressSink } from './progress-render.js';

type Rollout = RolloutReply;

const FINISHED = new Set(['succeeded', 'halted', 'rolled-back', 'aborted', 'superseded']);

/**
 * Follows a rollout until it finishes (or `timeoutMs`), handing the sink where every node stands
 * at each look (every 250 ms). A rollout that rolled back is followed into its rollback, so the
 * command ends when the nodes are back on the stable revision. Returns the rollout the apply
 * started, finished, and that rollback. The sink is done (its last frame kept) on every way out.
 */
export async function followRollout(
  client: FleetClient,
  deployment: string,
  id: number,
  timeoutMs: number,
  sink: ProgressSink,
): Promise<{ rollout: Rollout; rollback?: Rollout }> {
  const deadline = Date.now() + timeoutMs;
  try {
    for (;;) {
      const started = await client.rolloutById(deployment, id);
      const detail = await client.deployment(deployment);
      const latest = detail.rollout;
      const rollback = latest && latest.id > id && latest.kind === 'rollback' ? latest : undefined;
      const now = Date.now();
      sink.update([started, ...(rollback ? [rollback] : [])].map((r) => rolloutProgress(r, detail, now)));
      if (FINISHED.has(started.state)) {
        if (started.state !== 'rolled-back') return { rollout: started };
        if (rollback && FINISHED.has(rollback.state)) return { rollout: started, rollback };
      }
      if (Date.now() > deadline)
        throw new CliError(
          `${deployment}: rollout ${id} not finished after ${Math.round(timeoutMs / 1000)}s`,
        );
      await new Promise((res) => setTimeout(res, 250));
    }
  } finally {
    sink.done();
  }
}

/** One node's PLAY RECAP counts. */
export interface RecapCounts {
  node: string;
  ok: number;
  changed: number;
  unreachable: number;
  failed: number;
  skipped: number;
}

/**
 * PLAY RECAP counts in Ansible's words, one per node: ok = services already at the revision,
 * changed = services created, replaced or removed, then failed, unreachable, skipped.
 */
export function recapCounts(apply: ApplyReply, r: Rollout): RecapCounts[] {
  return r.nodes.map((n) => {
    const plan = apply.nodes.find((p) => p.node === n.node)?.services ?? [];
    const unchanged = plan.filter((s) => s.action === 'unchanged').length;
    const healthy = n.state === 'healthy';
    return {
      node: n.node,
      ok: healthy ? unchanged : 0,
      changed: healthy ? plan.length - unchanged : 0,
      unreachable: n.state === 'unreachable' ? 1 : 0,
      failed: n.state === 'failed' ? 1 : 0,
      skipped: n.state === 'skipped' || n.state === 'waiting' ? 1 : 0,
    };
  });
}

/** PLAY RECAP as Ansible prints it: `gpu-1 : ok=0 changed=1 unreachable=0 failed=0 skipped=0`. */
export function recap(apply: ApplyReply, r: Rollout): string {
  const lines = recapCounts(apply, r).map(
    ({ node, ...c }) =>
      `${node.padEnd(20)} : ${Object.entries(c)
        .map(([k, v]) => `${k}=${v}`)
        .join(' ')}`,
  );
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
  const detail = await client.deployment(deployment);
  const r = action === 'status' ? detail.rollout : await client.rollout(deployment, action);
  if (!r) throw new CliError(`${deployment}: no rollout yet`, 1);
  if (output === 'json') return printJson(r);
  process.stdout.write(`${deployment}: ${frame([rolloutProgress(r, detail, Date.now())])}\n`);
}
