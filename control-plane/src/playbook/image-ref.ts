/**
 * Docker image reference validation, following the grammar of distribution/reference:
 *
 *   reference := name [":" tag] ["@" digest]
 *   name      := [domain "/"] path-component ("/" path-component)*
 *   domain    := host [":" port]
 *
 * Checked at parse time so a typo fails `fleet apply` before any host pulls anything. One deliberate
 * tightening: the first component is a registry only if it contains "." or ":" or is "localhost"; otherwise it
 * is part of the (lowercase) repository path, so `UPPER/case` is rejected. IPv6 registry hosts are not supported.
 */

/** A problem with a reference, with a hint when one helps. */
export interface RefProblem {
  reason: string;
  hint?: string;
}

const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST = /^sha256:[a-f0-9]{64}$/;
const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const DOMAIN_COMPONENT = /^(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])$/;
const ALLOWED_CHARS = /^[A-Za-z0-9._:/@-]*$/;
const NAME_MAX = 255;
const FORM_HINT =
  'expected registry[:port]/path[:tag][@sha256:digest], e.g. registry.internal:5000/team/app:1.2';

/** What is left of a reference once a part (digest, tag) is split off, or why that part is wrong. */
type Step = { rest: string } | RefProblem;

/** Returns why `ref` is not a valid image reference, or null when it is. */
export function checkImageRef(ref: string): RefProblem | null {
  const chars = checkCharacters(ref);
  if (chars) return chars;
  const digest = stripDigest(ref);
  if ('reason' in digest) return digest;
  const tag = stripTag(digest.rest);
  if ('reason' in tag) return tag;
  return checkName(tag.rest);
}

function checkCharacters(ref: string): RefProblem | null {
  if (ref === '') return { reason: 'image reference is empty', hint: FORM_HINT };
  if (/\s/.test(ref)) return { reason: 'image reference contains whitespace', hint: FORM_HINT };
  if (!ALLOWED_CHARS.test(ref)) {
    const bad = [...ref].find((c) => !ALLOWED_CHARS.test(c)) ?? '?';
    return { reason: `image reference contains invalid character ${JSON.stringify(bad)}`, hint: FORM_HINT };
  }
  return null;
}

function stripDigest(ref: string): Step {
  const at = ref.indexOf('@');
  if (at < 0) return { rest: ref };
  const digest = ref.slice(at + 1);
  if (!DIGEST.test(digest)) {
    return {
      reason: `invalid digest '${digest}'`,
      hint: "a digest is 'sha256:' followed by 64 lowercase hex digits",
    };
  }
  return { rest: ref.slice(0, at) };
}

function stripTag(ref: string): Step {
  const colon = ref.lastIndexOf(':');
  if (colon <= ref.lastIndexOf('/')) return { rest: ref };
  const tag = ref.slice(colon + 1);
  if (tag === '')
    return { reason: "empty tag after ':'", hint: 'write a tag such as :1.2.3 or drop the colon' };
  if (!TAG.test(tag)) {
    return {
      reason: `invalid tag '${tag}'`,
      hint: 'a tag starts with a letter, digit or _, then letters, digits, _ . -; at most 128 characters',
    };
  }
  return { rest: ref.slice(0, colon) };
}

/** The name: an optional registry domain, then lowercase path components. */
function checkName(name: string): RefProblem | null {
  if (name === '') return { reason: 'image reference has no repository name', hint: FORM_HINT };
  if (name.length > NAME_MAX) return { reason: `repository name is longer than ${NAME_MAX} characters` };
  const components = name.split('/');
  const first = components[0]!;
  if (components.length > 1 && (first.includes('.') || first.includes(':') || first === 'localhost')) {
    const problem = checkDomain(first);
    if (problem) return problem;
    components.shift();
  }
  for (const c of components) {
    const problem = checkPathComponent(c, name);
    if (problem) return problem;
  }
  return null;
}

function checkPathComponent(c: string, name: string): RefProblem | null {
  if (c === '') return { reason: "repository path has an empty component ('//' or a leading/trailing '/')" };
  if (PATH_COMPONENT.test(c)) return null;
  if (PATH_COMPONENT.test(c.toLowerCase())) {
    return { reason: 'repository path must be lowercase', hint: `write '${name.toLowerCase()}'` };
  }
  return {
    reason: `invalid repository path component '${c}'`,
    hint: 'use lowercase letters and digits, separated by one of . _ __ or dashes',
  };
}

function checkDomain(domain: string): RefProblem | null {
  const [host = '', port, ...extra] = domain.split(':');
  if (extra.length > 0) return { reason: `invalid registry '${domain}'`, hint: FORM_HINT };
  if (port !== undefined && (!/^\d{1,5}$/.test(port) || Number(port) > 65535 || Number(port) === 0)) {
    return { reason: `invalid registry port '${port}'`, hint: 'a port is an integer 1..65535' };
  }
  if (!host.split('.').every((c) => DOMAIN_COMPONENT.test(c))) {
    return { reason: `invalid registry host '${host}'`, hint: FORM_HINT };
  }
  return null;
}
