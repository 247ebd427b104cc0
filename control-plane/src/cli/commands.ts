import { type Command, Option } from 'commander';
import { arg, CliError } from '../../../common/cli.js';
import { parseDuration } from '../../../common/duration.js';

import { FleetClient } from '../api/client.js';
import { NODE_PAGE_MAX } from '../api/node-page.js';
import { configPath, readCaFile, readConfig, resolveConnection } from './config.js';
import { addEventsCommand } from './events.js';
import { addJoinTokenCommands } from './join-token.js';
import { parseNodeLimit, parseNodeState } from './nodes.js';
import { type OutputFormat, parseOutput } from './output.js';
import { addSecretCommands } from './secret.js';
import { addLoginCommand, addTokenCommands } from './token.js';

/*
 * Each command's module loads when that command runs, so one command's start pays only for its
 * own code (`fleet apply` loads neither the node view's wire types nor the rollout renderer).
 */
const outputOption = () =>
  new Option('-o, --output <format>', 'text or json').default('text').argParser(arg(parseOutput));

/**
 * The control plane's commands (`server`, and the REST client's `apply`, `nodes`, `label`, `status`), added
 * to the root program that bin/fleet.js composes. `word`, the command the command line names
 * (common/cli.ts `commandWord`): when it is a client command, `server` is not defined (nor its
 * modules loaded); otherwise, help included, every command is, `server` first.
 */
export async function addControlPlaneCommands(program: Command, word?: string): Promise<Command> {
  const client = () => {
    const conn = resolveConnection(program.opts(), process.env, readConfig(configPath()));
    const ca = conn.caFile ? readCaFile(conn.caFile) : undefined;
    return new FleetClient(conn.server, { token: conn.token, ca });
  };

  addApplyCommands(program, client);
  addHistoryCommands(program, client);

  program
    .command('nodes')
    .description('list nodes (every one, page by page), or show one')
    .argument('[name]', 'a node name')
    .option('--limit <n>', `show one page of at most n nodes (1..${NODE_PAGE_MAX})`, arg(parseNodeLimit))
    .option('--after <node>', "only nodes named after this one (a page's next)")
    .option('-l, --label <selector>', 'key or key=value, comma-separated: nodes matching all')
    .option('--state <state>', 'online or offline', arg(parseNodeState))
    .addOption(outputOption())
    .action(async (name, o) => (await import('./nodes.js')).nodesCommand(client(), name, o));

  program
    .command('label')
    .description("set (key=value) or remove (key-) a node's labels; hosts: selections follow at once")
    .argument('<node>', 'a node name')
    .argument('<labels...>', 'key=value to set, key- to remove')
    .addOption(outputOption())
    .action(async (node, labels, o) =>
      (await import('./label.js')).labelCommand(client(), node, labels, o.output),
    );

  program
    .command('status')
    .description('list deployments, or show one per node and service')
    .argument('[deployment]', 'a deployment name')
    .addOption(outputOption())
    .action(async (name, o) => (await import('./status.js')).statusCommand(client(), name, o.output));

  addEventsCommand(program, client, outputOption);
  addJoinTokenCommands(program, client, outputOption);
  addTokenCommands(program, client, outputOption);
  addSecretCommands(program, client, outputOption);
  addLoginCommand(program, client);

  if (word === undefined || !program.commands.some((c) => c.name() === word)) {
    const { addServerCommand } = await import('./server-command.js');
    addServerCommand(program);
    // Help lists it first, as before the split.
    const commands = program.commands as Command[];
    commands.unshift(commands.pop()!);
  }
  return program;
}

/**
 * The connection flags given on this command line, for a printed follow-up command
 * (`fleet apply FILE --expect-revision N`) to reach the same server the same way.
 */
function cliGlobals(program: Command): string[] {
  const out: string[] = [];
  for (const [key, flag] of [
    ['server', '--server'],
    ['caFile', '--ca-file'],
  ] as const)
    if (program.getOptionValueSource(key) === 'cli') out.push(flag, program.opts()[key]);
  return out;
}

function parseRevision(v: string): number {
  if (!/^[0-9]{1,9}$/.test(v)) throw new Error(`invalid revision ${JSON.stringify(v)} (a whole number)`);
  return Number(v);
}

