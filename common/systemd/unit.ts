/**
 * systemd unit and environment files as data, rendered by pure functions: the agent's and the
 * control plane's units are built from these pieces, so one renderer per unit is the only copy of
 * it (nothing hand-written drifts beside it). Every directive carries the reason it is there, and
 * the reason is rendered as a comment above it: an operator reading `systemctl cat` sees why.
 */

/** One `Key=value` line and why it is set (rendered as `# why` above it; empty: no comment). */
export interface Directive {
  key: string;
  value: string;
  why?: string;
}

/** The three sections of a service unit, in file order. */
export interface UnitSpec {
  /** Comment lines at the top of the file (without `# `). */
  header: readonly string[];
  unit: readonly Directive[];
  service: readonly Directive[];
  install: readonly Directive[];
}

/** Shorthand for a directive. */
export const d = (key: string, value: string, why?: string): Directive => ({ key, value, why });

/** A comment alone: why a directive one might expect is absent. */
export const absent = (why: string): Directive => ({ key: '', value: '', why });

function section(name: string, directives: readonly Directive[]): string[] {
  const out = [`[${name}]`];
  for (const x of directives) {
    if (x.why) out.push(...x.why.split('\n').map((l) => `# ${l}`));
    if (x.key) out.push(`${x.key}=${x.value}`);
  }
  return out;
}

/** The unit file's text: header comments, then [Unit], [Service], [Install]. */
export function renderUnit(spec: UnitSpec): string {
  return [
    ...spec.header.map((l) => (l ? `# ${l}` : '#')),
    ...section('Unit', spec.unit),
    '',
    ...section('Service', spec.service),
    '',
    ...section('Install', spec.install),
    '',
  ].join('\n');
}

/**
 * Restart policy both daemons share. Restart=always brings a crashed (or cleanly exited) daemon
 * back; the start limit stops a crash loop from spinning forever and flooding the journal, and a
 * usage error (exit 2, fleet's code for bad input) is not retried: it cannot fix itself.
 */
export const RESTART: readonly Directive[] = [
  d('Restart', 'always', 'Back after any exit: a host without its daemon is a host nobody manages.'),
  d('RestartSec', '5s', 'A pause between restarts, so a failing dependency gets time to come back.'),
  d(
    'RestartPreventExitStatus',
    '2',
    'Exit 2 is fleet\'s "bad input" (a flag or setting is wrong): restarting cannot fix it.',
  ),
];

/** [Unit]-section start limits (systemd reads them there, not in [Service]). */
export const START_LIMITS: readonly Directive[] = [
  d(
    'StartLimitIntervalSec',
    '10min',
    'At most 10 starts in 10 minutes, then the unit stays failed (visible in systemctl status)\ninstead of crash-looping forever.',
  ),
  d('StartLimitBurst', '10'),
];

/**
 * Sandboxing that fits both daemons: Node processes that read their own files, write one state
 * directory, speak TCP, and never need to gain privileges, load modules, touch kernel tunables or
 * create namespaces. What differs (devices, user, capabilities, address families) is added by
 * each unit. Deliberately absent: MemoryDenyWriteExecute (V8's JIT maps memory writable and
 * executable; the process would crash at start) and an allow-list SystemCallFilter=@system-service
 * (libuv's io_uring and future Node versions are hard to pin down; the deny-list below is safe).
 */
