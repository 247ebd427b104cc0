/**
 * `fleet agent install|uninstall`: the agent as a hardened systemd service. The unit renderer here
 * is the only copy of the agent's unit (there is no hand-written file beside it). The sandbox is
 * shaped by what the agent does on a host: it talks to Docker over /var/run/docker.sock (root's
 * socket, so the agent runs as root), runs nvidia-smi (so it keeps /dev), reads model files to
 * check them, writes only its state directory (desired state, node key, nginx config), and stops
 * without taking the containers it manages with it.
 */
import type { Command } from 'commander';
import { CliError, parseLabel } from '../../common/cli.js';
import { parseJoinToken } from '../../common/join-token.js';
import { defaultNodeName, isNodeName } from '../../common/node-name.js';
import { addInstallCommands, type Installable } from '../../common/systemd/cli.js';
import type { FleetEntry } from '../../common/systemd/host.js';
import { envPath, type ServiceFiles } from '../../common/systemd/plan.js';
import {
  absent,
  d,
  HARDENING,
  parseHostPort,
  RESTART,
  renderEnvFile,
  renderUnit,
  START_LIMITS,
  type UnitSpec,
} from '../../common/systemd/unit.js';

/** The unit's name: `systemctl status fleet-agent`, `journalctl -u fleet-agent`. */
export const AGENT_UNIT = 'fleet-agent';
/** The settings file under /etc/fleet; 0600 because it holds the join token. */
export const AGENT_ENV = 'agent.env';
/** The agent's state directory under systemd (StateDirectory=fleet-agent). */
export const AGENT_STATE_DIR = '/var/lib/fleet-agent';

/**
 * V8 flags the agent's unit runs Node with: young-generation semi-spaces of 1 MB instead of up to
 * 16 MB. The agent allocates little and slowly; with the default, V8 grows the young generation
 * after a busy moment and the idle agent keeps up to ~16 MB more resident for it (issue 13).
 */
export const AGENT_NODE_OPTIONS = '--max-semi-space-size=1';

/** The agent's unit: ExecStart runs `entry`; the settings come from /etc/fleet/agent.env. */
export function agentUnit(entry: Pick<FleetEntry, 'node' | 'fleetJs'>): UnitSpec {
  return {
    header: [
      'fleet agent, written by `fleet agent install` (rewrite it with `fleet agent install --force`).',
      `Settings, the join token among them, are in ${envPath(AGENT_ENV)} (0600), never in this file.`,
      'Containers keep running when the agent stops; on start it adopts them from their labels.',
    ],
    unit: [
      d('Description', 'fleet agent: runs what the control plane asks through Docker and keeps it healthy'),
      d('Wants', 'network-online.target docker.service', 'It dials the control plane and drives Docker.'),
      d('After', 'network-online.target docker.service'),
      ...START_LIMITS,
    ],
    service: [
      d('Type', 'simple'),
      d('EnvironmentFile', envPath(AGENT_ENV)),
      d(
        'Environment',
        `NODE_OPTIONS=${AGENT_NODE_OPTIONS}`,
        'A small young generation: the idle agent keeps less memory resident (install.ts AGENT_NODE_OPTIONS).',
      ),
      d(
        'ExecStart',
        `${entry.node} ${entry.fleetJs} agent --state-dir ${AGENT_STATE_DIR} $FLEET_AGENT_ARGS`,
        'FLEET_CONTROL_PLANE, FLEET_NODE and FLEET_JOIN_TOKEN come from the environment file;\n$FLEET_AGENT_ARGS (split at spaces) carries more flags, such as --label.',
      ),
      ...RESTART,
      d(
        'KillMode',
        'process',
        'Stopping the agent stops the agent only: the containers it manages keep serving.',
      ),
      d('StateDirectory', 'fleet-agent', 'The one place it writes: desired state, node key, nginx config.'),
      d('StateDirectoryMode', '0700'),
      absent(
        'User= absent: the agent runs as root. The Docker socket is root-equivalent, so a user in the\ndocker group would gain nothing; the capability bounding set below is what narrows root.',
      ),
      ...HARDENING,
      d(
        'CapabilityBoundingSet',
        'CAP_DAC_READ_SEARCH',
        "Root without its powers, but for reading files others own: model files it checks before a\nrollout. Docker's socket, /dev/nvidia* and its own state need no capability.",
      ),
      d(
        'RestrictAddressFamilies',
        'AF_UNIX AF_INET AF_INET6 AF_NETLINK',
        "Unix: Docker's socket (connect works through the read-only /run). IP: the control plane,\nprobes, metrics. Netlink: the host's network interfaces for facts.",
      ),
      absent('PrivateDevices= absent: nvidia-smi needs /dev/nvidia*.'),
      absent(
        'ProtectClock= absent: on systemd before 252 it implies a device allow-list that closes\n/dev/nvidia* too (systemd#18142); the SystemCallFilter above already refuses setting the clock.',
      ),
      absent(
        'ProtectProc= absent: the agent maps GPU processes to containers through /proc/PID/cgroup,\nand those processes belong to other users.',
      ),
      absent('MemoryDenyWriteExecute= absent: V8 compiles JavaScript into writable, executable memory.'),
    ],
    install: [d('WantedBy', 'multi-user.target')],
  };
}

