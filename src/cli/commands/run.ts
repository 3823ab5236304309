// Placeholder: filled in by the issue that owns 'run'.
export async function run(_args: string[]): Promise<number> {
  process.stderr.write('run: not implemented yet\n');
  return 1;
}
