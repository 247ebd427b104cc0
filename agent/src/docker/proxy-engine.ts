import { PassThrough } from 'node:stream';
import type Docker from 'dockerode';
import { SECRET_FILE_DIR } from '../../../common/allowlist.js';
import type { Logger } from '../../../common/log.js';
import { withTimeout } from '../../../common/timeout.js';
import { DEFAULT_VOLUME_ROOTS } from '../../../common/volumes.js';
import { NginxProxyDriver } from '../proxy/driver.js';
import type { CommandResult, ListedContainer, ProxyContainerState, ProxyEngine } from '../proxy/engine.js';
import { type GuardPolicy, guardCreate } from './guard.js';
import { ensureNetwork } from './network.js';

/** Rejects when `p` takes longer than `ms` (the Docker request itself may linger; we stop waiting). */
const bounded = <T>(what: string, ms: number, p: Promise<T>): Promise<T> =>
  withTimeout(p, ms, `docker: ${what}`);

const statusOf = (err: unknown) => (err as { statusCode?: number }).statusCode;

/** Docker's multiplexed stream format (non-TTY): 8-byte frame headers, payload length at 4..8. */
export function demux(buf: Buffer): string {
  const parts: Buffer[] = [];
  let i = 0;
  while (i + 8 <= buf.length) {
    const size = buf.readUInt32BE(i + 4);
    parts.push(buf.subarray(i + 8, i + 8 + size));
    i += 8 + size;
  }
  return Buffer.concat(parts).toString('utf8');
}

/** Runs `cmd` in a running container (`docker exec`) and waits for it, within `ms`. */
export async function execIn(
  docker: Docker,
  containerId: string,
  cmd: string[],
  ms: number,
): Promise<CommandResult> {
  const run = async () => {
    const exec = await docker.getContainer(containerId).exec({
      Cmd: cmd,
      AttachStdout: true,
      AttachStderr: true,
    });
    const stream = await exec.start({ hijack: true, stdin: false });
    const sink = new PassThrough();
    const chunks: Buffer[] = [];
    sink.on('data', (c: Buffer) => chunks.push(c));
    docker.modem.demuxStream(stream, sink, sink);
    await new Promise<void>((resolve, reject) => {
      stream.on('end', resolve);
      stream.on('close', resolve);
      stream.on('error', reject);
    });
    const info = await exec.inspect();
    return { exitCode: info.ExitCode ?? -1, output: Buffer.concat(chunks).toString('utf8') };
  };
  return bounded(`exec ${cmd[0]} in ${containerId.slice(0, 12)}`, ms, run());
}

/** Creates, runs to completion and removes a container; its exit code and output. */
export async function runToCompletion(
  docker: Docker,
  options: Docker.ContainerCreateOptions,
  ms: number,
): Promise<CommandResult> {
  const container = await bounded('create check container', ms, docker.createContainer(options));
  try {
    await bounded('start check container', ms, container.start());
    const waited = (await bounded('wait check container', ms, container.wait())) as { StatusCode: number };
    const logs = (await bounded(
      'logs of check container',
      ms,
      container.logs({ stdout: true, stderr: true, follow: false }),
    )) as unknown as Buffer;
    return { exitCode: waited.StatusCode, output: demux(logs) };
  } finally {
    await bounded('remove check container', ms, container.remove({ force: true })).catch(() => {});
  }
}

/** Pulls `image` unless it is present; the pull's progress stream keeps it alive, within `ms`. */
export async function ensureImage(docker: Docker, image: string, ms: number): Promise<void> {
  try {
    await bounded(`inspect image ${image}`, ms, docker.getImage(image).inspect());
    return;
  } catch (err) {
    if (statusOf(err) !== 404) throw err;
  }
  const pull = async () => {
    const stream = await docker.pull(image);
    await new Promise<void>((resolve, reject) =>
      docker.modem.followProgress(stream, (err: Error | null, output: { error?: string }[]) => {
        const failed = err?.message ?? output?.find((o) => o.error)?.error;
        if (failed) reject(new Error(`pull ${image}: ${failed}`));
        else resolve();
      }),
    );
  };
  await bounded(`pull ${image}`, ms, pull());
}

export interface DockerProxyEngineOptions {
  node: string;
  /** What the proxy's containers may mount (checked before each create; see guard.ts). */
  guard: GuardPolicy;
  /** Bound on each Docker call (default 30 s). */
  timeoutMs?: number;
  /** Bound on pulling the nginx image (default 10 min). */
  pullTimeoutMs?: number;
}

