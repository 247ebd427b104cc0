import { CliError } from '../../../common/cli.js';
import type { ApplyReply } from '../api/client.js';
import { type OutputFormat, printJson } from './output.js';
import { table } from './table.js';

/**
 * `fleet apply FILE --check [--diff] [--detailed-exitcode]`: how a check is shown and how it
 * ends. Plain `--check` prints the plan and each agent's preflight answer, as it always did;
 * `--diff` adds, per node, each service's field diff, the containers the agent would create,
 * replace or remove, the images it would pull, GPU fit and the nginx config diff, then the
 * rollout's batches and the command that applies exactly what was checked. Rendering is pure.
 */

type NodePlan = ApplyReply['nodes'][number];
type FieldChange = NonNullable<NodePlan['services'][number]['changes']>[number];
type Preview = NonNullable<NodePlan['preview']>;

export interface CheckFlags {
  diff?: boolean;
  /** Terraform's convention: 0 no change, 2 changes, 1 an error or a failing check. */
  detailedExitcode?: boolean;
  output: OutputFormat;
  /** Global options to repeat in the printed apply command (`--server URL` when given). */
  globalArgs?: string[];
}

/** The checks that decide GPU fit; the others are listed as preflight failures. */
const GPU_CHECKS = new Set(['nvidia-runtime', 'gpus', 'gpu-memory']);

