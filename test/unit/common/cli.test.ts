import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { commandWord } from '../../../common/cli.js';

describe('commandWord: the command a fleet command line names', () => {
  test('table', () => {
    const cases: [string[], string | undefined][] = [
      [['apply', 'f.yaml'], 'apply'],
      [['--server', 'https://h:7080', 'apply', 'f.yaml', '--no-wait'], 'apply'],
      [['--server=https://h:7080', '--ca-file', 'ca.crt', '--token', 't', 'status'], 'status'],
      [['--debug', 'agent', '--node', 'n1'], 'agent'],
      // The value of a root option is not the command, even when it looks like one.
      [['--token', 'apply', 'nodes'], 'nodes'],
      [[], undefined],
      [['--help'], undefined],
      [['-V'], undefined],
      // An option the root does not know: every part loads and commander answers.
      [['--bogus', 'apply'], undefined],
    ];
    for (const [args, want] of cases) assert.equal(commandWord(args), want, args.join(' '));
  });
});
