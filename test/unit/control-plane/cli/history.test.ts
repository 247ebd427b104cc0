import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type {
  RevisionListReply,
  RevisionReply,
  RollbackReply,
} from '../../../../control-plane/src/api/client.js';
import { renderHistory, renderRevision } from '../../../../control-plane/src/cli/history.js';
import { rollbackLine } from '../../../../control-plane/src/cli/rollback.js';

const NOW = 10_000_000;
const rev = (revision: number, o: Partial<RevisionListReply['revisions'][number]> = {}) => ({
  revision,
  hash: `${revision}`.repeat(64),
  file: 'v.yaml',
  createdMs: NOW - revision * 60_000,
  appliedBy: 'alice',
  rolledBackFrom: 0,
  outcome: 'stable' as const,
  ...o,
});

describe('fleet history (text)', () => {
  test('one row per revision: N, when, who, file, hash prefix, outcome, current and "rollback of N"', () => {
    const list: RevisionListReply = {
      deployment: 'web',
      current: 3,
      revisions: [rev(3, { rolledBackFrom: 2, appliedBy: '' }), rev(2, { outcome: 'rolled back' }), rev(1)],
      next: 1,
    };
    const lines = renderHistory(list, NOW).split('\n');
    assert.equal(lines[0], 'web: at revision 3');
    assert.match(lines[1]!, /^REV +WHEN +WHO +FILE +HASH +OUTCOME +NOTE$/);
    assert.match(lines[2]!, /^3 +3m ago +- +v\.yaml +333333333333 +stable +current, rollback of 2$/);
    assert.match(lines[3]!, /^2 +2m ago +alice +v\.yaml +222222222222 +rolled back *$/);
    assert.match(lines[4]!, /^1 +1m ago +alice .* stable/);
    assert.equal(lines[5], 'older: fleet history web --before 1');
  });

  test('one revision: who and when, outcome, what it rolled back from, then the diff without its === line', () => {
    const r: RevisionReply = {
      ...rev(2, { rolledBackFrom: 1, outcome: 'rolling' }),
      deployment: 'web',
      source: 'x: 2\n',
      previous: 1,
      diff: '===================================================================\n--- v.yaml (revision 1)\n+++ v.yaml (revision 2)\n@@ -1,1 +1,1 @@\n-x: 1\n+x: 2\n',
    };
    const out = renderRevision(r, NOW);
    assert.match(out, /^web: revision 2\n/);
    assert.match(out, /^ {2}applied +1970-01-01T02:44:40\.000Z \(2m ago\) by alice$/m);
    assert.match(out, /^ {2}outcome +rolling$/m);
    assert.match(out, /^ {2}rollback +of revision 1$/m);
    assert.match(
      out,
      /diff against revision 1:\n--- v\.yaml \(revision 1\)\n\+\+\+ v\.yaml \(revision 2\)\n@@/,
    );
    assert.doesNotMatch(out, /===/);
    const same = renderRevision({ ...r, diff: '===\n--- a\n+++ b\n' }, NOW);
    assert.match(same, /the playbook text is the same/);
  });

  test('rollback line: target, new revision, the one it replaces; a no-op says so', () => {
    const reply = {
      deployment: 'web',
      revision: 3,
      previousRevision: 2,
      hash: 'h',
      changed: true,
      check: false,
      nodes: [],
      rollout: 7,
      to: 1,
    } satisfies RollbackReply;
    assert.equal(rollbackLine(reply), 'web: rolling back to revision 1 as revision 3 (was 2) (rollout 7)');
    assert.match(
      rollbackLine({ ...reply, changed: false, revision: 2, rollout: undefined }),
      /nothing to roll back/,
    );
  });
});
