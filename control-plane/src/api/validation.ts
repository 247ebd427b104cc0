import Ajv from 'ajv';
import type { FastifyInstance } from 'fastify';

/**
 * Request validation for every route. Fastify's default ajv removes properties a schema does not
 * allow, which would let `{"dryRun": true}` through silently; here unknown keys are errors.
 * Bodies are never coerced (a string is not a boolean); query strings and params are, since
 * they only ever arrive as text.
 */
export function installValidation(app: FastifyInstance) {
  const strict = { allErrors: false, removeAdditional: false, useDefaults: true, strict: false } as const;
  const body = new Ajv.default({ ...strict, coerceTypes: false });
  const text = new Ajv.default({ ...strict, coerceTypes: 'array' });
  app.setValidatorCompiler(({ schema, httpPart }) =>
    (httpPart === 'body' ? body : text).compile(schema as object),
  );
}
