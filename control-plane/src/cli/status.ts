import { CliError } from '../../../common/cli.js';
import type { FleetClient } from '../api/client.js';
import type { DeploymentDetail } from '../api/schemas.js';
import { type OutputFormat, printJson } from './output.js';
import { rolloutProgress } from './progress.js';
import { prefetchText } from './progress-render.js';
import { ago, table } from './table.js';

/** `fleet status [DEPLOYMENT]`: one deployment per node and service, or a line per deployment. */
export async function statusCommand(client: FleetClient, name: string | undefined, output: OutputFormat) {
  if (!name) {
    const { deployments } = await client.deployments();
    if (output === 'json') return printJson({ deployments });
    const rows = deployments.map((d) => [
      d.name,
      String(d.revision),
      `${d.nodesReady}/${d.nodes}`,
      d.file,
      ago(d.createdMs),
    ]);
    process.stdout.write(`${table(['DEPLOYMENT', 'REVISION', 'READY', 'FILE', 'APPLIED'], rows)}\n`);
    return;
  }
  const detail = await client.deployment(name);
  if (output === 'json') return printJson(detail);
  process.stdout.write(`${renderStatus(detail)}\n`);
}

/** The cells of one node's service: state (and the revision it is at, when older), ready, progress, error. */
function serviceCells(n: DeploymentDetail['nodes'][number], svc: string): string[] {
  const s = n.services.find((x) => x.service === svc);
  if (!s) return [svc, 'no report', '-', '', ''];
  const at = s.revision !== n.revision ? ` (at rev ${s.revision})` : '';
  return [svc, `${s.state}${at}`, `${s.ready}/${s.desired}`, s.progress, s.lastError];
}

/** The newest rollout's headline (with its prefetch) and, per node, its state in that rollout. */
function rolloutOf(d: DeploymentDetail, now: number) {
  if (!d.rollout) return undefined;
  const p = rolloutProgress(d.rollout, d, now);
  const line = `${p.headline}${p.prefetched ? ` · ${prefetchText(p.prefetched)}` : ''}`;
  const stateOf = (node: string) => {
    const r = p.rows.find((x) => x.node === node);
    return r ? `batch ${r.batch}/${p.batches} ${r.text}` : '-';
  };
  return { line, stateOf };
}

/**
 * One deployment for people: a head line, where its newest rollout stands (batch k of n, halted
 * and why), then a row per node and service with the node's rollout state beside its services.
 */
export function renderStatus(d: DeploymentDetail, now = Date.now()): string {
  const head = `${d.name}: revision ${d.revision} (${d.hash.slice(0, 12)}) from ${d.file}, ${d.ready ? 'ready' : 'not ready'}`;
  const rollout = rolloutOf(d, now);
  const rows = d.nodes.flatMap((n) =>
    d.services.map((svc) => [
      n.node,
      n.connected ? 'connected' : 'offline',
      ...(rollout ? [rollout.stateOf(n.node)] : []),
      ...serviceCells(n, svc),
    ]),
  );
  const held = d.nodes.flatMap((n) =>
    (n.preflight?.checks ?? []).map(
      (c) => `  ${n.node}: preflight ${c.name}${c.service ? ` [${c.service}]` : ''}: ${c.message}`,
    ),
  );
  const preflight = held.length ? `\nheld back (what runs is untouched):\n${held.join('\n')}` : '';
  const header = [
    'NODE',
    'AGENT',
    ...(rollout ? ['ROLLOUT'] : []),
    'SERVICE',
    'STATE',
    'READY',
    'PROGRESS',
    'ERROR',
  ];
  return `${head}${rollout ? `\n${rollout.line}` : ''}\n${table(header, rows)}${preflight}`;
}

/** Prints each node's service state at `revision` when it differs from what `seen` last printed. */
function printChanges(d: DeploymentDetail, revision: number, seen: Map<string, string>) {
  for (const n of d.nodes) {
    for (const s of n.services) {
      const line = `${s.state} ${s.ready}/${s.desired}${s.progress ? ` (${s.progress})` : ''}${s.lastError ? `: ${s.lastError}` : ''}`;
      const key = `${n.node}/${s.service}`;
      if (seen.get(key) !== line && s.revision === revision) {
        seen.set(key, line);
        process.stderr.write(`  ${n.node} ${s.service}: ${line}\n`);
      }
    }
  }
}

/**
 * Polls until every assigned node runs every service at `revision`, printing each change of
 * state as it happens; fails with the last status when the timeout passes.
 */
export async function waitReady(
  client: FleetClient,
  name: string,
  revision: number,
  timeoutMs: number,
  progress: boolean,
): Promise<DeploymentDetail> {
  const deadline = Date.now() + timeoutMs;
  const seen = new Map<string, string>();
  for (;;) {
    const d = await client.deployment(name);
    if (progress) printChanges(d, revision, seen);
    if (d.ready && d.revision === revision) return d;
    // A node whose preflight fails will not move until someone fixes the node or the playbook.
    if (d.revision === revision && d.nodes.some((n) => n.preflight)) {
      throw new CliError(`${name}: revision ${revision} held back by preflight checks\n${renderStatus(d)}`);
    }
    if (Date.now() > deadline) {
      throw new CliError(
        `${name}: revision ${revision} not ready after ${Math.round(timeoutMs / 1000)}s\n${renderStatus(d)}`,
      );
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}
