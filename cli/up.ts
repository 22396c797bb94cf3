import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { createInterface } from 'node:readline';
import { ensureRedisServer, startRedisServer, type RedisServerHandle } from './redis-server.ts';
import { redactUrl } from '../state/connection.ts';
import { callApi } from './api-client.ts';
import { TOKEN_FILE_ENV } from './api-token.ts';
import { ADMIN_TOKEN_FILE, ensureAdminToken, TOKENS_FILE, writeSecretFile } from '../reconciler/api/auth.ts';
import type { DeploymentView, InstanceView } from '../reconciler/api/views.ts';
import type { ServiceView } from '../reconciler/services/service-views.ts';

/**
 * `gantry up`: the whole system on one machine, from nothing.
 * Redis (given, or a private redis-server under the data dir), a working Git repository seeded
 * from examples-repo/ on first run, the reconciler and two agents as separate processes that talk
 * only through Redis. Ctrl-C stops everything, instances included.
 */

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const BIN = join(ROOT, 'bin', 'gantry.js');
const run = promisify(execFile);

export interface UpOptions {
  redisUrl?: string;
  dataDir: string;
  repo?: string;
  apiPort: number;
}

const say = (line: string) => process.stdout.write(`gantry up: ${line}\n`);

/** Where `gantry up` keeps its private Redis's password (mode 0600). */
export const REDIS_PASSWORD_FILE = 'redis-password';

/** The data dir's Redis password, made on first use. */
function redisPassword(dataDir: string): string {
  const file = join(dataDir, REDIS_PASSWORD_FILE);
  if (!existsSync(file)) writeSecretFile(file, `${randomBytes(24).toString('hex')}\n`);
  return readFileSync(file, 'utf8').trim();
}

async function seedRepository(dir: string): Promise<boolean> {
  if (existsSync(join(dir, '.git'))) return false;
  mkdirSync(dir, { recursive: true });
  cpSync(join(ROOT, 'examples-repo'), dir, { recursive: true });
  const git = (...args: string[]) => run('git', args, { cwd: dir });
  await git('init', '-q', '-b', 'main');
  await git('add', '-A');
  await git('-c', 'user.name=Gantry', '-c', 'user.email=gantry@localhost', '-c', 'commit.gpgsign=false', 'commit', '-q', '-m', 'Seed from examples-repo');
  return true;
}

