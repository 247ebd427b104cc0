/**
 * Runs one nginx container per deployment and converges it to (spec, config) without ever
 * interrupting traffic that does not need to be:
 *
 *   container missing, spec-hash differs,      nginx -t in a throwaway container ── fails ──▶ ProxyApplyError
 *   or paused/dead ─────────────────────────▶  │ ok: write nginx.conf, remove old,             (old one untouched)
 *                                              ▼     create + start                 ──▶ 'created'
 *   stopped, same hash ──▶ (check + write if the text differs) start               ──▶ 'created'
 *   running, same hash, same text on disk ──▶ nothing at all                        ──▶ 'unchanged'
 *   running, same hash, text differs ──▶ write nginx.conf.next, exec nginx -t ── fails ──▶ ProxyApplyError
 *                                        │ ok: rename over nginx.conf,                  (old config serves)
 *                                        ▼     exec nginx -s reload (graceful)      ──▶ 'reloaded'
 *
 * "Same text" is checked against nginx.conf on disk, which is replaced only after nginx accepted
 * the text, so it holds across agent restarts. Cost when unchanged: one container inspect and one
 * local file read.
 */
import { readdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { DNS_LABEL, matches } from '../../../common/allowlist.js';
import type { Logger } from '../../../common/log.js';
import type { ProxySpec } from '../../../proto/gen/fleet/v1/agent.js';
import { checkLabel } from './allow.js';
import {
  checkContainerOptions,
  PROXY_ROLE,
  type ProxyShape,
  proxyContainerName,
  proxyContainerOptions,
  proxyShape,
  proxySpecHash,
  tlsPlaceholders,
} from './container.js';
import { type CommandResult, type ProxyContainerState, type ProxyEngine, statusOf } from './engine.js';
import { CONFIG_NAME, NEXT_NAME, prepareConfigDir, readIfExists, writeAtomic } from './files.js';
import { maskApiKeys } from './keys.js';
import { PROXY_CONFIG_FILE, PROXY_NEXT_FILE } from './layout.js';

export type ProxySyncResult = 'unchanged' | 'reloaded' | 'created';

export interface ProxyDriver {
  /** Converges the nginx container of `deployment` to (spec, config). */
  sync(deployment: string, spec: ProxySpec, config: string): Promise<ProxySyncResult>;
  /** Removes the proxies (containers and config dirs) of deployments not in `keep`; returns the removed deployments. */
  prune(keep: ReadonlySet<string>): Promise<string[]>;
  /** Whether the deployment's nginx runs now (serving whatever config it last took). */
  running(deployment: string): Promise<boolean>;
}

/** nginx refused a config (its output, keys redacted, is in the message), or a reload failed. */
export class ProxyApplyError extends Error {
  override readonly name = 'ProxyApplyError';
}

export interface NginxProxyDriverOptions {
  /** The container engine, behind the narrow interface the driver needs (bounded calls). */
  engine: ProxyEngine;
  node: string;
  /** Host dir holding one config dir per deployment, e.g. /var/lib/fleet/agent/<node>/proxy. */
  configRoot: string;
  log: Logger;
}

/** nginx's messages may quote config tokens; the key map's are secrets. */
export function redactNginxOutput(output: string): string {
  return maskApiKeys(output)
    .replace(/Bearer\s+\S+/g, 'Bearer [redacted]')
    .trim()
    .slice(0, 4000);
}

/** The proxy driver over any ProxyEngine (Docker in production: agent/src/docker/proxy-engine.ts). */
export class NginxProxyDriver implements ProxyDriver {
  private readonly engine: ProxyEngine;
  private readonly node: string;
  private readonly log: Logger;
  /** The node network is made once per process; forgotten when a create says it is gone. */
  private network: string | undefined;

  constructor(private readonly opts: NginxProxyDriverOptions) {
    this.engine = opts.engine;
    this.node = checkLabel('node', opts.node);
    this.log = opts.log.child({ component: 'proxy' });
  }

  private dirOf(deployment: string) {
    return join(this.opts.configRoot, deployment);
  }

  async sync(deployment: string, spec: ProxySpec, config: string): Promise<ProxySyncResult> {
    checkLabel('deployment', deployment);
    const shape = proxyShape(spec);
    const hash = proxySpecHash(shape);
    const dir = this.dirOf(deployment);
    const info = await this.inspect(proxyContainerName(this.node, deployment));
    const stopped = info?.status === 'exited' || info?.status === 'created';
    const running = info?.running === true && !info.paused && !info.restarting;
    const shaped = info !== undefined && info.labels['fleet.spec-hash'] === hash && (running || stopped);
    // Without nginx.conf on disk nobody knows what nginx serves (or the mounted dir is gone): remake it.
    const onDisk = shaped ? await readIfExists(join(dir, CONFIG_NAME)) : undefined;
    if (!shaped || onDisk === undefined) {
      await this.create(deployment, shape, config, info?.id);
      return 'created';
    }
    if (running) {
      if (onDisk === config) return 'unchanged';
      await this.reload(deployment, info.id, config);
      return 'reloaded';
    }
    // Stopped with the right shape: the agent, not Docker, restarts it.
    if (onDisk !== config) await this.checkAndWrite(deployment, shape, config);
    try {
      await this.engine.start(info.id);
    } catch (err) {
      // After a daemon restart containerd can keep a dead task of the container ("task ...
      // already exists") and refuse every start: a fresh container is the way out.
      this.log.warn({ deployment, err: (err as Error).message }, 'proxy would not start; recreating it');
      await this.create(deployment, shape, config, info.id);
      return 'created';
    }
    this.log.info({ deployment }, 'proxy started');
    return 'created';
  }

  /** The config nginx serves now (nginx.conf on disk); undefined when the deployment has no proxy here. */
  currentConfig(deployment: string): Promise<string | undefined> {
    return readIfExists(join(this.dirOf(checkLabel('deployment', deployment)), CONFIG_NAME));
  }

  async running(deployment: string): Promise<boolean> {
    const info = await this.inspect(proxyContainerName(this.node, deployment)).catch(() => undefined);
    return info?.running === true;
  }

  private inspect(name: string): Promise<ProxyContainerState | undefined> {
    return this.engine.inspect(name);
  }

  /** nginx -t on `config` in a throwaway container of the proxy's image; then it becomes nginx.conf. */
  private async checkAndWrite(deployment: string, shape: ProxyShape, config: string): Promise<void> {
    const dir = this.dirOf(deployment);
    for (const [what, file] of [
      ['certificate', shape.tlsCertFile],
      ['key', shape.tlsKeyFile],
    ] as const) {
      if (file !== '' && !(await stat(file).catch(() => undefined))?.isFile())
        throw new ProxyApplyError(
          `TLS ${what} file ${file} of ${deployment} does not exist or is not a file`,
        );
    }
    await prepareConfigDir(dir, shape.tlsCertFile === '' ? [] : tlsPlaceholders(dir));
    await this.engine.ensureImage(shape.image);
    const next = join(dir, NEXT_NAME);
    await writeAtomic(next, config);
    const options = checkContainerOptions(
      { node: this.node, deployment, configDir: dir, shape },
      PROXY_NEXT_FILE,
    );
    const check = await this.engine.runToCompletion(options).catch(async (err) => {
      await rm(next, { force: true });
      throw err;
    });
    if (check.exitCode !== 0) {
      await rm(next, { force: true });
      throw new ProxyApplyError(
        `nginx rejected the config of ${deployment} (exit ${check.exitCode}): ${redactNginxOutput(check.output)}`,
      );
    }
    await rename(next, join(dir, CONFIG_NAME));
  }

  private async create(deployment: string, shape: ProxyShape, config: string, oldId?: string) {
    await this.checkAndWrite(deployment, shape, config);
    if (oldId) await this.removeContainer(oldId);
    this.network ??= await this.engine.ensureNetwork();
    const options = proxyContainerOptions({
      node: this.node,
      deployment,
      network: this.network,
      configDir: this.dirOf(deployment),
      shape,
    });
    let id: string;
    try {
      id = await this.engine.create(options);
    } catch (err) {
      if (statusOf(err) === 404) this.network = undefined;
      throw err;
    }
    try {
      await this.engine.start(id);
    } catch (err) {
      // A proxy that cannot start (port taken) is removed, not left behind half-made.
      await this.removeContainer(id).catch(() => {});
      throw err;
    }
    this.log.info({ deployment, container: id.slice(0, 12), replaced: Boolean(oldId) }, 'proxy created');
  }

  private async reload(deployment: string, id: string, config: string): Promise<void> {
    const dir = this.dirOf(deployment);
    const next = join(dir, NEXT_NAME);
    const conf = join(dir, CONFIG_NAME);
    await writeAtomic(next, config);
    const test = await this.engine
      .exec(id, ['nginx', '-t', '-q', '-c', PROXY_NEXT_FILE])
      .catch(async (err) => {
        await rm(next, { force: true });
        throw err;
      });
    if (test.exitCode !== 0) {
      await rm(next, { force: true });
      this.log.warn(
        { deployment, exitCode: test.exitCode },
        'nginx rejected the new config; the old one keeps serving',
      );
      throw new ProxyApplyError(
        `nginx rejected the new config of ${deployment} (exit ${test.exitCode}); the old config keeps serving: ${redactNginxOutput(test.output)}`,
      );
    }
    const previous = await readIfExists(conf);
    await rename(next, conf);
    // nginx.conf on disk must stay what nginx runs: a reload that did not happen puts the old text back.
    const restore = async () => {
      if (previous !== undefined) await writeAtomic(conf, previous);
      else await rm(conf, { force: true });
    };
    let result: CommandResult;
    const before = await this.workers(id).catch(() => new Map<string, string>());
    try {
      result = await this.engine.exec(id, ['nginx', '-c', PROXY_CONFIG_FILE, '-s', 'reload']);
    } catch (err) {
      await restore();
      throw err;
    }
    if (result.exitCode !== 0) {
      await restore();
      throw new ProxyApplyError(
        `nginx reload of ${deployment} failed (exit ${result.exitCode}): ${redactNginxOutput(result.output)}`,
      );
    }
    await this.reloadTakenEffect(id, before);
    this.log.info({ deployment }, 'proxy reloaded');
  }

  /** nginx worker processes by PID → their title ("nginx: worker process [is shutting down]"). */
  private async workers(id: string): Promise<Map<string, string>> {
    const top = await this.engine.top(id, '-eo pid,args');
    const pid = top.titles.findIndex((t) => t.toUpperCase() === 'PID');
    const cmd = top.titles.length - 1;
    const out = new Map<string, string>();
    for (const p of top.processes) {
      const title = p.slice(cmd).join(' ');
      if (/worker process/.test(title)) out.set(p[pid]!, title);
    }
    return out;
  }

  /**
   * `nginx -s reload` only signals the master: the new config serves once new workers run and the
   * old ones stopped accepting connections (they finish what they have). Callers stop replicas
   * right after a reload, so it waits for that moment (bounded: a slow box gets 3 s).
   */
  private async reloadTakenEffect(id: string, before: ReadonlyMap<string, string>): Promise<void> {
    if (before.size === 0) return;
    const deadline = Date.now() + 3_000;
    while (Date.now() < deadline) {
      const now = await this.workers(id).catch(() => undefined);
      if (!now) return;
      const fresh = [...now.keys()].some((pid) => !before.has(pid));
      const oldAccepting = [...before.keys()].some(
        (pid) => now.has(pid) && !/shutting down/.test(now.get(pid)!),
      );
      if (fresh && !oldAccepting) return;
      await new Promise((r) => setTimeout(r, 10));
    }
    this.log.warn({ container: id.slice(0, 12) }, 'nginx reload not confirmed within 3 s');
  }

  private async removeContainer(id: string): Promise<void> {
    await this.engine.remove(id);
  }

  async prune(keep: ReadonlySet<string>): Promise<string[]> {
    const removed = new Set<string>();
    for (const c of await this.engine.list()) {
      const role = c.labels['fleet.role'];
      const deployment = c.labels['fleet.deployment'] ?? '';
      // Check containers are throwaway: one that is not running was left by an agent that died mid-check.
      const leftover = role === `${PROXY_ROLE}-check` && c.state !== 'running';
      if (role !== PROXY_ROLE && role !== `${PROXY_ROLE}-check`) continue;
      if (keep.has(deployment) && !leftover) continue;
      await this.removeContainer(c.id);
      if (role === PROXY_ROLE) removed.add(deployment);
    }
    let entries: string[] = [];
    try {
      entries = await readdir(this.opts.configRoot);
    } catch (err) {
      if ((err as { code?: string }).code !== 'ENOENT') throw err;
    }
    for (const name of entries) {
      // Only what this driver made: deployment-named dirs.
      if (keep.has(name) || !matches(DNS_LABEL, name)) continue;
      await rm(join(this.opts.configRoot, name), { recursive: true, force: true });
      removed.add(name);
    }
    if (removed.size > 0) this.log.info({ deployments: [...removed].sort() }, 'proxies removed');
    return [...removed].sort();
  }
}
