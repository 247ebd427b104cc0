/**
 * The systemd units for real: `fleet agent install|uninstall` and `fleet server install|uninstall`
 * through bin/fleet.js on a scratch root (--root: systemctl writes the enable links offline, the
 * way it would on a host), checked with systemd's own tools: `systemd-analyze verify` must have
 * nothing to say about either unit, `systemd-analyze security --offline` scores the sandbox, and
 * `systemctl --root is-enabled` reads the links back. Uninstall must leave the scratch root exactly
 * as it was; every refusal must leave it untouched. Nothing here touches the machine's own /etc.
 */
import assert from 'node:assert/strict';
import { type SpawnSyncReturns, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  realpathSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { FLEET_BIN, ROOT } from '../helpers/procs.js';
import { parseUnit, service } from '../helpers/unit-file.js';

const SECRET = 'abcdefghijklmnopqrstuvwxyz234567';
const TOKEN = `K10${'c4'.repeat(32)}::abcdefgh.${SECRET}`;
const AGENT_UNIT = 'etc/systemd/system/fleet-agent.service';
const SERVER_UNIT = 'etc/systemd/system/fleet-server.service';
const INSTALL_HINT =
  "apt-get install systemd (Debian's package; scripts/services.sh ensure_packages installs it)";

/** Runs the real `fleet` to completion; `env` replaces the variables it names. */
function fleet(args: string[], opts: { env?: Record<string, string>; uid?: number } = {}) {
  const r = spawnSync(process.execPath, [FLEET_BIN, ...args], {
    encoding: 'utf8',
    env: { ...process.env, FLEET_JOIN_TOKEN: '', ...opts.env },
    ...(opts.uid === undefined ? {} : { uid: opts.uid, gid: opts.uid }),
  });
  if (r.error) throw r.error;
  return r;
}

/**
 * Runs `fn` with every folder above the checkout traversable by others (o+x), as uid 65534 needs to
 * reach bin/fleet.js: a clone under `mktemp -d` (0700) is not. Each mode is restored afterwards.
 */
function asNobody<T>(fn: () => T): T {
  const changed: [string, number][] = [];
  for (let dir = dirname(FLEET_BIN); dir !== dirname(dir); dir = dirname(dir)) {
    const mode = statSync(dir).mode & 0o7777;
    if ((mode & 0o001) === 0) {
      chmodSync(dir, mode | 0o001);
      changed.push([dir, mode]);
    }
  }
  try {
    return fn();
  } finally {
    for (const [dir, mode] of changed) chmodSync(dir, mode);
  }
}

const out = (r: SpawnSyncReturns<string>) => `${r.stdout}${r.stderr}`;

/** Asserts exit `code`, naming what was printed when it is not. */
function exits(r: SpawnSyncReturns<string>, code: number) {
  assert.equal(r.status, code, `exit ${r.status}, output:\n${out(r)}`);
}

/** Every entry under `root`: path, type, mode, and the link target or a hash of the content. */
function snapshot(root: string): string[] {
  const rows: string[] = [];
  const walk = (rel: string) => {
    for (const name of readdirSync(join(root, rel)).sort()) {
      const p = join(rel, name);
      const st = lstatSync(join(root, p));
      const mode = (st.mode & 0o7777).toString(8);
      if (st.isSymbolicLink()) rows.push(`${p} link ${readlinkSync(join(root, p))}`);
      else if (st.isDirectory()) {
        rows.push(`${p}/ ${mode}`);
        walk(p);
      } else
        rows.push(
          `${p} ${mode} ${createHash('sha256')
            .update(readFileSync(join(root, p)))
            .digest('hex')}`,
        );
    }
  };
  walk('');
  return rows;
}

/** A scratch root shaped like a host: systemd's folders with another unit enabled, TLS files in /etc/fleet. */
function scratchRoot(): string {
  const root = mkdtempSync(join(tmpdir(), 'fleet-systemd-'));
  mkdirSync(join(root, 'etc/systemd/system/multi-user.target.wants'), { recursive: true });
  symlinkSync(
    '/lib/systemd/system/ssh.service',
    join(root, 'etc/systemd/system/multi-user.target.wants/ssh.service'),
  );
  mkdirSync(join(root, 'etc/fleet/tls'), { recursive: true });
  writeFileSync(join(root, 'etc/fleet/tls/api.crt'), 'a certificate nginx serves\n', { mode: 0o644 });
  mkdirSync(join(root, 'var/lib'), { recursive: true });
  return root;
}

/** `systemd-analyze verify` on the installed unit: exit 0 and not one warning. */
function verify(unitFile: string) {
  const r = spawnSync('systemd-analyze', ['verify', unitFile], { encoding: 'utf8' });
  assert.equal(r.error, undefined, `systemd-analyze: ${r.error?.message}; ${INSTALL_HINT}`);
  assert.equal(`${r.status} ${r.stdout}${r.stderr}`, '0 ', `systemd-analyze verify ${unitFile}`);
}

/** `systemd-analyze security --offline`: the exposure score (0 safest, 10 unprotected), below `max`. */
function exposure(unitFile: string, max: number): number {
  const r = spawnSync(
    'systemd-analyze',
    ['security', '--offline=true', '--no-pager', `--threshold=${max * 10}`, unitFile],
    { encoding: 'utf8' },
  );
  const m = /Overall exposure level for \S+: ([0-9.]+)/.exec(r.stdout);
  assert.ok(m, `no exposure level in:\n${r.stdout}${r.stderr}`);
  assert.equal(r.status, 0, `exposure ${m[1]} is above ${max}`);
  return Number(m[1]);
}

function isEnabled(root: string, unit: string): string {
  return spawnSync('systemctl', [`--root=${root}`, 'is-enabled', unit], { encoding: 'utf8' }).stdout.trim();
}

/** `fleet agent install` into `root` with a valid address and token, then `extra` (later flags win). */
const agentInstall = (root: string, ...extra: string[]) => [
  'agent',
  'install',
  '--server',
  'cp:7443',
  '--join-token',
  TOKEN,
  '--root',
  root,
  ...extra,
];

const mode = (p: string) => (lstatSync(p).mode & 0o777).toString(8);

describe('hardened systemd units: install and uninstall on a scratch root', { timeout: 120_000 }, () => {
  const roots: string[] = [];
  const fresh = () => {
    const r = scratchRoot();
    roots.push(r);
    return r;
  };
  after(() => {
    for (const r of roots) rmSync(r, { recursive: true, force: true });
  });

  before(() => {
    for (const tool of ['systemd-analyze', 'systemctl'])
      assert.equal(spawnSync(tool, ['--version']).error, undefined, `${tool} is missing: ${INSTALL_HINT}`);
  });

  test('fleet agent install: env file 0600 with the token, a unit without it, enabled; verify is silent', () => {
    const root = fresh();
    const seeded = snapshot(root);
    const r = fleet([
      'agent',
      'install',
      '--server',
      'cp.example.internal:7443',
      '--join-token',
      TOKEN,
      '--label',
      'gpu=true',
      '--node',
      'gpu-01',
      '--root',
      root,
    ]);
    exits(r, 0);
    assert.ok(!out(r).includes(SECRET), 'the token is never printed');
    assert.match(r.stdout, /wrote \/etc\/fleet\/agent.env \(settings, mode 0600\)/);

    const env = join(root, 'etc/fleet/agent.env');
    assert.equal(mode(env), '600');
    assert.match(readFileSync(env, 'utf8'), new RegExp(`^FLEET_JOIN_TOKEN=${TOKEN}$`, 'm'));
    assert.match(readFileSync(env, 'utf8'), /^FLEET_AGENT_ARGS=--label gpu=true$/m);
    const unitFile = join(root, AGENT_UNIT);
    const unitText = readFileSync(unitFile, 'utf8');
    assert.equal(mode(unitFile), '644');
    assert.ok(!unitText.includes(SECRET));
    const exec = service(parseUnit(unitText), 'ExecStart') ?? '';
    assert.ok(
      exec.startsWith(`${realpathSync(process.execPath)} ${join(realpathSync(ROOT), 'bin/fleet.js')} agent `),
      exec,
    );

    assert.equal(
      readlinkSync(join(root, 'etc/systemd/system/multi-user.target.wants/fleet-agent.service')),
      '/etc/systemd/system/fleet-agent.service',
    );
    assert.equal(isEnabled(root, 'fleet-agent.service'), 'enabled');
    verify(unitFile);
    exposure(unitFile, 3.5);

    const u = fleet(['agent', 'uninstall', '--root', root]);
    exits(u, 0);
    assert.match(u.stdout, /Managed containers keep running; a reinstall adopts them/);
    assert.deepEqual(
      snapshot(root),
      seeded,
      'uninstall leaves the root as it was (the TLS folder and ssh.service too)',
    );
    assert.equal(isEnabled(root, 'fleet-agent.service'), '');
  });

  test('fleet agent uninstall keeps the node key; --purge deletes it', () => {
    const root = fresh();
    mkdirSync(join(root, 'var/lib/fleet-agent/gpu-01/tls'), { recursive: true, mode: 0o700 });
    writeFileSync(join(root, 'var/lib/fleet-agent/gpu-01/tls/node.key'), 'key', { mode: 0o600 });
    const withState = snapshot(root);
    const install = ['agent', 'install', '--server', '10.0.0.1:7443', '--join-token', TOKEN, '--root', root];
    exits(fleet(install), 0);
    const kept = fleet(['agent', 'uninstall', '--root', root]);
    exits(kept, 0);
    assert.match(kept.stdout, /kept \/var\/lib\/fleet-agent .*--purge deletes it/);
    assert.deepEqual(snapshot(root), withState);

    exits(fleet(install), 0);
    const purged = fleet(['agent', 'uninstall', '--root', root, '--purge']);
    exits(purged, 0);
    assert.match(purged.stdout, /removed \/var\/lib\/fleet-agent and everything in it/);
    assert.match(purged.stdout, /must enroll again with a new join token/);
    assert.deepEqual(
      snapshot(root),
      withState.filter((row) => !row.startsWith('var/lib/fleet-agent')),
    );
  });

  test('fleet server install: a dynamic user, the next steps printed; verify is silent; uninstall restores', () => {
    const root = fresh();
    // A host without /etc/fleet: install makes it, uninstall takes it away again.
    rmSync(join(root, 'etc/fleet'), { recursive: true });
    const seeded = snapshot(root);
    const r = fleet([
      'server',
      'install',
      '--grpc-listen',
      '0.0.0.0:7443',
      '--tls-name',
      'cp.example.internal',
      '--root',
      root,
    ]);
    exits(r, 0);
    for (const line of [
      /the bootstrap admin token +\/var\/lib\/fleet\/admin-token/,
      /its CA certificate +\/var\/lib\/fleet\/ca\.crt/,
      /fleet login --server http:\/\/127\.0\.0\.1:7080 --token-file \/var\/lib\/fleet\/admin-token/,
      /fleet join-token create/,
      /fleet agent install --server <this host>:7443 --join-token <token>/,
    ])
      assert.match(r.stdout, line);
    const unitFile = join(root, SERVER_UNIT);
    const u = parseUnit(readFileSync(unitFile, 'utf8'));
    assert.equal(service(u, 'DynamicUser'), 'yes');
    assert.equal(service(u, 'StateDirectory'), 'fleet');
    assert.equal(mode(join(root, 'etc/fleet/server.env')), '600');
    assert.match(
      readFileSync(join(root, 'etc/fleet/server.env'), 'utf8'),
      /^FLEET_GRPC_LISTEN=0\.0\.0\.0:7443$/m,
    );
    assert.equal(isEnabled(root, 'fleet-server.service'), 'enabled');
    verify(unitFile);
    exposure(unitFile, 2.5);

    exits(fleet(['server', 'uninstall', '--root', root]), 0);
    assert.deepEqual(snapshot(root), seeded);
  });

  test('fleet server on port 443: the one capability, still verified; --purge takes the private state too', () => {
    const root = fresh();
    // systemd's home for every dynamic user's state: shared, so a purge leaves the folder itself.
    mkdirSync(join(root, 'var/lib/private'), { mode: 0o700 });
    const seeded = snapshot(root);
    mkdirSync(join(root, 'var/lib/private/fleet'), { recursive: true, mode: 0o700 });
    writeFileSync(join(root, 'var/lib/private/fleet/ca.key'), 'key', { mode: 0o600 });
    symlinkSync('private/fleet', join(root, 'var/lib/fleet'));
    exits(fleet(['server', 'install', '--listen', '0.0.0.0:443', '--root', root]), 0);
    const unitFile = join(root, SERVER_UNIT);
    assert.equal(
      service(parseUnit(readFileSync(unitFile, 'utf8')), 'AmbientCapabilities'),
      'CAP_NET_BIND_SERVICE',
    );
    verify(unitFile);
    const r = fleet(['server', 'uninstall', '--root', root, '--purge']);
    exits(r, 0);
    assert.match(r.stdout, /every agent must enroll again/);
    assert.deepEqual(snapshot(root), seeded);
  });

  test('an existing unit: refused without --force, replaced with it', () => {
    const root = fresh();
    const args = agentInstall(root, '--node', 'a');
    exits(fleet(args), 0);
    const installed = snapshot(root);
    const again = fleet(args);
    exits(again, 2);
    assert.match(again.stderr, /fleet-agent.service already exists: pass --force/);
    assert.deepEqual(snapshot(root), installed);
    exits(fleet(agentInstall(root, '--node', 'b', '--force')), 0);
    assert.match(readFileSync(join(root, 'etc/fleet/agent.env'), 'utf8'), /^FLEET_NODE=b$/m);
    exits(fleet(['agent', 'uninstall', '--root', root]), 0);
  });

  describe('refusals change nothing', () => {
    const root = scratchRoot();
    roots.push(root);
    const seeded = snapshot(root);
    const agent = (...extra: string[]) => agentInstall(root, ...extra);
    const cases: [string, string[], { env?: Record<string, string>; uid?: number }, number, RegExp][] = [
      ['a server without a port', agent('--server', 'cp'), {}, 2, /invalid --server "cp" \(HOST:PORT/],
      ['a bad label', agent('--label', 'a b'), {}, 1, /invalid label "a b"/],
      ['a bad node name', agent('--node', 'Bad_Name'), {}, 2, /invalid node name "Bad_Name"/],
      [
        'a malformed token',
        agent('--join-token', `${TOKEN}x`),
        {},
        2,
        /invalid join token: the secret must be/,
      ],
      [
        'no token',
        ['agent', 'install', '--server', 'cp:7443', '--root', root],
        {},
        2,
        /a join token is required/,
      ],
      [
        'a --root that is no directory',
        agent('--root', join(root, 'nope')),
        {},
        2,
        /--root ".*nope" is not a directory/,
      ],
      [
        'no systemctl on PATH',
        agent(),
        { env: { PATH: '/nonexistent' } },
        1,
        /systemctl is not on PATH.*apt-get install systemd/,
      ],
      [
        'DATA_DIR outside /var/lib',
        ['server', 'install', '--data-dir', '/srv/x', '--root', root],
        {},
        2,
        /--data-dir "\/srv\/x" must be/,
      ],
      [
        'a bad listen address',
        ['server', 'install', '--listen', '0.0.0.0', '--root', root],
        {},
        2,
        /invalid --listen/,
      ],
    ];
    for (const [what, args, opts, code, re] of cases)
      test(`${what}: exit ${code}, says why`, () => {
        const r = fleet(args, opts);
        exits(r, code);
        assert.match(r.stderr, re);
        assert.ok(!out(r).includes(SECRET), 'the token is never printed');
        assert.deepEqual(snapshot(root), seeded);
      });

    test('not root and no --root: refused before anything (the real /etc is untouched)', () => {
      const unit = '/etc/systemd/system/fleet-agent.service';
      const had = existsSync(unit);
      const r = asNobody(() =>
        fleet(['agent', 'install', '--server', 'cp:7443', '--join-token', TOKEN], { uid: 65534 }),
      );
      exits(r, 1);
      assert.match(r.stderr, /writes \/etc and talks to systemd: run it as root \(or with --root DIR\)/);
      assert.equal(existsSync(unit), had);
    });

    test('uninstall of nothing says so and changes nothing', () => {
      const r = fleet(['agent', 'uninstall', '--root', root, '--purge']);
      exits(r, 0);
      assert.match(r.stdout, /fleet-agent is not installed .*nothing to do/);
      assert.deepEqual(snapshot(root), seeded);
    });
  });
});
