import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { RolloutReply } from '../../../../control-plane/src/api/client.js';
import { rolloutProgress } from '../../../../control-plane/src/cli/progress.js';
import {
  frame,
  jsonSink,
  lineSink,
  type Out,
  sinkFor,
  terminalSink,
} from '../../../../control-plane/src/cli/progress-render.js';
import { detailNode, detailOf, NOW, rolloutOf, service } from './progress-fixtures.js';

/** A stream that records what was written; `isTTY` as a terminal or a pipe would say. */
function fakeOut(isTTY: boolean): Out & { chunks: string[]; text: () => string } {
  const chunks: string[] = [];
  return {
    isTTY,
    columns: 120,
    rows: 40,
    write(s: string) {
      chunks.push(s);
      return true;
    },
    chunks,
    text: () => chunks.join(''),
  };
}

/** The escape character, as a string: regex literals with control characters are linted away. */
const E = String.fromCharCode(27);
const ESC = `${E}[`;
const CURSOR_UP = new RegExp(`${E}\\[\\d+A`);
const REDRAW = new RegExp(`${E}\\[2K|${E}\\[\\d+A`);
/** log-update wraps each terminal frame in synchronized output (DEC mode 2026). */
const SYNC = new RegExp(`^${E}\\[\\?2026h`);
const pulling = (bytes: string) =>
  detailOf(null, [detailNode('gpu-2', { services: [service({ state: 'pulling', progress: bytes })] })]);
const inBatch2 = (o: Partial<RolloutReply> = {}) =>
  rolloutOf(o, [{ state: 'healthy' }, { state: 'pushed', pushedMs: NOW - 1 }]);

describe('progress on a terminal (log-update)', () => {
  test('redraws the block in place: the second frame moves the cursor up and rewrites only the changed line', () => {
    const out = fakeOut(true);
    const sink = terminalSink(out);
    sink.update([rolloutProgress(inBatch2(), pulling('1 MB of 9 MB'), NOW)]);
    const first = out.text();
    assert.match(first, /rollout 7 of revision 4: rolling, batch 2 of 3/);
    assert.match(first, /2\/3 +gpu-2 +pulling 1 MB of 9 MB/);
    assert.doesNotMatch(first, CURSOR_UP, 'the first frame is written, not redrawn');

    out.chunks.length = 0;
    sink.update([rolloutProgress(inBatch2(), pulling('5 MB of 9 MB'), NOW)]);
    const second = out.text();
    assert.match(second, CURSOR_UP, 'cursor up to the changed line');
    assert.ok(second.includes(`${ESC}2K`), 'the changed line is erased before it is rewritten');
    assert.match(second, /pulling 5 MB of 9 MB/);
    assert.doesNotMatch(second, /gpu-1/, 'unchanged lines are not written again');

    out.chunks.length = 0;
    sink.done();
    assert.doesNotMatch(out.text(), REDRAW, 'done() keeps the last frame on screen');
  });

  test('an unchanged frame writes nothing; done() without a frame writes nothing', () => {
    const out = fakeOut(true);
    const sink = terminalSink(out);
    sink.done();
    assert.equal(out.text(), '');
    const view = rolloutProgress(inBatch2(), pulling('1 MB of 9 MB'), NOW);
    sink.update([view]);
    out.chunks.length = 0;
    sink.update([view]);
    assert.equal(out.text(), '');
  });

  test('sinkFor: a TTY gets the redrawing sink, a pipe plain lines, -o json JSON lines', () => {
    const view = rolloutProgress(inBatch2(), pulling('1 MB of 9 MB'), NOW);
    const tty = fakeOut(true);
    sinkFor('text', tty).update([view]);
    assert.match(tty.text(), SYNC, 'log-update writes terminal frames synchronized');
    const pipe = fakeOut(false);
    sinkFor('text', pipe).update([view]);
    assert.match(pipe.text(), /^rollout 7 of revision 4: rolling, batch 2 of 3\nbatch 1\/3 gpu-1: healthy\n/);
    const unsized = { ...fakeOut(true), rows: 0, columns: 0 };
    sinkFor('text', unsized).update([view]);
    assert.match(unsized.text(), /^rollout 7 .*\nbatch 1\/3 gpu-1: healthy\n/, 'a 0×0 pty gets plain lines');
    const json = fakeOut(true);
    sinkFor('json', json).update([view]);
    assert.equal(JSON.parse(json.chunks[0]!).type, 'rollout');
  });
});

