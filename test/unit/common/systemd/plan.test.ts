import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { CliError } from '../../../../common/cli.js';
import {
  type HostFacts,
  planInstall,
  planUninstall,
  type Step,
  stateDirsOf,
} from '../../../../common/systemd/plan.js';

const FILES = { name: 'fleet-agent', unitText: 'UNIT', envName: 'agent.env', envText: 'SECRET=1\n' };
const UNIT = '/etc/systemd/system/fleet-agent.service';
const ENV = '/etc/fleet/agent.env';

function facts(over: Partial<HostFacts> = {}): HostFacts {
  return {
    uid: 0,
    systemctl: '/usr/bin/systemctl',
    systemdRunning: true,
    exists: new Set(),
    pathProblems: [],
    ...over,
  };
}

/** Steps as short strings: what ran, what was written with which mode. */
const show = (steps: Step[]) =>
  steps.map((s) => {
    switch (s.kind) {
      case 'run':
        return s.argv.join(' ');
      case 'write':
      case 'mkdir':
        return `${s.kind} ${s.path} ${s.mode.toString(8)}`;
      default:
        return `${s.kind} ${s.path}`;
    }
  });

/** Asserts `fn` refuses with `exit` and a message matching `re`. */
function refuses(fn: () => unknown, exit: number, re: RegExp) {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof CliError, String(err));
    assert.equal(err.exitCode, exit);
    assert.match(err.message, re);
    return true;
  });
}

describe('install plan', () => {
  const WRITES = [
    'mkdir /etc/fleet 755',
    'mkdir /etc/systemd/system 755',
    `write ${ENV} 600`,
    `write ${UNIT} 644`,
  ];

  test('on a running system: write, reload, enable --now', () => {
    assert.deepEqual(show(planInstall(FILES, { force: false, start: true }, facts())), [
      ...WRITES,
      '/usr/bin/systemctl daemon-reload',
      '/usr/bin/systemctl enable --now fleet-agent.service',
    ]);
  });

  test('the env file (it holds the join token) is 0600, the unit 0644 and free of it', () => {
    const steps = planInstall(FILES, { force: false, start: true }, facts());
    const env = steps.find((s) => s.kind === 'write' && s.path === ENV);
    assert.deepEqual(env && env.kind === 'write' && [env.mode, env.text], [0o600, 'SECRET=1\n']);
  });

  test('--no-start: reload and enable, start nothing', () => {
    assert.deepEqual(show(planInstall(FILES, { force: false, start: false }, facts())).slice(4), [
      '/usr/bin/systemctl daemon-reload',
      '/usr/bin/systemctl enable fleet-agent.service',
    ]);
  });

  test('--root: write and enable offline; no reload, no start, even as another user without systemd', () => {
    const f = facts({ uid: 1000, systemdRunning: false });
    assert.deepEqual(show(planInstall(FILES, { root: '/scratch', force: false, start: true }, f)), [
      ...WRITES,
      '/usr/bin/systemctl --root=/scratch enable fleet-agent.service',
    ]);
  });

  test('an existing unit is refused without --force (exit 2)', () => {
    refuses(
      () => planInstall(FILES, { force: false, start: true }, facts({ exists: new Set([UNIT]) })),
      2,
      /fleet-agent.service already exists: pass --force .*fleet agent uninstall/,
    );
  });

  test('--force replaces it and restarts the running unit so the new settings apply', () => {
    const steps = planInstall(FILES, { force: true, start: true }, facts({ exists: new Set([UNIT]) }));
    assert.deepEqual(show(steps).slice(4), [
      '/usr/bin/systemctl daemon-reload',
      '/usr/bin/systemctl enable fleet-agent.service',
      '/usr/bin/systemctl restart fleet-agent.service',
    ]);
  });

  const refusals: [string, Partial<HostFacts>, number, RegExp][] = [
    ['not root', { uid: 1000 }, 1, /run it as root \(or with --root DIR\)/],
    ['no systemctl', { systemctl: undefined }, 1, /systemctl is not on PATH.*apt-get install systemd/],
    ['systemd not running', { systemdRunning: false }, 1, /systemd is not running .*use --root DIR/],
    ['a path the sandbox hides', { pathProblems: ['the checkout is under /root'] }, 1, /under \/root/],
  ];
  for (const [what, over, exit, re] of refusals)
    test(`refused: ${what} (exit ${exit}), before any step`, () => {
      refuses(() => planInstall(FILES, { force: false, start: true }, facts(over)), exit, re);
    });

  test('--root: a path problem of this machine does not refuse a unit meant for another system', () => {
    const f = facts({ pathProblems: ['the checkout is under /root'] });
    assert.equal(planInstall(FILES, { root: '/s', force: false, start: true }, f).length, 5);
  });

  test('--root still needs systemctl (it writes the enable links)', () => {
    refuses(
      () => planInstall(FILES, { root: '/s', force: false, start: true }, facts({ systemctl: undefined })),
      1,
      /systemctl is not on PATH/,
    );
  });
});

