import { readFileSync } from 'node:fs';

/**
 * fleet's version, from the root package.json (two levels above the compiled file in dist/common/).
 * Every part reports the same version: agents send it in their hello, the control plane shows it.
 */
export const VERSION: string = (() => {
  try {
    return (
      JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')).version ?? '0.0.0-dev'
    );
  } catch {
    return '0.0.0-dev';
  }
})();
