import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { collectHost, mountOf, relevantDisks } from '../../../../agent/src/facts/host.js';

describe('mountOf', () => {
  const mounts = ['/', '/var', '/data', '/boot/efi', '/mnt/models/'];
  const table: [string, string | undefined][] = [
    ['/var/lib/docker', '/var'],
    ['/var', '/var'],
    ['/data', '/data'],
    ['/data/models/llama', '/data'],
    ['/datastore', '/'],
    ['/datastore/x', '/'],
    ['/variable', '/'],
    ['/boot/efi/EFI', '/boot/efi'],
    ['/boot', '/'],
    ['/mnt/models/a.gguf', '/mnt/models/'],
    ['/home/user', '/'],
    ['/', '/'],
  ];
  for (const [path, want] of table) {
    test(`${path} → ${want}`, () => assert.equal(mountOf(path, mounts), want));
  }

  test('/var/lib/docker lands on / when /var is not a mount', () => {
    assert.equal(mountOf('/var/lib/docker', ['/', '/data']), '/');
  });

  test('the longest prefix wins whatever the order of mounts', () => {
    const nested = ['/var/lib/docker', '/', '/var', '/var/lib'];
    assert.equal(mountOf('/var/lib/docker/overlay2', nested), '/var/lib/docker');
    assert.equal(mountOf('/var/lib/docker/overlay2', [...nested].reverse()), '/var/lib/docker');
    assert.equal(mountOf('/var/lib/containerd', nested), '/var/lib');
  });

  test('no mounts, or none holding the path (no root): undefined', () => {
    assert.equal(mountOf('/var/lib/docker', []), undefined);
    assert.equal(mountOf('/datastore', ['/data', '/var']), undefined);
  });
});

describe('relevantDisks', () => {
  const GB = 1e9;
  const fs = [
    { fs: '/dev/sda2', mount: '/', size: 100 * GB, available: 40 * GB },
    { fs: '/dev/sda3', mount: '/var', size: 500 * GB, available: 200 * GB },
    { fs: '/dev/sdb1', mount: '/data', size: 4000 * GB, available: 3000 * GB },
    { fs: '/dev/sda1', mount: '/boot/efi', size: 0.5 * GB, available: 0.4 * GB },
    { fs: 'tmpfs', mount: '/run', size: 10 * GB, available: 10 * GB },
  ];

  test('tags root, docker and models mounts and drops the rest', () => {
    const disks = relevantDisks(fs, { docker: '/var/lib/docker', models: ['/data/models'] });
    assert.deepEqual(disks, [
      { mount: '/', fs: '/dev/sda2', sizeBytes: 100 * GB, availableBytes: 40 * GB, roles: ['root'] },
      { mount: '/var', fs: '/dev/sda3', sizeBytes: 500 * GB, availableBytes: 200 * GB, roles: ['docker'] },
      { mount: '/data', fs: '/dev/sdb1', sizeBytes: 4000 * GB, availableBytes: 3000 * GB, roles: ['models'] },
    ]);
  });

  test('roles on one mount are merged, sorted and not repeated', () => {
    const disks = relevantDisks(fs.slice(0, 1), {
      docker: '/var/lib/docker',
      models: ['/srv/models', '/opt/models'],
    });
    assert.deepEqual(
      disks.map((d) => [d.mount, d.roles]),
      [['/', ['docker', 'models', 'root']]],
    );
  });

  test('/datastore is not on /data', () => {
    const disks = relevantDisks(fs, { models: ['/datastore/models'] });
    assert.deepEqual(
      disks.map((d) => [d.mount, d.roles]),
      [['/', ['models', 'root']]],
    );
  });

  test('a model path equal to a mount is on that mount', () => {
    const disks = relevantDisks(fs, { models: ['/data'] });
    assert.deepEqual(
      disks.map((d) => [d.mount, d.roles]),
      [
        ['/', ['root']],
        ['/data', ['models']],
      ],
    );
  });

  test('no docker root dir (docker unreachable) and no model dirs: only root', () => {
    const disks = relevantDisks(fs, { docker: undefined, models: [] });
    assert.deepEqual(
      disks.map((d) => d.mount),
      ['/'],
    );
  });

  test('sizes are rounded and never negative', () => {
    const [d] = relevantDisks([{ fs: 'x', mount: '/', size: 10.6, available: -3 }], { models: [] });
    assert.equal(d?.sizeBytes, 11);
    assert.equal(d?.availableBytes, 0);
  });

  test('no filesystems: no disks', () => {
    assert.deepEqual(relevantDisks([], { docker: '/var/lib/docker', models: ['/data'] }), []);
  });
});

describe('collectHost (this machine, through systeminformation)', () => {
  test('with docker answering', async () => {
    const h = await collectHost(
      () => Promise.resolve({ version: '1', runtimes: ['nvidia', 'runc'], rootDir: '/var/lib/docker' }),
      ['/tmp'],
    );
    assert.ok(h.cpuCores > 0, `cpuCores ${h.cpuCores}`);
    assert.ok(h.memoryTotalBytes > 0);
    assert.ok(h.memoryAvailableBytes > 0 && h.memoryAvailableBytes <= h.memoryTotalBytes);
    assert.ok(h.hostname.length > 0);
    assert.ok(h.arch.length > 0);
    assert.equal(h.dockerVersion, '1');
    assert.deepEqual(h.dockerRuntimes, ['nvidia', 'runc']);
    assert.equal(h.nvidiaRuntime, true);
    assert.ok(Array.isArray(h.addresses));
    assert.ok(
      h.disks.some((d) => d.roles.includes('root')),
      JSON.stringify(h.disks),
    );
    for (const d of h.disks) {
      assert.ok(Number.isInteger(d.sizeBytes) && d.sizeBytes >= 0);
      assert.ok(Number.isInteger(d.availableBytes) && d.availableBytes >= 0);
      assert.ok(d.roles.length > 0);
    }
  });

  test('with docker failing: still resolves, docker fields empty', async () => {
    const h = await collectHost(() => Promise.reject(new Error('connect ENOENT /var/run/docker.sock')), []);
    assert.equal(h.dockerVersion, '');
    assert.deepEqual(h.dockerRuntimes, []);
    assert.equal(h.nvidiaRuntime, false);
    assert.ok(h.cpuCores > 0);
    assert.ok(!h.disks.some((d) => d.roles.includes('docker') || d.roles.includes('models')));
  });

  test('a runtime list without nvidia', async () => {
    const h = await collectHost(
      () => Promise.resolve({ version: '27', runtimes: ['runc'], rootDir: '/var/lib/docker' }),
      [],
    );
    assert.equal(h.nvidiaRuntime, false);
  });
});
