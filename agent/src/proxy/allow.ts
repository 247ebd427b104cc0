/**
 * The agent's second line of defence for values that reach nginx config or the proxy's container
 * spec. The control plane already checked them against the same allowlists (proto/allowlist.ts);
 * checking again here means a bug or a compromised control plane still cannot open a new nginx
 * directive or block. Every check rejects (throws ProxyConfigError); nothing is ever escaped.
 */
import { API_KEY, DNS_LABEL, matches, SECRET_FILE, URL_PATH } from '../../../common/allowlist.js';
import { MATERIALIZED_SECRET } from '../secrets/files.js';

/** A value failed its allowlist: the proxy config is not rendered (nothing half-applied). */
export class ProxyConfigError extends Error {
  override readonly name = 'ProxyConfigError';
}

/** Strict dotted-quad IPv4: four decimal octets 0..255 without leading zeros (no octal, no hex). */
const IPV4 =
  /^(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}$/;

/**
 * Image references as the Docker API takes them (a field, never a shell word): registry, path, tag,
 * digest. Loose on purpose (the control plane checks the grammar); it only keeps out whitespace,
 * control characters, quotes and anything non-ASCII.
 */
const IMAGE = /^[A-Za-z0-9][A-Za-z0-9._:/@-]{0,254}$/;

/** Describes a rejected value without echoing it whole: it may be hostile or (for keys) secret. */
function shown(value: unknown): string {
  if (typeof value !== 'string') return typeof value;
  return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}...` : value);
}

/** Deployment and service names: they become nginx identifiers and container names. */
export function checkLabel(what: string, value: unknown): string {
  if (!matches(DNS_LABEL, value)) throw new ProxyConfigError(`${what} ${shown(value)} is not a DNS label`);
  return value;
}

/** Route prefixes, rewrites and health paths. */
export function checkPath(what: string, value: unknown): string {
  if (!matches(URL_PATH, value))
    throw new ProxyConfigError(`${what} ${shown(value)} is not an allowed URL path`);
  return value;
}

export function checkIPv4(what: string, value: unknown): string {
  if (typeof value !== 'string' || !IPV4.test(value))
    throw new ProxyConfigError(`${what} ${shown(value)} is not an IPv4 address`);
  return value;
}

/** An integer in [min, max]; NaN, fractions, infinities and non-numbers are refused. */
export function checkInt(what: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max)
    throw new ProxyConfigError(`${what} ${shown(String(value))} is not an integer in ${min}..${max}`);
  return value;
}

export const checkPort = (what: string, value: unknown) => checkInt(what, value, 1, 65535);

/**
 * Files on the node the proxy mounts (TLS) or reads (API keys); empty means "not set". A playbook
 * names files under /etc/fleet/; a secret becomes the agent's own file (`secrets/files.ts`).
 */
export function checkSecretFile(what: string, value: unknown): string {
  if (value === '') return '';
  if (!matches(SECRET_FILE, value) && !matches(MATERIALIZED_SECRET, value))
    throw new ProxyConfigError(`${what} ${shown(value)} is not under /etc/fleet/`);
  return value;
}

export function checkImage(value: unknown): string {
  if (typeof value !== 'string' || !IMAGE.test(value))
    throw new ProxyConfigError(`proxy image ${shown(value)} is not an image reference`);
  return value;
}

/** API keys are secrets: the message names the position, never the key. */
export function checkApiKey(index: number, value: unknown): string {
  if (!matches(API_KEY, value)) throw new ProxyConfigError(`API key #${index + 1} is not an allowed key`);
  return value;
}

export function checkBoolean(what: string, value: unknown): boolean {
  if (typeof value !== 'boolean') throw new ProxyConfigError(`${what} is not a boolean`);
  return value;
}
