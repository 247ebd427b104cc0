/** Placeholder until the GPU assignment lands: Docker device requests for GPUs by UUID. */
export function deviceRequestsFor(uuids: readonly string[]) {
  return [{ Driver: 'nvidia', DeviceIDs: [...uuids], Capabilities: [['gpu']] }];
}
