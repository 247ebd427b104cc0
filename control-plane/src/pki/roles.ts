/**
 * fleet's trust model, and how a certificate says who it is.
 *
 * Trust
 * - One CA per control plane (`DATA_DIR/ca.crt`, key `ca.key` 0600; `ca.ts`). It signs every
 *   certificate fleet trusts and nothing else trusts it: agents pin it through the join token's
 *   hash (SHA-256 over its DER), the CLI through `--ca-file`.
 * - A node enrolls once with a join token (`join-token.ts`). The agent generates its key and sends
 *   a CSR; the control plane takes only the public key from it (after checking the CSR's signature)
 *   and writes the subject itself: the node name comes from the enrollment request that the token
 *   authorized, never from the CSR's subject or extensions (`issue.ts`).
 * - Identity = certificate = key. Each node name is bound to the first key that enrolled it
 *   (`db/node-keys.ts`): the same key renews, another key for that name is refused (`name-taken`)
 *   until an operator releases the name. A peer therefore counts as node A only when its
 *   certificate (a) chains to our CA, (b) is within its validity, (c) says role agent and node A,
 *   and (d) carries the key bound to A (`identity.ts` does a–c; the caller checks d against the
 *   binding). Whatever a message says its node is, the transport's identity wins.
 *
 * Encoding of roles (exactly one per certificate)
 * - The authoritative encoding is one SAN URI `fleet://<role>/<name>`: `fleet://agent/gpu-01`,
 *   `fleet://server/<host>`. A certificate with none, or with two, is refused.
 * - The subject repeats it for people reading `openssl x509 -text`: `CN=<name>, OU=<role>, O=fleet`.
 *   It is never read for authorization.
 * - extendedKeyUsage matches the role: `clientAuth` only for agents, `serverAuth` only for the
 *   server, so OpenSSL itself refuses an agent certificate presented as a server and a server
 *   certificate presented as a client, before fleet's own checks run.
 * - The server certificate also carries DNS/IP SANs (localhost, 127.0.0.1, ::1, the host name, any
 *   configured names) for ordinary host-name verification by agents and the CLI.
 *
 * Roles reach RPCs through one policy table (a later step): agent RPCs need role `agent`. Users do
 * not hold certificates; they carry bearer tokens bound to admin/deployer/viewer.
 */
import { isNodeName } from '../../../common/node-name.js';

/** Certificate roles. Adding one means adding it to the policy table too. */
export const ROLES = ['agent', 'server'] as const;
export type Role = (typeof ROLES)[number];

export const ROLE_URI_SCHEME = 'fleet:';

/** The SAN URI that names a certificate's role and holder. */
export const roleUri = (role: Role, name: string): string => `fleet://${role}/${name}`;

export type ParsedRoleUri = { ok: true; role: Role; name: string } | { ok: false; message: string };

/** Reads a `fleet://<role>/<name>` URI; the name must pass the node-name rule. */
export function parseRoleUri(uri: string): ParsedRoleUri {
  const m = /^fleet:\/\/([a-z]+)\/([^/?#]+)$/.exec(uri);
  if (!m) return { ok: false, message: `malformed role URI ${JSON.stringify(uri)}` };
  const role = m[1]!;
  if (!(ROLES as readonly string[]).includes(role)) {
    return { ok: false, message: `unknown role ${JSON.stringify(role)}` };
  }
  if (!isNodeName(m[2]!)) return { ok: false, message: `invalid name ${JSON.stringify(m[2])} in role URI` };
  return { ok: true, role: role as Role, name: m[2]! };
}

/** The extendedKeyUsage each role carries (OIDs), and the only one it may carry. */
export const ROLE_EKU: Record<Role, string> = {
  agent: '1.3.6.1.5.5.7.3.2', // clientAuth
  server: '1.3.6.1.5.5.7.3.1', // serverAuth
};
