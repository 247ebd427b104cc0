/**
 * What a value looks like, worked out once when it is set so apply can check a reference's use
 * without opening the value (`SecretShape`). TLS means a certificate and the private key that
 * matches it, parsed by Node's own crypto, so nginx is never handed a pair it would refuse.
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import type { SecretShape } from '../db/secrets.js';

const CREDENTIAL = /^[^:\s]+:[^\r\n]+\r?\n?$/;

function isTlsPair(value: Buffer): boolean {
  const text = value.toString('utf8');
  if (!text.includes('-----BEGIN CERTIFICATE-----') || !/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(text))
    return false;
  try {
    const cert = new X509Certificate(value);
    return cert.checkPrivateKey(createPrivateKey(text));
  } catch {
    return false;
  }
}

export function shapeOf(value: Buffer): SecretShape {
  const text = value.toString('utf8');
  return {
    tls: isTlsPair(value),
    credential: CREDENTIAL.test(text),
    lines: text.split(/\r?\n/).filter((l) => l.trim() !== '').length,
  };
}
