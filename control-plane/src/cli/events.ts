import type { Command, Option } from 'commander';
import { arg, CliError } from '../../../common/cli.js';
import type { FleetClient, StreamedEvent } from '../api/client.js';
import type { OutputFormat } from './output.js';

export interface EventsOptions {
  follow: boolean;
  deployment?: string;
  node?: string;
  /** Without follow: how many of the newest events to print. */
  limit: number;
  output: OutputFormat;
}

/** One line per event: time, kind, node, deployment (service), message. Empty fields read '-'. */
export function formatEventLine(e: StreamedEvent): string {
  const where = e.service ? `${e.deployment || '-'}/${e.service}` : e.deployment || '-';
  return [
    new Date(e.atMs).toISOString(),
    e.kind.padEnd(20),
    (e.node || '-').padEnd(16),
    where.padEnd(20),
    e.actor ? `${e.message} (by ${e.actor})` : e.message,
  ]
    .join('  ')
    .trimEnd();
}

/**
 * `fleet events`: the history, then with `-f` live events as the control plane records them,
 * until Ctrl-C (exit 0). `-o json` prints one JSON object per line, for `jq` and scripts.
 */
export async function eventsCommand(client: FleetClient, o: EventsOptions) {
  const abort = new AbortController();
  const stop = () => abort.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  const print = (e: StreamedEvent) =>
    process.stdout.write(`${o.output === 'json' ? JSON.stringify(e) : formatEventLine(e)}\n`);
  try {
    const query = { deployment: o.deployment, node: o.node, limit: o.limit, follow: o.follow };
    for await (const e of client.eventStream(query, abort.signal)) print(e);
    if (o.follow && !abort.signal.aborted)
      throw new CliError('the control plane ended the stream (stopping?)');
  } catch (err) {
    if (!abort.signal.aborted) throw err;
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
}

function parseLimit(v: string): number {
  if (!/^[0-9]{1,4}$/.test(v) || Number(v) > 1000)
    throw new Error(`invalid limit ${JSON.stringify(v)} (0..1000)`);
  return Number(v);
}

/** Adds `fleet events` to the program (commands.ts composes the control plane's commands). */
export function addEventsCommand(program: Command, client: () => FleetClient, outputOption: () => Option) {
  program
    .command('events')
    .description('the event log (applies, rollouts, health, nodes); -f follows it live until Ctrl-C')
    .option('-f, --follow', 'keep printing events as they happen', false)
    .option('--deployment <name>', "only this deployment's events")
    .option('--node <name>', "only this node's events")
    .option('--limit <n>', 'how many past events to start with', arg(parseLimit), 100)
    .addOption(outputOption())
    .action((o) => eventsCommand(client(), o));
}
