/**
 * What the control plane's CA and the agent's enrollment agree on, in one place so both sides compute
 * the same bytes: the one key algorithm (ECDSA P-256 with SHA-256: every OpenSSL that grpc-js and
 * Node's `tls` link supports it for TLS 1.2 and 1.3, unlike Ed25519 in some builds), fingerprints
 * (SHA-256 hex over DER), constant-time comparison, PEM framing, owner-only key files, and when a
 * certificate renews.
 *
 * @peculiar/x509 resolves its decorators through reflect-metadata and its crypto through a provider
 * it keeps as a library singleton; both are set here, once, for every importer of `x509`.
 */
import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto);

export * from './pki-core.js';
export { x509 };
