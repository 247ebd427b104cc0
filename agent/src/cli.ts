/**
 * `fleet agent`: the agent's own command, composed onto the `fleet` program by bin/fleet.js. The
 * daemon's modules (gRPC, Docker, systeminformation) load only when the command runs, so client
 * commands start fast.
 */
import { Command } from 'commander';
import { arg, CliError, parseLabel, untilSignal, volumeRootsOption } from '../../common/cli.js';
import { parseDuration } from '../../common/duration.js';
import { defaultNodeName, isNodeName } from '../../common/node-name.js';
import { addAgentInstallCommands } from './install.js';

function parseGib(v: string) {
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new Error(`invalid size ${JSON.stringify(v)} (GiB, e.g. 2 or 0.5)`);
  return n;
}

export function agentCommand(): Command {
  const agent = new Command('agent')
    .description('run the host agent: dial the control plane, run what it asks through Docker')
    // `fleet agent install --node ...`: its own flags go to install, not to the daemon's.
    .enablePositionalOptions()
    .option('--node <name>', "this node's name", process.env.FLEET_NODE ?? defaultNodeName())
    .option('--label <key=value>', 'a node label (repeatable)', parseLabel, {})
    .option(
      '--control-plane <host:port>',
      'control plane agent address (env FLEET_CONTROL_PLANE)',
      process.env.FLEET_CONTROL_PLANE ?? '127.0.0.1:7443',
    )
    .option(
      '--join-token <token>',
      'enroll with this single-use token (from `fleet join-token create`; or env FLEET_JOIN_TOKEN); ignored once enrolled',
    )
    .option(
      '--state-dir <dir>',
      'where the last desired state and the node key and certificate (NODE/tls/) are kept',
      process.env.FLEET_STATE_DIR ?? '/var/lib/fleet-agent',
    )
    .option('--docker-socket <path>', 'Docker Engine API socket', '/var/run/docker.sock')
    .option('--resync <duration>', 'periodic reconcile even without changes', arg(parseDuration), 10_000)
    .option(
      '--heartbeat <duration>',
      'heartbeat interval (the control plane counts 5.5 s of silence as offline)',
      arg(parseDuration),
      2_000, // connection.ts DEFAULT_HEARTBEAT_MS says why (not imported here: it loads gRPC)
    )
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
    .addOption(
      volumeRootsOption(
        'comma-separated host directories containers may bind-mount; a deployment asking for others is refused',
      ),
    )
    .action(async (o) => {
      if (!isNodeName(o.node))
        throw new CliError(
          `invalid node name ${JSON.stringify(o.node)} (lowercase letters, digits, '.', '-')`,
          2,
        );
      const { runAgent } = await import('./main.js');
      const running = await runAgent({
        node: o.node,
        labels: o.label,
        server: o.controlPlane,
        joinToken: o.joinToken ?? process.env.FLEET_JOIN_TOKEN,
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
        volumeRoots: o.volumeRoots,
      });
      untilSignal(() => running.stop());
    });
  addAgentInstallCommands(agent);
  return agent;
}
