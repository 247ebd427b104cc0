import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseTelechat, TELECHAT_CODES } from '../../../inference/src/telechat.js';

const dialog = [{ role: 'user', content: 'hi' }];

test('a valid dialog maps roles user/bot to user/assistant and fills TeleChat defaults', () => {
  const r = parseTelechat({
    dialog: [
      { role: 'user', content: 'a' },
      { role: 'bot', content: 'b' },
      { role: 'user', content: 'c' },
    ],
  });
  assert.ok(r.ok);
  assert.deepEqual(
    r.params.messages.map((m) => m.role),
    ['user', 'assistant', 'user'],
  );
  assert.equal(r.params.sample, false);
  assert.equal(r.params.maxTokens, 2048);
});

const cases: [string, unknown, number][] = [
  ['no body', undefined, TELECHAT_CODES.missingDialog],
  ['no dialog', { max_length: 10 }, TELECHAT_CODES.missingDialog],
  ['empty dialog', { dialog: [] }, TELECHAT_CODES.missingDialog],
  ['dialog not a list', { dialog: 'hi' }, TELECHAT_CODES.missingDialog],
  ['starts with bot', { dialog: [{ role: 'bot', content: 'x' }] }, TELECHAT_CODES.badRoles],
  [
    'two users in a row',
    {
      dialog: [
        { role: 'user', content: 'x' },
        { role: 'user', content: 'y' },
      ],
    },
    TELECHAT_CODES.badRoles,
  ],
  [
    'ends with bot',
    {
      dialog: [
        { role: 'user', content: 'x' },
        { role: 'bot', content: 'y' },
      ],
    },
    TELECHAT_CODES.badRoles,
  ],
  [
    'assistant is not a TeleChat role',
    {
      dialog: [
        { role: 'user', content: 'x' },
        { role: 'assistant', content: 'y' },
        { role: 'user', content: 'z' },
      ],
    },
    TELECHAT_CODES.badRoles,
  ],
  ['content not text', { dialog: [{ role: 'user', content: 3 }] }, TELECHAT_CODES.badRoles],
  ['max_length 0', { dialog, max_length: 0 }, TELECHAT_CODES.paramOutOfRange],
  ['max_length 4097', { dialog, max_length: 4097 }, TELECHAT_CODES.paramOutOfRange],
  ['max_length float', { dialog, max_length: 1.5 }, TELECHAT_CODES.paramOutOfRange],
  ['max_length string', { dialog, max_length: '10' }, TELECHAT_CODES.paramOutOfRange],
  ['top_k 0', { dialog, top_k: 0 }, TELECHAT_CODES.paramOutOfRange],
  ['top_k 100', { dialog, top_k: 100 }, TELECHAT_CODES.paramOutOfRange],
  ['top_p 0', { dialog, top_p: 0 }, TELECHAT_CODES.paramOutOfRange],
  ['top_p 1', { dialog, top_p: 1 }, TELECHAT_CODES.paramOutOfRange],
  ['temperature 1', { dialog, temperature: 1 }, TELECHAT_CODES.paramOutOfRange],
  ['temperature -0.1', { dialog, temperature: -0.1 }, TELECHAT_CODES.paramOutOfRange],
  ['repetition_penalty 1', { dialog, repetition_penalty: 1 }, TELECHAT_CODES.paramOutOfRange],
  ['repetition_penalty 100', { dialog, repetition_penalty: 100 }, TELECHAT_CODES.paramOutOfRange],
  ['do_sample string', { dialog, do_sample: 'yes' }, TELECHAT_CODES.paramOutOfRange],
];

for (const [name, body, code] of cases) {
  test(`rejects ${name} with code ${code}`, () => {
    const r = parseTelechat(body);
    assert.equal(r.ok, false);
    if (!r.ok) {
      assert.equal(r.code, code);
      assert.ok(r.message.length > 10);
    }
  });
}

test('values at the edges of the ranges are accepted', () => {
  const r = parseTelechat({
    dialog,
    max_length: 4096,
    top_k: 99,
    top_p: 0.99,
    temperature: 0.01,
    repetition_penalty: 99.9,
    do_sample: true,
  });
  assert.ok(r.ok);
  assert.deepEqual(
    [
      r.params.maxTokens,
      r.params.topK,
      r.params.topP,
      r.params.temperature,
      r.params.repeatPenalty,
      r.params.sample,
    ],
    [4096, 99, 0.99, 0.01, 99.9, true],
  );
});

test('an optional system turn comes first and is kept; anywhere else it is refused', () => {
  const r = parseTelechat({
    dialog: [
      { role: 'system', content: 'be brief' },
      { role: 'user', content: 'a' },
    ],
  });
  assert.ok(r.ok);
  assert.deepEqual(r.params.messages, [
    { role: 'system', content: 'be brief' },
    { role: 'user', content: 'a' },
  ]);
  for (const dialog of [
    [{ role: 'system', content: 'x' }],
    [
      { role: 'system', content: 3 },
      { role: 'user', content: 'a' },
    ],
    [
      { role: 'user', content: 'a' },
      { role: 'system', content: 'x' },
      { role: 'user', content: 'b' },
    ],
  ]) {
    const bad = parseTelechat({ dialog });
    assert.equal(bad.ok, false, JSON.stringify(dialog));
    assert.equal(bad.ok === false && bad.code, TELECHAT_CODES.badRoles);
  }
});
