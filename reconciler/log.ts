/** Line logger: `<ISO time> <component> <message>` on stdout. Callers never pass secrets. */
export function createLogger(component: string, write: (s: string) => void = (s) => process.stdout.write(s)): (line: string) => void {
  return (line: string) => write(`${new Date().toISOString()} ${component} ${line}\n`);
}
