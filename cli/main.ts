import { registerCompletionCommand } from './completion.ts';
import { watchList } from './watch.ts';
import { registerDescribeCommand } from './describe.ts';
import { registerDeleteCommand } from './delete.ts';
import { parseNotificationConfig, type NotificationConfig } from '../reconciler/notifications/notification-config.ts';
import { LOG_FORMATS, LOG_LEVELS } from '../reconciler/log.ts';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { VERSION } from '../reconciler/version.ts';
import { validateDirectory } from '../reconciler/manifests/index.ts';
import { ApiError, DEFAULT_API, callApi, streamApi } from './api-client.ts';
import { byteSize, cpuMilli, durationMs, labels, memoryBytes, nodeName, nonNegativeInt, outputFormat, port, positiveInt } from './args.ts';
import { render } from './format.ts';
import { table } from './table.ts';
import { addGitHostingOptions, runAgent, runReconciler } from './serve.ts';
import { EXIT_CHANGES, EXIT_NO_CHANGES, registerPlanCommand } from './plan.ts';
import { hasChanges, planText } from '../reconciler/preview/plan-report.ts';
import { runUp } from './up.ts';
import { registerTokenCommand } from './token.ts';
import { agentAclRules } from '../state/acl.ts';
import { REDIS_CA_ENV } from '../state/connection.ts';
import { TOKEN_ENV, TOKEN_FILE_ENV } from './api-token.ts';
import { registerRolloutCommand } from './rollout.ts';
import { shortSha } from '../lib/short-sha.ts';
import { DEFAULT_EVICTION_MS, DEFAULT_MAX_INSTANCES, DEFAULT_NODE_READY_MS } from '../state/records/node.ts';
import { DEFAULT_MAX_REPLICAS, HARD_MAX_REPLICAS } from '../reconciler/manifests/limits.ts';
import { joinErrors, MAX_REPORTED_ERRORS } from '../state/records/status.ts';
import { DEFAULT_ADOPTION_WAIT_MS, DEFAULT_FULL_RESYNC_MS } from '../reconciler/reconciler.ts';
import { DEFAULT_COMMIT_LIMITS, DEFAULT_MAX_FILE_BYTES } from '../reconciler/git/tree-reader.ts';
import { DEFAULT_FETCH_LIMITS } from '../reconciler/git/pack-guard.ts';
import { DEFAULT_ADOPTION_WINDOW_MS } from '../agents/epoch-watch.ts';
import { DEFAULT_POD_NETWORK_RANGE } from '../agents/pod-netns-plan.ts';
import { DEFAULT_START_CONCURRENCY } from '../agents/start-slots.ts';

/**
 * `gantry`: exit codes are 0 success, 1 failure, 2 usage error (bad command or argument, with a
 * one-line message).
 */

const EXIT_FAILURE = 1;
const EXIT_USAGE = 2;

/** --max-replicas: a positive integer up to the schema's hard maximum. */
const maxReplicas = (v: string): number => {
  const n = positiveInt(v);
  if (n > HARD_MAX_REPLICAS) throw new InvalidArgumentError(`expected at most ${HARD_MAX_REPLICAS} (the schema's maximum), got ${JSON.stringify(v)}`);
  return n;
};
const maxReplicasOption = () => new Option('--max-replicas <n>', 'a Deployment with more replicas is an error (its commit is rejected)').argParser(maxReplicas).default(DEFAULT_MAX_REPLICAS);

const apiOption = () => new Option('--api <url>', 'reconciler API URL').env('GANTRY_API').default(DEFAULT_API);
const redisOption = () => new Option('--redis <url>', 'Redis URL (with a password, give it as $GANTRY_REDIS_URL or --redis-url-file: argv shows in ps)').env('GANTRY_REDIS_URL');
const redisUrlFileOption = () => new Option('--redis-url-file <path>', 'file holding the Redis URL, credentials included').env('GANTRY_REDIS_URL_FILE');
const redisCaOption = () => new Option('--redis-ca <file>', 'CA certificate a rediss:// server is checked against (default: the system CAs)').env(REDIS_CA_ENV);

