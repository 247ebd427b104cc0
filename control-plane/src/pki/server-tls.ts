/**
 * The certificates the control plane serves with, while it runs.
 *
 * - The agent port always serves the certificate the control plane issues from its own CA (agents
 *   pin that CA through their join token).
 * - The REST API serves the operator's certificate when `--tls-cert`/`--tls-key` name one (checked
 *   at start: readable, a certificate and a key that belong together, in date), else the same
 *   self-issued one.
 *
 * A self-issued certificate is reissued before it runs out, without a restart:
 *
 *   serving(cert n) ──timer at 70% of its life──▶ issue(cert n+1) ──ok──▶ listeners (REST
 *        ▲                                              │               setSecureContext, gRPC
 *        └──────────── retry in a minute ◀── failed ────┘               provider) ▶ serving(n+1)
 *
 * Open connections keep the session they have; new handshakes get the new certificate.
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { RENEW_WINDOW } from '../../../common/pki.js';
import { BACKDATE_MS } from './ca.js';

/** A certificate (chain) and its key, as PEM. */
export interface CertAndKey {
  certPem: string;
  keyPem: string;
}

/** The operator's certificate for the REST API, as loaded from files. */
export interface FileCertificate extends CertAndKey {
  /** SHA-256 of the leaf certificate, `AB:CD:…` as openssl prints it. */
  fingerprint256: string;
  notAfterMs: number;
}

/** A clear reason why `--tls-cert`/`--tls-key` cannot be served, naming the flag and the file. */
export class TlsFilesError extends Error {}

function readPem(flag: string, file: string): string {
  try {
    if (!statSync(file).isFile()) throw new Error('not a regular file');
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new TlsFilesError(`${flag} ${file}: cannot read it (${(err as Error).message})`);
  }
}

/**
 * Loads and checks `--tls-cert` (PEM, the leaf first, intermediates after it) and `--tls-key` (a
 * PEM private key): a missing file, something that is not a certificate or a key, a key of another
 * certificate, or a certificate out of date is refused with the reason, before anything listens.
 */
export function loadCertificateFiles(certFile: string, keyFile: string, nowMs: number): FileCertificate {
  const certPem = readPem('--tls-cert', certFile);
  const keyPem = readPem('--tls-key', keyFile);
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(certPem);
  } catch (err) {
    throw new TlsFilesError(`--tls-cert ${certFile}: not a PEM certificate (${(err as Error).message})`);
  }
  let key: ReturnType<typeof createPrivateKey>;
  try {
    key = createPrivateKey(keyPem);
  } catch (err) {
    throw new TlsFilesError(`--tls-key ${keyFile}: not a PEM private key (${(err as Error).message})`);
  }
  if (!leaf.checkPrivateKey(key))
    throw new TlsFilesError(
      `--tls-key ${keyFile} is not the key of --tls-cert ${certFile} (their public keys differ)`,
    );
  const notBeforeMs = Date.parse(leaf.validFrom);
  const notAfterMs = Date.parse(leaf.validTo);
  if (nowMs < notBeforeMs)
    throw new TlsFilesError(`--tls-cert ${certFile} is not valid yet (from ${leaf.validFrom})`);
  if (nowMs >= notAfterMs) throw new TlsFilesError(`--tls-cert ${certFile} expired on ${leaf.validTo}`);
  return { certPem, keyPem, fingerprint256: leaf.fingerprint256, notAfterMs };
}

/** The operator's REST certificate when both files are named (checked now), else undefined. */
export function restFiles(certFile?: string, keyFile?: string): FileCertificate | undefined {
  if (!certFile && !keyFile) return undefined;
  if (!certFile || !keyFile)
    throw new TlsFilesError('--tls-cert and --tls-key go together: name both files, or neither');
  return loadCertificateFiles(certFile, keyFile, Date.now());
}

/**
 * When the control plane reissues a certificate it issued itself: at 70% of the life it was
 * issued for (from the moment of issue, not from the back-dated notBefore, so that a short
 * lifetime is not due at once).
 */
export function serverRenewAt(notBeforeMs: number, notAfterMs: number): number {
  const issuedAt = Math.min(notBeforeMs + BACKDATE_MS, notAfterMs);
  return Math.floor(issuedAt + (notAfterMs - issuedAt) * RENEW_WINDOW.from);
}

/** What the keeper issues with and tells about renewals. */
export interface KeeperDeps {
  /** Issues a new certificate when the one on disk is due (`loadOrIssueServerCertificate`). */
  issue: () => Promise<CertAndKey & { notBeforeMs: number; notAfterMs: number }>;
  now: () => number;
  onError: (err: Error, retryInMs: number) => void;
  onRenewed: (c: { notAfterMs: number }) => void;
}

const RETRY_MS = 60_000;
/** setTimeout's largest delay; a longer wait is taken in steps. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Holds the control plane's self-issued certificate and reissues it on a timer while the process
 * runs; those who serve it subscribe with `onChange` (the REST server, the agent port).
 */
export class ServerCertificateKeeper {
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly listeners = new Set<(c: CertAndKey) => void>();

  constructor(
    private cert: CertAndKey & { notBeforeMs: number; notAfterMs: number },
    private readonly deps: KeeperDeps,
  ) {}

  current(): CertAndKey {
    return { certPem: this.cert.certPem, keyPem: this.cert.keyPem };
  }

  /** Calls `listener` with every new certificate; returns the unsubscribe function. */
  onChange(listener: (c: CertAndKey) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  start() {
    this.schedule(serverRenewAt(this.cert.notBeforeMs, this.cert.notAfterMs));
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  private schedule(atMs: number) {
    if (this.stopped) return;
    const delay = Math.max(0, atMs - this.deps.now());
    this.timer = setTimeout(
      () => {
        if (this.deps.now() < atMs) this.schedule(atMs);
        else void this.renew();
      },
      Math.min(delay, MAX_TIMER_MS),
    );
    this.timer.unref();
  }

  private async renew() {
    try {
      const next = await this.deps.issue();
      if (this.stopped) return;
      this.cert = next;
      for (const l of this.listeners) l(this.current());
      this.deps.onRenewed({ notAfterMs: next.notAfterMs });
      this.schedule(serverRenewAt(next.notBeforeMs, next.notAfterMs));
    } catch (err) {
      const retry = Math.min(RETRY_MS, Math.max(1_000, (this.cert.notAfterMs - this.deps.now()) / 4));
      this.deps.onError(err as Error, retry);
      this.schedule(this.deps.now() + retry);
    }
  }
}