/** What `fleet agent install` writes to agent.env. */
export interface AgentSettings {
  server: string;
  node: string;
  joinToken: string;
  labels: Record<string, string>;
}

/** agent.env: the agent's settings as environment variables its CLI reads. */
export function agentEnv(s: AgentSettings): string {
  const labels = Object.entries(s.labels).map(([k, v]) => `--label ${k}=${v}`);
  return renderEnvFile(
    [
      'fleet agent settings, written by `fleet agent install`; owner-only: it holds the join token.',
      'After editing: systemctl restart fleet-agent',
    ],
    [
      {
        key: 'FLEET_CONTROL_PLANE',
        value: s.server,
        why: "The control plane's agent address (fleet server --grpc-listen).",
      },
      { key: 'FLEET_NODE', value: s.node },
      {
        key: 'FLEET_JOIN_TOKEN',
        value: s.joinToken,
        why: `Single use: the first start enrolls and keeps key and certificate in ${AGENT_STATE_DIR}/NODE/tls;\nlater starts ignore it.`,
      },
      {
        key: 'FLEET_AGENT_ARGS',
        value: labels.join(' '),
        why: 'More `fleet agent` flags, split at spaces. Labels seed the node at its first registration only.',
      },
    ],
  );
}

interface AgentInstallOptions {
  server?: string;
  joinToken?: string;
  node: string;
  label: Record<string, string>;
  root?: string;
  force: boolean;
  start: boolean;
}

/** Checks the install's input (exit 2, naming the bad value but never the token) and renders. */
export function agentFiles(o: AgentInstallOptions, entry: FleetEntry): ServiceFiles {
  const bad = (msg: string) => new CliError(msg, 2);
  if (!o.server) throw bad("--server HOST:PORT is required: the control plane's agent address");
  try {
    parseHostPort('--server', o.server);
  } catch (err) {
    throw bad((err as Error).message);
  }
  if (!isNodeName(o.node))
    throw bad(`invalid node name ${JSON.stringify(o.node)} (lowercase letters, digits, '.', '-')`);
  const token = o.joinToken ?? process.env.FLEET_JOIN_TOKEN;
  if (!token)
    throw bad('a join token is required: --join-token T or FLEET_JOIN_TOKEN (fleet join-token create)');
  const parsed = parseJoinToken(token);
  if (!parsed.ok) throw bad(parsed.message);
  return {
    name: AGENT_UNIT,
    unitText: renderUnit(agentUnit(entry)),
    envName: AGENT_ENV,
    envText: agentEnv({ server: o.server, node: o.node, joinToken: token.trim(), labels: o.label }),
  };
}

const agentInstallable: Installable<AgentInstallOptions> = {
  name: AGENT_UNIT,
  envName: AGENT_ENV,
  dynamicUser: false,
  options: (cmd) =>
    cmd
      .option('--server <host:port>', "the control plane's agent address (fleet server --grpc-listen)")
      .option(
        '--join-token <token>',
        'from `fleet join-token create` (or env FLEET_JOIN_TOKEN); never printed',
      )
      .option('--label <key=value>', 'a node label (repeatable)', parseLabel, {})
      .option('--node <name>', "this node's name", defaultNodeName()),
  render: agentFiles,
  afterInstall: (o, out) => [
    out.root
      ? `${AGENT_UNIT} is enabled under ${out.root}: it starts when that system boots`
      : out.started
        ? `${AGENT_UNIT} is ${out.replaced ? 'restarted' : 'started'} as node '${o.node}' (it enrolls with the join token unless it already has a certificate)`
        : `${AGENT_UNIT} is enabled, not started: systemctl start ${AGENT_UNIT}`,
    `  follow it: journalctl -u ${AGENT_UNIT} -f`,
    `  on the control plane: fleet nodes ${o.node}`,
  ],
  afterUninstall: (purged, kept) => [
    'Managed containers keep running; a reinstall adopts them.',
    ...kept.map(
      (p) =>
        `kept ${p} (desired state, node key): a reinstall comes back as the same node; --purge deletes it`,
    ),
    ...(purged.length > 0
      ? [
          'the node key is deleted: this host must enroll again with a new join token, and the control plane keeps its old name bound to the old key (pick a new --node)',
        ]
      : []),
  ],
};

/** Adds `install` and `uninstall` under `fleet agent`. */
export function addAgentInstallCommands(agent: Command): void {
  addInstallCommands(agent, agentInstallable);
}
