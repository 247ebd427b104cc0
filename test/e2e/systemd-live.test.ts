/**
 * fleet's units under a running systemd: a container with systemd as PID 1 (test/images/systemd)
 * where `fleet server install` and `fleet agent install` take their live path (daemon-reload,
 * enable --now). The control plane must start inside its sandbox as a dynamic user and write its
 * CA and admin token; the agent must enroll with a join token and report facts from Docker (the
 * host's daemon, through the socket) from inside its own sandbox; uninstall must stop, disable and
 * remove both. Node and this checkout are bind-mounted read-only at their host paths.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { realpathSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ROOT, waitFor } from '../helpers/procs.js';

const IMAGE = 'fleet-test/systemd:1';
const NAME = `fleet-systemd-live-${process.pid}`;
const BASE = process.env.FLEET_BASE_IMAGE ?? 'fleet/base:bookworm';
const NODE = 'systemd-live';

function docker(args: string[], timeoutMs = 120_000) {
  const r = spawnSync('docker', args, { encoding: 'utf8', timeout: timeoutMs });
  if (r.error) throw r.error;
  return r;
}

/** A shell command in the container, as root with HOME set (fleet login writes its config there). */
function sh(cmd: string) {
  return docker(['exec', '-e', 'HOME=/root', NAME, 'sh', '-c', cmd]);
}

/** Like sh, but the command must succeed; returns its stdout. */
function ok(cmd: string): string {
  const r = sh(cmd);
  assert.equal(r.status, 0, `${cmd}\nexit ${r.status}\n${r.stdout}${r.stderr}`);
  return r.stdout;
}

/** Waits for `what`; when it never comes, the unit's journal goes into the failure. */
async function waitOrJournal<T>(unit: string, what: string, fn: () => T | false, ms: number): Promise<T> {
  try {
    return await waitFor(what, fn, ms, 500);
  } catch (err) {
    const journal = sh(`journalctl -u ${unit} --no-pager -n 40 -o cat`).stdout;
    throw new Error(`${(err as Error).message}\njournal of ${unit}:\n${journal}`);
  }
}

const checkout = realpathSync(ROOT);
const node = realpathSync(process.execPath);
/**
 * The checkout is mounted at /opt/fleet in the container, wherever it lives here (a CI clone may sit
 * under /tmp, which install rightly refuses: the units' sandbox hides it).
 */
const INSIDE = '/opt/fleet';
const fleet = `${node} ${INSIDE}/bin/fleet.js`;
const modules = realpathSync(join(ROOT, 'node_modules'));

describe('the units under a running systemd', { timeout: 300_000 }, () => {
  before(() => {
    const build = docker(
      ['build', '-q', '--build-arg', `BASE=${BASE}`, '-t', IMAGE, join(ROOT, 'test/images/systemd')],
      240_000,
    );
    assert.equal(build.status, 0, `docker build: ${build.stderr}`);
    // node_modules is mounted at its own path too when it lies outside the checkout (a symlink).
    const own = [node, ...(modules.startsWith(`${checkout}/`) ? [] : [modules])];
    const mounts = [`${checkout}:${INSIDE}:ro`, ...own.map((p) => `${p}:${p}:ro`)].flatMap((m) => ['-v', m]);
    const run = docker([
      'run',
      '-d',
      '--name',
      NAME,
      // What systemd as PID 1 needs in a container: mount namespaces for the sandbox, the cgroup tree.
      '--cap-add',
      'SYS_ADMIN',
      '--security-opt',
      'seccomp=unconfined',
      '--security-opt',
      'apparmor=unconfined',
      '--cgroupns=host',
      '-v',
      '/sys/fs/cgroup:/sys/fs/cgroup:rw',
      '--tmpfs',
      '/run',
      '--tmpfs',
      '/run/lock',
      '--tmpfs',
      '/tmp',
      '-v',
      '/var/run/docker.sock:/var/run/docker.sock',
      ...mounts,
      IMAGE,
    ]);
    assert.equal(run.status, 0, `docker run: ${run.stderr}`);
  });

  after(() => {
    docker(['stop', '-t', '20', NAME]);
    docker(['rm', '-f', NAME]);
  });

  test('systemd is up in the container', async () => {
    await waitFor(
      'systemd to finish booting',
      () => /^(running|degraded)/.test(sh('systemctl is-system-running').stdout),
      60_000,
      500,
    );
  });

  test('fleet server install: started as its own user, writes its CA and admin token', async () => {
    const out = ok(`${fleet} server install --grpc-listen 127.0.0.1:7443`);
    assert.match(out, /fleet-server is started/);
    await waitOrJournal(
      'fleet-server',
      'the admin token',
      () => sh('test -s /var/lib/fleet/admin-token').status === 0,
      60_000,
    );
    assert.equal(ok('systemctl is-active fleet-server').trim(), 'active');
    assert.equal(ok('systemctl is-enabled fleet-server').trim(), 'enabled');
    // A dynamic user, not root, owns DATA_DIR; the key and token are owner-only.
    const owner = ok(
      'stat -c "%U %a" /var/lib/private/fleet /var/lib/private/fleet/ca.key /var/lib/private/fleet/admin-token',
    );
    assert.match(owner, /^(?!root)\S+ 700\n\S+ 600\n\S+ 600\n$/);
    const props = ok(
      'systemctl show fleet-server -p NoNewPrivileges -p ProtectSystem -p DynamicUser -p PrivateDevices',
    );
    assert.match(props, /NoNewPrivileges=yes/);
    assert.match(props, /ProtectSystem=strict/);
    assert.match(props, /DynamicUser=yes/);
    assert.match(props, /PrivateDevices=yes/);
    ok(
      `${fleet} login --server https://127.0.0.1:7080 --token-file /var/lib/fleet/admin-token --ca-file /var/lib/fleet/ca.crt`,
    );
  });

  test('fleet agent install: enrolls through its sandbox and reports facts from Docker', async () => {
    ok(`${fleet} join-token create --label gpu=true > /root/token`);
    const out = ok(
      `${fleet} agent install --server 127.0.0.1:7443 --join-token "$(cat /root/token)" --node ${NODE} --label zone=a`,
    );
    assert.ok(!out.includes(ok('cat /root/token').trim()), 'the token is never printed');
    const facts = await waitOrJournal(
      'fleet-agent',
      'the agent to connect and report Docker facts',
      () => {
        const r = sh(`${fleet} nodes ${NODE}`);
        return (
          r.status === 0 && /status: +connected/.test(r.stdout) && /docker: +\d/.test(r.stdout) && r.stdout
        );
      },
      90_000,
    );
    assert.match(facts, /labels: +zone=a,gpu=true/);
    assert.equal(ok('systemctl show fleet-agent -p KillMode').trim(), 'KillMode=process');
    assert.equal(ok('stat -c %a /etc/fleet/agent.env').trim(), '600');
  });

  test('uninstall stops, disables and removes both; --purge takes the control plane data', () => {
    assert.match(ok(`${fleet} agent uninstall`), /Managed containers keep running/);
    ok(`${fleet} server uninstall --purge`);
    for (const unit of ['fleet-agent', 'fleet-server'])
      assert.equal(sh(`systemctl is-active ${unit}`).stdout.trim(), 'inactive');
    assert.equal(ok('systemctl list-unit-files "fleet*" --no-legend | wc -l').trim(), '0');
    assert.equal(sh('ls /etc/fleet /var/lib/fleet /var/lib/private/fleet').status, 2, 'all gone');
    assert.equal(ok(`ls /var/lib/fleet-agent`).trim(), NODE, "the agent's key stays without --purge");
  });
});
