/**
 * The join token's text, shared by the control plane (which mints it) and the agent (which reads
 * it): `K10<ca-hash>::<id>.<secret>`, after k3s's secure tokens.
 *
 *   K10  version tag (k3s's; it says "a CA hash follows")
 *   ca-hash  64 hex: SHA-256 over the DER of the control plane's CA certificate. The agent checks
 *            the CA it is shown against it before it sends the secret (no trust on first use).
 *   id       8 base32 characters: names the token in `fleet join-token list|revoke`; not secret.
 *   secret   32 base32 characters (160 random bits; at least 128 are required), stored only hashed.
 *
 * Base32 (RFC 4648, lowercase, no padding) rather than base64url: no `-` or `_`, so a double-click
 * in a terminal selects the whole token.
 */

export const JOIN_TOKEN_PREFIX = 'K10';
/** Random bytes behind an id (8 base32 characters). */
export const JOIN_TOKEN_ID_BYTES = 5;
/** Random bytes behind a secret (32 base32 characters, 160 bits). */
export const JOIN_TOKEN_SECRET_BYTES = 20;

export interface JoinToken {
  /** Lowercase hex SHA-256 of the CA certificate's DER. */
  caHash: string;
  id: string;
  secret: string;
}

export type ParsedJoinToken = { ok: true; token: JoinToken } | { ok: false; message: string };

const ALPHABET = 'abcdefghijklmnopqrstuvwxyz234567';

/** RFC 4648 base32, lowercase, without padding. */
export function base32(bytes: Uint8Array): string {
  let out = '';
  let bits = 0;
  let value = 0;
  for (const b of bytes) {
    value = (value << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out += ALPHABET[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += ALPHABET[(value << (5 - bits)) & 31];
  return out;
}

const base32Length = (bytes: number) => Math.ceil((bytes * 8) / 5);
export const JOIN_TOKEN_ID_CHARS = base32Length(JOIN_TOKEN_ID_BYTES);
export const JOIN_TOKEN_SECRET_CHARS = base32Length(JOIN_TOKEN_SECRET_BYTES);

/** The token as printed once by `fleet join-token create`. */
export const formatJoinToken = (t: JoinToken): string =>
  `${JOIN_TOKEN_PREFIX}${t.caHash}::${t.id}.${t.secret}`;

const HINT = `expected ${JOIN_TOKEN_PREFIX}<64 hex>::<id>.<secret> as printed by \`fleet join-token create\``;
const fail = (why: string): ParsedJoinToken => ({
  ok: false,
  message: `invalid join token: ${why} (${HINT})`,
});

/**
 * Reads a token (surrounding whitespace ignored, as when pasted). Each way it can be malformed has
 * its own message; the message never repeats the secret.
 */
export function parseJoinToken(text: string): ParsedJoinToken {
  const t = text.trim();
  if (!t.startsWith(JOIN_TOKEN_PREFIX)) return fail(`it does not start with ${JOIN_TOKEN_PREFIX}`);
  const sep = t.indexOf('::');
  if (sep < 0) return fail('no "::" after the CA hash');
  const caHash = t.slice(JOIN_TOKEN_PREFIX.length, sep);
  if (!/^[0-9a-fA-F]{64}$/.test(caHash)) {
    return fail(`the CA hash must be 64 hex characters (SHA-256), got ${caHash.length} characters`);
  }
  const rest = t.slice(sep + 2);
  const dot = rest.indexOf('.');
  if (dot < 0) return fail('no "." between the id and the secret');
  const id = rest.slice(0, dot);
  const secret = rest.slice(dot + 1);
  if (!new RegExp(`^[a-z2-7]{${JOIN_TOKEN_ID_CHARS}}$`).test(id)) {
    return fail(`the id must be ${JOIN_TOKEN_ID_CHARS} characters of a-z and 2-7`);
  }
  if (!new RegExp(`^[a-z2-7]{${JOIN_TOKEN_SECRET_CHARS}}$`).test(secret)) {
    return fail(`the secret must be ${JOIN_TOKEN_SECRET_CHARS} characters of a-z and 2-7`);
  }
  return { ok: true, token: { caHash: caHash.toLowerCase(), id, secret } };
}
