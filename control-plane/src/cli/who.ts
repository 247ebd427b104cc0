import { userInfo } from 'node:os';

/**
 * Who runs the CLI, sent as `appliedBy` with an apply or a rollback until API tokens name the
 * user: the OS user (a host without a passwd entry for the uid falls back to $USER).
 */
export function localUser(): string {
  let name: string;
  try {
    name = userInfo().username;
  } catch {
    name = process.env.USER ?? '';
  }
  return name.slice(0, 64);
}
