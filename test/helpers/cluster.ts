import { type ChildProcess, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before } from 'node:test';
import { removeManaged, requireEngines } from './engines.js';
import { fetchTrusting } from './https.js';
import { FLEET_BIN, fleet, freePort, startFleet, stop, waitFor } from './procs.js';

/**
 * A control plane and agents as real processes on loopback, each with its own data folder and
 * log file under `dir`. Used by end-to-end tests and benchmarks. Security is on as in production:
 * each agent enrolls with a join token the first time it starts, then speaks mutual TLS.
 */
export class Cluster {
  readonly dir = mkdtempSync(join(tmpdir(), 'fleet-e2e-'));
  server?: ChildProcess;
  readonly agents = new Map<string, ChildProcess>();
  httpPort = 0;
  grpcPort = 0;

  /** The REST API: HTTPS only, its certificate from the control plane's CA (see `caFile`). */
  get url() {
    return `https://127.0.0.1:${this.httpPort}`;
  }

  /**
   * What clients trust for the REST API: the control plane's CA, unless the server was started
   * with a certificate of the operator's (`--tls-cert`), whose issuer a test names here.
   */
  restCaFile?: string;

  /** `fetch` trusting the REST API's CA: tests verify its certificate as the CLI does. */
  get fetch() {
    return fetchTrusting(this.restCaFile ?? this.caFile);
  }

  /** The bootstrap admin token the control plane wrote on its first start (DATA_DIR/admin-token). */
  get adminToken() {
    return readFileSync(join(this.dir, 'cp', 'admin-token'), 'utf8').trim();
  }

  /** What the CLI gets: the admin token, the CA to trust, and a config path of its own (never the user's). */
  cliEnv(): Record<string, string> {
    return {
      FLEET_TOKEN: this.adminToken,
      FLEET_CA_FILE: this.restCaFile ?? this.caFile,
      FLEET_CONFIG: join(this.dir, 'cli-config.json'),
    };
  }

  /** `fetch` on the REST API with the admin token, verifying its certificate (security stays on in tests). */
  api(path: string, init: RequestInit = {}) {
    const headers = new Headers(init.headers);
    headers.set('authorization', `Bearer ${this.adminToken}`);
    return this.fetch(`${this.url}${path}`, { ...init, headers });
  }

  /** `api(path)` as parsed JSON, failing on a non-2xx answer. */
  async apiJson<T>(path: string): Promise<T> {
    const res = await this.api(path);
    if (!res.ok) throw new Error(`GET ${path}: HTTP ${res.status} ${await res.text()}`);
    return (await res.json()) as T;
  }

  /** `extra`: more `fleet server` flags (e.g. `--agent-cert-lifetime 90s`). */
  async startServer(extra: string[] = []) {
    if (!this.httpPort) {
      this.httpPort = await freePort();
      this.grpcPort = await freePort();
    }
    this.server = startFleet(
      [
        'server',
        '--data-dir',
        join(this.dir, 'cp'),
        '--listen',
        `127.0.0.1:${this.httpPort}`,
        '--grpc-listen',
        `127.0.0.1:${this.grpcPort}`,
        ...extra,
      ],
      join(this.dir, 'server.log'),
    );
    await waitFor('control plane /healthz', async () => (await this.fetch(`${this.url}/healthz`)).ok, 15_000);
  }

  async stopServer(signal: NodeJS.Signals = 'SIGTERM') {
    if (this.server) await stop(this.server, signal);
  }

  /** The CA file agents pin and clients trust (`DATA_DIR/ca.crt`). */
  get caFile() {
    return join(this.dir, 'cp', 'ca.crt');
  }

  /** Where `node`'s key and certificate live (with the default state folder). */
  tlsDir(node: string) {
    return join(this.dir, 'agents', node, 'tls');
  }

  /**
   * `fleet join-token create` through the real CLI, synchronously (so `startAgent` stays a plain
   * call that returns the process); the token's labels become the node's labels.
   */
  joinTokenSync(labels: Record<string, string> = {}, ttl?: string): string {
    const args = [FLEET_BIN, '--server', this.url, 'join-token', 'create', '-o', 'json'];
    for (const [k, v] of Object.entries(labels)) args.push('--label', `${k}=${v}`);
    if (ttl) args.push('--ttl', ttl);
    const out = execFileSync(process.execPath, args, {
      encoding: 'utf8',
      env: { ...process.env, ...this.cliEnv() },
    });
    return (JSON.parse(out) as { token: string }).token;
  }