/** Quotes a word for a POSIX shell unless it is plainly safe. */
const shellWord = (w: string) => (/^[A-Za-z0-9_./:@=+,-]+$/.test(w) ? w : `'${w.replace(/'/g, `'\\''`)}'`);

/**
 * The command that applies what was checked, unchanged: the same file, refused (409) if the
 * deployment moved past the revision it is at now, so nothing applied in between is overwritten.
 */
export function applyCommandLine(file: string, currentRevision: number, globalArgs: string[] = []): string {
  return ['fleet', ...globalArgs, 'apply', file, '--expect-revision', String(currentRevision)]
    .map(shellWord)
    .join(' ');
}

/**
 * How a refused apply (a playbook with errors, a conflict, no matching node) exits: 2, bad input,
 * nothing stored; but under `--check --detailed-exitcode` 2 means "changes", so there it is 1,
 * Terraform's "error".
 */
export function refusedExitCode(flags: { check: boolean; detailedExitcode?: boolean }): 1 | 2 {
  return flags.check && flags.detailedExitcode ? 1 : 2;
}

/** Whether applying would change anything: a new revision or node set, or a container an agent would touch. */
export function hasChanges(reply: ApplyReply): boolean {
  return (
    reply.changed || reply.nodes.some((n) => n.preview?.containers.some((c) => c.action !== 'keep') ?? false)
  );
}

/** Some node that was asked said it cannot take the revision. */
const preflightFailed = (reply: ApplyReply) =>
  reply.nodes.some((n) => n.preflight?.checked && !n.preflight.ok);

/**
 * What makes a check an error for `--detailed-exitcode`: a failing check, an agent that could not
 * be asked (the plan is then incomplete) or could not preview. undefined when there is none.
 */
function checkError(reply: ApplyReply): string | undefined {
  const failing = reply.nodes.filter((n) => n.preflight?.checked && !n.preflight.ok).map((n) => n.node);
  const unasked = reply.nodes.filter((n) => n.preflight && !n.preflight.checked).map((n) => n.node);
  const blind = reply.nodes.filter((n) => n.preview?.error).map((n) => n.node);
  const why = [
    failing.length ? `preflight checks fail on ${failing.join(', ')}` : '',
    unasked.length ? `not checked: ${unasked.join(', ')}` : '',
    blind.length ? `no preview from ${blind.join(', ')}` : '',
  ].filter(Boolean);
  return why.length ? `${why.join('; ')}; nothing was applied` : undefined;
}

/** `--detailed-exitcode`, Terraform's convention: 1 an error or a failing check, 2 changes, 0 none. */
export function detailedExitCode(reply: ApplyReply): 0 | 1 | 2 {
  if (checkError(reply)) return 1;
  return hasChanges(reply) ? 2 : 0;
}

/** One changed field: `~ image: a → b`, `+ env.NEW: x`, `- volumes: /a:/b`. */
export function renderField(c: FieldChange): string {
  if (c.change === 'added') return `+ ${c.field}: ${c.to ?? ''}`;
  if (c.change === 'removed') return `- ${c.field}: ${c.from ?? ''}`;
  return `~ ${c.field}: ${c.from ?? ''} → ${c.to ?? ''}`;
}

const indent = (text: string, by: string) =>
  text
    .split('\n')
    .map((l) => by + l)
    .join('\n');

/** The verdict line and the per-node table (every check mode starts with them). */
function renderPlan(reply: ApplyReply): string[] {
  const was =
    reply.previousRevision && reply.previousRevision !== reply.revision
      ? ` (was ${reply.previousRevision})`
      : '';
  const out = [`${reply.deployment}: would apply revision ${reply.revision}${was}`];
  const rows = reply.nodes.flatMap((n) =>
    n.services.map((s) => [n.node, n.connected ? 'connected' : 'offline', s.service, s.action]),
  );
  if (rows.length) out.push(table(['NODE', 'AGENT', 'SERVICE', 'ACTION'], rows));
  return out;
}

/** `preflight NODE: ok (N checks)`, then each failing check; `not checked (why)` when not asked. */
function renderPreflight(n: NodePlan, skip: (name: string) => boolean = () => false): string[] {
  const pf = n.preflight;
  if (!pf) return [];
  if (!pf.checked) return [`preflight ${n.node}: not checked (${pf.message})`];
  const failed = pf.checks.filter((c) => !c.ok);
  return [
    `preflight ${n.node}: ${failed.length ? 'FAIL' : 'ok'} (${pf.checks.length} checks)`,
    ...failed
      .filter((c) => !skip(c.name))
      .map((c) => `  ${c.name}${c.service ? ` [${c.service}]` : ''}: ${c.message}`),
  ];
}

/** GPU fit: the agent's GPU checks and its planner's notes (the GPUs a replica would get, what cannot be placed). */
function renderGpuFit(n: NodePlan): string[] {
  const checks = (n.preflight?.checks ?? []).filter((c) => GPU_CHECKS.has(c.name));
  const notes = n.preview?.notes ?? [];
  if (!checks.length && !notes.length) return ['  GPU fit: no GPUs asked for'];
  return [
    '  GPU fit:',
    ...checks.map(
      (c) => `    ${c.ok ? 'ok  ' : 'FAIL'} ${c.name}${c.service ? ` [${c.service}]` : ''}: ${c.message}`,
    ),
    ...notes.map((x) => `    ${x}`),
  ];
}

/** What the agent answered: containers, images, nginx config. */
function renderPreview(p: Preview): string[] {
  if (p.error) return [`  preview failed: ${p.error}`];
  const out = ['  containers:'];
  const rows = p.containers.map((c) => [
    c.action,
    `${c.service}/${c.replica}`,
    c.name,
    c.action === 'create' ? '' : c.ids.map((id) => id.slice(0, 12)).join(','),
    c.reason,
  ]);
  out.push(
    rows.length ? indent(table(['ACTION', 'REPLICA', 'NAME', 'ID', 'REASON'], rows), '    ') : '    (none)',
  );
  out.push('  images:');
  for (const i of p.images) out.push(`    ${i.present ? 'present' : 'pull   '}  ${i.image}`);
  if (!p.images.length) out.push('    (none)');
  // Upstreams are the replicas ready now: a new replica's address is known only once it runs.
  const head = "  nginx config (upstreams: today's ready replicas):";
  out.push(p.proxyDiff ? `${head}\n${indent(p.proxyDiff.trimEnd(), '    ')}` : '  nginx config: unchanged');
  return out;
}

/** One node's section of `--check --diff`. */
function renderNode(n: NodePlan): string[] {
  const out = [`node ${n.node} (${n.connected ? 'connected' : 'offline'})`];
  out.push(...renderPreflight(n, (name) => GPU_CHECKS.has(name)).map((l) => `  ${l}`));
  for (const s of n.services) {
    out.push(`  service ${s.service}: ${s.action}`);
    for (const c of s.changes ?? []) out.push(`    ${renderField(c)}`);
  }
  if (n.preview) out.push(...renderPreview(n.preview));
  else if (n.preflight?.checked === false)
    out.push('  containers, images, nginx config: not known (agent not asked)');
  else if (n.preflight)
    out.push('  containers, images, nginx config: not known (the agent sent no preview: an older agent?)');
  out.push(...renderGpuFit(n));
  return out;
}

/** The whole text of a check: the plan, then (with `diff`) every node, the batches and the command. */
export function renderCheck(reply: ApplyReply, opts: { diff: boolean; command: string }): string {
  const out = renderPlan(reply);
  if (!opts.diff) {
    for (const n of reply.nodes) out.push(...renderPreflight(n));
    return out.join('\n');
  }
  if (reply.changes?.length)
    out.push('deployment fields:', ...reply.changes.map((c) => `  ${renderField(c)}`));
  for (const n of reply.nodes) out.push('', ...renderNode(n));
  out.push('');
  const batches = reply.batches ?? [];
  if (batches.length)
    out.push(
      `rollout: ${batches.length} batch${batches.length === 1 ? '' : 'es'}`,
      ...batches.map((b, i) => `  batch ${i + 1}: ${b.join(', ')}`),
    );
  else if (reply.changed)
    out.push('rollout: none (only the set of nodes changes; they are assigned at once)');
  out.push(hasChanges(reply) ? `apply exactly this: ${opts.command}` : 'no changes: nothing to apply');
  return out.join('\n');
}

/**
 * Prints a check and ends it: without `--detailed-exitcode` as always (1 when a node's checks
 * fail, else 0), with it by Terraform's convention (`detailedExitCode`).
 */
export function reportCheck(reply: ApplyReply, file: string, flags: CheckFlags): void {
  const command = applyCommandLine(file, reply.previousRevision, flags.globalArgs);
  if (flags.output === 'json') printJson(flags.diff ? { ...reply, command } : reply);
  else process.stdout.write(`${renderCheck(reply, { diff: flags.diff ?? false, command })}\n`);
  if (flags.detailedExitcode) {
    const error = checkError(reply);
    if (error) throw new CliError(error, 1);
    process.exitCode = hasChanges(reply) ? 2 : 0;
    return;
  }
  if (flags.output === 'json') {
    if (reply.nodes.some((n) => n.preflight && !n.preflight.ok)) process.exitCode = 1;
    return;
  }
  if (preflightFailed(reply)) throw new CliError('preflight checks fail on some nodes; nothing was applied');
}
