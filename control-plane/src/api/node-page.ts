/**
 * The node list's page sizes, in a module of their own so the CLI (which checks `--limit`) loads
 * them without the schemas and their TypeBox.
 */
export const NODE_PAGE_MAX = 1000;
export const NODE_PAGE_DEFAULT = 100;
