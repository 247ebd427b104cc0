import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import {
  accessProblems,
  entryProblems,
  execute,
  findOnPath,
  fleetEntry,
  gatherFacts,
} from '../../../../common/systemd/host.js';

describe('can the sandboxed service run this checkout?', () => {
  const ok = { node: '/usr/bin/node', checkout: '/opt/fleet', fleetJs: '/opt/fleet/bin/fleet.js' };

  test('paths ProtectHome= and PrivateTmp= hide are refused, naming the directive', () => {
    for (const [checkout, hidden] of [
      ['/root/fleet', '/root'],
      ['/home/ops/fleet', '/home'],
      ['/tmp/fleet', '/tmp'],
      ['/var/tmp/x', '/var/tmp'],
    ] as const)
      assert.match(
        entryProblems({ ...ok, checkout, fleetJs: `${checkout}/bin/fleet.js` }, false).join('\n'),
        new RegExp(`under ${hidden} .*ProtectHome=, PrivateTmp=.*/opt/fleet`),
      );
    assert.match(entryProblems({ ...ok, node: '/root/.nvm/node' }, false).join(), /Node is under \/root/);
  });

  test('a path systemd would have to quote is refused', () => {
    assert.match(entryProblems({ ...ok, checkout: '/opt/my fleet' }, false).join(), /would need quoted/);
  });

  test('a hidden path is the one problem named, not every unreadable folder in /root', () => {
    const hidden = { ...ok, checkout: '/root/x', fleetJs: '/root/x/bin/fleet.js' };
    assert.equal(entryProblems(hidden, true).length, 1);
  });

  test('/opt, /usr and /work are places the sandbox shows (only their files are looked at then)', () => {
    const placement = (e: typeof ok) => entryProblems(e, false).filter((p) => !p.includes(' is missing '));
    assert.deepEqual(placement(ok), []);
    assert.deepEqual(placement({ ...ok, checkout: '/work/x', node: '/usr/local/bin/node' }), []);
    assert.match(entryProblems(ok, false).join(), /\/opt\/fleet\/bin\/fleet.js is missing/);
  });

  describe('a dynamic user must be able to read it', () => {
    const dir = mkdtempSync('/var/tmp/fleet-host-test-');
    after(() => rmSync(dir, { recursive: true, force: true }));
    const checkout = join(dir, 'fleet');
    for (const sub of ['bin', 'dist', 'node_modules']) mkdirSync(join(checkout, sub), { recursive: true });
    writeFileSync(join(checkout, 'bin/fleet.js'), '');
    chmodSync(dir, 0o755);
    const entry = { node: process.execPath, checkout, fleetJs: join(checkout, 'bin/fleet.js') };

    test('every folder on the way and the files readable by others: no problem', () => {
      chmodSync(join(checkout, 'bin/fleet.js'), 0o644);
      assert.deepEqual(accessProblems(entry, true), []);
    });

    test('a private folder or file is named with the chmod that fixes it', () => {
      chmodSync(join(checkout, 'dist'), 0o700);
      chmodSync(join(checkout, 'bin/fleet.js'), 0o600);
      const problems = accessProblems(entry, true).join('\n');
      assert.match(problems, /dist is not readable by other users \(mode 700\).*chmod o\+rx/);
      assert.match(problems, /fleet\.js is not readable by other users \(mode 600\).*chmod o\+r it/);
      chmodSync(join(checkout, 'dist'), 0o755);
    });

    test('code others could rewrite is refused for any service (it would run as root for the agent)', () => {
      chmodSync(join(checkout, 'dist'), 0o777);
      assert.match(
        accessProblems(entry, false).join(),
        /dist is writable by group or others \(mode 777\).*chmod go-w/,
      );
      chmodSync(join(checkout, 'dist'), 0o775);
      assert.match(accessProblems(entry, false).join(), /dist is writable by group or others \(mode 775\)/);
      chmodSync(join(checkout, 'dist'), 0o755);
      chmodSync(dir, 0o1777);
      assert.deepEqual(accessProblems(entry, false), [], 'a sticky folder above is fine, as /tmp is');
      chmodSync(dir, 0o755);
    });

    test('a missing build is named', () => {
      rmSync(join(checkout, 'node_modules'), { recursive: true });
      assert.match(accessProblems(entry, true).join(), /node_modules is missing .*npm run build/);
    });
  });

  test('this checkout is what ExecStart will run', () => {
    const e = fleetEntry();
    assert.ok(e.fleetJs.endsWith('/bin/fleet.js') && e.fleetJs.startsWith(e.checkout));
    assert.ok(e.node.startsWith('/'));
  });
});

describe('host facts and the executor', () => {
  const root = mkdtempSync('/var/tmp/fleet-exec-test-');
  after(() => rmSync(root, { recursive: true, force: true }));

  test('systemctl is looked up on PATH only', () => {
    assert.equal(findOnPath('systemctl', '/nonexistent'), undefined);
    assert.equal(findOnPath('sh', '/bin:/usr/bin')?.endsWith('/sh'), true);
  });

  test('writes land under --root with exactly their mode, whatever the umask', () => {
    const old = process.umask(0o077);
    try {
      const lines: string[] = [];
      execute(
        [
          { kind: 'mkdir', path: '/etc/fleet', mode: 0o755 },
          { kind: 'write', path: '/etc/fleet/a.env', mode: 0o600, text: 'A=1\n', what: 'settings' },
          { kind: 'write', path: '/etc/fleet/u.service', mode: 0o644, text: 'U', what: 'unit' },
        ],
        root,
        (l) => lines.push(l),
      );
      assert.deepEqual(lines, [
        'wrote /etc/fleet/a.env (settings, mode 0600)',
        'wrote /etc/fleet/u.service (unit, mode 0644)',
      ]);
      const facts = gatherFacts(root, ['/etc/fleet/a.env', '/etc/fleet/none'], []);
      assert.deepEqual([...facts.exists], ['/etc/fleet/a.env']);
    } finally {
      process.umask(old);
    }
  });

  test('rmdir-if-empty keeps a folder that still holds something', () => {
    execute(
      [
        { kind: 'remove', path: '/etc/fleet/a.env' },
        { kind: 'rmdir-if-empty', path: '/etc/fleet' },
      ],
      root,
      () => {},
    );
    assert.deepEqual([...gatherFacts(root, ['/etc/fleet'], []).exists], ['/etc/fleet']);
  });

  test('a failing command stops the plan and says what was already done', () => {
    assert.throws(
      () =>
        execute(
          [
            { kind: 'remove', path: '/etc/fleet/u.service' },
            { kind: 'run', argv: ['/bin/false'] },
            { kind: 'rmdir-if-empty', path: '/etc/fleet' },
          ],
          root,
          () => {},
        ),
      /\/bin\/false failed \(exit 1\) \(already done: removed \/etc\/fleet\/u.service\)/,
    );
    assert.deepEqual([...gatherFacts(root, ['/etc/fleet'], []).exists], ['/etc/fleet']);
  });
});
