import { hostname } from 'node:os';
import { Command, InvalidArgumentError, Option } from 'commander';
import { NODE_NAME } from '../grpc/auth.js';
import { VERSION } from '../version.js';
import { applyCommand } from './apply.js';
import { ClientError, FleetClient } from './client.js';
import { parseDuration } from './duration.js';
import { nodesCommand } from './nodes.js';
import { CliError, parseOutput } from './output.js';
import { statusCommand } from './status.js';

const arg =
  <T>(fn: (v: string) => T) =>
  (v: string) => {
    try {
      return fn(v);
    } catch (err) {
      throw new InvalidArgumentError((err as Error).message);
    }
  };

function parseLabel(v: string, prev: Record<string, string> = {}) {
  const m = /^([A-Za-z0-9][A-Za-z0-9._/-]{0,62})=([A-Za-z0-9._-]{0,63})$/.exec(v);
  if (!m) throw new InvalidArgumentError(`invalid label ${JSON.stringify(v)} (key=value)`);
  return { ...prev, [m[1]!]: m[2]! };
}

function parseGib(v: string) {
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new Error(`invalid size ${JSON.stringify(v)} (GiB, e.g. 2 or 0.5)`);
  return n;
}

function defaultNodeName() {
  return (
    hostname()
      .toLowerCase()
      .replace(/[^a-z0-9.-]/g, '-')
      .replace(/^[^a-z0-9]+|[^a-z0-9]+$/g, '') || 'node'
  );
}

const outputOption = () =>
  new Option('-o, --output <format>', 'text or json').default('text').argParser(arg(parseOutput));