/** The proxy driver's engine over the Docker Engine API; every call bounded. */
export class DockerProxyEngine implements ProxyEngine {
  private readonly timeoutMs: number;
  private readonly pullTimeoutMs: number;

  constructor(
    private readonly docker: Docker,
    private readonly opts: DockerProxyEngineOptions,
  ) {
    this.timeoutMs = opts.timeoutMs ?? 30_000;
    this.pullTimeoutMs = opts.pullTimeoutMs ?? 600_000;
  }

  async inspect(name: string): Promise<ProxyContainerState | undefined> {
    try {
      const info = await bounded('inspect proxy', this.timeoutMs, this.docker.getContainer(name).inspect());
      return {
        id: info.Id,
        status: info.State.Status,
        running: info.State.Running === true,
        paused: info.State.Paused === true,
        restarting: info.State.Restarting === true,
        labels: info.Config.Labels ?? {},
      };
    } catch (err) {
      if (statusOf(err) === 404) return undefined;
      throw err;
    }
  }

  async create(options: Docker.ContainerCreateOptions): Promise<string> {
    const checked = guardCreate(options, this.opts.guard);
    const c = await bounded('create proxy', this.timeoutMs, this.docker.createContainer(checked));
    return c.id;
  }

  async start(id: string): Promise<void> {
    await bounded('start proxy', this.timeoutMs, this.docker.getContainer(id).start());
  }

  async remove(id: string): Promise<void> {
    try {
      await bounded('remove proxy', this.timeoutMs, this.docker.getContainer(id).remove({ force: true }));
    } catch (err) {
      if (statusOf(err) !== 404) throw err;
    }
  }

  exec(id: string, cmd: string[]): Promise<CommandResult> {
    return execIn(this.docker, id, cmd, this.timeoutMs);
  }

  async runToCompletion(options: Docker.ContainerCreateOptions): Promise<CommandResult> {
    return runToCompletion(this.docker, guardCreate(options, this.opts.guard), this.timeoutMs);
  }

  ensureImage(image: string): Promise<void> {
    return ensureImage(this.docker, image, this.pullTimeoutMs);
  }

  ensureNetwork(): Promise<string> {
    return bounded('ensure network', this.timeoutMs, ensureNetwork(this.docker, this.opts.node));
  }

  async top(id: string, psArgs: string): Promise<{ titles: string[]; processes: string[][] }> {
    const top = (await this.docker.getContainer(id).top({ ps_args: psArgs })) as {
      Titles: string[];
      Processes: string[][];
    };
    return { titles: top.Titles, processes: top.Processes };
  }

  async list(): Promise<ListedContainer[]> {
    const containers = await bounded(
      'list proxies',
      this.timeoutMs,
      this.docker.listContainers({
        all: true,
        filters: { label: ['fleet.managed=true', `fleet.node=${this.opts.node}`] },
      }),
    );
    return containers.map((c) => ({ id: c.Id, state: c.State, labels: c.Labels }));
  }
}

export interface DockerProxyDriverOptions extends Omit<DockerProxyEngineOptions, 'guard'> {
  docker: Docker;
  /** Host dir holding one config dir per deployment, e.g. /var/lib/fleet/agent/<node>/proxy. */
  configRoot: string;
  log: Logger;
  /** The node's volume roots (`--volume-roots`); default DEFAULT_VOLUME_ROOTS. */
  volumeRoots?: readonly string[];
  /** The agent's secret files (TLS pairs from secrets are mounted from there). */
  secretsDir?: string;
}

/**
 * The nginx proxy driver over Docker: what the agent (and the proxy's end-to-end test) runs. Its
 * containers may mount the config root, the files under /etc/fleet/ and the agent's secret files
 * besides the volume roots.
 */
export class DockerProxyDriver extends NginxProxyDriver {
  constructor(opts: DockerProxyDriverOptions) {
    const guard = {
      volumeRoots: opts.volumeRoots ?? DEFAULT_VOLUME_ROOTS,
      agentPaths: [opts.configRoot, SECRET_FILE_DIR, ...(opts.secretsDir ? [opts.secretsDir] : [])],
    };
    super({
      engine: new DockerProxyEngine(opts.docker, { ...opts, guard }),
      node: opts.node,
      configRoot: opts.configRoot,
      log: opts.log,
    });
  }
}
