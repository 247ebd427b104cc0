import type { ContainerCreateSpec } from '../docker/types.js';

/** A command's exit code and output (stdout and stderr together, in arrival order). */
export interface CommandResult {
  exitCode: number;
  output: string;
}

/** What the driver reads of a proxy container. */
export interface ProxyContainerState {
  id: string;
  /** Docker's state word: created, running, exited, paused… */
  status: string;
  running: boolean;
  paused: boolean;
  restarting: boolean;
  labels: Record<string, string>;
}

/** A managed container of the node, as the prune pass sees it. */
export interface ListedContainer {
  id: string;
  state: string;
  labels: Record<string, string>;
}

/**
 * The container-engine operations the proxy driver needs, and nothing more. Docker implements it
 * in agent/src/docker/proxy-engine.ts (every call bounded: a hung daemon must not hang the
 * reconcile loop); unit tests use a fake, as the reconciler's do with ContainerRuntime. Errors
 * keep Docker's `statusCode` so the driver can tell "not found" from a failure.
 */
export interface ProxyEngine {
  /** The container by name or id; undefined when there is none. */
  inspect(name: string): Promise<ProxyContainerState | undefined>;
  /** Creates a container (not started); its id. */
  create(options: ContainerCreateSpec): Promise<string>;
  start(id: string): Promise<void>;
  /** Force-removes; a container already gone is fine. */
  remove(id: string): Promise<void>;
  /** Runs `cmd` in a running container and waits for it. */
  exec(id: string, cmd: string[]): Promise<CommandResult>;
  /** Creates, runs to completion and removes a throwaway container. */
  runToCompletion(options: ContainerCreateSpec): Promise<CommandResult>;
  /** Pulls `image` unless it is present. */
  ensureImage(image: string): Promise<void>;
  /** The node's network, created unless it exists; its name. */
  ensureNetwork(): Promise<string>;
  /** `docker top` with the given ps arguments. */
  top(id: string, psArgs: string): Promise<{ titles: string[]; processes: string[][] }>;
  /** Every managed container of the node. */
  list(): Promise<ListedContainer[]>;
}

/** Docker's HTTP status of a failed call (404: not found), when it has one. */
export const statusOf = (err: unknown) => (err as { statusCode?: number }).statusCode;
