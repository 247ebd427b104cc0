/**
 * The key that protects secrets at rest. It lives outside the database file (a copied or backed-up
 * fleet.db holds only ciphertext): `FLEET_SECRETS_KEY` (32 bytes, base64) or `DATA_DIR/secrets.key`
 * (owner-only, created on the first start). Two keys are derived from it with HKDF: one encrypts
 * (AES-256-GCM, the secret's name as associated data, so a ciphertext cannot be moved to another
 * name), one fingerprints (HMAC-SHA256), so a fingerprint changes with the value and tells nothing
 * about it, even for a short value.
 */
import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { readOwnerOnly, writeFileAtomic } from '../../../common/pki.js';

export const SECRETS_KEY_ENV = 'FLEET_SECRETS_KEY';
const KEY_BYTES = 32;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;

/** One sealed value: nonce ‖ ciphertext ‖ tag. */
export type Sealed = Buffer;

export class SecretKeyError extends Error {}

export class Keyring {
  private readonly encKey: Buffer;
  private readonly fpKey: Buffer;

  constructor(master: Buffer) {
    if (master.length !== KEY_BYTES)
      throw new SecretKeyError(`the secrets key must be ${KEY_BYTES} bytes, not ${master.length}`);
    this.encKey = Buffer.from(hkdfSync('sha256', master, '', 'fleet secrets: encryption', KEY_BYTES));
    this.fpKey = Buffer.from(hkdfSync('sha256', master, '', 'fleet secrets: fingerprint', KEY_BYTES));
  }

  seal(name: string, value: Buffer): Sealed {
    const nonce = randomBytes(NONCE_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.encKey, nonce);
    cipher.setAAD(Buffer.from(name, 'utf8'));
    const body = Buffer.concat([cipher.update(value), cipher.final()]);
    return Buffer.concat([nonce, body, cipher.getAuthTag()]);
  }

  /** Throws when the data was sealed under another key or name, or was altered. */
  open(name: string, sealed: Sealed): Buffer {
    if (sealed.length < NONCE_BYTES + TAG_BYTES)
      throw new SecretKeyError(`secret ${name}: sealed value too short`);
    const nonce = sealed.subarray(0, NONCE_BYTES);
    const tag = sealed.subarray(sealed.length - TAG_BYTES);
    const decipher = createDecipheriv('aes-256-gcm', this.encKey, nonce);
    decipher.setAAD(Buffer.from(name, 'utf8'));
    decipher.setAuthTag(tag);
    try {
      return Buffer.concat([
        decipher.update(sealed.subarray(NONCE_BYTES, sealed.length - TAG_BYTES)),
        decipher.final(),
      ]);
    } catch {
      throw new SecretKeyError(
        `secret ${name} cannot be decrypted: it was stored under another secrets key (check ${SECRETS_KEY_ENV} or DATA_DIR/secrets.key)`,
      );
    }
  }

  /** 32 hex digits naming one value of one secret. */
  fingerprint(name: string, value: Buffer): string {
    return createHmac('sha256', this.fpKey)
      .update(name)
      .update('\0')
      .update(value)
      .digest('hex')
      .slice(0, 32);
  }
}

/**
 * The keyring of a control plane: from the environment when set (then no key file is written),
 * else from DATA_DIR/secrets.key, created owner-only on the first start. A key file readable by
 * group or others is refused, as the CA key is.
 */
export function loadKeyring(
  dataDir: string,
  env: NodeJS.ProcessEnv = process.env,
): { keyring: Keyring; source: string } {
  const fromEnv = env[SECRETS_KEY_ENV];
  if (fromEnv !== undefined && fromEnv !== '') {
    const key = Buffer.from(fromEnv, 'base64');
    if (key.length !== KEY_BYTES)
      throw new SecretKeyError(
        `${SECRETS_KEY_ENV} must be ${KEY_BYTES} bytes in base64 (e.g. from \`openssl rand -base64 32\`), not ${key.length} bytes`,
      );
    return { keyring: new Keyring(key), source: SECRETS_KEY_ENV };
  }
  const file = join(dataDir, 'secrets.key');
  if (!existsSync(file)) writeFileAtomic(file, `${randomBytes(KEY_BYTES).toString('base64')}\n`, 0o600);
  const key = Buffer.from(readOwnerOnly(file).trim(), 'base64');
  if (key.length !== KEY_BYTES)
    throw new SecretKeyError(`${file} must hold ${KEY_BYTES} bytes in base64, not ${key.length} bytes`);
  return { keyring: new Keyring(key), source: file };
}