  /**
   * Starts an agent. The first start of a node enrolls it with a fresh join token carrying
   * `labels`; later starts (its certificate is there) reuse its identity, as a restarted agent does.
   */
  startAgent(
    node: string,
    labels: Record<string, string> = {},
    extra: string[] = [],
    env: Record<string, string> = {},
  ) {
    const enrolled = existsSync(join(this.tlsDir(node), 'node.crt'));
    const args = [
      'agent',
      '--node',
      node,
      '--control-plane',
      `127.0.0.1:${this.grpcPort}`,
      ...(enrolled ? [] : ['--join-token', this.joinTokenSync(labels)]),
      '--state-dir',
      join(this.dir, 'agents'),
      '--resync',
      '1s',
      '--heartbeat',
      '1s',
      '--metrics-listen',
      '127.0.0.1:0',
      ...extra,
    ];
    const p = startFleet(args, join(this.dir, `agent-${node}.log`), env);
    this.agents.set(node, p);
    return p;
  }

  async killAgent(node: string, signal: NodeJS.Signals = 'SIGKILL') {
    const p = this.agents.get(node);
    if (p) await stop(p, signal);
  }

  /** Resolves once the control plane lists `node` as connected. */
  async nodeConnected(node: string, timeoutMs = 20_000) {
    await waitFor(
      `node ${node} connected`,
      async () => {
        // The node's own route (a 404 until it registers): the list is paginated.
        const n = await this.apiJson<{ connected: boolean }>(`/v1/nodes/${encodeURIComponent(node)}`);
        return n.connected;
      },
      timeoutMs,
    );
  }

  /** Writes a playbook into the cluster folder and returns its path. */
  playbook(name: string, yaml: string) {
    const file = join(this.dir, name);
    writeFileSync(file, yaml);
    return file;
  }

  /** `node` arguments that run the real CLI against this cluster with everything on the command line. */
  cliArgv(...args: string[]): string[] {
    const ca = this.restCaFile ?? this.caFile;
    return [FLEET_BIN, '--server', this.url, '--ca-file', ca, '--token', this.adminToken, ...args];
  }

  cli(...args: string[]) {
    return fleet(['--server', this.url, ...args], this.cliEnv());
  }

  /**
   * `fleet ... -o json`, parsed: one JSON document, or, for a command that streams JSON lines
   * (`fleet apply` following its rollout), the last line: its result.
   */
  async cliJson<T>(...args: string[]): Promise<T> {
    const r = await this.cli(...args, '-o', 'json');
    if (r.code !== 0) throw new Error(`fleet ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
    return parseJsonOutput(r.stdout) as T;
  }

  log(name: string) {
    return readFileSync(join(this.dir, name), 'utf8');
  }

  async close() {
    for (const node of this.agents.keys()) await this.killAgent(node, 'SIGTERM');
    await this.stopServer();
  }
}

/** `-o json` output: one document (maybe pretty-printed), or JSON lines, of which the last is returned. */
export function parseJsonOutput(stdout: string): unknown {
  try {
    return JSON.parse(stdout);
  } catch {
    return JSON.parse(stdout.trimEnd().split('\n').at(-1) ?? '');
  }
}

/** Every line of `-o json` output that streams JSON lines, parsed. */
export function jsonLines(stdout: string): Record<string, unknown>[] {
  return stdout
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/**
 * A control plane and one agent per node (all with `labels`, on the one Docker daemon), started
 * before the calling file's tests once the engines and `images` are there, and removed after
 * them with every container they made.
 */
export function clusterOf(
  nodes: readonly string[],
  labels: Record<string, string>,
  images: string[],
): Cluster {
  const cluster = new Cluster();
  before(async () => {
    await requireEngines(images);
    await removeManaged([...nodes]);
    await cluster.startServer();
    for (const n of nodes) cluster.startAgent(n, labels);
    for (const n of nodes) await cluster.nodeConnected(n);
  });
  after(async () => {
    await cluster.close();
    await removeManaged([...nodes]);
  });
  return cluster;
}
