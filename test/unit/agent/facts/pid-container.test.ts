import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { containerIdFromCgroup, containerIdOfPid } from '../../../../agent/src/facts/pid-container.js';

const ID = 'a3f1c0de'.repeat(8);
const ID2 = '0123456789abcdef'.repeat(4);

describe('containerIdFromCgroup', () => {
  const table: [string, string, string | undefined][] = [
    [
      'cgroup v1',
      `12:memory:/docker/${ID}\n11:cpu,cpuacct:/docker/${ID}\n1:name=systemd:/docker/${ID}\n`,
      ID,
    ],
    ['cgroup v2, systemd driver', `0::/system.slice/docker-${ID}.scope\n`, ID],
    ['cgroup v2, cgroupfs driver', `0::/docker/${ID}\n`, ID],
    ['cgroup v1, kubepods with docker', `4:pids:/kubepods/burstable/pod1/docker-${ID}.scope\n`, ID],
    ['a user session', '0::/user.slice/user-1000.slice/session-3.scope\n', undefined],
    ['the docker daemon itself', '0::/system.slice/docker.service\n', undefined],
    ['cgroup v1 outside containers', '12:memory:/\n11:cpu:/user.slice\n', undefined],
    ['a short id is not an id', `0::/docker/${ID.slice(0, 12)}\n`, undefined],
    ['upper-case hex is not docker', `0::/docker/${ID.toUpperCase()}\n`, undefined],
    ['empty', '', undefined],
  ];
  for (const [label, text, want] of table) {
    test(`${label} → ${want === undefined ? 'undefined' : 'id'}`, () =>
      assert.equal(containerIdFromCgroup(text), want));
  }

  test('the first container id wins (docker in docker)', () => {
    assert.equal(containerIdFromCgroup(`0::/docker/${ID}/docker/${ID2}\n`), ID);
  });
});

describe('containerIdOfPid', () => {
  const root = mkdtempSync(join(tmpdir(), 'fleet-proc-'));
  after(() => rmSync(root, { recursive: true, force: true }));
  const writeCgroup = (pid: number, text: string) => {
    mkdirSync(join(root, String(pid)), { recursive: true });
    writeFileSync(join(root, String(pid), 'cgroup'), text);
  };
  writeCgroup(100, `0::/system.slice/docker-${ID}.scope\n`);
  writeCgroup(200, `12:memory:/docker/${ID2}\n`);
  writeCgroup(300, '0::/user.slice/user-1000.slice/session-1.scope\n');
  mkdirSync(join(root, '400')); // gone between listing and reading: no cgroup file

  test('reads the id from PROC/PID/cgroup', async () => {
    assert.equal(await containerIdOfPid(100, root), ID);
    assert.equal(await containerIdOfPid(200, root), ID2);
  });

  test('a process outside containers → undefined', async () => {
    assert.equal(await containerIdOfPid(300, root), undefined);
  });

  test('a missing pid or cgroup file → undefined, no throw', async () => {
    assert.equal(await containerIdOfPid(999_999, root), undefined);
    assert.equal(await containerIdOfPid(400, root), undefined);
    assert.equal(await containerIdOfPid(1, join(root, 'no-such-proc')), undefined);
  });

  test('the real /proc: this process is readable and gives a string or undefined', async () => {
    const id = await containerIdOfPid(process.pid);
    assert.ok(id === undefined || /^[0-9a-f]{64}$/.test(id));
  });
});
