// Placeholder: filled in by the issue that owns 'demo'.
export async function run(_args: string[]): Promise<number> {
  process.stderr.write('demo: not implemented yet\n');
  return 1;
}
