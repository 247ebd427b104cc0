import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { agentFiles, agentUnit } from '../../../agent/src/install.js';
import { CliError } from '../../../common/cli.js';
import { HARDENING, renderUnit } from '../../../common/systemd/unit.js';
import { parseUnit, service, values } from '../../helpers/unit-file.js';

const ENTRY = { node: '/usr/bin/node', fleetJs: '/opt/fleet/bin/fleet.js', checkout: '/opt/fleet' };
const SECRET = 'abcdefghijklmnopqrstuvwxyz234567';
const TOKEN = `K10${'ab'.repeat(32)}::abcdefgh.${SECRET}`;
const OPTS = {
  server: 'cp.example.internal:7443',
  joinToken: TOKEN,
  node: 'gpu-01',
  label: { gpu: 'true', zone: 'a' },
  force: false,
  start: true,
};

describe('the agent unit', () => {
  const text = renderUnit(agentUnit(ENTRY));
  const u = parseUnit(text);

  test('runs this Node and this checkout, absolute, with the state dir systemd creates', () => {
    assert.equal(
      service(u, 'ExecStart'),
      '/usr/bin/node /opt/fleet/bin/fleet.js agent --state-dir /var/lib/fleet-agent $FLEET_AGENT_ARGS',
    );
    assert.equal(service(u, 'StateDirectory'), 'fleet-agent');
    assert.equal(service(u, 'StateDirectoryMode'), '0700');
    assert.equal(service(u, 'EnvironmentFile'), '/etc/fleet/agent.env');
  });

  test('stopping the agent leaves the containers it manages alone', () => {
    assert.equal(service(u, 'KillMode'), 'process');
  });

  test('restarts always, within limits, after Docker and the network', () => {
    assert.equal(service(u, 'Restart'), 'always');
    assert.equal(service(u, 'RestartSec'), '5s');
    assert.deepEqual(values(u, 'Unit', 'StartLimitBurst'), ['10']);
    assert.deepEqual(values(u, 'Unit', 'After'), ['network-online.target docker.service']);
    assert.deepEqual(values(u, 'Install', 'WantedBy'), ['multi-user.target']);
  });

  test('every shared hardening directive, and the capability set narrowed to reading files', () => {
    for (const x of HARDENING) assert.equal(service(u, x.key), x.value, x.key);
    assert.equal(service(u, 'CapabilityBoundingSet'), 'CAP_DAC_READ_SEARCH');
    assert.equal(service(u, 'RestrictAddressFamilies'), 'AF_UNIX AF_INET AF_INET6 AF_NETLINK');
  });

  test('nothing that would break it: /dev for nvidia-smi, /proc for GPU processes, W+X for V8', () => {
    for (const key of [
      'PrivateDevices',
      'ProtectClock',
      'ProtectProc',
      'MemoryDenyWriteExecute',
      'User',
      'DeviceAllow',
    ])
      assert.equal(service(u, key), undefined, key);
    // Absent, but said why in the file.
    for (const key of ['PrivateDevices', 'ProtectClock', 'ProtectProc', 'MemoryDenyWriteExecute'])
      assert.match(text, new RegExp(`^# ${key}= absent: `, 'm'), key);
  });
});

describe('fleet agent install: its files', () => {
  test('the token goes to the 0600 env file only, with the address, name and labels', () => {
    const f = agentFiles(OPTS, ENTRY);
    assert.ok(!f.unitText.includes(SECRET));
    assert.equal(f.envName, 'agent.env');
    const env = Object.fromEntries(
      f.envText
        .split('\n')
        .filter((l) => l && !l.startsWith('#'))
        .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
    );
    assert.deepEqual(env, {
      FLEET_CONTROL_PLANE: 'cp.example.internal:7443',
      FLEET_NODE: 'gpu-01',
      FLEET_JOIN_TOKEN: TOKEN,
      FLEET_AGENT_ARGS: '--label gpu=true --label zone=a',
    });
  });

  test('the unit does not depend on the settings: one text per checkout', () => {
    assert.equal(
      agentFiles(OPTS, ENTRY).unitText,
      agentFiles({ ...OPTS, node: 'other', label: {} }, ENTRY).unitText,
    );
  });

  const bad: [string, Partial<typeof OPTS>, RegExp][] = [
    ['no server', { server: undefined }, /--server HOST:PORT is required/],
    ['a server without a port', { server: 'cp.example' }, /invalid --server "cp.example"/],
    ['a URL for a server', { server: 'https://cp:7443' }, /invalid --server/],
    ['a bad node name', { node: 'GPU_01' }, /invalid node name "GPU_01"/],
    ['a malformed token', { joinToken: `K10${'ab'.repeat(32)}::abcdefgh.${SECRET}!` }, /invalid join token/],
    ['a token of another kind', { joinToken: SECRET }, /invalid join token: it does not start with K10/],
  ];
  for (const [what, over, re] of bad)
    test(`refused with exit 2: ${what}; the secret never in the message`, () => {
      assert.throws(
        () => agentFiles({ ...OPTS, ...over }, ENTRY),
        (err: unknown) => {
          assert.ok(err instanceof CliError);
          assert.equal(err.exitCode, 2);
          assert.match(err.message, re);
          assert.ok(!err.message.includes(SECRET));
          return true;
        },
      );
    });

  test('no token at all: refused, naming where tokens come from', () => {
    const saved = process.env.FLEET_JOIN_TOKEN;
    delete process.env.FLEET_JOIN_TOKEN;
    try {
      assert.throws(
        () => agentFiles({ ...OPTS, joinToken: undefined }, ENTRY),
        /--join-token T or FLEET_JOIN_TOKEN/,
      );
    } finally {
      if (saved !== undefined) process.env.FLEET_JOIN_TOKEN = saved;
    }
  });
});
