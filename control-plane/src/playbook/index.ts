/** Public surface of the playbook parser; other modules import from here. */
export { formatError, parsePlaybook } from './parse.js';
export type { ParseResult, Playbook, PlaybookError, PlaybookService } from './types.js';
