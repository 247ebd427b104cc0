import { CliError } from '../../../common/cli.js';
import type { FleetClient } from '../api/client.js';
import type { DeploymentDetail } from '../api/schemas.js';
import { type OutputFormat, printJson } from './output.js';
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

export function renderStatus(d: DeploymentDetail): string {
  const head = `${d.name}: revision ${d.revision} (${d.hash.slice(0, 12)}) from ${d.file}, ${d.ready ? 'ready' : 'not ready'}`;
  const rows: string[][] = [];
  for (const n of d.nodes) {
    for (const svc of d.services) {
      const s = n.services.find((x) => x.service === svc);
      rows.push([
        n.node,
        n.connected ? 'connected' : 'offline',
        svc,
        s ? `${s.state}${s.revision !== n.revision ? ` (at rev ${s.revision})` : ''}` : 'no report',
        s ? `${s.ready}/${s.desired}` : '-',
        s?.progress ?? '',
        s?.lastError ?? '',
      ]);
    }
  }
  const held = d.nodes.flatMap((n) =>
    (n.preflight?.checks ?? []).map(
      (c) => `  ${n.node}: preflight ${c.name}${c.service ? ` [${c.service}]` : ''}: ${c.message}`,
    ),
  );
  const preflight = held.length ? `\nheld back (what runs is untouched):\n${held.join('\n')}` : '';
  return `${head}\n${table(['NODE', 'AGENT', 'SERVICE', 'STATE', 'READY', 'PROGRESS', 'ERROR'], rows)}${preflight}`;
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