describe('progress as plain lines (not a terminal)', () => {
  test('a line when a node changes, none while it only ticks; rollback nodes prefixed', () => {
    const out = fakeOut(false);
    const sink = lineSink(out);
    const watched = (ms: number) =>
      rolloutOf({}, [
        { state: 'healthy' },
        { state: 'pushed', pushedMs: NOW - 9_000, healthySinceMs: NOW - ms },
      ]);
    sink.update([rolloutProgress(watched(1_000), undefined, NOW)]);
    sink.update([rolloutProgress(watched(4_000), undefined, NOW)]);
    const rollback = rolloutOf({ id: 8, kind: 'rollback', revision: 5, batches: 1, batch: 0 }, [
      { state: 'healthy', batch: 0 },
    ]);
    rollback.nodes = rollback.nodes.slice(0, 1);
    sink.update([rolloutProgress(watched(9_000), undefined, NOW), rolloutProgress(rollback, undefined, NOW)]);
    assert.deepEqual(out.text().split('\n'), [
      'rollout 7 of revision 4: rolling, batch 2 of 3',
      'batch 1/3 gpu-1: healthy',
      'batch 2/3 gpu-2: healthy, watching for 10 s',
      'batch 3/3 gpu-3: waiting for batch 3',
      'rollout 8 of revision 5 (rollback): rolling, batch 1 of 1',
      'rollback: batch 1/1 gpu-1: healthy',
      '',
    ]);
  });
});

describe('progress as JSON lines (-o json)', () => {
  test('one object per line per change: rollout, node, prefetch; repeated states are not repeated', () => {
    const out = fakeOut(false);
    const sink = jsonSink(out);
    const r = inBatch2({ prefetched: { nodes: 2, of: 3 } });
    sink.update([rolloutProgress(r, pulling('1 MB of 9 MB'), NOW)]);
    sink.update([rolloutProgress(r, pulling('1 MB of 9 MB'), NOW)]);
    sink.update([rolloutProgress(r, pulling('5 MB of 9 MB'), NOW)]);
    const lines = out
      .text()
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.deepEqual(lines, [
      {
        type: 'rollout',
        rollout: 7,
        kind: 'apply',
        revision: 4,
        state: 'running',
        batch: 2,
        batches: 3,
        reason: '',
        text: 'rollout 7 of revision 4: rolling, batch 2 of 3',
      },
      { type: 'node', rollout: 7, node: 'gpu-1', batch: 1, state: 'healthy', text: 'healthy' },
      { type: 'node', rollout: 7, node: 'gpu-2', batch: 2, state: 'pulling', text: 'pulling 1 MB of 9 MB' },
      { type: 'node', rollout: 7, node: 'gpu-3', batch: 3, state: 'waiting', text: 'waiting for batch 3' },
      { type: 'prefetch', rollout: 7, nodes: 2, of: 3 },
      { type: 'node', rollout: 7, node: 'gpu-2', batch: 2, state: 'pulling', text: 'pulling 5 MB of 9 MB' },
    ]);
  });
});

describe('frame', () => {
  test('headline with the prefetch, then BATCH NODE STATE', () => {
    const r = inBatch2({ prefetched: { nodes: 1, of: 3 } });
    assert.equal(
      frame([rolloutProgress(r, undefined, NOW)]),
      [
        'rollout 7 of revision 4: rolling, batch 2 of 3 · prefetched 1 of 3 nodes',
        'BATCH  NODE   STATE',
        '1/3    gpu-1  healthy',
        '2/3    gpu-2  pushing',
        '3/3    gpu-3  waiting for batch 3',
      ].join('\n'),
    );
  });
});
