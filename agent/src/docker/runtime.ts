import Docker from 'dockerode';
import { NO_NEW_PRIVILEGES } from '../../../common/container-policy.js';
import { DEFAULT_VOLUME_ROOTS } from '../../../common/volumes.js';
import type { SecretRef } from '../../../proto/gen/fleet/v1/agent.js';
import { deviceRequestsFor } from '../gpu/assign.js';
import { type DesiredContainer, fromLabels, LABEL, labelsFor, type ObservedContainer } from '../model.js';
import { type ContainerRuntime, classify, RuntimeError } from '../runtime.js';
import { type GuardPolicy, guardCreate } from './guard.js';
import { ensureNetwork, networkName } from './network.js';

export interface DockerRuntimeOptions {
  node: string;
  socketPath?: string;
  /** Seconds a container gets between SIGTERM and SIGKILL when removed. */
  stopTimeoutS?: number;
  /** Idle time after which a Docker API call is abandoned. */
  timeoutMs?: number;
  /** Reads a secret's value when a container with a secret env is created (secrets/files.ts). */
  readSecret?: (ref: SecretRef) => string;
  /** The login for an image's registry, or undefined to pull anonymously (secrets/registry.ts). */
  registryLogin?: (
    image: string,
  ) => { username: string; password: string; serveraddress: string } | undefined;
  /** Host directories replicas may bind-mount (the guard refuses any other); default DEFAULT_VOLUME_ROOTS. */
  volumeRoots?: readonly string[];
}

/** Plain env, then the secret values (read now, never kept in the spec or a label). */
function envOf(
  env: Record<string, string>,
  secretEnv: Record<string, SecretRef> | undefined,
  readSecret: ((ref: SecretRef) => string) | undefined,
): string[] {
  const out = Object.entries(env).map(([k, v]) => `${k}=${v}`);
  for (const [k, ref] of Object.entries(secretEnv ?? {})) {
    if (!readSecret)
      throw new RuntimeError(`${k} needs secret ${ref.name} but this agent reads no secrets`, false);
    try {
      out.push(`${k}=${readSecret(ref)}`);
    } catch (err) {
      // Terminal: the agent reports it; the next desired state (with the value) fixes it.
      throw new RuntimeError(`${k}: ${(err as Error).message}`, false);
    }
  }
  return out;
}

/**
 * The create options of one replica: labels that rebuild it, the node's network (nginx reaches it
 * there), its container port published on 127.0.0.1 (the fixed `publish` port, or one Docker picks
 * so the agent can probe it), GPUs by UUID as a device request, no Docker restart policy (the
 * agent restarts, with backoff and a truthful status) and no-new-privileges (nothing inside gains
 * privileges through setuid binaries). Not part of the spec hash: containers made by an older agent
 * are not replaced for it (see README, Security). Exported so a test can check the real spec.
 */
export function containerOptions(
  c: DesiredContainer,
  gpus: readonly string[],
  readSecret?: (ref: SecretRef) => string,
): Docker.ContainerCreateOptions {
  const s = c.spec;
  const portKey = `${s.port}/tcp`;
  // With an engine, this container owns the replica's network namespace: the engine's port is
  // published here too (for its probe), and the GPUs go to the engine.
  const enginePort = s.engine?.port ? `${s.engine.port}/tcp` : undefined;
  const ownGpus = s.engine ? [] : gpus;
  const bindings: Record<string, { HostIp: string; HostPort: string }[]> = {};
  if (s.port) bindings[portKey] = [{ HostIp: '127.0.0.1', HostPort: s.publish ? String(s.publish) : '' }];
  if (enginePort) bindings[enginePort] = [{ HostIp: '127.0.0.1', HostPort: '' }];
  return {
    name: c.name,
    Image: s.image,
    Env: envOf(s.env, s.secretEnv, readSecret),
    Cmd: s.command.length ? s.command : undefined,
    Labels: labelsFor(c, ownGpus),
    ExposedPorts: Object.keys(bindings).length
      ? Object.fromEntries(Object.keys(bindings).map((k) => [k, {}]))
      : undefined,
    HostConfig: {
      Binds: s.volumes.length ? s.volumes : undefined,
      PortBindings: Object.keys(bindings).length ? bindings : undefined,
      NetworkMode: networkName(s.node),
      RestartPolicy: { Name: 'no' },
      Init: true,
      SecurityOpt: [NO_NEW_PRIVILEGES],
      ...(ownGpus.length ? { DeviceRequests: deviceRequestsFor(ownGpus) } : {}),
    },
  };
}

