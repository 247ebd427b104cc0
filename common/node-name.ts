import { hostname } from 'node:os';

/**
 * The node-name rule, shared by the agent (which picks its name) and the control plane (which
 * accepts it): a DNS label-like name of at most 63 characters, lowercase letters, digits, `.` and
 * `-`, starting and ending with a letter or digit. It ends up in container names and labels.
 */
export const NODE_NAME = /^[a-z0-9]([a-z0-9.-]{0,61}[a-z0-9])?$/;

export const isNodeName = (name: string): boolean => NODE_NAME.test(name);

/** This host's name made to fit the rule (the agent's default node name). */
export function defaultNodeName(host = hostname()): string {
  return (
    host
      .toLowerCase()
      .replace(/[^a-z0-9.-]/g, '-')
      .replace(/^[^a-z0-9]+|[^a-z0-9]+$/g, '')
      .slice(0, 63)
      .replace(/[^a-z0-9]+$/, '') || 'node'
  );
}
