// Placeholder: filled in by the issue that owns 'status'.
export async function run(_args: string[]): Promise<number> {
  process.stderr.write('status: not implemented yet\n');
  return 1;
}
