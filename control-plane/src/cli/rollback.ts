import { CliError } from '../../../common/cli.js';
import { ClientError, type FleetClient, type RollbackReply } from '../api/client.js';
import { waitApplied } from './apply.js';
import { type OutputFormat, printJson } from './output.js';
import { localUser } from './who.js';

export interface RollbackFlags {
  /** The revision to go back to; default: the server picks the last stable one. */
  to?: number;
  /** Follow the rollout (the default; `--no-wait` returns once the revision is stored). */
  wait: boolean;
  timeoutMs: number;
  output: OutputFormat;
  expectRevision?: number;
}

/** The line a rollback prints first: what it rolls out, as which revision. */
export function rollbackLine(r: RollbackReply): string {
  if (!r.changed)
    return `${r.deployment}: revision ${r.revision} already runs the playbook of revision ${r.to}; nothing to roll back`;
  const rollout = r.rollout === undefined ? '' : ` (rollout ${r.rollout})`;
  return `${r.deployment}: rolling back to revision ${r.to} as revision ${r.revision} (was ${r.previousRevision})${rollout}`;
}

/**
 * `fleet rollback DEPLOYMENT [--to N]`: the control plane stores a new revision with revision N's
 * playbook (default: the last stable one) and rolls it out like an apply, with that playbook's
 * `serial`. Refused input (no such revision, nothing stable, a rollout running) exits 2, nothing
 * stored. It follows the rollout to the recap and verdict, as `fleet apply` does, unless `--no-wait`.
 */
export async function rollbackCommand(client: FleetClient, deployment: string, flags: RollbackFlags) {
  let result: RollbackReply;
  try {
    result = await client.rollback(deployment, {
      to: flags.to,
      expectRevision: flags.expectRevision,
      appliedBy: localUser(),
    });
  } catch (err) {
    if (err instanceof ClientError && err.status >= 400 && err.status < 500)
      throw new CliError(`${err.message}; nothing applied`, 2);
    throw err;
  }
  if (flags.output === 'json' && !flags.wait) return printJson(result);
  if (flags.output === 'text') process.stdout.write(`${rollbackLine(result)}\n`);
  if (flags.wait) await waitApplied(client, result, { ...flags, check: false });
}
