// Placeholder: filled in by the issue that owns 'lab'.
export async function run(_args: string[]): Promise<number> {
  process.stderr.write('lab: not implemented yet\n');
  return 1;
}
