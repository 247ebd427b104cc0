import { readFileSync } from 'node:fs';

/** fleet's version, from package.json (three levels above the compiled file in dist/). */
export const VERSION: string = (() => {
  try {
    return JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')).version;
  } catch {
    return '0.0.0-dev';
  }
})();
