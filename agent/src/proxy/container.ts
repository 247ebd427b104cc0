/**
 * The shape of a deployment's nginx container, as pure functions so a unit test can check the
 * exact Docker spec. Only what shapes the container is hashed (image, published address and port,
 * TLS files): a change there means a new container, anything else in the config is a reload.
 */
import { join } from 'node:path';
import { contentHash } from '../../../common/canonical.js';
import { NO_NEW_PRIVILEGES } from '../../../common/container-policy.js';
import type { ProxySpec } from '../../../proto/gen/fleet/v1/agent.js';
import type { ContainerCreateSpec, MountSettings } from '../docker/types.js';
import { checkImage, checkIPv4, checkLabel, checkPort, checkSecretFile } from './allow.js';
import {
  PROXY_CONFIG_DIR,
  PROXY_CONFIG_FILE,
  PROXY_CONTAINER_PORT,
  PROXY_TLS_CERT,
  PROXY_TLS_KEY,
} from './layout.js';

export const PROXY_ROLE = 'proxy';

/** Bumped when this file changes how the container is made, so old containers are replaced. */
const LAYOUT_VERSION = 1;

export const proxyContainerName = (node: string, deployment: string) => `fleet-${node}-${deployment}-proxy`;

/** The fields that shape the container (checked: they go into Docker's API and the host's mounts). */
export interface ProxyShape {
  image: string;
  listenAddress: string;
  listenPort: number;
  tlsCertFile: string;
  tlsKeyFile: string;
}

export function proxyShape(spec: ProxySpec): ProxyShape {
  return {
    image: checkImage(spec.image),
    listenAddress: checkIPv4('proxy listen address', spec.listenAddress),
    listenPort: checkPort('proxy listen port', spec.listenPort),
    tlsCertFile: checkSecretFile('TLS certificate file', spec.tlsCertFile),
    tlsKeyFile: checkSecretFile('TLS key file', spec.tlsKeyFile),
  };
}

export const proxySpecHash = (shape: ProxyShape) =>
  contentHash({ ...shape, layout: LAYOUT_VERSION }).slice(0, 16);

/**
 * Labels: managed, node, deployment, role and hash. Deliberately no fleet.service or
 * fleet.replica: the replica planner ignores containers without them, so it never touches nginx.
 */
export function proxyLabels(node: string, deployment: string, hash: string): Record<string, string> {
  return {
    'fleet.managed': 'true',
    'fleet.node': checkLabel('node', node),
    'fleet.deployment': checkLabel('deployment', deployment),
    'fleet.role': PROXY_ROLE,
    'fleet.spec-hash': hash,
  };
}

/**
 * Bind mounts: the deployment's config dir read-only, and the TLS files read-only on top of the
 * placeholder files the driver creates in it (so Docker never has to create a mount point inside
 * a read-only mount). `Mounts`, not `Binds`: a missing source is an error, where `Binds` would
 * silently create a directory on the host in place of a missing certificate.
 */
export function proxyMounts(configDir: string, shape: ProxyShape): MountSettings[] {
  const bind = (Source: string, Target: string): MountSettings => ({
    Type: 'bind',
    Source,
    Target,
    ReadOnly: true,
  });
  const mounts = [bind(configDir, PROXY_CONFIG_DIR)];
  if (shape.tlsCertFile !== '') {
    mounts.push(bind(shape.tlsCertFile, PROXY_TLS_CERT), bind(shape.tlsKeyFile, PROXY_TLS_KEY));
  }
  return mounts;
}

/** Host paths of the TLS mount points inside a config dir. */
export const tlsPlaceholders = (configDir: string) => [
  join(configDir, 'tls', 'cert.pem'),
  join(configDir, 'tls', 'key.pem'),
];

export interface ProxyContainerInput {
  node: string;
  deployment: string;
  network: string;
  configDir: string;
  shape: ProxyShape;
}

/**
 * The serving container: on the node network, container port 8080 published on the listen address
 * and port, no Docker restart policy (the agent restarts it, so status stays truthful), an init
 * process so nginx's master reaps and receives signals properly, and no-new-privileges (nginx needs
 * no setuid: its master starts as the image's user and never gains more). Adding it did not bump
 * LAYOUT_VERSION: a proxy made by an older agent keeps serving until its shape changes.
 */
export function proxyContainerOptions(p: ProxyContainerInput): ContainerCreateSpec {
  const portKey = `${PROXY_CONTAINER_PORT}/tcp`;
  return {
    name: proxyContainerName(p.node, p.deployment),
    Image: p.shape.image,
    Cmd: ['nginx', '-c', PROXY_CONFIG_FILE, '-g', 'daemon off;'],
    Labels: proxyLabels(p.node, p.deployment, proxySpecHash(p.shape)),
    ExposedPorts: { [portKey]: {} },
    HostConfig: {
      Mounts: proxyMounts(p.configDir, p.shape),
      PortBindings: {
        [portKey]: [{ HostIp: p.shape.listenAddress, HostPort: String(p.shape.listenPort) }],
      },
      NetworkMode: p.network,
      RestartPolicy: { Name: 'no' },
      Init: true,
      SecurityOpt: [NO_NEW_PRIVILEGES],
    },
  };
}

/**
 * A throwaway container that runs `nginx -t` on a candidate config before a new container is made
 * from it: same image and mounts, no network, no ports, labelled so a crashed agent's leftovers can
 * be found (fleet.role=proxy-check).
 */
export function checkContainerOptions(
  p: Omit<ProxyContainerInput, 'network'>,
  configFile: string,
): ContainerCreateSpec {
  return {
    Image: p.shape.image,
    Cmd: ['nginx', '-t', '-q', '-c', configFile],
    Labels: {
      'fleet.managed': 'true',
      'fleet.node': p.node,
      'fleet.deployment': p.deployment,
      'fleet.role': `${PROXY_ROLE}-check`,
    },
    HostConfig: {
      Mounts: proxyMounts(p.configDir, p.shape),
      NetworkMode: 'none',
      RestartPolicy: { Name: 'no' },
      Init: true,
      SecurityOpt: [NO_NEW_PRIVILEGES],
    },
  };
}
