/**
 * `fleet server install|uninstall`: the control plane as a hardened systemd service. The unit
 * renderer here is its only copy. The control plane needs far less than the agent: it listens on
 * TCP, keeps its CA, admin token and SQLite database in DATA_DIR, and touches no device and no
 * Docker, so it runs as a dynamic user of its own that owns nothing but DATA_DIR.
 */
import type { Command } from 'commander';
import { CliError } from '../../common/cli.js';
import { addInstallCommands, type Installable } from '../../common/systemd/cli.js';
import type { FleetEntry } from '../../common/systemd/host.js';
import { envPath, type ServiceFiles } from '../../common/systemd/plan.js';
import {
  absent,
  type Directive,
  d,
  HARDENING,
  parseHostPort,
  RESTART,
  renderEnvFile,
  renderUnit,
  START_LIMITS,
  type UnitSpec,
} from '../../common/systemd/unit.js';

/** The unit's name: `systemctl status fleet-server`, `journalctl -u fleet-server`. */
export const SERVER_UNIT = 'fleet-server';

/** `fleet server`'s defaults, shared with its install so both start the same control plane. */
export const SERVER_DEFAULTS = {
  dataDir: '/var/lib/fleet',
  listen: '127.0.0.1:7080',
  grpcListen: '127.0.0.1:7443',
  volumeRoots: '/data,/srv,/mnt,/var/lib/fleet/models',
} as const;
/** The settings file under /etc/fleet, read by systemd (as root) before it drops to the dynamic user. */
export const SERVER_ENV = 'server.env';

/** What `fleet server install` was given, checked. */
export interface ServerSettings {
  /** DATA_DIR, always /var/lib/NAME: systemd's StateDirectory=NAME owns it for the dynamic user. */
  dataDir: string;
  listen: string;
  grpcListen: string;
  tlsName: string;
  volumeRoots: string;
}

/** Binding a port below 1024 is the one capability the control plane may need. */
function capabilities(s: ServerSettings): Directive[] {
  const low = [s.listen, s.grpcListen].some((a) => parseHostPort('address', a).port < 1024);
  if (!low)
    return [
      d('CapabilityBoundingSet', '', 'No capabilities at all: it listens on ports above 1024.'),
      d('AmbientCapabilities', ''),
    ];
  return [
    d(
      'CapabilityBoundingSet',
      'CAP_NET_BIND_SERVICE',
      'A listen port below 1024: the one capability it needs.',
    ),
    d('AmbientCapabilities', 'CAP_NET_BIND_SERVICE'),
  ];
}

/** The control plane's unit for these settings; ExecStart runs `entry`. */
export function serverUnit(entry: Pick<FleetEntry, 'node' | 'fleetJs'>, s: ServerSettings): UnitSpec {
  const stateName = s.dataDir.slice('/var/lib/'.length);
  return {
    header: [
      'fleet control plane, written by `fleet server install` (rewrite it with `fleet server install --force`).',
      `Listen addresses and other settings are in ${envPath(SERVER_ENV)}.`,
    ],
    unit: [
      d('Description', 'fleet control plane: REST API, agent gRPC endpoint, SQLite store'),
      d('Wants', 'network-online.target', 'Listen addresses other than loopback need the network up.'),
      d('After', 'network-online.target'),
      ...START_LIMITS,
    ],
    service: [
      d('Type', 'simple'),
      d('EnvironmentFile', envPath(SERVER_ENV)),
      d(
        'ExecStart',
        `${entry.node} ${entry.fleetJs} server --data-dir ${s.dataDir} --listen \${FLEET_LISTEN} --grpc-listen \${FLEET_GRPC_LISTEN} --tls-name \${FLEET_TLS_NAMES} --volume-roots \${FLEET_VOLUME_ROOTS} $FLEET_SERVER_ARGS`,
        'Settings from the environment file; $FLEET_SERVER_ARGS (split at spaces) carries more flags.',
      ),
      ...RESTART,
      d(
        'DynamicUser',
        'yes',
        'Its own user, allocated by systemd, owning nothing but DATA_DIR: a compromised control plane\ncannot read or change anything else on the host.',
      ),
      d(
        'StateDirectory',
        stateName,
        `DATA_DIR (${s.dataDir}): CA, admin token, database; the only place it writes.`,
      ),
      d('StateDirectoryMode', '0700'),
      ...HARDENING,
      d('PrivateDevices', 'yes', 'No devices beyond /dev/null and friends.'),
      d('ProtectClock', 'yes', 'It never sets a clock (safe here: PrivateDevices= already closes /dev).'),
      d('ProtectProc', 'invisible', "Other users' processes are invisible in /proc."),
      ...capabilities(s),
      d(
        'RestrictAddressFamilies',
        'AF_UNIX AF_INET AF_INET6',
        'IP for the API and the agent stream; Unix for name service lookups of its dynamic user.',
      ),
      d('LimitNOFILE', '65536', 'One agent stream per node: ten thousand agents need as many sockets.'),
      absent('MemoryDenyWriteExecute= absent: V8 compiles JavaScript into writable, executable memory.'),
      absent(
        'PrivateUsers= absent: a capability to bind a low port would not reach the host network from\ninside a user namespace. ProcSubset=pid absent: Node reads /proc/stat and /proc/meminfo.',
      ),
    ],
    install: [d('WantedBy', 'multi-user.target')],
  };
}

