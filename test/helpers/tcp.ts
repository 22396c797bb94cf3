import { request } from 'node:http';
import { connect } from 'node:net';

/** One HTTP GET / on a fresh TCP connection (no keep-alive: each request is balanced anew). */
export function call(host: string, port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request({ host, port, path: '/', agent: false }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve(body));
      res.on('error', reject);
    });
    req.setTimeout(5_000, () => req.destroy(new Error(`timeout calling ${host}:${port}`)));
    req.on('error', reject);
    req.end();
  });
}

/** Whether anything accepts TCP connections at host:port (the connection is closed at once). */
export function accepts(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host, port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}
