import { readFileSync } from 'node:fs';
import { CliError, exitCodeOf } from '../../../common/cli.js';
import { ClientError, type FleetClient, type RolloutReply } from '../api/client.js';
import type { DeploymentDetail } from '../api/schemas.js';
import { formatError } from '../playbook/format.js';
import { type CheckFlags, refusedExitCode, reportCheck } from './check.js';
import { type OutputFormat, printJson, printJsonLine } from './output.js';
import type { RecapCounts } from './rollout.js';
import { table } from './table.js';
import { localUser } from './who.js';

export interface ApplyFlags extends Partial<Omit<CheckFlags, 'output'>> {
  check: boolean;
  /** Follow the rollout to its recap (the default; `--no-wait` stores the revision and returns). */
  wait: boolean;
  timeoutMs: number;
  output: OutputFormat;
  /** Refuse unless the deployment is at this revision; supersedes a running rollout. */
  expectRevision?: number;
}

type ApplyReply = Awaited<ReturnType<FleetClient['apply']>>;

/**
 * `fleet apply FILE`: send the playbook, print the plan or the new revision, then (unless
 * `--no-wait` or `--check`) follow the rollout to its recap and verdict.
 */
export async function applyCommand(client: FleetClient, file: string, flags: ApplyFlags) {
  const result = await send(client, file, readPlaybook(file, refusedExitCode(flags)), flags);
  if (flags.check) return reportCheck(result, file, flags);
  if (flags.output === 'json' && !flags.wait) {
    printJson(result);
    if (result.nodes.some((n) => n.preflight && !n.preflight.ok)) process.exitCode = 1;
    return;
  }
  if (flags.output === 'text') printPlan(result);
  // A plain apply returns once the connected nodes took the revision or said why they hold it back.
  if (!flags.wait) return failIfHeldBack(result, flags.output);
  await waitApplied(client, result, flags, () => failIfHeldBack(result, flags.output));
}

/** How a followed apply ended: the `-o json` result line carries it (with `type` and `apply`). */
interface Outcome {
  /** The documented exit code: 0 healthy, 1 halted / rolled back / failed, 4 unreachable only. */
  exitCode: number;
  verdict: string;
  recap?: RecapCounts[];
  rollout?: RolloutReply;
  rollback?: RolloutReply;
  /** The deployment once every node serves the revision (absent when the rollout did not succeed). */
  status?: DeploymentDetail;
}

/**
 * Follows what an apply (or a rollback) started: live progress per node, the recap and the
 * verdict (exit 1 when it halted or rolled back, 4 with unreachable nodes only), then waits until
 * every node serves. With `-o json` it prints JSON lines: `{"type":"apply"}` first, progress, and
 * a `{"type":"result"}` line last, also when it fails (with `error`). `first` runs before the
 * follow (a plain apply's held-back check), so its failure gets a result line too.
 */
export async function waitApplied(
  client: FleetClient,
  result: ApplyReply,
  flags: ApplyFlags,
  first?: () => void,
) {
  const json = flags.output === 'json';
  if (json) printJsonLine({ type: 'apply', apply: result });
  let end: Outcome;
  try {
    first?.();
    end = await follow(client, result, flags);
  } catch (err) {
    if (json)
      printJsonLine({
        type: 'result',
        exitCode: exitCodeOf(err),
        error: (err as Error).message,
        apply: result,
      });
    throw err;
  }
  if (json) printJsonLine({ type: 'result', ...end, apply: result });
  if (end.exitCode !== 0) throw new CliError(`${result.deployment}: ${end.verdict}`, end.exitCode);
}