/** The engine container of a replica: joined to the network namespace of the replica's container. */
export function engineOptions(
  c: DesiredContainer,
  gpus: readonly string[],
  replicaId: string,
  readSecret?: (ref: SecretRef) => string,
): Docker.ContainerCreateOptions {
  const e = c.spec.engine;
  if (!e) throw new Error(`${c.key} has no engine`);
  return {
    name: `${c.name}-engine`,
    Image: e.image,
    Env: envOf(e.env, e.secretEnv, readSecret),
    Cmd: e.command.length ? e.command : undefined,
    Labels: labelsFor(c, gpus, 'engine'),
    HostConfig: {
      Binds: e.volumes.length ? e.volumes : undefined,
      NetworkMode: `container:${replicaId}`,
      RestartPolicy: { Name: 'no' },
      Init: true,
      SecurityOpt: [NO_NEW_PRIVILEGES],
      ...(gpus.length ? { DeviceRequests: deviceRequestsFor(gpus) } : {}),
    },
  };
}

/** Exit code from Docker's status text ("Exited (137) 5 seconds ago"). */
export function exitCodeOf(status: string | undefined): number | undefined {
  const m = /^Exited \((-?\d+)\)/.exec(status ?? '');
  return m ? Number(m[1]) : undefined;
}

/** ContainerRuntime over the Docker Engine API. Only containers labelled for this node are seen. */
export class DockerRuntime implements ContainerRuntime {
  private readonly docker: Docker;
  /** The node's network was seen (or made) by this runtime; see `create`. */
  private networkReady = false;

  constructor(private readonly opts: DockerRuntimeOptions) {
    // A hung daemon must not hang the agent: every API call gives up after a bound (a pull's
    // progress stream keeps its socket busy, so long downloads are not cut).
    this.docker = new Docker({
      socketPath: opts.socketPath ?? '/var/run/docker.sock',
      timeout: opts.timeoutMs ?? 60_000,
    });
  }

  async list(): Promise<ObservedContainer[]> {
    const items = await this.call(() =>
      this.docker.listContainers({
        all: true,
        filters: { label: [`${LABEL.managed}=true`, `${LABEL.node}=${this.opts.node}`] },
      }),
    );
    const out: ObservedContainer[] = [];
    const net = networkName(this.opts.node);
    // An engine publishes nothing itself: its port is published by its replica's container.
    const portsOf = new Map<string, Docker.Port[]>();
    for (const c of items) {
      if (c.Labels[LABEL.part] !== 'engine')
        portsOf.set(
          `${c.Labels[LABEL.deployment]}/${c.Labels[LABEL.service]}/${c.Labels[LABEL.replica]}#${c.Labels[LABEL.hash]}`,
          c.Ports,
        );
    }
    for (const c of items) {
      const port = Number(c.Labels[LABEL.port] ?? 0);
      const ports =
        c.Labels[LABEL.part] === 'engine'
          ? (portsOf.get(
              `${c.Labels[LABEL.deployment]}/${c.Labels[LABEL.service]}/${c.Labels[LABEL.replica]}#${c.Labels[LABEL.hash]}`,
            ) ?? [])
          : c.Ports;
      const published = ports.find((p) => p.PrivatePort === port && p.IP === '127.0.0.1' && p.PublicPort);
      const o = fromLabels(
        {
          id: c.Id,
          name: (c.Names[0] ?? '').replace(/^\//, ''),
          image: c.Image,
          state: c.State,
          createdAtMs: c.Created * 1000,
          hostPort: published?.PublicPort,
          ip: c.NetworkSettings?.Networks?.[net]?.IPAddress || undefined,
          exitCode: c.State === 'exited' ? exitCodeOf(c.Status) : undefined,
        },
        c.Labels,
      );
      if (o) out.push(o);
    }
    return out;
  }

  async imagePresent(image: string): Promise<boolean> {
    try {
      await this.docker.getImage(image).inspect();
      return true;
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode === 404) return false;
      throw classify(err);
    }
  }