export const HARDENING: readonly Directive[] = [
  d('NoNewPrivileges', 'yes', 'Nothing the daemon runs can gain privileges through setuid binaries.'),
  d(
    'ProtectSystem',
    'strict',
    'The whole file system is read-only for the daemon; it writes only its StateDirectory=.',
  ),
  d(
    'ProtectHome',
    'yes',
    'No access to /home, /root, /run/user: fleet never needs them (install refuses a checkout there).',
  ),
  d('PrivateTmp', 'yes', 'A private /tmp: nothing the daemon keeps there is shared with other processes.'),
  d('ProtectKernelTunables', 'yes', '/proc/sys and /sys read-only: reading facts is all fleet does there.'),
  d('ProtectKernelModules', 'yes', 'No module loading.'),
  d('ProtectKernelLogs', 'yes', 'No access to the kernel log buffer.'),
  d('ProtectControlGroups', 'yes', 'The cgroup tree read-only (Docker, not fleet, manages cgroups).'),
  d('ProtectHostname', 'yes', 'The host name can be read, not changed.'),
  d('RestrictSUIDSGID', 'yes', 'No setuid or setgid files can be created.'),
  d('RestrictRealtime', 'yes', 'No realtime scheduling (it could starve the host).'),
  d('RestrictNamespaces', 'yes', 'The daemon creates no namespaces (Docker does that for containers).'),
  d('LockPersonality', 'yes', 'No switching the execution domain.'),
  d('SystemCallArchitectures', 'native', 'Only native system calls (no 32-bit ABI tricks).'),
  d(
    'SystemCallFilter',
    '~@clock @cpu-emulation @debug @module @mount @obsolete @raw-io @reboot @swap',
    'System calls no fleet daemon makes: setting clocks, ptrace, mounting, modules, raw I/O, reboot, swap.',
  ),
  d(
    'SystemCallErrorNumber',
    'EPERM',
    'A refused system call fails with EPERM instead of killing the daemon.',
  ),
  d('UMask', '0077', 'Files the daemon creates (keys, tokens, state) are owner-only by default.'),
];

/** Characters allowed in paths written into a unit: no quoting, no `%` specifiers, no `$`. */
const SAFE_PATH = /^\/[A-Za-z0-9._/+@-]*$/;

/**
 * Checks that a path can stand in ExecStart= as is. A space, `%`, `$` or quote would need systemd
 * quoting or expand as a specifier; refusing is clearer than escaping.
 */
export function checkUnitPath(what: string, path: string): string | undefined {
  if (SAFE_PATH.test(path)) return undefined;
  return `${what} ${JSON.stringify(path)} has characters a unit file would need quoted or would expand (use a path of letters, digits and ._/+@-)`;
}

/** One `KEY=value` line of an EnvironmentFile= and its comment. */
export interface EnvEntry {
  key: string;
  value: string;
  why?: string;
}

/**
 * Values an EnvironmentFile= holds without quoting: no whitespace but single spaces between words,
 * no quotes, backslashes, `$` or newlines. Everything fleet writes there passes its own stricter
 * check first; this is the last guard against a line that means something else to systemd.
 */
const SAFE_ENV_VALUE = /^$|^[A-Za-z0-9._/:,=@+[\]-]+( [A-Za-z0-9._/:,=@+[\]-]+)*$/;

/** The env file's text. Throws on a value that systemd would read differently from what was meant. */
export function renderEnvFile(header: readonly string[], entries: readonly EnvEntry[]): string {
  const lines = header.map((l) => (l ? `# ${l}` : '#'));
  for (const e of entries) {
    if (!/^[A-Z][A-Z0-9_]*$/.test(e.key) || !SAFE_ENV_VALUE.test(e.value))
      throw new Error(`cannot write ${e.key} to an environment file: unsupported characters`);
    if (e.why) lines.push(...e.why.split('\n').map((l) => `# ${l}`));
    lines.push(`${e.key}=${e.value}`);
  }
  return `${lines.join('\n')}\n`;
}

/**
 * `HOST:PORT` as an agent dials or a server listens: a DNS name, an IPv4 address or a bracketed
 * IPv6 address, and a port 1-65535. Returns the port, or throws with what is wrong.
 */
export function parseHostPort(what: string, v: string): { host: string; port: number } {
  const m = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?):([0-9]{1,5})$/.exec(v);
  const port = m ? Number(m[3]) : 0;
  if (!m || port < 1 || port > 65535)
    throw new Error(
      `invalid ${what} ${JSON.stringify(v)} (HOST:PORT: a name, an IPv4 address or [IPv6], and a port 1-65535)`,
    );
  return { host: m[1]!, port };
}
