import { Command, CommanderError, Option } from 'commander';
import { callApi } from './api-client.ts';

/**
 * `gantry delete instance ID [--grace-period N] [--force]`: as `kubectl delete pod`. The instance
 * stops (with N seconds of grace, else its pod's terminationGracePeriodSeconds) and its
 * deployment creates a replacement as it says. `--grace-period 0` needs `--force` (an immediate
 * kill); `--force` alone means 0.
 */
export function registerDeleteCommand(program: Command, apiOption: () => Option): void {
  program
    .command('delete')
    .description('delete an instance: it stops, and its deployment replaces it')
    .argument('<kind>', 'instance')
    .argument('<id>', 'instance id (gantry get instances)')
    .addOption(new Option('--grace-period <seconds>', 'seconds to stop gracefully (default: the pod\'s terminationGracePeriodSeconds)').argParser((v) => {
      if (!/^\d{1,6}$/.test(v)) throw new CommanderError(2, 'gantry.usage', `error: --grace-period expects whole seconds, got ${JSON.stringify(v)}`);
      return Number(v);
    }))
    .option('--force', 'with --grace-period 0 (or alone): kill at once')
    .addOption(apiOption())
    .action(async (kind: string, id: string, o: { gracePeriod?: number; force?: boolean; api: string }) => {
      if (!['instance', 'instances', 'inst'].includes(kind)) throw new CommanderError(2, 'gantry.usage', `error: unknown kind ${JSON.stringify(kind)}: expected instance`);
      if (o.gracePeriod === 0 && !o.force) throw new CommanderError(2, 'gantry.usage', 'error: --grace-period 0 stops the instance at once: add --force to mean it');
      const q = new URLSearchParams();
      if (o.gracePeriod !== undefined) q.set('gracePeriod', String(o.gracePeriod));
      if (o.force) q.set('force', 'true');
      const res = await callApi<{ id: string; node?: string; graceSeconds?: number }>(o.api, `/api/v1/instances/${encodeURIComponent(id)}${q.size ? `?${q}` : ''}`, { method: 'DELETE' });
      console.log(`instance ${res.id} deleted${res.node ? ` (stopping on ${res.node}${res.graceSeconds !== undefined ? `, grace period ${res.graceSeconds} s` : ''})` : ''}`);
    });
}
