import { CliError, parseLabel } from '../../../common/cli.js';
import type { FleetClient } from '../api/client.js';
import type { LabelEditBody } from '../api/schemas.js';
import { type OutputFormat, printJson } from './output.js';

/**
 * `fleet label` arguments in kubectl's form: `key=value` sets, `key-` removes. Every argument is
 * checked before anything is sent (the agent's `--label` rule), so a bad one changes nothing.
 */
export function parseLabelEdits(args: readonly string[]): Required<LabelEditBody> {
  const set: Record<string, string> = {};
  const remove: string[] = [];
  for (const a of args) {
    const removal = !a.includes('=') && a.endsWith('-');
    try {
      if (removal) parseLabel(`${a.slice(0, -1)}=`);
      else Object.assign(set, parseLabel(a));
    } catch {
      throw new CliError(`invalid label ${JSON.stringify(a)} (key=value to set, key- to remove)`, 2);
    }
    if (removal) remove.push(a.slice(0, -1));
  }
  const both = remove.find((k) => k in set);
  if (both !== undefined) throw new CliError(`label ${JSON.stringify(both)} is both set and removed`, 2);
  if (args.length === 0) throw new CliError('no labels given (key=value to set, key- to remove)', 2);
  return { set, remove };
}

/** `fleet label NODE key=value ... key-`: edits the node's labels and prints them. */
export async function labelCommand(
  client: FleetClient,
  node: string,
  args: readonly string[],
  output: OutputFormat,
) {
  const reply = await client.editLabels(node, parseLabelEdits(args));
  if (output === 'json') return printJson(reply);
  const text = Object.entries(reply.labels)
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
  process.stdout.write(
    `${reply.node} ${reply.changed ? 'labeled' : 'not labeled (no change)'}: ${text || '-'}\n`,
  );
}
