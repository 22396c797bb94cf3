/**
 * Component loggers. Text (the default): `<ISO time> <component> <message>`, with WARN or ERROR
 * after the component for those levels. JSON (`--log-format json`, or $GANTRY_LOG_FORMAT): one
 * pino object a line, `{"level":"info","time":"<ISO>","component":"reconciler","msg":"..."}`, for
 * log shippers. `--log-level` (or $GANTRY_LOG_LEVEL) drops what is below it. Callers never pass
 * secrets (URLs are redacted before they are logged).
 *
 * A logger is a function of a line (what every part of Gantry takes as `log`), logging at info,
 * with methods for the other levels; `levelsOf` gives those methods to a plain function too.
 */
import { pino, type Logger as Pino } from 'pino';

export const LOG_FORMATS = ['text', 'json'] as const;
export const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface Logger {
  (line: string): void;
  debug(line: string): void;
  info(line: string): void;
  warn(line: string): void;
  error(line: string): void;
}

const RANK: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };

/** What the environment asks for (the CLI sets these from its flags, so children of `gantry up` log alike). */
function configured(): { format: LogFormat; level: LogLevel } {
  const format = process.env.GANTRY_LOG_FORMAT === 'json' ? 'json' : 'text';
  const level = (LOG_LEVELS as readonly string[]).includes(process.env.GANTRY_LOG_LEVEL ?? '') ? (process.env.GANTRY_LOG_LEVEL as LogLevel) : 'info';
  return { format, level };
}

let root: Pino | undefined;

function jsonRoot(level: LogLevel): Pino {
  // Synchronous writes: a line logged just before an exit is never lost, and lines keep their order.
  root ??= pino(
    { level, base: null, timestamp: pino.stdTimeFunctions.isoTime, formatters: { level: (label) => ({ level: label }) } },
    pino.destination({ dest: 1, sync: true }),
  );
  return root;
}

export function createLogger(component: string, write: (s: string) => void = (s) => process.stdout.write(s)): Logger {
  const { format, level } = configured();
  const enabled = (l: LogLevel) => RANK[l] >= RANK[level];
  let emit: (l: LogLevel, line: string) => void;
  if (format === 'json') {
    const child = jsonRoot(level).child({ component });
    emit = (l, line) => child[l](line);
  } else {
    emit = (l, line) => write(`${new Date().toISOString()} ${component}${l === 'warn' ? ' WARN' : l === 'error' ? ' ERROR' : l === 'debug' ? ' DEBUG' : ''} ${line}\n`);
  }
  const at = (l: LogLevel) => (line: string) => {
    if (enabled(l)) emit(l, line);
  };
  return Object.assign(at('info'), { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') });
}

/** A Logger from what a caller gave: its own methods when it is one, else every level to the function. */
export function levelsOf(log: (line: string) => void): Logger {
  const l = log as Partial<Logger>;
  if (typeof l.warn === 'function' && typeof l.error === 'function' && typeof l.debug === 'function' && typeof l.info === 'function') return log as Logger;
  return Object.assign((line: string) => log(line), { debug: log, info: log, warn: log, error: log });
}
