import { timingSafeEqual } from 'node:crypto';

/**
 * Compares two hex strings in constant time (for hashes an attacker may be probing). Apart from
 * `pki.ts` so API-token code (which the CLI loads) does not load the X.509 library with it.
 */
export function sameHex(a: string, b: string): boolean {
  const x = Buffer.from(a.toLowerCase(), 'utf8');
  const y = Buffer.from(b.toLowerCase(), 'utf8');
  return x.length === y.length && timingSafeEqual(x, y);
}
