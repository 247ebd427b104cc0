import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  absent,
  checkUnitPath,
  d,
  HARDENING,
  parseHostPort,
  RESTART,
  renderEnvFile,
  renderUnit,
  START_LIMITS,
} from '../../../../common/systemd/unit.js';
import { parseUnit, values } from '../../../helpers/unit-file.js';

describe('unit renderer', () => {
  const text = renderUnit({
    header: ['made by a test', ''],
    unit: [d('Description', 'x'), ...START_LIMITS],
    service: [d('ExecStart', '/usr/bin/true', 'runs true\nand nothing else'), absent('Foo= absent: why')],
    install: [d('WantedBy', 'multi-user.target')],
  });

  test('sections in order, each directive once, reasons as comments above it', () => {
    const lines = text.split('\n');
    assert.deepEqual(lines.slice(0, 3), ['# made by a test', '#', '[Unit]']);
    const exec = lines.indexOf('ExecStart=/usr/bin/true');
    assert.deepEqual(lines.slice(exec - 2, exec), ['# runs true', '# and nothing else']);
    assert.ok(lines.indexOf('[Unit]') < lines.indexOf('[Service]'));
    assert.ok(lines.indexOf('[Service]') < lines.indexOf('[Install]'));
    assert.ok(text.endsWith('WantedBy=multi-user.target\n'));
  });

  test('an absent directive is a comment only, never a setting', () => {
    assert.ok(text.includes('# Foo= absent: why\n'));
    assert.deepEqual(values(parseUnit(text), 'Service', 'Foo'), []);
  });

  test('start limits sit in [Unit], where systemd reads them', () => {
    const u = parseUnit(text);
    assert.deepEqual(values(u, 'Unit', 'StartLimitIntervalSec'), ['10min']);
    assert.deepEqual(values(u, 'Unit', 'StartLimitBurst'), ['10']);
  });

  test('restart policy: always, with a pause, not on bad input', () => {
    assert.deepEqual(
      RESTART.map((x) => [x.key, x.value]),
      [
        ['Restart', 'always'],
        ['RestartSec', '5s'],
        ['RestartPreventExitStatus', '2'],
      ],
    );
  });

  test('shared hardening: each directive once, every one with its reason, no W^X ban for V8', () => {
    const keys = HARDENING.map((x) => x.key);
    assert.equal(new Set(keys).size, keys.length);
    for (const x of HARDENING) assert.ok(x.why, `${x.key} says why`);
    for (const k of ['NoNewPrivileges', 'ProtectSystem', 'ProtectHome', 'PrivateTmp', 'UMask'])
      assert.ok(keys.includes(k), k);
    assert.ok(!keys.includes('MemoryDenyWriteExecute'));
    assert.equal(HARDENING.find((x) => x.key === 'ProtectSystem')!.value, 'strict');
  });
});

describe('environment file', () => {
  test('comments, then KEY=value lines', () => {
    assert.equal(
      renderEnvFile(
        ['head'],
        [
          { key: 'A_B', value: '--label x=y --label z=w', why: 'why' },
          { key: 'C', value: '' },
        ],
      ),
      '# head\n# why\nA_B=--label x=y --label z=w\nC=\n',
    );
  });

  for (const value of ['a\nB=1', 'a"b', "a'b", 'a\\b', '$HOME', 'a  b', ' a', 'a ', 'a\tb', '%h'])
    test(`refuses a value systemd would read differently: ${JSON.stringify(value)}`, () => {
      assert.throws(
        () => renderEnvFile([], [{ key: 'K', value }]),
        /cannot write K .*unsupported characters/,
      );
    });

  test('refuses a key that is not a plain upper-case name', () => {
    assert.throws(() => renderEnvFile([], [{ key: 'a b', value: '' }]), /cannot write/);
  });
});

describe('HOST:PORT', () => {
  const cases: [string, { host: string; port: number } | null][] = [
    ['cp.example.internal:7443', { host: 'cp.example.internal', port: 7443 }],
    ['10.0.0.1:7443', { host: '10.0.0.1', port: 7443 }],
    ['[fd00::1]:7443', { host: '[fd00::1]', port: 7443 }],
    ['0.0.0.0:1', { host: '0.0.0.0', port: 1 }],
    ['cp:65535', { host: 'cp', port: 65535 }],
    ['cp', null],
    ['cp:0', null],
    ['cp:65536', null],
    [':7443', null],
    ['fd00::1:7443', null],
    ['http://cp:7443', null],
    ['cp:7443 x', null],
    ['-cp:7443', null],
    ['cp:74a3', null],
  ];
  for (const [v, want] of cases)
    test(`${JSON.stringify(v)} → ${want ? `${want.host} ${want.port}` : 'refused'}`, () => {
      if (want) assert.deepEqual(parseHostPort('--server', v), want);
      else assert.throws(() => parseHostPort('--server', v), /invalid --server .*HOST:PORT/);
    });
});

test('paths go into ExecStart= only when systemd reads them literally', () => {
  assert.equal(checkUnitPath('Node', '/usr/bin/node'), undefined);
  assert.equal(checkUnitPath('the checkout', '/opt/fleet-1.2_x/bin/fleet.js'), undefined);
  for (const bad of ['/opt/my fleet', '/opt/%h', '/opt/$X', 'relative/path', '/opt/"q"'])
    assert.match(checkUnitPath('x', bad) ?? '', /would need quoted or would expand/, bad);
});
