import type { HostFacts } from '../../../proto/gen/fleet/v1/agent.js';
import type { FleetClient, NodeListQuery, NodeListReply } from '../api/client.js';
import { NODE_PAGE_MAX } from '../api/node-page.js';
import type { GpuSummary, NodeView } from '../api/schemas.js';
import { type OutputFormat, printJson } from './output.js';
import { ago, table } from './table.js';

const labelText = (labels: Record<string, string>) =>
  Object.entries(labels)
    .map(([k, v]) => `${k}=${v}`)
    .join(',') || '-';

const gib = (bytes: number) => `${(bytes / 2 ** 30).toFixed(1)} GiB`;
const mibAsGib = (mib: number) => (mib / 1024).toFixed(0);

/** GPUS, MEMORY, UTIL and TEMP cells for the node table; GPU trouble shows instead of numbers. */
function gpuCells(g: GpuSummary): string[] {
  if (g.status === 'absent' || (g.status === 'unknown' && g.count === 0)) return ['-', '-', '-', '-'];
  if (g.status === 'error') return [`error: ${g.error}`.slice(0, 60), '-', '-', '-'];
  return [
    `${g.models || 'none'}${g.status === 'stale' ? ' (stale)' : ''}`,
    g.count ? `${mibAsGib(g.memoryUsedMiB)}/${mibAsGib(g.memoryTotalMiB)} GiB` : '-',
    g.utilizationPct === null ? '-' : `${Math.round(g.utilizationPct)}%`,
    g.temperatureMaxC === null ? '-' : `${g.temperatureMaxC}°C`,
  ];
}

function detail(n: NodeView, fromJSON: (o: unknown) => HostFacts): string {
  const h = n.host ? fromJSON(n.host) : undefined;
  const lines = [
    `name:          ${n.name}`,
    `status:        ${n.connected ? 'connected' : 'offline'} (last seen ${ago(n.lastSeenMs)})`,
    `labels:        ${labelText(n.labels)}`,
    `agent:         ${n.agentVersion}`,
    `desired state: ${n.desiredVersion.slice(0, 12)} (acked ${n.ackedVersion.slice(0, 12) || 'never'})`,
  ];
  if (!h) return [...lines, 'facts:         none reported yet'].join('\n');
  lines.push(
    `host:          ${h.hostname}, ${h.os}, kernel ${h.kernel}, ${h.arch}${h.stale ? ' (stale)' : ''}`,
    `cpu:           ${h.cpuModel}, ${h.cpuCores} threads`,
    `memory:        ${gib(h.memoryAvailableBytes)} available of ${gib(h.memoryTotalBytes)}`,
    `docker:        ${h.dockerVersion || 'unreachable'}, runtimes ${h.dockerRuntimes.join(', ') || '-'}${h.nvidiaRuntime ? '' : ' (no nvidia runtime)'}`,
    `addresses:     ${h.addresses.join(', ') || '-'}`,
  );
  for (const d of h.disks) {
    lines.push(
      `disk ${d.mount}: ${gib(d.availableBytes)} free of ${gib(d.sizeBytes)} (${d.roles.join(', ')})`,
    );
  }
  const g = h.gpu;
  lines.push(
    `gpus:          ${g?.status ?? 'unknown'}${g?.error ? `: ${g.error}` : ''}${g?.driverVersion ? `, driver ${g.driverVersion}` : ''}${g?.cudaVersion ? `, CUDA ${g.cudaVersion}` : ''}`,
  );
  const num = (v: number | undefined, unit = '') => (v === undefined ? '-' : `${Math.round(v)}${unit}`);
  if (g?.gpus.length) {
    const rows = g.gpus.map((x) => [
      String(x.index),
      x.name,
      x.uuid,
      `${num(x.memoryUsedMib)}/${num(x.memoryTotalMib)} MiB`,
      num(x.utilizationGpuPct, '%'),
      num(x.temperatureC, '°C'),
      `${num(x.powerDrawW)}/${num(x.powerLimitW)} W`,
      x.migMode === 'enabled' ? `MIG ×${x.migDevices.length}` : '-',
      x.eccUncorrected ? `${x.eccUncorrected} ECC` : '',
    ]);
    lines.push(table(['GPU', 'NAME', 'UUID', 'MEMORY', 'UTIL', 'TEMP', 'POWER', 'MIG', 'ERRORS'], rows));
  }
  if (g?.processes.length) {
    lines.push(
      table(
        ['GPU PROCESS', 'PID', 'MEMORY', 'CONTAINER'],
        g.processes.map((p) => [
          p.processName,
          String(p.pid),
          `${num(p.usedMemoryMib)} MiB`,
          p.container || '-',
        ]),
      ),
    );
  }
  return lines.join('\n');
}

/** `fleet nodes --limit`: one page of 1..NODE_PAGE_MAX nodes. */
export function parseNodeLimit(v: string): number {
  const n = Number(v);
  if (!/^[0-9]+$/.test(v) || n < 1 || n > NODE_PAGE_MAX)
    throw new Error(`invalid limit ${JSON.stringify(v)} (1..${NODE_PAGE_MAX})`);
  return n;
}

/** `fleet nodes --state`. */
export function parseNodeState(v: string): 'online' | 'offline' {
  if (v !== 'online' && v !== 'offline')
    throw new Error(`invalid state ${JSON.stringify(v)} (online or offline)`);
  return v;
}

/** The list flags of `fleet nodes`: filters, and `limit` for one page instead of every node. */
export interface NodesOptions {
  output: OutputFormat;
  limit?: number;
  after?: string;
  label?: string;
  state?: 'online' | 'offline';
}

/** The table of `fleet nodes`. */
function nodeTable(nodes: NodeListReply['nodes']): string {
  const rows = nodes.map((n) => [
    n.name,
    n.connected ? 'connected' : 'offline',
    labelText(n.labels),
    ...gpuCells(n.gpus),
    ago(n.lastSeenMs),
  ]);
  return table(['NODE', 'STATUS', 'LABELS', 'GPUS', 'GPU MEMORY', 'UTIL', 'TEMP', 'LAST SEEN'], rows);
}

/**
 * `fleet nodes [NAME]`: the nodes with their labels, liveness and GPUs, or one node in detail.
 * Without `--limit` it follows the API's pages to the end, so it still lists every node; with
 * `--limit` it shows one page and says how to get the next (`-o json` carries `next`).
 */
export async function nodesCommand(client: FleetClient, name: string | undefined, o: NodesOptions) {
  if (name) {
    const n = await client.node(name);
    if (o.output === 'json') return printJson(n);
    // The generated wire types load gRPC: only this view needs them, not the CLI's start.
    const { HostFacts } = await import('../../../proto/gen/fleet/v1/agent.js');
    process.stdout.write(`${detail(n, (json) => HostFacts.fromJSON(json))}\n`);
    return;
  }
  const filters: NodeListQuery = { label: o.label, state: o.state, after: o.after };
  const page: NodeListReply =
    o.limit === undefined
      ? { nodes: await client.allNodes(filters) }
      : await client.nodes({ ...filters, limit: o.limit });
  if (o.output === 'json') return printJson(page);
  process.stdout.write(`${nodeTable(page.nodes)}\n`);
  if (page.next !== undefined) process.stderr.write(`more nodes: the next page is --after ${page.next}\n`);
}