  async pull(
    image: string,
    onProgress?: (p: { currentBytes: number; totalBytes: number }) => void,
  ): Promise<void> {
    const authconfig = this.opts.registryLogin?.(image);
    const stream = await this.call(() => this.docker.pull(image, authconfig ? { authconfig } : {}));
    // Per-layer download progress, summed: Docker reports each layer's bytes separately.
    const layers = new Map<string, { current: number; total: number }>();
    await new Promise<void>((resolve, reject) =>
      this.docker.modem.followProgress(
        stream,
        (err: Error | null, output: { error?: string }[]) => {
          const failed = err?.message ?? output?.find((o) => o.error)?.error;
          if (failed) reject(new RuntimeError(`pull ${image}: ${failed}`, true));
          else resolve();
        },
        (ev: { id?: string; status?: string; progressDetail?: { current?: number; total?: number } }) => {
          if (!onProgress || !ev.id) return;
          const d = ev.progressDetail;
          if (ev.status === 'Downloading' && d?.total)
            layers.set(ev.id, { current: d.current ?? 0, total: d.total });
          else if (ev.status === 'Download complete' || ev.status === 'Pull complete') {
            const l = layers.get(ev.id);
            if (l) l.current = l.total;
          } else return;
          let currentBytes = 0;
          let totalBytes = 0;
          for (const l of layers.values()) {
            currentBytes += l.current;
            totalBytes += l.total;
          }
          onProgress({ currentBytes, totalBytes });
        },
      ),
    );
  }

  async create(c: DesiredContainer, gpus: readonly string[] = []): Promise<string> {
    const policy = { volumeRoots: this.opts.volumeRoots ?? DEFAULT_VOLUME_ROOTS };
    // Checked before Docker is asked anything, the engine too (its namespace id is filled in later).
    const options = guardCreate(containerOptions(c, gpus, this.opts.readSecret), policy);
    // The engine's options are checked before the replica exists; reading its secrets here too
    // fails a missing one before anything is created.
    if (c.spec.engine) guardCreate(engineOptions(c, gpus, 'replica', this.opts.readSecret), policy);
    // The node's network is looked up (and made) once, not before every create. One removed
    // behind the agent's back fails the start ("network ... not found"): made again, tried once more.
    const known = this.networkReady;
    try {
      return await this.createAndStart(c, gpus, options, policy);
    } catch (err) {
      if (!known || !/network .*not found/i.test((err as Error).message)) throw err;
      this.networkReady = false;
      return this.createAndStart(c, gpus, options, policy);
    }
  }

  private async createAndStart(
    c: DesiredContainer,
    gpus: readonly string[],
    options: Docker.ContainerCreateOptions,
    policy: GuardPolicy,
  ): Promise<string> {
    if (!this.networkReady) {
      await this.call(() => ensureNetwork(this.docker, this.opts.node));
      this.networkReady = true;
    }
    const container = await this.call(() => this.docker.createContainer(options));
    let engine: Docker.Container | undefined;
    try {
      await this.call(() => container.start());
      if (c.spec.engine) {
        const e = guardCreate(engineOptions(c, gpus, container.id, this.opts.readSecret), policy);
        engine = await this.call(() => this.docker.createContainer(e));
        await this.call(() => engine!.start());
      }
    } catch (err) {
      // A replica that cannot start (port taken, bad command, no GPU driver) is removed, not left behind.
      await engine?.remove({ force: true }).catch(() => {});
      await container.remove({ force: true }).catch(() => {});
      throw err;
    }
    return container.id;
  }

  async start(id: string): Promise<void> {
    try {
      await this.call(() => this.docker.getContainer(id).start());
    } catch (err) {
      // After a daemon restart containerd can keep a dead task of a container ("task ... already
      // exists") and refuse every start: the container is removed so the next round creates it anew.
      if (/task .* already exists/i.test((err as Error).message)) {
        await this.docker
          .getContainer(id)
          .remove({ force: true })
          .catch(() => {});
        throw new RuntimeError(`${(err as Error).message}; removed, to be created again`, true, err);
      }
      throw err;
    }
  }

  /** An unhealthy replica is restarted with a short grace: it is out of the upstream and not serving well. */
  async restart(id: string): Promise<void> {
    await this.call(() => this.docker.getContainer(id).restart({ t: 2 }));
  }

  /** The dockerode client, for the parts that speak Docker directly (events, the proxy). */
  get client(): Docker {
    return this.docker;
  }

  async remove(id: string): Promise<void> {
    const c = this.docker.getContainer(id);
    try {
      await c.stop({ t: this.opts.stopTimeoutS ?? 10 });
    } catch (err) {
      const code = (err as { statusCode?: number }).statusCode;
      if (code !== 304 && code !== 404) throw classify(err);
    }
    try {
      await c.remove({ force: true });
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode !== 404) throw classify(err);
    }
  }

  async version(): Promise<string> {
    const v = await this.call(() => this.docker.version());
    return v.Version;
  }

  async info() {
    const i = await this.call(() => this.docker.info());
    return {
      version: i.ServerVersion as string,
      runtimes: Object.keys(i.Runtimes ?? {}).sort(),
      rootDir: i.DockerRootDir as string,
    };
  }

  private async call<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw classify(err);
    }
  }
}
