import { Command, CommanderError, Option } from 'commander';
import { callApi } from './api-client.ts';
import { age, table } from './table.ts';
import { positiveInt } from './args.ts';
import { shortSha } from '../lib/short-sha.ts';
import type { DeploymentStatus } from '../state/records/status.ts';

/**
 * `gantry rollout status|history|undo|pause|resume|promote|abort|restart deployment/NAME [-n NS]`.
 * `status` follows with a live progress line until the rollout completes (exit 0) or fails (exit 1).
 */

interface RolloutView {
  generation: number;
  replicas: number;
  status: DeploymentStatus | null;
  history: { revision: number; templateHash: string; commit: string; message: string; createdAt: number; current: boolean; stable: boolean; failed: boolean }[];
}

function parseTarget(ref: string): string {
  const m = /^(?:deployments?|deploy)\/([a-z0-9]([-a-z0-9]*[a-z0-9])?)$/.exec(ref);
  if (!m) throw new CommanderError(2, 'gantry.usage', `error: expected deployment/NAME, got ${JSON.stringify(ref)}`);
  return m[1]!;
}

function progressLine(v: RolloutView): string {
  const s = v.status;
  if (!s) return 'waiting for the first reconcile...';
  const r = s.rollout;
  const head = r ? `revision ${r.revision} ${r.phase}` : 'no rollout';
  return `${head}: ${s.updatedReplicas} updated, ${s.readyReplicas}/${v.replicas} ready, ${s.replicas - s.updatedReplicas} old${r?.message ? ` - ${r.message}` : ''}`;
}

const DONE: Record<'undo' | 'pause' | 'resume' | 'promote' | 'abort' | 'restart', (revision: number) => string> = {
  undo: (n) => `rolled back to revision ${n} (pinned until the next commit that changes it, or gantry rollout resume)`,
  pause: () => 'paused',
  resume: () => 'resumed',
  promote: () => 'promoted',
  abort: (n) => `aborted: back to revision ${n}`,
  restart: () => 'restarting',
};

export function registerRolloutCommand(program: Command, apiOption: () => Option): void {
  const rollout = program.command('rollout').description('watch and steer rollouts: status, history, undo, pause, resume, promote, abort, restart');
  const path = (ns: string, name: string) => `/api/v1/deployments/${ns}/${name}/rollout`;

  rollout
    .command('status')
    .argument('<deployment>', 'deployment/NAME')
    .option('-n, --namespace <ns>', 'namespace', 'default')
    .option('--no-follow', 'print once instead of following')
    .addOption(apiOption())
    .action(async (ref: string, o) => {
      const name = parseTarget(ref);
      let last = '';
      for (;;) {
        const v = await callApi<RolloutView>(o.api, path(o.namespace, name));
        const line = progressLine(v);
        const r = v.status?.rollout;
        // Follow until the status reflects this generation and the rollout is done either way.
        const current = v.status?.observedGeneration === v.generation;
        const interactive = process.stdout.isTTY;
        if (line !== last) {
          if (interactive) process.stdout.write(`\r\x1b[2K${line}`);
          else process.stdout.write(`${line}\n`);
          last = line;
        }
        if (current && r && r.phase !== 'Progressing') {
          if (interactive) process.stdout.write('\n');
          const ok = r.phase === 'Complete' && !r.pinned;
          if (!ok) process.exitCode = 1;
          // Pinned: what runs is not what Git asks for; the Pinned condition says which revision and why.
          const pin = v.status?.conditions.find((c) => c.type === 'Pinned' && c.status === 'True');
          console.log(
            ok
              ? `deployment/${name} successfully rolled out`
              : r.phase === 'Failed'
                ? `deployment/${name} rollout failed: ${r.reason}`
                : `deployment/${name} pinned (${pin?.reason ?? r.pinned?.reason}): ${pin?.message ?? `running revision ${r.pinned?.revision}`}`,
          );
          return;
        }
        if (!o.follow) return;
        await new Promise((res) => setTimeout(res, 500));
      }
    });

  rollout
    .command('history')
    .argument('<deployment>', 'deployment/NAME')
    .option('-n, --namespace <ns>', 'namespace', 'default')
    .addOption(apiOption())
    .action(async (ref: string, o) => {
      const v = await callApi<RolloutView>(o.api, path(o.namespace, parseTarget(ref)));
      console.log(
        table(
          ['REVISION', 'TEMPLATE', 'COMMIT', 'AGE', 'STATUS', 'MESSAGE'],
          v.history.map((h) => [String(h.revision), h.templateHash, shortSha(h.commit), age(h.createdAt), [h.current ? 'current' : '', h.stable ? 'stable' : '', h.failed ? 'failed' : ''].filter(Boolean).join(',') || '-', h.message]),
        ),
      );
    });

  for (const action of ['undo', 'pause', 'resume', 'promote', 'abort', 'restart'] as const) {
    const cmd = rollout
      .command(action)
      .argument('<deployment>', 'deployment/NAME')
      .option('-n, --namespace <ns>', 'namespace', 'default')
      .addOption(apiOption());
    if (action === 'undo') cmd.addOption(new Option('--to-revision <n>', 'revision to return to (default: the previous one)').argParser(positiveInt));
    cmd.action(async (ref: string, o) => {
      const name = parseTarget(ref);
      const r = await callApi<{ revision: number; pinned: { reason: string } | null }>(o.api, `${path(o.namespace, name)}/${action}`, { method: 'POST', body: o.toRevision ? { toRevision: o.toRevision } : {} });
      console.log(`deployment/${name} ${DONE[action](r.revision)}`);
    });
  }
}
