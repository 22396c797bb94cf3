import type { EndpointsRecord } from '../state/records/service.ts';

/**
 * `<NAME>_SERVICE_HOST` / `<NAME>_SERVICE_PORT` (and `<NAME>_SERVICE_PORT_<PORT>` for named ports)
 * of the services in an instance's namespace, as Kubernetes sets them: for the services that exist
 * when the instance starts. The host is where the container reaches this agent's proxy
 * (`serviceHost`). Variables the container's own env sets are left out, so a manifest can always
 * override them.
 */
export function serviceEnv(services: readonly EndpointsRecord[], namespace: string, address: string, ownNames: readonly string[] = []): Record<string, string> {
  const env: Record<string, string> = {};
  for (const s of services) {
    if (s.namespace !== namespace) continue;
    const listened = s.ports.filter((p) => s.listen.includes(p.port));
    if (listened.length === 0) continue;
    const name = envName(s.name);
    env[`${name}_SERVICE_HOST`] = address;
    env[`${name}_SERVICE_PORT`] = String(listened[0]!.port);
    for (const p of listened) if (p.name) env[`${name}_SERVICE_PORT_${envName(p.name)}`] = String(p.port);
  }
  for (const n of ownNames) delete env[n];
  return env;
}

/**
 * The address an instance's `<NAME>_SERVICE_HOST` names, as a pod is given a ClusterIP it can reach:
 * a process shares the host's network and reaches the proxy on the agent's address; a Docker
 * container, on the bridge network, has its own loopback (127.0.0.x is itself there) and reaches the
 * host at the network's gateway, where the proxy listens too. No gateway known (Docker's is not on
 * this host): the agent's address, which a container reaches only when it is not a loopback one.
 */
export function serviceHost(runtime: 'process' | 'docker', address: string, containerGateway: string | undefined): string {
  return runtime === 'docker' ? (containerGateway ?? address) : address;
}

export function envName(name: string): string {
  return name.toUpperCase().replace(/-/g, '_');
}
