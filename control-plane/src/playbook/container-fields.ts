/**
 * Checks shared by everything in a playbook that becomes a container (a service, its engine, the
 * proxy): a valid image reference, POSIX environment names, and bind mounts under the allowed roots.
 */
import { checkVolume } from '../../../common/volumes.js';
import { isObject } from './guards.js';
import { checkImageRef } from './image-ref.js';
import { childPointer, type PositionIndex } from './positions.js';
import type { ParseOptions, PlaybookError } from './types.js';

/** Environment variable names as POSIX shells accept them. */
export const ENV_KEY = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** The image at `pointer`, when it is a non-empty string that is not a valid reference. */
export function checkImageAt(image: unknown, pointer: string, index: PositionIndex): PlaybookError[] {
  if (typeof image !== 'string' || image === '') return [];
  const problem = checkImageRef(image);
  return problem
    ? [index.error(index.valuePos(pointer), `invalid image '${image}': ${problem.reason}`, problem.hint)]
    : [];
}

/** `image`, `env` keys and `volumes` of the container spec at `base`. */
export function checkContainerFields(
  spec: Record<string, unknown>,
  base: string,
  index: PositionIndex,
  opts: ParseOptions,
): PlaybookError[] {
  const at = (key: string) => childPointer(base, key);
  const errors = checkImageAt(spec.image, at('image'), index);
  if (isObject(spec.env)) {
    for (const key of Object.keys(spec.env)) {
      if (ENV_KEY.test(key)) continue;
      errors.push(
        index.error(
          index.keyPos(childPointer(at('env'), key)),
          `invalid environment variable name '${key}'`,
          'use letters, digits and _, not starting with a digit',
        ),
      );
    }
  }
  if (Array.isArray(spec.volumes)) {
    spec.volumes.forEach((v, i) => {
      if (typeof v !== 'string') return;
      const problem = checkVolume(v, opts.volumeRoots);
      if (problem)
        errors.push(
          index.error(index.valuePos(childPointer(at('volumes'), i)), problem.reason, problem.hint),
        );
    });
  }
  return errors;
}
