import type { FleetClient } from './client.js';
import { type OutputFormat, printJson } from './output.js';
import { ago, table } from './table.js';

/** `fleet nodes [NAME]`: every node with its labels and liveness, or one node in detail. */
export async function nodesCommand(client: FleetClient, name: string | undefined, output: OutputFormat) {
  if (name) {
    const n = await client.node(name);
    if (output === 'json') return printJson(n);
    const labels =
      Object.entries(n.labels)
        .map(([k, v]) => `${k}=${v}`)
        .join(',') || '-';
    const f = n.facts as Record<string, unknown>;
    process.stdout.write(
      `${[
        `name:          ${n.name}`,
        `status:        ${n.connected ? 'connected' : 'offline'} (last seen ${ago(n.lastSeenMs)})`,
        `labels:        ${labels}`,
        `agent:         ${n.agentVersion}`,
        `host:          ${f.hostname ?? '?'} ${f.os ?? ''} ${f.kernel ?? ''} ${f.arch ?? ''}`,
        `cpus/memory:   ${f.cpus ?? '?'} / ${Math.round(Number(f.memoryBytes ?? 0) / 2 ** 30)} GiB`,
        `docker:        ${f.dockerVersion ?? '?'}`,
        `desired state: ${n.desiredVersion.slice(0, 12)} (acked ${n.ackedVersion.slice(0, 12) || 'never'})`,
      ].join('\n')}\n`,
    );
    return;
  }
  const { nodes } = await client.nodes();
  if (output === 'json') return printJson({ nodes });
  const rows = nodes.map((n) => [
    n.name,
    n.connected ? 'connected' : 'offline',
    Object.entries(n.labels)
      .map(([k, v]) => `${k}=${v}`)
      .join(',') || '-',
    n.agentVersion,
    n.ackedVersion === n.desiredVersion ? 'in sync' : 'pending',
    ago(n.lastSeenMs),
  ]);
  process.stdout.write(`${table(['NODE', 'STATUS', 'LABELS', 'AGENT', 'DESIRED', 'LAST SEEN'], rows)}\n`);
}
