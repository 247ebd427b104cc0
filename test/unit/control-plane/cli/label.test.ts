import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { CliError } from '../../../../common/cli.js';
import { parseLabelEdits } from '../../../../control-plane/src/cli/label.js';

describe('fleet label arguments (kubectl form)', () => {
  test('key=value sets, key- removes, several at once', () => {
    assert.deepEqual(parseLabelEdits(['gpu=h100', 'zone-', 'rack=r7', 'empty=']), {
      set: { gpu: 'h100', rack: 'r7', empty: '' },
      remove: ['zone'],
    });
    assert.deepEqual(parseLabelEdits(['fleet.io/role=a-b']), { set: { 'fleet.io/role': 'a-b' }, remove: [] });
  });

  for (const [args, message] of [
    [['gpu'], /invalid label "gpu"/],
    [['-'], /invalid label "-"/],
    [['a=b c'], /invalid label "a=b c"/],
    [['a=b=c'], /invalid label "a=b=c"/],
    [['=x'], /invalid label "=x"/],
    [['ok=1', 'bad key-'], /invalid label "bad key-"/],
    [['a=1', 'a-'], /"a" is both set and removed/],
    [[], /no labels given/],
  ] as const) {
    test(`${JSON.stringify(args)}: exit 2, ${message}`, () => {
      assert.throws(
        () => parseLabelEdits(args),
        (err) => err instanceof CliError && err.exitCode === 2 && message.test(err.message),
      );
    });
  }
});
