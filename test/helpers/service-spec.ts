import type { ServiceSpec } from '../../proto/gen/fleet/v1/agent.js';

/**
 * One wire ServiceSpec for tests: a single replica of `web` on port 8080 with nothing else set.
 * Each test passes what its case is about (name, image, env…) as overrides, so the defaults stay
 * the same for every test that uses it.
 */
export function serviceSpec(over: Partial<ServiceSpec> = {}): ServiceSpec {
  return {
    name: 'web',
    image: '127.0.0.1:5000/x/web:1',
    replicas: 1,
    env: {},
    port: 8080,
    publish: 0,
    command: [],
    volumes: [],
    secretEnv: {},
    ...over,
  };
}
