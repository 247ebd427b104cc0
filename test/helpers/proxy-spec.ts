import type { ProxyRoute, ProxySpec } from '../../proto/gen/fleet/v1/agent.js';

/** A streamed route to `telechat` with its prefix rewritten to `/`: the shape most proxy tests start from. */
export const proxyRoute = (over: Partial<ProxyRoute> = {}): ProxyRoute => ({
  path: '/api/',
  service: 'telechat',
  stream: true,
  readTimeoutS: 0,
  rewrite: '/',
  ...over,
});

/** A proxy with one route and every option off. */
export const proxySpec = (over: Partial<ProxySpec> = {}): ProxySpec => ({
  image: '127.0.0.1:5000/fleet/nginx:1',
  listenAddress: '127.0.0.1',
  listenPort: 18070,
  routes: [proxyRoute()],
  ratePerSecond: 0,
  rateBurst: 0,
  tlsCertFile: '',
  tlsKeyFile: '',
  apiKeysFile: '',
  ...over,
});

/** Every feature on: a streamed and a plain route (to `web`), rate limit, TLS and API keys. */
export const fullProxySpec = (): ProxySpec =>
  proxySpec({
    routes: [
      proxyRoute(),
      proxyRoute({ path: '/v1/', service: 'web', stream: false, readTimeoutS: 30, rewrite: '' }),
    ],
    ratePerSecond: 20,
    rateBurst: 40,
    tlsCertFile: '/etc/fleet/tls/a.crt',
    tlsKeyFile: '/etc/fleet/tls/a.key',
    apiKeysFile: '/etc/fleet/api-keys',
  });
