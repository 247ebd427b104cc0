import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { readApiKeys, readFleetApiKeys } from '../../../../agent/src/proxy/keys.js';

const dir = await mkdtemp(join(tmpdir(), 'fleet-keys-'));
after(() => rm(dir, { recursive: true, force: true }));

let n = 0;
async function keysFile(text: string): Promise<string> {
  const file = join(dir, `keys-${n++}`);
  await writeFile(file, text);
  return file;
}

const A = 'A1b2C3d4E5f6G7h8.x+y/z=';
const B = 'zzzzzzzzzzzzzzzzzzzz';

test('one key a line; blank lines, comments, surrounding blanks and CRLF ignored', async () => {
  const file = await keysFile(`# team a\n${A}\r\n\n   \n  ${B}  \n\t# old key removed\n`);
  assert.deepEqual(await readApiKeys(file), [A, B]);
});

const BAD_LINES = [
  'short',
  'x'.repeat(257),
  `${A} ${B}`,
  `${A};`,
  `${A}"`,
  `Bearer ${A}`,
  `${A}é`,
  `${A}\\E`,
  `${A}\0`,
];
for (const bad of BAD_LINES) {
  test(`a bad line is refused by number, never echoed (${JSON.stringify(bad.slice(0, 30))})`, async () => {
    const file = await keysFile(`# keys\n${A}\n\n${bad}\n${B}\n`);
    await assert.rejects(readApiKeys(file), (err: Error) => {
      assert.match(err.message, /line 4 /);
      assert.ok(!err.message.includes(A) && !err.message.includes(B), 'a good key leaked');
      assert.ok(!err.message.includes(bad.trim()), 'the bad line leaked');
      return true;
    });
  });
}

test('a file without any key is refused (fail closed, not open)', async () => {
  await assert.rejects(readApiKeys(await keysFile('# nothing yet\n\n')), /holds no key/);
});

test('a missing file is refused naming the file', async () => {
  await assert.rejects(readApiKeys(join(dir, 'absent')), /absent cannot be read \(ENOENT\)/);
});

test('a path from a desired state is read only under /etc/fleet/: anything else is refused unread', async () => {
  const secret = await keysFile(`${A}\n`);
  for (const path of [secret, '/etc/shadow', '/etc/fleet/../shadow', '/etc/fleetx/keys']) {
    await assert.rejects(readFleetApiKeys(path), (err: Error) => {
      assert.equal(err.name, 'ApiKeysFileError');
      assert.match(err.message, /is not a file under \/etc\/fleet\/$/);
      assert.doesNotMatch(err.message, /cannot be read|line \d|holds no key/);
      return true;
    });
  }
  await assert.rejects(readFleetApiKeys('/etc/fleet/absent-e2e-keys'), /cannot be read \(ENOENT\)/);
});