/** server.env: the listen addresses and lists the unit's ExecStart reads. */
export function serverEnv(s: ServerSettings): string {
  return renderEnvFile(
    [
      'fleet control plane settings, written by `fleet server install`. After editing: systemctl restart fleet-server',
      'A listen port below 1024 needs a capability in the unit: use `fleet server install --force` for that.',
    ],
    [
      { key: 'FLEET_LISTEN', value: s.listen, why: 'REST API address.' },
      { key: 'FLEET_GRPC_LISTEN', value: s.grpcListen, why: 'Agent stream address (what agents dial).' },
      {
        key: 'FLEET_TLS_NAMES',
        value: s.tlsName,
        why: "Extra names or addresses in the server's certificate.",
      },
      { key: 'FLEET_VOLUME_ROOTS', value: s.volumeRoots, why: 'Host folders playbooks may bind-mount.' },
      { key: 'FLEET_SERVER_ARGS', value: '', why: 'More `fleet server` flags, split at spaces.' },
    ],
  );
}

interface ServerInstallOptions extends ServerSettings {
  root?: string;
  force: boolean;
  start: boolean;
}

const LIST = /^[A-Za-z0-9._:/-]+(,[A-Za-z0-9._:/-]+)*$|^$/;

/** Checks the install's input (exit 2) and renders the unit and its settings. */
export function serverFiles(o: ServerSettings, entry: FleetEntry): ServiceFiles {
  const bad = (msg: string) => new CliError(msg, 2);
  for (const [flag, v] of [
    ['--listen', o.listen],
    ['--grpc-listen', o.grpcListen],
  ] as const) {
    try {
      parseHostPort(flag, v);
    } catch (err) {
      throw bad((err as Error).message);
    }
  }
  if (!/^\/var\/lib\/[A-Za-z0-9_-][A-Za-z0-9._-]*$/.test(o.dataDir) || o.dataDir.endsWith('/..'))
    throw bad(
      `--data-dir ${JSON.stringify(o.dataDir)} must be a folder directly under /var/lib (systemd's StateDirectory= creates it for the service's own user)`,
    );
  for (const [flag, v] of [
    ['--tls-name', o.tlsName],
    ['--volume-roots', o.volumeRoots],
  ] as const)
    if (!LIST.test(v)) throw bad(`invalid ${flag} ${JSON.stringify(v)} (a comma-separated list, no spaces)`);
  return {
    name: SERVER_UNIT,
    unitText: renderUnit(serverUnit(entry, o)),
    envName: SERVER_ENV,
    envText: serverEnv(o),
  };
}

/** How a client reaches an API listening on `listen` from this host. */
function apiUrl(listen: string) {
  const { host, port } = parseHostPort('--listen', listen);
  const local = host === '0.0.0.0' || host === '[::]' ? '127.0.0.1' : host;
  return `http://${local}:${port}`;
}

const serverInstallable: Installable<ServerInstallOptions> = {
  name: SERVER_UNIT,
  envName: SERVER_ENV,
  dynamicUser: true,
  options: (cmd) =>
    cmd
      .option('--data-dir <dir>', 'DATA_DIR, a folder under /var/lib', SERVER_DEFAULTS.dataDir)
      .option('--listen <host:port>', 'REST API address', SERVER_DEFAULTS.listen)
      .option(
        '--grpc-listen <host:port>',
        'agent stream address (0.0.0.0:7443 for agents on other hosts)',
        SERVER_DEFAULTS.grpcListen,
      )
      .option('--tls-name <names>', 'comma-separated extra names agents dial it by', '')
      .option(
        '--volume-roots <dirs>',
        'comma-separated host folders playbooks may bind-mount',
        SERVER_DEFAULTS.volumeRoots,
      ),
  render: serverFiles,
  afterInstall: (o, out) => [
    out.root
      ? `${SERVER_UNIT} is enabled under ${out.root}: it starts when that system boots`
      : out.started
        ? `${SERVER_UNIT} is ${out.replaced ? 'restarted' : 'started'}`
        : `${SERVER_UNIT} is enabled, not started: systemctl start ${SERVER_UNIT}`,
    'On its first start the control plane writes (owner-only, read them as root):',
    `  the bootstrap admin token  ${o.dataDir}/admin-token`,
    `  its CA certificate         ${o.dataDir}/ca.crt`,
    'Next:',
    `  fleet login --server ${apiUrl(o.listen)} --token-file ${o.dataDir}/admin-token`,
    '  fleet join-token create --label gpu=true',
    `  on each host: fleet agent install --server <this host>:${parseHostPort('--grpc-listen', o.grpcListen).port} --join-token <token>`,
  ],
  afterUninstall: (purged, kept) => [
    ...kept.map(
      (p) => `kept ${p} (CA, database, admin token): a reinstall carries on with them; --purge deletes it`,
    ),
    ...(purged.length > 0
      ? ['DATA_DIR is deleted with the CA: every agent must enroll again with a new join token']
      : []),
  ],
};

/** Adds `install` and `uninstall` under `fleet server`. */
export function addServerInstallCommands(server: Command): void {
  addInstallCommands(server, serverInstallable);
}