/**
 * The Redis URL of `reconciler` and `agent`: a file (--redis-url-file) wins over the option, whose
 * value may come from $GANTRY_REDIS_URL. A password given on the command line works but is warned
 * about: every user of the machine can read it from /proc.
 */
function redisUrlOf(cmd: Command, fromOption: string): string {
  const { redisUrlFile: file, redisCa } = cmd.opts<{ redisUrlFile?: string; redisCa?: string }>();
  // Every connection of the process (BullMQ's included) takes the CA from the environment.
  if (redisCa) process.env[REDIS_CA_ENV] = resolve(redisCa);
  if (file) {
    try {
      return readFileSync(file, 'utf8').trim();
    } catch (err) {
      throw new CommanderError(EXIT_USAGE, 'gantry.usage', `error: --redis-url-file ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
  }
  if (cmd.getOptionValueSource('redis') === 'cli' && /^rediss?:\/\/[^/]*:[^/@]*@/.test(fromOption)) {
    process.stderr.write('warning: the Redis password is on the command line, where ps shows it; use $GANTRY_REDIS_URL or --redis-url-file\n');
  }
  return fromOption;
}
/** Read and checked at once: a mistake in the file is a one-line usage error, before anything starts. */
function notificationsFile(path: string): NotificationConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new InvalidArgumentError(`cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  try {
    return parseNotificationConfig(text, path);
  } catch (err) {
    throw new InvalidArgumentError(err instanceof Error ? err.message : String(err));
  }
}

const prefixOption = () => new Option('--prefix <prefix>', 'Redis key prefix').env('GANTRY_PREFIX').default('gantry');
const dataDirOption = () => new Option('--data-dir <dir>', 'where Gantry keeps its files').env('GANTRY_DATA_DIR').default('.gantry');

const program = new Command('gantry')
  .description('Gantry: a declarative GitOps reconciler, scheduler and node agent')
  .version(VERSION, '-V, --version')
  // A path, not the token: a token on argv would show in `ps`.
  .option('--token-file <path>', `file holding the API token (else $${TOKEN_ENV}, $${TOKEN_FILE_ENV}, or .gantry/admin-token here or above)`)
  .addOption(new Option('--log-format <format>', 'log lines as text or as JSON objects (pino)').choices(LOG_FORMATS).env('GANTRY_LOG_FORMAT').default('text'))
  .addOption(new Option('--log-level <level>', 'least level logged').choices(LOG_LEVELS).env('GANTRY_LOG_LEVEL').default('info'))
  .exitOverride()
  .configureOutput({ writeErr: (s) => process.stderr.write(s) })
  .hook('preAction', () => {
    const { tokenFile: file, logFormat, logLevel } = program.opts<{ tokenFile?: string; logFormat: string; logLevel: string }>();
    if (file) process.env[TOKEN_FILE_ENV] = resolve(file);
    // Through the environment: the loggers read it, and so do the processes `gantry up` starts.
    process.env.GANTRY_LOG_FORMAT = logFormat;
    process.env.GANTRY_LOG_LEVEL = logLevel;
  });

program
  .command('version')
  .description('print the version')
  .action(() => console.log(`gantry ${VERSION}`));

program
  .command('up')
  .description('start Redis, the reconciler and two agents on the examples (Ctrl-C stops everything)')
  .addOption(redisOption())
  .addOption(dataDirOption())
  .option('--repo <path|url>', 'Git repository to watch (default: a working copy of examples-repo/ under the data dir)')
  .addOption(new Option('--port <port>', 'API port').argParser(port).default(7070))
  .action(async (o) => runUp({ redisUrl: o.redis, dataDir: resolve(o.dataDir), repo: o.repo, apiPort: o.port }));

program
  .command('reconciler')
  .description('run the reconciler: Git source, controller, scheduler and API')
  .addOption(redisOption().default('redis://127.0.0.1:6379'))
  .addOption(redisUrlFileOption())
  .addOption(redisCaOption())
  .addOption(prefixOption())
  .addOption(dataDirOption())
  .addOption(new Option('--repo <path|url>', 'Git repository: a local path or an http(s) URL').env('GANTRY_REPO').makeOptionMandatory())
  .addOption(new Option('--branch <branch>', 'branch to follow').env('GANTRY_BRANCH').default('main'))
  .addOption(new Option('--path <subpath>', 'folder of the repository holding the manifests').env('GANTRY_PATH').default('.'))
  .option('--token-env <name>', 'environment variable holding an HTTPS token for the repository', 'GANTRY_GIT_TOKEN')
  .addOption(new Option('--host <host>', 'API listen address').default('127.0.0.1'))
  .addOption(new Option('--port <port>', 'API port').argParser(port).default(7070))
  .addOption(new Option('--api-tokens-file <path>', 'tokens the API accepts, as hashes (default <data-dir>/api-tokens; `gantry token create` adds to it)').env('GANTRY_API_TOKENS_FILE'))
  .addOption(new Option('--webhook-host <host>', 'webhook listener address (default: --host)'))
  .addOption(new Option('--webhook-port <port>', 'webhook listener port, serving only POST /webhooks/* (on when the webhook secret is set)').argParser(port).default(7071))
  .addOption(new Option('--poll-interval <duration>', 'how often a remote repository is fetched').argParser(durationMs).default(60_000, '60s'))
  .addOption(new Option('--resync <duration>', 'how often drift, missed changes and pending instances are checked (costs what changed)').argParser(durationMs).default(10_000, '10s'))
  .addOption(new Option('--full-resync <duration>', 'how often every deployment is reconciled again, changed or not').argParser(durationMs).default(DEFAULT_FULL_RESYNC_MS, '5m'))
  .addOption(new Option('--node-ready-timeout <duration>', 'heartbeat age after which a node is NotReady').argParser(durationMs).default(DEFAULT_NODE_READY_MS, `${DEFAULT_NODE_READY_MS / 1000}s`))
  .addOption(new Option('--eviction-timeout <duration>', 'how long a node stays NotReady before its instances are rescheduled').argParser(durationMs).default(DEFAULT_EVICTION_MS, `${DEFAULT_EVICTION_MS / 1000}s`))
  .addOption(maxReplicasOption())
  .addOption(new Option('--max-file-size <size>', 'a manifest file larger than this is an error (its commit is rejected)').argParser(byteSize).default(DEFAULT_MAX_FILE_BYTES, '1Mi'))
  .addOption(new Option('--max-commit-files <n>', 'a commit with more manifest files under --path is rejected whole').argParser(positiveInt).default(DEFAULT_COMMIT_LIMITS.maxFiles))
  .addOption(new Option('--max-commit-size <size>', 'a commit whose manifest files add up to more is rejected whole').argParser(byteSize).default(DEFAULT_COMMIT_LIMITS.maxTotalBytes, '64Mi'))
  .addOption(new Option('--max-object-size <size>', 'a fetch bringing a larger object (blob, tree, delta result) is stopped').argParser(byteSize).default(DEFAULT_FETCH_LIMITS.maxObjectBytes, '128Mi'))
  .addOption(new Option('--max-fetch-size <size>', 'a fetch bringing a larger pack is stopped').argParser(byteSize).default(DEFAULT_FETCH_LIMITS.maxPackBytes, '1Gi'))
  .addOption(new Option('--notifications-file <path>', 'where events are sent: webhooks and Slack-compatible receivers, with filters (see README)').env('GANTRY_NOTIFICATIONS_FILE').argParser(notificationsFile))
  .addOption(new Option('--adoption-wait <duration>', 'after Redis lost its data: how long instances no agent claims wait before they are created').argParser(durationMs).default(DEFAULT_ADOPTION_WAIT_MS, `${DEFAULT_ADOPTION_WAIT_MS / 1000}s`))
  .addOption(new Option('--parent-pid <pid>').hideHelp())
  .action(async function (this: Command, o) {
    return runReconciler({ ...o, redis: redisUrlOf(this, o.redis) });
  });
addGitHostingOptions(program.commands.find((c) => c.name() === 'reconciler')!);
registerPlanCommand(program, apiOption);
registerDeleteCommand(program, apiOption);
registerCompletionCommand(program);

program
  .command('agent')
  .description('run a node agent: registers the node and runs the instances bound to it')
  .addOption(new Option('--node <name>', 'node name (a DNS label)').argParser(nodeName).makeOptionMandatory())
  .addOption(new Option('--cpu <cores>', 'CPU capacity').argParser(cpuMilli).default(4000, '4'))
  .addOption(new Option('--memory <quantity>', 'memory capacity').argParser(memoryBytes).default(8 * 1024 ** 3, '8Gi'))
  .addOption(new Option('--labels <k=v,...>', 'node labels').argParser(labels).default({}, 'none'))
  .addOption(new Option('--max-instances <n>', 'most instances bound to this node at once').argParser(positiveInt).default(DEFAULT_MAX_INSTANCES))
  .addOption(new Option('--concurrency <n>', 'instance starts at once (sandbox, create, start); stops, pulls and probes never wait for one').argParser(positiveInt).default(DEFAULT_START_CONCURRENCY))
  .option('--address <ip>', 'address on which instance ports are published', '127.0.0.1')
  .addOption(redisOption().default('redis://127.0.0.1:6379'))
  .addOption(redisUrlFileOption())
  .addOption(redisCaOption())
  .addOption(prefixOption())
  .addOption(dataDirOption())
  .addOption(new Option('--heartbeat <duration>', 'heartbeat interval').argParser(durationMs).default(5000, '5s'))
  .option('--stop-instances-on-exit', 'stop this node\'s instances when the agent exits (default: leave them running, to be adopted)')
  .addOption(new Option('--restart-backoff <duration>', 'delay before the second restart of a crashing container, doubling after').argParser(durationMs).default(10_000, '10s'))
  .addOption(new Option('--restart-backoff-max <duration>', 'cap of the restart backoff').argParser(durationMs).default(300_000, '5m'))
  .addOption(new Option('--stop-after-disconnect <duration>', 'stop this node\'s instances after this long without Redis (default: keep them running)').argParser(durationMs))
  .addOption(new Option('--adoption-window <duration>', 'after Redis lost its data: how long instances keep running without a record, claimed for adoption').argParser(durationMs).default(DEFAULT_ADOPTION_WINDOW_MS, `${DEFAULT_ADOPTION_WINDOW_MS / 1000}s`))
  .option('--no-docker', 'do not offer the Docker runtime even when an engine answers')
  .option('--pod-network-namespaces', 'give each process pod its own network namespace (containerPort honoured, siblings on localhost, ports relayed by the agent); root on Linux only')
  .addOption(new Option('--pod-network-range <cidr>', 'with --pod-network-namespaces: private IPv4 range the pods\' /30 subnets come from').default(DEFAULT_POD_NETWORK_RANGE))
  .addOption(new Option('--logs-port <port>', 'port of the agent\'s log endpoint on --address (0: any free port)').argParser(port).default(0))
  .option('--hollow', "for benchmarks only: runs the agent's whole path but starts nothing")
  .addOption(new Option('--parent-pid <pid>').hideHelp())
  .action(async function (this: Command, o) {
    return runAgent({ ...o, redis: redisUrlOf(this, o.redis) });
  });

program
  .command('validate')
  .description('validate the manifests in a folder (exit 1 with file:line errors when invalid)')
  .argument('<path>', 'folder (or repository) holding manifests')
  .option('--path <subpath>', 'sub-folder of PATH holding the manifests', '.')
  .addOption(maxReplicasOption())
  .action(async (path: string, o) => {
    const res = await validateDirectory(resolve(path), o.path, { maxReplicas: o.maxReplicas });
    // The first ones, as the reconciler reports them: 100,000 lines help nobody. Warnings (ignored
    // kinds and fields, skipped files) go to stderr too and never change the exit code.
    for (const w of res.warnings.slice(0, MAX_REPORTED_ERRORS)) console.error(`warning: ${w.toString()}`);
    if (res.warnings.length > MAX_REPORTED_ERRORS) console.error(`warning: ... and ${res.warnings.length - MAX_REPORTED_ERRORS} more warning(s)`);
    for (const e of res.errors.slice(0, MAX_REPORTED_ERRORS)) console.error(e.toString());
    if (res.errors.length > 0) {
      console.error(res.errors.length > MAX_REPORTED_ERRORS ? `... and ${res.errors.length - MAX_REPORTED_ERRORS} more: ${res.errors.length} error(s)` : `${res.errors.length} error(s)`);
      process.exitCode = EXIT_FAILURE;
      return;
    }
    const counts = new Map<string, number>();
    for (const o2 of res.objects) counts.set(o2.manifest.kind, (counts.get(o2.manifest.kind) ?? 0) + 1);
    const ignored = res.warnings.filter((w) => w.code === 'IGNORED_KIND' || w.code === 'SKIPPED').length;
    const fields = res.warnings.filter((w) => w.code === 'IGNORED_FIELD').length;
    const notes = [ignored > 0 ? `${ignored} ignored` : '', fields > 0 ? `${fields} ignored field${fields === 1 ? '' : 's'}` : ''].filter(Boolean);
    console.log(`valid: ${[...counts].map(([k, n]) => `${n} ${k}${n === 1 ? '' : 's'}`).join(', ') || 'no manifests'}${notes.length > 0 ? ` (${notes.join(', ')})` : ''}`);
  });

program
  .command('get')
  .description('list nodes, deployments, instances, services, configmaps or secrets (values masked)')
  .argument('<kind>', 'nodes | deployments | instances | services | configmaps | secrets')
  .option('-n, --namespace <ns>', 'only this namespace')
  .addOption(new Option('-o, --output <format>', 'table | wide | json | yaml (wide: instances with each container)').argParser(outputFormat).default('table'))
  .option('-w, --watch', 'after the list, print each object again whenever it changes (Ctrl-C stops)')
  .addOption(apiOption())
  .action(async (kind: string, o) => {
    const k = ({ node: 'nodes', nodes: 'nodes', no: 'nodes', deployment: 'deployments', deployments: 'deployments', deploy: 'deployments', instance: 'instances', instances: 'instances', inst: 'instances', service: 'services', services: 'services', svc: 'services', configmap: 'configmaps', configmaps: 'configmaps', cm: 'configmaps', secret: 'secrets', secrets: 'secrets' } as const)[kind as 'nodes'];
    if (!k) throw new CommanderError(EXIT_USAGE, 'gantry.usage', `error: unknown kind ${JSON.stringify(kind)}: expected nodes, deployments, instances, services, configmaps or secrets`);
    const q = o.namespace && k !== 'nodes' ? `?namespace=${encodeURIComponent(o.namespace)}` : '';
    if (o.watch) await watchList(o.api, k, `/api/v1/${k}${q}`, o.output);
    const { items } = await callApi<{ items: unknown[] }>(o.api, `/api/v1/${k}${q}`);
    console.log(render(k, items, o.output));
  });

registerDescribeCommand(program, apiOption);
registerRolloutCommand(program, apiOption);
registerTokenCommand(program, dataDirOption);

program
  .command('acl')
  .description('print the Redis ACL rules a node agent needs (least privilege; see README)')
  .argument('<who>', 'agent')
  .addOption(new Option('--node <name>', 'the node name').argParser(nodeName).makeOptionMandatory())
  .addOption(prefixOption())
  .action((who: string, o: { node: string; prefix: string }) => {
    if (who !== 'agent') throw new CommanderError(EXIT_USAGE, 'gantry.usage', `error: unknown ACL subject ${JSON.stringify(who)}: expected agent`);
    // The password placeholder stays: the secret is the operator's to choose, never ours to print.
    console.log(`ACL SETUSER gantry-agent-${o.node} on >PASSWORD ${agentAclRules(o.node, o.prefix).join(' ')}`);
  });

program
  .command('node')
  .description('cordon, uncordon or drain a node (cordoned: no new placements; drained: instances moved off)')
  .argument('<action>', 'cordon | uncordon | drain')
  .argument('<node>', 'node name')
  .addOption(new Option('--timeout <duration>', 'drain: how long to wait for the node to empty').argParser(durationMs).default(300_000, '5m'))
  .addOption(apiOption())
  .action(async (action: string, node: string, o) => {
    if (action !== 'cordon' && action !== 'uncordon' && action !== 'drain') throw new CommanderError(EXIT_USAGE, 'gantry.usage', `error: unknown node action ${JSON.stringify(action)}: expected cordon, uncordon or drain`);
    await callApi(o.api, `/api/v1/nodes/${encodeURIComponent(node)}/${action}`, { method: 'POST', body: {} });
    if (action !== 'drain') {
      console.log(`node/${node} ${action}ed`);
      return;
    }
    console.log(`node/${node} cordoned, draining`);
    const deadline = Date.now() + o.timeout;
    let last = -1;
    for (;;) {
      const { items } = await callApi<{ items: { name: string; draining: boolean; instances: number }[] }>(o.api, '/api/v1/nodes');
      const n = items.find((x) => x.name === node);
      if (!n || !n.draining) break;
      if (n.instances !== last) console.log(`node/${node}: ${n.instances} instance(s) left`);
      last = n.instances;
      if (Date.now() > deadline) throw new Error(`node ${node} still has ${n.instances} instance(s) after ${o.timeout / 1000}s: gantry events --for node/${node} says why`);
      await new Promise((r) => setTimeout(r, 500));
    }
    console.log(`node/${node} drained`);
  });

program
  .command('events')
  .description('list events (restarts, evictions, rollouts, rejected commits...), oldest first')
  .option('-w, --watch', 'keep printing new events')
  .option('--for <object>', 'only events of this object: deployment/NAME (with -n), node/NAME, source')
  .option('-n, --namespace <ns>', 'namespace of --for deployment/NAME', 'default')
  .addOption(new Option('--limit <n>', 'how many recent events').argParser(positiveInt).default(50))
  .addOption(apiOption())
  .action(async (o) => {
    let filter = '';
    if (o.for) {
      const m = /^(deployments?|deploy|node|instance)\/([a-z0-9][-a-z0-9.]*)$|^source$/.exec(o.for);
      if (!m) throw new CommanderError(EXIT_USAGE, 'gantry.usage', `error: --for expects deployment/NAME, node/NAME, instance/ID or source, got ${JSON.stringify(o.for)}`);
      filter = m[1]?.startsWith('deploy') ? `deployment/${o.namespace}/${m[2]}` : o.for;
    }
    const seen = new Set<string>();
    let first = true;
    for (;;) {
      const q = new URLSearchParams({ limit: String(o.limit), ...(filter ? { for: filter } : {}) });
      const { items } = await callApi<{ items: { id: string; time: number; type: string; reason: string; object: string; message: string }[] }>(o.api, `/api/v1/events?${q}`);
      const fresh = items.filter((e) => !seen.has(e.id));
      const rows = fresh.map((e) => [new Date(e.time).toISOString().slice(11, 19), e.type, e.reason, e.object, e.message]);
      if (first) console.log(rows.length === 0 ? 'No events found.' : table(['TIME', 'TYPE', 'REASON', 'OBJECT', 'MESSAGE'], rows));
      else for (const r of rows) console.log(r.join('   '));
      first = false;
      for (const e of fresh) seen.add(e.id);
      if (!o.watch) return;
      await new Promise((r) => setTimeout(r, 1000));
    }
  });

program
  .command('logs')
  .description('print (and with -f, follow) the output of an instance')
  .argument('<instance>', 'instance id (gantry get instances)')
  .option('-f, --follow', 'keep streaming new output')
  .addOption(new Option('--tail <lines>', 'only the last N lines').argParser(nonNegativeInt))
  .option('-c, --container <name>', 'only this container of the instance')
  .addOption(apiOption())
  .action(async (id: string, o) => {
    const q = new URLSearchParams();
    if (o.follow) q.set('follow', '1');
    if (o.tail !== undefined) q.set('tail', String(o.tail));
    if (o.container) q.set('container', o.container);
    await streamApi(o.api, `/api/v1/instances/${encodeURIComponent(id)}/logs?${q}`, process.stdout);
  });

program
  .command('diff')
  .description('show what the branch head would change against what runs now (exit 0: no changes, 2: changes, 1: invalid or error)')
  .addOption(apiOption())
  .action(async (o) => {
    const d = await callApi<import('../state/records/preview.ts').HeadDiff>(o.api, '/api/v1/diff');
    // The same text and exit codes as `gantry plan` (for the branch head), so scripts can use either.
    if (!d.valid) {
      console.error(planText(d));
      process.exitCode = EXIT_FAILURE;
      return;
    }
    console.log(planText(d));
    process.exitCode = hasChanges(d) ? EXIT_CHANGES : EXIT_NO_CHANGES;
  });

program
  .command('sync')
  .description('fetch the source and reconcile now')
  .addOption(apiOption())
  .action(async (o) => {
    let r = await callApi<{ outcome: string; commit?: string; errors?: string[]; errorCount?: number; error?: string; diff?: { summary: string } }>(o.api, '/api/v1/sync', { method: 'POST', body: {} });
    if (r.outcome === 'unchanged') {
      // The watcher may have looked at the head first: a head it rejected is still rejected.
      const { source } = await callApi<{ source: { rejectedCommit?: string; errors?: string[]; errorCount?: number } | null }>(o.api, '/api/v1/status');
      if (source?.rejectedCommit && source.rejectedCommit === r.commit) r = { outcome: 'rejected', commit: r.commit, errors: source.errors, errorCount: source.errorCount };
    }
    if (r.outcome === 'rejected') {
      console.error(`commit ${shortSha(r.commit)} rejected:`);
      // The first errors (MAX_REPORTED_ERRORS) and how many more there are.
      console.error(`  ${joinErrors(r.errors ?? [], r.errorCount, '\n  ')}`);
      process.exitCode = EXIT_FAILURE;
    } else if (r.outcome === 'failed') {
      console.error(`sync failed: ${r.error}`);
      process.exitCode = EXIT_FAILURE;
    } else {
      console.log(`commit ${shortSha(r.commit)}: ${r.outcome}${r.diff ? ` (${r.diff.summary})` : ''}`);
    }
  });

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    // Help and version exit 0; everything else commander rejects is a usage error.
    if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') process.exit(0);
    if (err.code === 'gantry.usage') process.stderr.write(`${err.message}\n`);
    process.exit(EXIT_USAGE);
  }
  process.stderr.write(`error: ${err instanceof ApiError || err instanceof Error ? err.message : String(err)}\n`);
  process.exit(EXIT_FAILURE);
}