describe('uninstall plan', () => {
  const installed = new Set([UNIT, ENV, '/var/lib/fleet-agent']);

  test('on a running system: stop and disable, remove both files, tidy /etc/fleet, reload', () => {
    assert.deepEqual(
      show(planUninstall(FILES, { purge: false }, facts({ exists: installed }), ['/var/lib/fleet-agent'])),
      [
        '/usr/bin/systemctl disable --now fleet-agent.service',
        `remove ${UNIT}`,
        `remove ${ENV}`,
        'rmdir-if-empty /etc/fleet',
        '/usr/bin/systemctl daemon-reload',
      ],
    );
  });

  test('--root: disable offline; --purge adds the state directories that exist', () => {
    const f = facts({ exists: installed, systemdRunning: false });
    assert.deepEqual(
      show(
        planUninstall(FILES, { root: '/s', purge: true }, f, ['/var/lib/fleet-agent', '/var/lib/private/x']),
      ),
      [
        '/usr/bin/systemctl --root=/s disable fleet-agent.service',
        `remove ${UNIT}`,
        `remove ${ENV}`,
        'rmdir-if-empty /etc/fleet',
        'remove-tree /var/lib/fleet-agent',
      ],
    );
  });

  test('nothing installed: no steps', () => {
    assert.deepEqual(planUninstall(FILES, { purge: false }, facts(), ['/var/lib/fleet-agent']), []);
  });

  test('a unit without its env file (removed by hand) still goes', () => {
    assert.deepEqual(
      show(planUninstall(FILES, { purge: false }, facts({ exists: new Set([UNIT]) }), [])).slice(0, 2),
      ['/usr/bin/systemctl disable --now fleet-agent.service', `remove ${UNIT}`],
    );
  });

  test('refused the same way as install: not root, no systemctl', () => {
    refuses(
      () => planUninstall(FILES, { purge: false }, facts({ uid: 5 }), []),
      1,
      /fleet agent uninstall .*as root/,
    );
    refuses(
      () => planUninstall(FILES, { purge: false }, facts({ systemctl: undefined }), []),
      1,
      /systemctl/,
    );
  });
});

describe('state directories named by a unit', () => {
  test('StateDirectory= under /var/lib; with DynamicUser also its private home', () => {
    assert.deepEqual(stateDirsOf('[Service]\nStateDirectory=fleet-agent\n'), ['/var/lib/fleet-agent']);
    assert.deepEqual(stateDirsOf('DynamicUser=yes\nStateDirectory=fleet\n'), [
      '/var/lib/fleet',
      '/var/lib/private/fleet',
    ]);
  });

  test('nothing outside /var/lib, whatever the file says', () => {
    assert.deepEqual(
      stateDirsOf('StateDirectory=../../etc\nStateDirectory=a/../..\n# StateDirectory=x\n'),
      [],
    );
    assert.deepEqual(stateDirsOf(''), []);
  });
});