/** Waits for SIGINT/SIGTERM, then runs `close` once. */
function untilSignal(close: () => Promise<void>) {
  let closing = false;
  const stop = (sig: string) => {
    if (closing) return;
    closing = true;
    process.stderr.write(`${sig}: shutting down\n`);
    close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

export function buildProgram(): Command {
  const program = new Command('fleet')
    .description('Deploy LLM inference onto GPU hosts and keep it healthy')
    .version(VERSION)
    .option(
      '--server <url>',
      'control plane REST URL (env FLEET_SERVER)',
      process.env.FLEET_SERVER ?? 'http://127.0.0.1:7080',
    )
    .option('--debug', 'print stack traces on errors')
    .showHelpAfterError();
  const client = () => new FleetClient(program.opts().server);

  program
    .command('server')
    .description('run the control plane: REST API, agent gRPC endpoint, SQLite store')
    .option(
      '--data-dir <dir>',
      'where the SQLite file and agent token live',
      process.env.FLEET_DATA_DIR ?? '/var/lib/fleet',
    )
    .option('--listen <host:port>', 'REST API address', '127.0.0.1:7080')
    .option('--grpc-listen <host:port>', 'agent stream address', '127.0.0.1:7443')
    .option(
      '--agent-token-file <file>',
      'agent token file (default DATA_DIR/agent-token, created if missing)',
    )
    .option(
      '--volume-roots <dirs>',
      'comma-separated host directories playbooks may bind-mount',
      '/data,/srv,/mnt,/var/lib/fleet/models',
    )
    .action(async (o) => {
      // Daemons load lazily so client commands start fast (no gRPC, SQLite or Docker modules).
      const { runServer } = await import('../server.js');
      const s = await runServer({
        dataDir: o.dataDir,
        listen: o.listen,
        grpcListen: o.grpcListen,
        agentTokenFile: o.agentTokenFile,
        volumeRoots: String(o.volumeRoots)
          .split(',')
          .map((d) => d.trim())
          .filter(Boolean),
      });
      process.stderr.write(
        `fleet server: REST ${s.httpUrl}, agents ${s.grpcAddress}, agent token in ${s.agentTokenFile}\n`,
      );
      untilSignal(() => s.close());
    });

  program
    .command('agent')
    .description('run the host agent: dial the control plane, run what it asks through Docker')
    .option('--node <name>', "this node's name", process.env.FLEET_NODE ?? defaultNodeName())
    .option('--label <key=value>', 'a node label (repeatable)', parseLabel, {})
    .option(
      '--control-plane <host:port>',
      'control plane agent address (env FLEET_CONTROL_PLANE)',
      process.env.FLEET_CONTROL_PLANE ?? '127.0.0.1:7443',
    )
    .option('--token-file <file>', 'file holding the agent token (or env FLEET_AGENT_TOKEN)')
    .option(
      '--state-dir <dir>',
      'where the last desired state is kept',
      process.env.FLEET_STATE_DIR ?? '/var/lib/fleet-agent',
    )
    .option('--docker-socket <path>', 'Docker Engine API socket', '/var/run/docker.sock')
    .option('--resync <duration>', 'periodic reconcile even without changes', arg(parseDuration), 10_000)
    .option('--heartbeat <duration>', 'heartbeat interval', arg(parseDuration), 5_000)
    .option(
      '--gpu-interval <duration>',
      'how often GPUs are polled with nvidia-smi',
      arg(parseDuration),
      10_000,
    )
    .option('--facts-interval <duration>', 'how often host facts are collected', arg(parseDuration), 300_000)
    .option('--nvidia-smi <path>', 'nvidia-smi binary', 'nvidia-smi')
    .option('--metrics-listen <host:port>', 'serve Prometheus metrics here ("" for none)', '127.0.0.1:9464')
    .option(
      '--preflight-retry <duration>',
      'how often a desired state that failed preflight is checked again',
      arg(parseDuration),
      30_000,
    )
    .option(
      '--min-free-disk <GiB>',
      "free GiB Docker's filesystem needs before pulling an image",
      arg(parseGib),
      2,
    )
    .action(async (o) => {
      if (!NODE_NAME.test(o.node))
        throw new CliError(
          `invalid node name ${JSON.stringify(o.node)} (lowercase letters, digits, '.', '-')`,
          2,
        );
      const { runAgent } = await import('../../../agent/src/main.js');
      const agent = await runAgent({
        node: o.node,
        labels: o.label,
        server: o.controlPlane,
        token: process.env.FLEET_AGENT_TOKEN,
        tokenFile: o.tokenFile,
        stateDir: o.stateDir,
        dockerSocket: o.dockerSocket,
        resyncMs: o.resync,
        heartbeatMs: o.heartbeat,
        gpuIntervalMs: o.gpuInterval,
        hostIntervalMs: o.factsInterval,
        nvidiaSmi: o.nvidiaSmi,
        metricsListen: o.metricsListen,
        preflightRetryMs: o.preflightRetry,
        minFreeDiskBytes: Math.round(o.minFreeDisk * 2 ** 30),
      });
      untilSignal(() => agent.stop());
    });

  program
    .command('apply')
    .description('validate a playbook, store it as a new revision and push it to the nodes it selects')
    .argument('<file>', 'playbook YAML')
    .option('--check', 'show what would change; store and push nothing', false)
    .option('--wait', 'wait until every selected node runs the new revision', false)
    .option('--timeout <duration>', 'how long --wait waits', arg(parseDuration), 300_000)
    .addOption(outputOption())
    .action((file, o) =>
      applyCommand(client(), file, { check: o.check, wait: o.wait, timeoutMs: o.timeout, output: o.output }),
    );

  program
    .command('nodes')
    .description('list nodes, or show one')
    .argument('[name]', 'a node name')
    .addOption(outputOption())
    .action((name, o) => nodesCommand(client(), name, o.output));

  program
    .command('status')
    .description('list deployments, or show one per node and service')
    .argument('[deployment]', 'a deployment name')
    .addOption(outputOption())
    .action((name, o) => statusCommand(client(), name, o.output));

  return program;
}

/** Runs the CLI; errors become one line on stderr and a non-zero exit (stack with --debug). */
export async function main(argv: string[]) {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
  } catch (err) {
    const debug = program.opts().debug || argv.includes('--debug');
    const code =
      err instanceof CliError
        ? err.exitCode
        : err instanceof ClientError && err.status >= 400 && err.status < 500
          ? 2
          : 1;
    process.stderr.write(`fleet: ${(err as Error).message}\n`);
    if (debug && err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`);
    process.exitCode = code;
  }
}
