/**
 * Docker's create options, named for the parts that build them (the proxy's container shapes)
 * without importing dockerode themselves: this folder is the agent's only door to Docker.
 */
export type { ContainerCreateOptions as ContainerCreateSpec, MountSettings } from 'dockerode';
