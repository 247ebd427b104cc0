import { type Command, Option } from 'commander';
import { arg, CliError, untilSignal, volumeRootsOption } from '../../../common/cli.js';
import { parseDuration } from '../../../common/duration.js';

import { FleetClient } from '../api/client.js';
import { NODE_PAGE_MAX } from '../api/node-page.js';
import { DEFAULT_SILENCE_MS } from '../ingest/liveness.js';
import { addServerInstallCommands, SERVER_DEFAULTS } from '../install.js';
import { configPath, readCaFile, readConfig, resolveConnection } from './config.js';
import { addEventsCommand } from './events.js';
import { addJoinTokenCommands } from './join-token.js';
import { parseNodeLimit, parseNodeState } from './nodes.js';
import { type OutputFormat, parseOutput } from './output.js';
import { addRetentionOptions, retentionOptions } from './retention-flags.js';
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
 * to the root program that bin/fleet.js composes.
 */
export function addControlPlaneCommands(program: Command): Command {
  const client = () => {
    const conn = resolveConnection(program.opts(), process.env, readConfig(configPath()));
    const ca = conn.caFile ? readCaFile(conn.caFile) : undefined;
    return new FleetClient(conn.server, { token: conn.token, ca });
  };

  addServerCommand(program);
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

  return program;
}

/** `fleet server`: the control plane process with its listen addresses and limits. */
function addServerCommand(program: Command) {
  const server = program
    .command('server')
    .description('run the control plane: REST API, agent gRPC endpoint, SQLite store')
    // `fleet server install --listen ...`: its own flags go to install, not to the daemon's.
    .enablePositionalOptions()
    .option(
      '--data-dir <dir>',
      'where the SQLite file, the CA (ca.crt, ca.key) and the server certificate live',
      process.env.FLEET_DATA_DIR ?? SERVER_DEFAULTS.dataDir,
    )
    .option('--listen <host:port>', 'REST API address', SERVER_DEFAULTS.listen)
    .option('--grpc-listen <host:port>', 'agent stream address', SERVER_DEFAULTS.grpcListen)
    .option(
      '--tls-name <names>',
      'comma-separated extra DNS names or addresses for the server certificate',
      '',
    )
    .option(
      '--tls-cert <file>',
      "the REST API's certificate (PEM, chain after the leaf); default: one issued from the CA",
    )
    .option('--tls-key <file>', 'the key of --tls-cert (PEM)')
    .addOption(
      // A test knob (renewal end to end in seconds); production keeps the 30-day default.
      new Option('--agent-cert-lifetime <duration>', 'lifetime of issued agent certificates')
        .argParser(arg(parseDuration))
        .hideHelp(),
    )
    .addOption(volumeRootsOption('comma-separated host directories playbooks may bind-mount'))
    .option('--body-limit <bytes>', 'largest REST request body (413 above it)', arg(parseCount), 1024 * 1024)
    .option('--rate-limit <n>', 'REST requests per minute per API token (429 above it)', arg(parseCount), 600)
    .option(
      '--grpc-max-message <bytes>',
      'largest message an agent may send (RESOURCE_EXHAUSTED above it)',
      arg(parseCount),
      4 * 1024 * 1024,
    )
    .option(
      '--agent-silence <duration>',
      'an agent stream silent this long counts offline (agents beat every 2 s by default)',
      arg(parseDuration),
      DEFAULT_SILENCE_MS,
    );
  addRetentionOptions(server).action(async (o) => {
    // Daemons load lazily so client commands start fast (no gRPC, SQLite or Docker modules).
    const { runServer } = await import('../server.js');
    const { TlsFilesError } = await import('../pki/server-tls.js');
    const s = await runServer({
      dataDir: o.dataDir,
      listen: o.listen,
      grpcListen: o.grpcListen,
      tlsNames: String(o.tlsName)
        .split(',')
        .map((d) => d.trim())
        .filter(Boolean),
      tlsCertFile: o.tlsCert,
      tlsKeyFile: o.tlsKey,
      agentCertLifetimeMs: o.agentCertLifetime,
      agentSilenceMs: o.agentSilence,
      bodyLimit: o.bodyLimit,
      rateLimitPerMinute: o.rateLimit,
      grpcMaxMessageBytes: o.grpcMaxMessage,
      volumeRoots: o.volumeRoots,
      ...(await retentionOptions(o)),
    }).catch((err: Error) => {
      throw err instanceof TlsFilesError ? new CliError(err.message, 2) : err;
    });
    const restCert = s.restCertificate === 'files' ? o.tlsCert : `issued from the CA, ${s.serverCertFile}`;
    process.stderr.write(
      `fleet server: REST ${s.httpUrl} (TLS: ${restCert}), agents ${s.grpcAddress} (mutual TLS), CA ${s.caFile}, admin token in ${s.adminTokenFile}\n` +
        `  clients: fleet login --server ${s.httpUrl} --token-file ${s.adminTokenFile} --ca-file ${s.caFile}\n` +
        `  enroll a host: fleet join-token create, then fleet agent --join-token <token>\n`,
    );
    untilSignal(() => s.close());
  });
  addServerInstallCommands(server);
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

function parseCount(v: string): number {
  if (!/^[1-9][0-9]{0,9}$/.test(v))
    throw new Error(`invalid number ${JSON.stringify(v)} (a whole number ≥ 1)`);
  return Number(v);
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