function parseRolloutAction(v: string): 'status' | 'pause' | 'resume' | 'abort' {
  if (v === 'status' || v === 'pause' || v === 'resume' || v === 'abort') return v;
  throw new Error(`invalid action ${JSON.stringify(v)} (status, pause, resume or abort)`);
}

/** `apply` and `rollout`: a revision and its way to the nodes. */
function addApplyCommands(program: Command, client: () => FleetClient) {
  const apply = program
    .command('apply')
    .description('validate a playbook, store it as a new revision and push it to the nodes it selects')
    .argument('<file>', 'playbook YAML')
    .option('--check', 'show what would change; store and push nothing', false)
    .option(
      '--diff',
      "with --check: per node each service's field diff, the containers, images to pull, GPU fit, the nginx config diff; then the batches",
      false,
    )
    .option(
      '--detailed-exitcode',
      'with --check: exit 0 no change, 2 changes, 1 an error or failing check',
      false,
    );
  withRolloutOptions(apply).action(async (file, o) => {
    checkOnly(o);
    const { applyCommand } = await import('./apply.js');
    return applyCommand(client(), file, {
      check: o.check,
      diff: o.diff,
      detailedExitcode: o.detailedExitcode,
      globalArgs: cliGlobals(program),
      ...rolloutFlags(o),
    });
  });

  program
    .command('rollout')
    .description("a deployment's rollout: where it stands, or pause, resume or abort it")
    .argument('<action>', 'status, pause, resume or abort', arg(parseRolloutAction))
    .argument('<deployment>', 'a deployment name')
    .addOption(outputOption())
    .action(async (action, name, o) =>
      (await import('./rollout.js')).rolloutCommand(client(), action, name, o.output),
    );
}

/** `--diff` and `--detailed-exitcode` describe a check: without `--check` they are a usage error (exit 2). */
function checkOnly(o: { check: boolean; diff: boolean; detailedExitcode: boolean }) {
  for (const [flag, set] of [
    ['--diff', o.diff],
    ['--detailed-exitcode', o.detailedExitcode],
  ] as const)
    if (set && !o.check) throw new CliError(`${flag} needs --check (fleet apply FILE --check ${flag})`, 2);
}

/** `history` and `rollback`: the revisions of a deployment and the way back to one. */
function addHistoryCommands(program: Command, client: () => FleetClient) {
  program
    .command('history')
    .description("a deployment's revisions (who, when, outcome), or one with its diff")
    .argument('<deployment>', 'a deployment name')
    .argument(
      '[revision]',
      'a revision number: show it with the diff against the one before',
      arg(parseRevision),
    )
    .option('--limit <n>', 'how many revisions, newest first', arg(parseRevision), 20)
    .option('--before <n>', 'only revisions older than N', arg(parseRevision))
    .addOption(outputOption())
    .action(async (name, n, o) => (await import('./history.js')).historyCommand(client(), name, n, o));

  const rollback = program
    .command('rollback')
    .description("roll out an older revision's playbook again, as a new revision (default: the last stable)")
    .argument('<deployment>', 'a deployment name')
    .option('--to <n>', 'the revision to go back to', arg(parseRevision));
  withRolloutOptions(rollback).action(async (name, o) =>
    (await import('./rollback.js')).rollbackCommand(client(), name, { to: o.to, ...rolloutFlags(o) }),
  );
}

/**
 * What starts a rollout takes: `--no-wait`, `--timeout`, `--expect-revision`, `-o` (apply and
 * rollback). Following the rollout is the default; `--wait` stays accepted for older scripts.
 */
function withRolloutOptions(cmd: Command): Command {
  return cmd
    .option('--wait', 'follow the rollout with live progress, the recap and the verdict', true)
    .option('--no-wait', 'return once the revision is stored; do not follow the rollout')
    .option(
      '--timeout <duration>',
      'how long to follow the rollout before giving up',
      arg(parseDuration),
      300_000,
    )
    .option(
      '--expect-revision <n>',
      'refuse unless the deployment is at revision N; supersedes a running rollout',
      arg(parseRevision),
    )
    .addOption(outputOption());
}

function rolloutFlags(o: { wait: boolean; timeout: number; output: OutputFormat; expectRevision?: number }) {
  return { wait: o.wait !== false, timeoutMs: o.timeout, output: o.output, expectRevision: o.expectRevision };
}
