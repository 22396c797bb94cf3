import { connect, createServer, type Server, type Socket } from 'node:net';
import type { PortStatus } from '../state/records/instance.ts';
import { StartError } from './container-runtime.ts';
import { UdpProxy } from './udp-proxy.ts';

/**
 * The published ports of one process pod in its own network namespace, relayed in userland by the
 * agent as docker-proxy does for Docker: each port's host `address:hostPort` (the node address, or
 * the port's hostIP) forwards to `podIP:containerPort`. TCP connections are piped half-open (a
 * client that shuts its side still gets the answer, as kube-proxy relays); UDP goes through a
 * UdpProxy with the pod as its only endpoint, so replies come back from the published port.
 *
 * The relay lives in the agent process: while the agent restarts, published ports do not answer;
 * the pod itself keeps running and the next agent opens them again (NamespacedProcessRuntime).
 */
export class PodPortRelay {
  /** Listening servers with the connections they relay now. */
  private readonly tcp = new Map<string, { server: Server; sockets: Set<Socket> }>();
  private readonly udp = new Map<string, UdpProxy>();
  private closed = false;

  constructor(
    private readonly opts: { address: string; podIP: string; instanceId: string; log?: (line: string) => void },
  ) {}

  get podIP(): string {
    return this.opts.podIP;
  }

  /**
   * Listens on every port not listened on yet. Returns what could not be bound, as the StartError a
   * start would fail with (a taken port is a waiting HostPortInUse); the others stay open.
   */
  async open(ports: PortStatus[]): Promise<StartError[]> {
    const failures: StartError[] = [];
    for (const p of ports) {
      const key = portKey(p);
      if (this.closed || this.tcp.has(key) || this.udp.has(key)) continue;
      const host = p.hostIP ?? this.opts.address;
      const failure = p.protocol === 'UDP' ? await this.listenUdp(key, host, p) : await this.listenTcp(key, host, p);
      if (failure) failures.push(failure);
    }
    return failures;
  }

  /** Ports of `ports` not relayed now (a bind that failed, retried by the next open). */
  missing(ports: PortStatus[]): PortStatus[] {
    return ports.filter((p) => !this.tcp.has(portKey(p)) && !this.udp.has(portKey(p)));
  }

  /** Stops listening; connections already relayed are cut with it, as the pod they go to is going away or the agent is stopping. */
  close(): void {
    this.closed = true;
    for (const { server, sockets } of this.tcp.values()) {
      server.close();
      for (const c of sockets) c.destroy();
    }
    for (const u of this.udp.values()) u.close();
    this.tcp.clear();
    this.udp.clear();
  }

  private listenTcp(key: string, host: string, p: PortStatus): Promise<StartError | undefined> {
    const sockets = new Set<Socket>();
    const server = createServer({ allowHalfOpen: true });
    server.on('connection', (client) => {
      sockets.add(client);
      client.once('close', () => sockets.delete(client));
      this.forward(client, p.containerPort);
    });
    return new Promise((resolve) => {
      server.once('error', (err: NodeJS.ErrnoException) => resolve(bindFailure(err, `${p.hostPort}/TCP on ${host}`)));
      server.listen({ host, port: p.hostPort, exclusive: true }, () => {
        server.removeAllListeners('error');
        server.on('error', (err) => this.opts.log?.(`pod ${this.opts.instanceId}: relay ${host}:${p.hostPort}: ${err.message}`));
        if (this.closed) server.close();
        else this.tcp.set(key, { server, sockets });
        resolve(undefined);
      });
    });
  }

  private forward(client: Socket, containerPort: number): void {
    const upstream = connect({ host: this.opts.podIP, port: containerPort, allowHalfOpen: true });
    let connected = false;
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
    upstream.once('connect', () => {
      connected = true;
      client.pipe(upstream);
      upstream.pipe(client);
    });
    // Nothing listens in the pod (yet): the client sees its connection closed, as with docker-proxy.
    upstream.once('close', (hadError) => {
      if (!connected || hadError) client.destroy();
      else client.end();
    });
    client.once('close', () => upstream.destroy());
  }

  private async listenUdp(key: string, host: string, p: PortStatus): Promise<StartError | undefined> {
    const udp = new UdpProxy({
      address: host,
      port: p.hostPort,
      pick: () => [{ instanceId: this.opts.instanceId, host: this.opts.podIP, port: p.containerPort }],
      log: (line) => this.opts.log?.(`pod ${this.opts.instanceId}: relay ${line}`),
    });
    const error = await udp.listen();
    if (error) return bindFailureText(error, `${p.hostPort}/UDP on ${host}`);
    if (this.closed) udp.close();
    else this.udp.set(key, udp);
    return undefined;
  }
}

function portKey(p: PortStatus): string {
  return `${p.hostIP ?? ''}:${p.hostPort}/${p.protocol ?? 'TCP'}`;
}

/** As allocateHostPorts reports a bind (process-driver.ts): taken and a missing address are waited out. */
function bindFailure(err: NodeJS.ErrnoException, what: string): StartError {
  if (err.code === 'EADDRINUSE') return new StartError('HostPortInUse', `HostPortInUse: ${what} is in use`);
  if (err.code === 'EADDRNOTAVAIL') return new StartError('HostIPNotOnNode', `HostIPNotOnNode: cannot bind ${what}: the address is not on this node`);
  return new StartError('StartFailed', `host port ${what}: ${err.message}`);
}

/** UdpProxy says what failed as "<CODE>: ...". */
function bindFailureText(error: string, what: string): StartError {
  const code = /^([A-Z]+)/.exec(error)?.[1];
  return bindFailure(Object.assign(new Error(error), { code }), what);
}
