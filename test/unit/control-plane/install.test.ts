import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { CliError } from '../../../common/cli.js';
import { HARDENING } from '../../../common/systemd/unit.js';
import { SERVER_DEFAULTS, type ServerSettings, serverFiles } from '../../../control-plane/src/install.js';
import { parseUnit, service, values } from '../../helpers/unit-file.js';

const ENTRY = { node: '/usr/bin/node', fleetJs: '/opt/fleet/bin/fleet.js', checkout: '/opt/fleet' };
const OPTS: ServerSettings = {
  ...SERVER_DEFAULTS,
  grpcListen: '0.0.0.0:7443',
  tlsName: 'cp.example.internal,10.0.0.5',
};

describe('the control plane unit', () => {
  const f = serverFiles(OPTS, ENTRY);
  const u = parseUnit(f.unitText);

  test('runs this checkout as its own dynamic user, DATA_DIR as its state directory', () => {
    assert.equal(
      service(u, 'ExecStart'),
      `/usr/bin/node /opt/fleet/bin/fleet.js server --data-dir /var/lib/fleet --listen \${FLEET_LISTEN} --grpc-listen \${FLEET_GRPC_LISTEN} --tls-name \${FLEET_TLS_NAMES} --volume-roots \${FLEET_VOLUME_ROOTS} $FLEET_SERVER_ARGS`,
    );
    assert.equal(service(u, 'DynamicUser'), 'yes');
    assert.equal(service(u, 'StateDirectory'), 'fleet');
    assert.equal(service(u, 'StateDirectoryMode'), '0700');
    assert.equal(service(u, 'EnvironmentFile'), '/etc/fleet/server.env');
  });

  test('the shared hardening, no devices, no capabilities on high ports', () => {
    for (const x of HARDENING) assert.equal(service(u, x.key), x.value, x.key);
    assert.equal(service(u, 'PrivateDevices'), 'yes');
    assert.equal(service(u, 'ProtectClock'), 'yes');
    assert.equal(service(u, 'CapabilityBoundingSet'), '');
    assert.equal(service(u, 'AmbientCapabilities'), '');
    assert.equal(service(u, 'RestrictAddressFamilies'), 'AF_UNIX AF_INET AF_INET6');
    assert.equal(service(u, 'MemoryDenyWriteExecute'), undefined);
    assert.equal(service(u, 'KillMode'), undefined, 'no children to spare: the whole cgroup stops');
    assert.equal(service(u, 'Restart'), 'always');
    assert.deepEqual(values(u, 'Install', 'WantedBy'), ['multi-user.target']);
  });

  test('a port below 1024 gets exactly the capability to bind it', () => {
    const low = parseUnit(serverFiles({ ...OPTS, listen: '0.0.0.0:443' }, ENTRY).unitText);
    assert.equal(service(low, 'CapabilityBoundingSet'), 'CAP_NET_BIND_SERVICE');
    assert.equal(service(low, 'AmbientCapabilities'), 'CAP_NET_BIND_SERVICE');
  });

  test('another DATA_DIR under /var/lib names its own state directory', () => {
    const other = parseUnit(serverFiles({ ...OPTS, dataDir: '/var/lib/fleet-cp' }, ENTRY).unitText);
    assert.equal(service(other, 'StateDirectory'), 'fleet-cp');
  });

  test('server.env carries the listen addresses and lists', () => {
    assert.deepEqual(
      f.envText.split('\n').filter((l) => l && !l.startsWith('#')),
      [
        'FLEET_LISTEN=127.0.0.1:7080',
        'FLEET_GRPC_LISTEN=0.0.0.0:7443',
        'FLEET_TLS_NAMES=cp.example.internal,10.0.0.5',
        'FLEET_VOLUME_ROOTS=/data,/srv,/mnt,/var/lib/fleet/models',
        'FLEET_SERVER_ARGS=',
      ],
    );
  });
});

describe('fleet server install: bad input is refused with exit 2', () => {
  const bad: [string, Partial<typeof OPTS>, RegExp][] = [
    ['a listen address without a port', { listen: '0.0.0.0' }, /invalid --listen "0.0.0.0"/],
    ['a gRPC port out of range', { grpcListen: 'cp:70000' }, /invalid --grpc-listen/],
    [
      'DATA_DIR outside /var/lib',
      { dataDir: '/srv/fleet' },
      /--data-dir "\/srv\/fleet" must be a folder directly under \/var\/lib/,
    ],
    ['DATA_DIR two levels down', { dataDir: '/var/lib/a/b' }, /directly under \/var\/lib/],
    ['DATA_DIR escaping', { dataDir: '/var/lib/..' }, /directly under \/var\/lib/],
    ['a name list with spaces', { tlsName: 'a, b' }, /invalid --tls-name "a, b"/],
    ['volume roots with a newline', { volumeRoots: '/data\nFLEET_X=1' }, /invalid --volume-roots/],
  ];
  for (const [what, over, re] of bad)
    test(what, () => {
      assert.throws(
        () => serverFiles({ ...OPTS, ...over }, ENTRY),
        (err: unknown) => err instanceof CliError && err.exitCode === 2 && re.test(err.message),
      );
    });
});
