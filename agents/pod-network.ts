import type { PortStatus } from '../state/records/instance.ts';

/**
 * What the containers of one pod learn about each other's ports. Docker containers share the
 * sandbox's network namespace and reach a sibling on localhost:<containerPort>. Processes share the
 * host's network, where a containerPort is only a name: each declared port got a host port, and
 * every container of the pod is told where each of the pod's ports is:
 *
 *   GANTRY_PORT_<containerPort>      host port of that TCP containerPort (any container of the pod)
 *   GANTRY_PORT_<containerPort>_UDP  the same for UDP
 *   GANTRY_POD_HOST                  where to connect to them (the node's address)
 *
 * A sidecar that would fetch localhost:8080 in Kubernetes fetches $GANTRY_POD_HOST:$GANTRY_PORT_8080
 * here. (PORT and PORT_<NAME> stay the container's own, as before.)
 */
export function podPortEnv(ports: PortStatus[], podHost: string): Record<string, string> {
  const env: Record<string, string> = { GANTRY_POD_HOST: podHost };
  for (const p of ports) {
    const key = `GANTRY_PORT_${p.containerPort}${p.protocol === 'UDP' ? '_UDP' : ''}`;
    // Two containers declaring the same port: the first one's, as only one of them can listen on it in a real pod.
    env[key] ??= String(p.hostPort);
  }
  return env;
}

/** One port per containerPort and protocol: the containers of a pod share one network, so a port is the pod's (the first declaration wins). */
export function uniquePorts(ports: PortStatus[]): PortStatus[] {
  const seen = new Set<string>();
  return ports.filter((p) => {
    const key = `${p.containerPort}/${p.protocol ?? 'TCP'}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}
