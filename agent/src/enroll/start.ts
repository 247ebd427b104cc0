/**
 * What the agent holds at start: its certificate if it enrolled before, otherwise an enrollment
 * with the join token. One decision, made once per start:
 *
 *   certificate valid     ──▶ use it (a join token given anyway is ignored, and said so)
 *   certificate expired   ──▶ with a token: enroll again (same key, so the name binding holds)
 *                             without: stop with the way back
 *   no certificate        ──▶ with a token: enroll; without: stop naming `fleet join-token create`
 */
import { parseJoinToken } from '../../../common/join-token.js';
import type { Logger } from '../../../common/log.js';
import { type AgentTls, EnrollError, enroll } from './client.js';
import { loadCertificate, loadOrCreateNodeKey, type NodeKey } from './keys.js';
import { decideRenewal, scheduleRenewal, validityOf } from './renew.js';

export interface StartTlsOptions {
  address: string;
  node: string;
  labels: Record<string, string>;
  tlsDir: string;
  joinToken?: string;
  log: Logger;
}

export const NO_CERTIFICATE_MESSAGE =
  'this node has no certificate yet: create a join token on the control plane with ' +
  '`fleet join-token create` and start the agent with `--join-token <token>` (or FLEET_JOIN_TOKEN)';

/** The node's key and mutual-TLS material, enrolling first when it has to. */
export async function startTls(o: StartTlsOptions): Promise<{ tls: AgentTls; key: NodeKey }> {
  const have = loadCertificate(o.tlsDir);
  if (have) {
    const d = decideRenewal(
      scheduleRenewal(validityOf(have.certPem), () => 0),
      Date.now(),
    );
    if (d.kind !== 'expired') {
      if (o.joinToken) o.log.info('already enrolled: the join token is ignored (it stays unused)');
      const { key } = await loadOrCreateNodeKey(o.tlsDir);
      return { tls: { ...have, keyPem: key.pem }, key };
    }
    if (!o.joinToken) throw new EnrollError(d.message);
    o.log.warn('the certificate expired: enrolling again with the join token (same key)');
  }
  if (!o.joinToken) throw new EnrollError(NO_CERTIFICATE_MESSAGE);
  const token = parseJoinToken(o.joinToken);
  if (!token.ok) throw new EnrollError(token.message);
  const tls = await enroll({ ...o, token: token.token });
  const { key } = await loadOrCreateNodeKey(o.tlsDir);
  return { tls, key };
}
