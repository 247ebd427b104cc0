import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseSse, type SseItem } from '../../../common/sse.js';

async function parse(chunks: string[]): Promise<SseItem[]> {
  const enc = new TextEncoder();
  async function* body() {
    for (const c of chunks) yield enc.encode(c);
  }
  const out: SseItem[] = [];
  for await (const item of parseSse(body())) out.push(item);
  return out;
}

describe('parseSse', () => {
  test('messages, comments, multi-line data, ids that carry over, split chunks and CRLF', async () => {
    const items = await parse([
      ': ping\n\nid: 7\nevent: a.b\nda',
      'ta: {"x":1}\r',
      '\n\r\ndata: one\ndata:two\n\n',
    ]);
    assert.deepEqual(items, [
      { type: 'comment', text: 'ping' },
      { type: 'message', message: { id: '7', event: 'a.b', data: '{"x":1}' } },
      { type: 'message', message: { id: '7', event: 'message', data: 'one\ntwo' } },
    ]);
  });

  test('an event without a blank line at the end is not dispatched', async () => {
    assert.deepEqual(await parse(['data: half']), []);
  });
});