async function follow(client: FleetClient, result: ApplyReply, flags: ApplyFlags): Promise<Outcome> {
  // What follows a rollout (the live progress renderer among it) loads only when one is followed:
  // `fleet apply --no-wait` starts without it.
  const [{ sinkFor }, { followRollout, recap, recapCounts, verdict }, { renderStatus, waitReady }] =
    await Promise.all([import('./progress-render.js'), import('./rollout.js'), import('./status.js')]);
  const text = flags.output === 'text';
  let timeoutMs = flags.timeoutMs;
  let rolled: Omit<Outcome, 'status'> | undefined;
  if (result.rollout !== undefined) {
    const started = Date.now();
    const sink = sinkFor(flags.output, process.stdout);
    const done = await followRollout(client, result.deployment, result.rollout, timeoutMs, sink);
    const v = verdict(done.rollout, done.rollback);
    if (text) process.stdout.write(`${recap(result, done.rollout)}\n${v.line}\n`);
    rolled = { ...done, exitCode: v.exitCode, verdict: v.line, recap: recapCounts(result, done.rollout) };
    if (v.exitCode !== 0) return rolled;
    timeoutMs = Math.max(1_000, timeoutMs - (Date.now() - started));
  }
  const status = await waitReady(client, result.deployment, result.revision, timeoutMs, text);
  if (text) process.stdout.write(`${renderStatus(status)}\n`);
  return {
    exitCode: 0,
    verdict: `revision ${result.revision} serves on ${status.nodes.length} node(s)`,
    ...rolled,
    status,
  };
}

function readPlaybook(file: string, exitCode: number): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new CliError(
      `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      exitCode,
    );
  }
}

/**
 * Sends the playbook; a refused one (positioned errors, or any 4xx) exits 2 with nothing applied
 * (1 under `--check --detailed-exitcode`, where 2 means changes).
 */
async function send(
  client: FleetClient,
  file: string,
  source: string,
  flags: ApplyFlags,
): Promise<ApplyReply> {
  try {
    return await client.apply(source, file, flags.check, flags.expectRevision, localUser(), flags.diff);
  } catch (err) {
    if (err instanceof ClientError && err.body?.errors?.length) {
      if (flags.output === 'json') printJson(err.body);
      else for (const e of err.body.errors) process.stderr.write(`${formatError(e)}\n`);
      throw new CliError(`${file}: playbook rejected, nothing applied`, refusedExitCode(flags));
    }
    if (err instanceof ClientError && err.status >= 400 && err.status < 500) {
      throw new CliError(`${file}: ${err.message}; nothing applied`, refusedExitCode(flags));
    }
    throw err;
  }
}

/** The verdict line and the per-node table (check mode prints its own: cli/check.ts). */
function printPlan(result: ApplyReply) {
  const verb = result.changed ? 'applied' : 'unchanged at';
  const was =
    result.previousRevision && result.previousRevision !== result.revision
      ? ` (was ${result.previousRevision})`
      : '';
  process.stdout.write(`${result.deployment}: ${verb} revision ${result.revision}${was}\n`);
  const rows = result.nodes.flatMap((n) =>
    n.services.map((s) => [n.node, n.connected ? 'connected' : 'offline', s.service, s.action]),
  );
  if (rows.length) process.stdout.write(`${table(['NODE', 'AGENT', 'SERVICE', 'ACTION'], rows)}\n`);
}

/** After a plain apply: nodes whose preflight holds the revision back fail the command, saying why. */
function failIfHeldBack(result: ApplyReply, output: OutputFormat) {
  const held = result.nodes.filter((n) => n.preflight && !n.preflight.ok);
  if (!held.length) return;
  if (output === 'text') {
    const lines = held.flatMap((n) =>
      (n.preflight?.checks ?? [])
        .filter((c) => !c.ok)
        .map((c) => `  ${n.node}: ${c.name}${c.service ? ` [${c.service}]` : ''}: ${c.message}`),
    );
    process.stderr.write(`held back by preflight (what runs is untouched):\n${lines.join('\n')}\n`);
  }
  throw new CliError(
    `${result.deployment}: revision ${result.revision} stored, but ${held.length} node(s) hold it back; see fleet status ${result.deployment}`,
  );
}
