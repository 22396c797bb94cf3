import type { EndpointsRecord } from '../state/records/service.ts';

/**
 * `<NAME>_SERVICE_HOST` / `<NAME>_SERVICE_PORT` (and `<NAME>_SERVICE_PORT_<PORT>` for named ports)
 * of the services in an instance's namespace, as Kubernetes sets them: for the services that exist
 * when the instance starts. The host is this agent's address, where its proxy listens. Variables
 * the container's own env sets are left out, so a manifest can always override them.
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

export function envName(name: string): string {
  return name.toUpperCase().replace(/-/g, '_');
}