function spawnChild(name: string, args: string[], env: Record<string, string>): ChildProcess {
  const child = spawn(process.execPath, [BIN, ...args, '--parent-pid', String(process.pid)], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  for (const stream of [child.stdout!, child.stderr!]) {
    // JSON lines pass as they are (each names its component); text ones get the child's name.
    const json = process.env.GANTRY_LOG_FORMAT === 'json';
    createInterface({ input: stream }).on('line', (line) => process.stdout.write(json && line.startsWith('{') ? `${line}\n` : `[${name}] ${line}\n`));
  }
  return child;
}

function waitExit(child: ChildProcess, timeoutMs: number): Promise<void> {
  return new Promise((res) => {
    if (child.exitCode !== null || child.signalCode !== null) return res();
    const t = setTimeout(() => {
      child.kill('SIGKILL');
      res();
    }, timeoutMs);
    child.once('exit', () => {
      clearTimeout(t);
      res();
    });
  });
}

export async function runUp(opts: UpOptions): Promise<void> {
  mkdirSync(opts.dataDir, { recursive: true });
  let redis: RedisServerHandle | undefined;
  let redisUrl = opts.redisUrl;
  if (!redisUrl) {
    const binary = ensureRedisServer(say);
    // A password of its own (kept 0600 in the data dir) and the append-only file: a private Redis
    // still answers anything on the machine that can reach its port, and a crash loses nothing.
    const password = redisPassword(opts.dataDir);
    redis = await startRedisServer({ dir: join(opts.dataDir, 'redis'), binary, password, appendOnly: true });
    redisUrl = redis.url;
    say(`started redis-server on ${redactUrl(redisUrl)} (password in ${relative(process.cwd(), join(opts.dataDir, REDIS_PASSWORD_FILE)) || REDIS_PASSWORD_FILE}, data and append-only file in ${relative(process.cwd(), join(opts.dataDir, 'redis')) || '.'})`);
  } else {
    say(`using Redis at ${redactUrl(redisUrl)}`);
  }

  let repo = opts.repo;
  if (!repo) {
    repo = join(opts.dataDir, 'repo');
    const created = await seedRepository(repo);
    say(`${created ? 'created' : 'using'} the Git repository ${repo} (seeded from examples-repo/)`);
    say(`  try: cd ${repo} && sed -i 's/replicas: 3/replicas: 5/' apps/web.yaml && git commit -qam 'Scale web to 5'`);
  }

  // The API needs a token: one admin token for this data dir, made once, where the CLI finds it.
  const adminTokenFile = join(opts.dataDir, ADMIN_TOKEN_FILE);
  if (ensureAdminToken(join(opts.dataDir, TOKENS_FILE), adminTokenFile).created) say(`created an admin API token in ${relative(process.cwd(), adminTokenFile) || adminTokenFile} (mode 0600)`);
  process.env[TOKEN_FILE_ENV] ??= adminTokenFile;

  // The URL (with its password) goes to the children in their environment, not on argv: `ps` shows argv.
  const childEnv = { GANTRY_REDIS_URL: redisUrl };
  const common = ['--data-dir', opts.dataDir];
  const children: { name: string; child: ChildProcess }[] = [];
  const stopAll = async () => {
    say('stopping agents (and their instances), reconciler and Redis');
    for (const { child } of children) child.kill('SIGTERM');
    await Promise.all(children.map(({ child }) => waitExit(child, 20_000)));
    await redis?.stop();
  };
  let stopping = false;
  const onSignal = () => {
    if (stopping) return;
    stopping = true;
    void stopAll().then(() => process.exit(0));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  children.push({ name: 'reconciler', child: spawnChild('reconciler', ['reconciler', ...common, '--repo', repo, '--port', String(opts.apiPort)], childEnv) });
  for (const node of ['node-1', 'node-2']) {
    // Two "hosts" on one machine: on Linux all of 127/8 is loopback, so node-2 gets 127.0.0.2 and
    // both service proxies can listen on the same service port, as on two real hosts.
    const address = node === 'node-2' && process.platform === 'linux' ? ['--address', '127.0.0.2'] : [];
    children.push({ name: node, child: spawnChild(node, ['agent', ...common, '--node', node, ...address, '--cpu', '2', '--memory', '2Gi', '--labels', `zone=${node === 'node-1' ? 'a' : 'b'}`, '--stop-instances-on-exit'], childEnv) });
  }
  for (const { name, child } of children) {
    child.once('exit', (code, signal) => {
      if (stopping) return;
      say(`${name} exited (${signal ?? `code ${code}`}); stopping everything`);
      stopping = true;
      void stopAll().then(() => process.exit(1));
    });
  }

  const api = `http://127.0.0.1:${opts.apiPort}`;
  await waitUntil(async () => (await callApi<{ ok: boolean }>(api, '/healthz')).ok, 30_000);
  say(`API on ${api}  (gantry get deployments | gantry get instances | gantry get nodes; token in ${relative(process.cwd(), adminTokenFile) || adminTokenFile})`);
  await reportWhenReady(api);
}

async function waitUntil(check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await check()) return;
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) throw new Error('the reconciler did not come up; see its output above');
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Prints once every deployment is ready, with the addresses its instances answer on. */
async function reportWhenReady(api: string): Promise<void> {
  await waitUntil(async () => {
    const { items } = await callApi<{ items: DeploymentView[] }>(api, '/api/v1/deployments');
    return items.length > 0 && items.every((d) => d.ready === d.replicas && d.updated === d.replicas);
  }, 120_000).catch(() => say('some deployments are not ready yet: gantry get instances shows why'));
  const [{ items: deployments }, { items: instances }] = await Promise.all([
    callApi<{ items: DeploymentView[] }>(api, '/api/v1/deployments'),
    callApi<{ items: InstanceView[] }>(api, '/api/v1/instances'),
  ]);
  for (const d of deployments) {
    const urls = instances
      .filter((i) => i.namespace === d.namespace && i.deployment === d.name && i.phase === 'Running')
      .flatMap((i) => i.ports.slice(0, 1).map((p) => `http://${i.hostIP}:${p.hostPort}/`));
    say(`${d.namespace}/${d.name}: ${d.ready}/${d.replicas} ready${urls.length ? `: ${urls.join(' ')}` : ''}`);
  }
  const { items: services } = await callApi<{ items: ServiceView[] }>(api, '/api/v1/services');
  for (const s of services) {
    const problems = s.conditions.filter((c) => c.status === 'True' && c.type !== 'EndpointsReady').map((c) => `${c.type}: ${c.message}`);
    const urls = s.listen.map((p) => `http://127.0.0.1:${p}/`).join(' ');
    say(`service ${s.namespace}/${s.name}: ${urls || 'not listening'} -> ${s.endpoints.length} endpoint(s)${problems.length ? ` (${problems.join('; ')})` : ''}`);
  }
  say('running; Ctrl-C stops everything');
}
