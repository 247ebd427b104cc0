import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, test } from 'node:test';
import { exitCodeOf } from '../../../common/cli.js';
import { DURATION, parseDuration } from '../../../common/duration.js';
import { createLogger } from '../../../common/log.js';
import { defaultNodeName, isNodeName } from '../../../common/node-name.js';
import { TimeoutError, withTimeout } from '../../../common/timeout.js';

describe('one duration grammar (playbooks and CLI flags)', () => {
  const cases: [string, number | null][] = [
    ['500ms', 500],
    ['10s', 10_000],
    ['5m', 300_000],
    ['1h', 3_600_000],
    [' 30s ', 30_000],
    ['0s', 0],
    ['1.5s', null],
    ['10', null],
    ['s', null],
    ['10d', null],
    ['-1s', null],
    ['12345678s', null],
  ];
  for (const [text, ms] of cases) {
    test(`${JSON.stringify(text)} → ${ms ?? 'error'}`, () => {
      if (ms === null) assert.throws(() => parseDuration(text), /invalid duration .*examples: 500ms, 10s/);
      else assert.equal(parseDuration(text), ms);
      // The schema pattern accepts exactly what parses (the untrimmed text).
      assert.equal(new RegExp(DURATION).test(text), ms !== null && text === text.trim());
    });
  }
});

describe('node-name rule', () => {
  test('accepts DNS-label-like names, refuses the rest', () => {
    for (const ok of ['gpu-01', 'a', 'node.rack3', '0']) assert.ok(isNodeName(ok), ok);
    for (const bad of ['', 'GPU', '-a', 'a-', 'a_b', 'a'.repeat(64), 'a b']) assert.ok(!isNodeName(bad), bad);
  });
  test('a host name is made to fit the rule', () => {
    assert.equal(defaultNodeName('GPU_Host-01.'), 'gpu-host-01');
    assert.equal(defaultNodeName('___'), 'node');
    const long = defaultNodeName(`${'x'.repeat(62)}--y`);
    assert.ok(isNodeName(long), long);
  });
});

describe('withTimeout', () => {
  test('passes the value through when it settles in time', async () => {
    assert.equal(await withTimeout(Promise.resolve(7), 100), 7);
  });
  test('passes the operation’s own error through', async () => {
    await assert.rejects(withTimeout(Promise.reject(new Error('boom')), 100), /^Error: boom$/);
  });
  test('rejects with a TimeoutError naming the operation', async () => {
    const never = new Promise<never>(() => {});
    const err = await withTimeout(never, 20, 'docker info').catch((e: unknown) => e);
    assert.ok(err instanceof TimeoutError);
    assert.equal(err.message, 'docker info took longer than 20 ms');
  });
});

describe('redacting logger', () => {
  test('no credential reaches a log line, wherever it sits in the object', () => {
    let out = '';
    const sink = new Writable({
      write(chunk, _enc, done) {
        out += String(chunk);
        done();
      },
    });
    const log = createLogger('test', 'info', sink);
    log.info({ token: 'tok-secret-1', upstream: { apiKey: 'key-secret-2', url: 'http://x' } }, 'a');
    log.info(
      { req: { headers: { authorization: 'Bearer tok-secret-3', 'x-api-key': 'key-secret-4' } } },
      'b',
    );
    log.info({ registry: { password: 'pw-secret-5' }, tls: { privateKey: 'pem-secret-6' } }, 'c');
    log.info({ config: { upstream: { apiKey: 'key-secret-7' } }, env: { HF_TOKEN: 'hf-secret-8' } }, 'd');
    assert.equal((out.match(/\[redacted\]/g) ?? []).length, 8, out);
    assert.doesNotMatch(out, /secret-\d/);
    assert.match(out, /http:\/\/x/);
  });
});

describe('exit codes', () => {
  test('an error carrying an exit code keeps it; anything else exits 1', () => {
    assert.equal(exitCodeOf(Object.assign(new Error('x'), { exitCode: 2 })), 2);
    assert.equal(exitCodeOf(new Error('x')), 1);
    assert.equal(exitCodeOf('str'), 1);
  });
});
