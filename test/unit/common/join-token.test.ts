import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { base32, formatJoinToken, parseJoinToken } from '../../../common/join-token.js';

const HASH = 'ab'.repeat(32);
const ID = 'abcd2345';
const SECRET = `${'a'.repeat(16)}234567234567zzzz`;

describe('join token text', () => {
  test('format → parse round trip (trimmed, CA hash lowercased)', () => {
    const text = formatJoinToken({ caHash: HASH, id: ID, secret: SECRET });
    assert.equal(text, `K10${HASH}::${ID}.${SECRET}`);
    assert.deepEqual(parseJoinToken(`  ${text.replace(HASH, HASH.toUpperCase())}\n`), {
      ok: true,
      token: { caHash: HASH, id: ID, secret: SECRET },
    });
  });

  const bad: [string, string, RegExp][] = [
    ['empty', '', /does not start with K10/],
    ['a k3s node token without K10', `${HASH}::${ID}.${SECRET}`, /does not start with K10/],
    ['no ::', `K10${HASH}${ID}.${SECRET}`, /no "::" after the CA hash/],
    ['short hash', `K10${HASH.slice(2)}::${ID}.${SECRET}`, /64 hex characters \(SHA-256\), got 62/],
    ['non-hex hash', `K10${'zz'.repeat(32)}::${ID}.${SECRET}`, /64 hex characters/],
    ['no dot', `K10${HASH}::${ID}${SECRET}`, /no "\." between the id and the secret/],
    ['short id', `K10${HASH}::abc.${SECRET}`, /the id must be 8 characters/],
    ['upper-case id', `K10${HASH}::ABCD2345.${SECRET}`, /the id must be 8 characters/],
    [
      'short secret (under 128 bits)',
      `K10${HASH}::${ID}.${SECRET.slice(0, 25)}`,
      /the secret must be 32 characters/,
    ],
    [
      'secret with base64 characters',
      `K10${HASH}::${ID}.${SECRET.slice(0, 31)}-`,
      /the secret must be 32 characters/,
    ],
    ['a k3s user:password part', `K10${HASH}::server:${SECRET}`, /no "\."/],
  ];
  for (const [what, text, message] of bad) {
    test(`refused: ${what}`, () => {
      const r = parseJoinToken(text);
      assert.ok(!r.ok);
      assert.match(r.message, message);
      assert.match(r.message, /^invalid join token: .*as printed by `fleet join-token create`/);
      if (text.includes(SECRET.slice(0, 20)))
        assert.ok(!r.message.includes(SECRET.slice(0, 20)), 'no secret echoed');
    });
  }

  test('base32 is RFC 4648 (lowercase, unpadded)', () => {
    const vectors: [string, string][] = [
      ['', ''],
      ['f', 'my'],
      ['fo', 'mzxq'],
      ['foo', 'mzxw6'],
      ['foob', 'mzxw6yq'],
      ['fooba', 'mzxw6ytb'],
      ['foobar', 'mzxw6ytboi'],
    ];
    for (const [plain, encoded] of vectors) assert.equal(base32(new TextEncoder().encode(plain)), encoded);
  });

  test('every 20-byte secret and 5-byte id formats into a token that parses back (property)', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 5, maxLength: 5 }),
        fc.uint8Array({ minLength: 20, maxLength: 20 }),
        (idBytes, secretBytes) => {
          const token = { caHash: HASH, id: base32(idBytes), secret: base32(secretBytes) };
          assert.deepEqual(parseJoinToken(formatJoinToken(token)), { ok: true, token });
        },
      ),
    );
  });
});
