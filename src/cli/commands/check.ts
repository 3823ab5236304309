// Placeholder: filled in by the issue that owns 'check'.
export async function run(_args: string[]): Promise<number> {
  process.stderr.write('check: not implemented yet\n');
  return 1;
}
