import type { SerialValue } from '../rollout/batches.js';

/**
 * Types for playbook v1: the file a user writes to say what should run where.
 * The parser turns YAML text into a `Playbook` or a list of `PlaybookError`s; nothing downstream
 * ever sees a half-valid playbook ("nothing half-applied, ever").
 */

/** One problem in a playbook file, located at the YAML node that caused it so an editor can jump there. */
export interface PlaybookError {
  file: string;
  /** 1-based line of the offending node (the key for unknown keys, the value for wrong values). */
  line: number;
  /** 1-based column of the offending node. */
  col: number;
  message: string;
  /** What to change, when we can tell. */
  hint?: string;
}

/** What the caller decides, not the playbook. */
export interface ParseOptions {
  /** When set, bind-mount host paths must lie under one of these directories. */
  volumeRoots?: readonly string[];
  /**
   * The stored secrets, by name: with it every `{ secret: NAME }` must exist and suit its use,
   * and the playbook's `secret_pins` record the versions it was applied with. Without it (unit
   * tests of the grammar, the preview of a file) references are checked for form only.
   */
  secrets?: (name: string) => SecretInfo | undefined;
}

/** What apply may know of a stored secret: never its value. */
export interface SecretInfo {
  fingerprint: string;
  /** Holds a PEM certificate with its matching private key. */
  tls: boolean;
  /** Reads as "username:password". */
  credential: boolean;
  /** Non-empty lines. */
  lines: number;
}

/** `{ secret: NAME }` in a playbook: the value is a stored secret's. */
export interface SecretRef {
  secret: string;
}

/** All errors are collected rather than stopping at the first, so one edit round fixes a whole file. */
export type ParseResult = { ok: true; playbook: Playbook } | { ok: false; errors: PlaybookError[] };

/** A validated deployment: variables already substituted, defaults already filled in. */
export interface Playbook {
  /** Deployment name, a DNS label (`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`); it names containers and labels. */
  name: string;
  /** Host selectors: "all", a label key ("gpu") or "key=value". YAML may give one string; it is normalized to a list. */
  hosts: string[];
  /** The `vars:` mapping as written (kept so a plan can show where values came from). */
  vars: Record<string, string | number | boolean>;
  /** At least one service, keyed by a DNS-label name of at most 40 characters. */
  services: Record<string, PlaybookService>;
  /** The nginx reverse proxy each selected node runs in front of the replicas. */
  proxy?: PlaybookProxy;
  /**
   * Ansible's `serial`: a count ≥ 1, "N%" (1..100) of the targeted nodes, or a non-empty list of
   * those whose last value repeats. Absent: one batch of every targeted node.
   */
  serial?: SerialValue | SerialValue[];
  /** 0..100, per batch; the rollout halts when the failed + unreachable share EXCEEDS it (absent: 0). */
  max_fail_percentage?: number;
  /** How a revision rolls out; absent keys take the defaults of `rollout/policy.ts`. */
  rollout?: PlaybookRollout;
  /** Pull credentials by registry "host[:port]": a secret holding "username:password". */
  registry_auth?: Record<string, SecretRef>;
  /**
   * Not written by users: filled in at apply with the fingerprint of every secret the playbook
   * references (name → fingerprint), so a changed secret changes the content hash and rolls out
   * as a new revision, and the revision keeps delivering the version it was applied with.
   */
  secret_pins?: Record<string, string>;
}

/**
 * The `rollout:` mapping as written. Its defaults are not filled in by the parser (they live in
 * `rolloutPolicy`, and `healthy_deadline`'s depends on the services' start periods), so a playbook
 * without these keys keeps the content hash it had before they existed.
 */
export interface PlaybookRollout {
  /** A node counts healthy once every service stayed healthy this long (default 10s). */
  min_healthy_time?: Duration;
  /** A node not healthy this long after its push has failed; never below min_healthy_time. */
  healthy_deadline?: Duration;
  /** On halt, the touched nodes go back to the last stable revision (default false). */
  auto_rollback?: boolean;
  /** Every targeted node pulls the revision's images when the rollout starts (default true). */
  prefetch?: boolean;
  /** Batches start only inside this window: `cron` (node-cron syntax) opens it for `duration`. */
  window?: { cron: string; duration: Duration };
}

/** Durations as written (`5s`, `10m`); `duration.ts` turns them into milliseconds. */
export type Duration = string;

/**
 * Types are named `Playbook*` so they never collide with the wire types they become
 * (`ServiceSpec`, `EngineSpec`, `HealthSpec`, `ProxySpec` in proto/gen): `desired/spec.ts` maps
 * one to the other, converting durations and filling defaults.
 */

/** HTTP probe of each replica; defaults: interval 5s, timeout 2s, retries 3, start_period 0s. */
export interface PlaybookHealth {
  path: string;
  interval: Duration;
  timeout: Duration;
  retries: number;
  start_period: Duration;
}

export interface PlaybookProxy {
  /** nginx image (default nginx:1.27). */
  image: string;
  /** A port (published on every address) or "ADDRESS:PORT". */
  listen: number | string;
  routes: { path: string; service: string; stream: boolean; read_timeout?: Duration; rewrite?: string }[];
  rate_limit?: { per_second: number; burst: number };
  /** Certificate and key files on the node, or one secret holding both (PEM). */
  tls?: { cert: string; key: string } | SecretRef;
  /** A file on the node with one API key per line; requests must send one as a bearer token. */
  api_keys_file?: string;
  /** The API keys from a secret (one per line), in place of `api_keys_file`. */
  api_keys?: SecretRef;
}

/** What runs on each selected host for one service. */
export interface PlaybookService {
  /** Docker image reference: `registry[:port]/path[:tag][@sha256:...]`, lowercase repository path. */
  image: string;
  /** Replicas per host, 1..64 (default 1). */
  replicas: number;
  /** Environment; values are strings (YAML numbers/booleans are rejected, never coerced) or secrets. Default {}. */
  env: Record<string, string | SecretRef>;
  /** Container port the service listens on, 1..65535. */
  port?: number;
  /** Host port published on 127.0.0.1 to `port`; needs `port` and exactly one replica. */
  publish?: number;
  /** argv override; every element a non-empty string. */
  command?: string[];
  /** Bind mounts "HOST:CONTAINER[:ro|rw]" with absolute paths; sensitive host paths are refused. Default []. */
  volumes: string[];
  /** GPUs per replica; the agent assigns distinct GPUs by UUID. */
  gpus?: number;
  /** Free memory each of those GPUs needs, MiB. */
  gpu_memory_mib?: number;
  /** The model file as the container sees it (under a volume), and optionally its sha256: preflight checks both. */
  model?: { path: string; sha256?: string };
  /** HTTP probe; without it a running container counts as ready. */
  health?: PlaybookHealth;
  /** An engine container beside each replica (sharing its network namespace); GPUs go to it. */
  engine?: PlaybookEngine;
}

/** The engine half of a replica: started, stopped and restarted with the service's container. */
export interface PlaybookEngine {
  image: string;
  env: Record<string, string | SecretRef>;
  command?: string[];
  /** Port it listens on in the shared namespace (the service reaches it on 127.0.0.1:port). */
  port: number;
  volumes: string[];
  health?: PlaybookHealth;
}
