import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { CommanderError, InvalidArgumentError, Option, type Command } from 'commander';
import { addTokenToFile, API_ROLES, generateToken, parseTokensFile, TOKENS_FILE, type ApiRole } from '../reconciler/api/auth.ts';
import { table } from './table.ts';

/**
 * `gantry token create|list|revoke`: the API tokens a reconciler accepts, kept as hashes in its
 * tokens file (`<data-dir>/api-tokens`, or --tokens-file), which it re-reads when it changes. A
 * new token is printed once, on stdout, and stored nowhere in the clear.
 */

const role = (v: string): ApiRole => {
  if (!(API_ROLES as readonly string[]).includes(v)) throw new InvalidArgumentError(`expected ${API_ROLES.join(' or ')}, got ${JSON.stringify(v)}`);
  return v as ApiRole;
};

function tokensFileOf(o: { tokensFile?: string; dataDir: string }): string {
  return resolve(o.tokensFile ?? join(o.dataDir, TOKENS_FILE));
}

export function registerTokenCommand(program: Command, dataDirOption: () => Option): void {
  const tokensFileOption = () => new Option('--tokens-file <path>', 'the reconciler\'s tokens file (default <data-dir>/api-tokens)').env('GANTRY_API_TOKENS_FILE');
  const cmd = program.command('token').description('create, list or revoke API tokens (read: every GET; admin: everything)');

  cmd
    .command('create')
    .description('create a token and print it once')
    .addOption(new Option('--role <role>', 'read or admin').argParser(role).makeOptionMandatory())
    .option('--name <name>', 'a name to list and revoke it by (default <role>-<random>)')
    .addOption(dataDirOption())
    .addOption(tokensFileOption())
    .action((o: { role: ApiRole; name?: string; dataDir: string; tokensFile?: string }) => {
      const file = tokensFileOf(o);
      const name = o.name ?? `${o.role}-${randomBytes(3).toString('hex')}`;
      const token = generateToken();
      try {
        addTokenToFile(file, name, o.role, token);
      } catch (err) {
        throw new CommanderError(2, 'gantry.usage', `error: ${err instanceof Error ? err.message : String(err)}`);
      }
      process.stderr.write(`created ${o.role} token ${name} in ${file}; it is shown once:\n`);
      process.stdout.write(`${token}\n`);
    });

  cmd
    .command('list')
    .description('list the tokens a reconciler accepts (names and roles; tokens are stored as hashes)')
    .addOption(dataDirOption())
    .addOption(tokensFileOption())
    .action((o: { dataDir: string; tokensFile?: string }) => {
      const file = tokensFileOf(o);
      const { entries } = existsSync(file) ? parseTokensFile(readFileSync(file, 'utf8')) : { entries: [] };
      console.log(table(['NAME', 'ROLE'], entries.map((e) => [e.name, e.role])));
    });

  cmd
    .command('revoke')
    .description('revoke a token by name (the reconciler stops accepting it within a second)')
    .argument('<name>', 'the token\'s name')
    .addOption(dataDirOption())
    .addOption(tokensFileOption())
    .action((name: string, o: { dataDir: string; tokensFile?: string }) => {
      const file = tokensFileOf(o);
      const text = existsSync(file) ? readFileSync(file, 'utf8') : '';
      const lines = text.split('\n');
      const kept = lines.filter((l) => l.trim().split(/\s+/)[0] !== name || l.trim().startsWith('#'));
      if (kept.length === lines.length) throw new CommanderError(2, 'gantry.usage', `error: no token named ${JSON.stringify(name)} in ${file}`);
      // Replaced whole (rename), so the reconciler never reads half a file.
      const tmp = `${file}.${process.pid}.tmp`;
      writeFileSync(tmp, kept.join('\n'), { mode: 0o600 });
      renameSync(tmp, file);
      console.log(`revoked ${name}`);
    });
}
