import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { readGgufFileInfo } from 'node-llama-cpp';
import { TINY_GGUF, tinyVocab, writeTinyGguf } from '../../helpers/tiny-gguf.js';

const dir = mkdtempSync(join(tmpdir(), 'tiny-gguf-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('tiny GGUF writer', () => {
  it('writes a GGUF v3 file of a few hundred KB', () => {
    const path = join(dir, 'a.gguf');
    writeTinyGguf(path);
    const buf = readFileSync(path);
    assert.equal(buf.subarray(0, 4).toString('latin1'), 'GGUF');
    assert.equal(buf.readUInt32LE(4), 3);
    assert.equal(buf.readBigUInt64LE(8), BigInt(3 + 9 * TINY_GGUF.layers)); // tensors
    const size = statSync(path).size;
    assert.ok(size > 100_000 && size < 1_000_000, `size ${size}`);
  });

  it('is deterministic for a seed and differs across seeds', () => {
    writeTinyGguf(join(dir, 's1.gguf'), { seed: 7 });
    writeTinyGguf(join(dir, 's2.gguf'), { seed: 7 });
    writeTinyGguf(join(dir, 's3.gguf'), { seed: 8 });
    const [a, b, c] = ['s1', 's2', 's3'].map((n) => readFileSync(join(dir, `${n}.gguf`)));
    assert.ok(a!.equals(b!));
    assert.ok(!a!.equals(c!));
    assert.equal(a!.length, c!.length);
  });

  it('has the metadata, vocabulary and tensors a llama model needs (read back by node-llama-cpp)', async () => {
    const path = join(dir, 'meta.gguf');
    writeTinyGguf(path, { name: 'tiny-test' });
    const info = await readGgufFileInfo(path, { logWarnings: false });
    const md = info.metadata as unknown as Record<string, Record<string, unknown>>;
    assert.equal(info.version, 3);
    assert.equal(md.general!.architecture, 'llama');
    assert.equal(md.general!.name, 'tiny-test');
    const vocab = tinyVocab();
    const tokenizer = md.tokenizer!.ggml as Record<string, unknown>;
    assert.equal(tokenizer.model, 'llama');
    assert.equal((tokenizer.tokens as string[]).length, vocab.tokens.length);
    assert.equal(tokenizer.bos_token_id, 1);
    assert.equal(tokenizer.eos_token_id, 2);
    assert.ok(vocab.tokens.includes('<0x00>') && vocab.tokens.includes('<0xFF>'));
    assert.ok(vocab.tokens.length > 259 + 100);
    const names = info.tensorInfo!.map((t) => t.name);
    for (const n of ['token_embd.weight', 'output_norm.weight', 'output.weight', 'blk.1.ffn_down.weight']) {
      assert.ok(names.includes(n), n);
    }
    const embd = info.tensorInfo!.find((t) => t.name === 'token_embd.weight')!;
    assert.deepEqual(embd.dimensions.map(Number), [TINY_GGUF.embedding, vocab.tokens.length]);
    for (const t of info.tensorInfo!) assert.equal(Number(t.offset) % TINY_GGUF.alignment, 0, t.name);
  });

  it('has a CLI that writes the file and prints its path and size', () => {
    const script = fileURLToPath(new URL('../../helpers/tiny-gguf.js', import.meta.url));
    const out = join(dir, 'cli', 'model.gguf');
    const printed = execFileSync(process.execPath, [script, out], { encoding: 'utf8' });
    assert.match(printed, new RegExp(`${out.replace(/[.]/g, '\\.')} ${statSync(out).size} bytes`));
    assert.ok(readFileSync(out).equals(readFileSync(join(dir, 'a.gguf'))));
  });
});
