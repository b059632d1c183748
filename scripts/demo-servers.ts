// The servers scripts/demo needs, on 127.0.0.1 (no internet): a source registry (CNCF
// Distribution, plain HTTP) seeded with @lading/testkit's generated images, an HTTP chart
// repository (nginx) serving fixtures/charts, and an empty target registry.
//
//   node --conditions=lading-source scripts/demo-servers.ts STATE.json [PARENT_PID]
//
// Writes STATE.json ({ source, target, chartRepo, images, logs }) once everything answers, then
// runs until SIGTERM/SIGINT or until PARENT_PID is gone, and stops the servers.
import { rename, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type RegistryServer, seedRegistry, startRegistry, tmpDir, writeTestImages } from '@lading/testkit';
import { type ChartRepo, startChartRepo } from '@lading/testkit/chart-repo';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const [stateFile, parentArg] = process.argv.slice(2);
if (!stateFile) {
  process.stderr.write('usage: demo-servers.ts STATE.json [PARENT_PID]\n');
  process.exit(2);
}
const parent = parentArg ? Number(parentArg) : undefined;

const stops: Array<() => Promise<void>> = [];
let stopping = false;
async function stopAll(code: number): Promise<never> {
  if (!stopping) {
    stopping = true;
    for (const stop of stops.reverse()) await stop().catch(() => {});
  }
  process.exit(code);
}
process.on('SIGTERM', () => void stopAll(0));
process.on('SIGINT', () => void stopAll(0));

async function main(): Promise<void> {
  const say = (m: string) => process.stderr.write(`demo-servers: ${m}\n`);
  const source: RegistryServer = await startRegistry({ mode: 'http' });
  stops.push(() => source.stop());
  say(`source registry on ${source.url}`);

  const layout = await tmpDir('lading-demo-images-');
  stops.push(() => layout.cleanup());
  const images = await writeTestImages(layout.path, { largeLayerBytes: 8 * 1024 * 1024 });
  await seedRegistry(source, layout.path, images);
  say(`seeded ${images.length} images: ${images.map((i) => i.ref).join(', ')}`);

  const charts: ChartRepo = await startChartRepo({
    charts: [join(root, 'fixtures', 'charts', 'webapp'), join(root, 'fixtures', 'charts', 'plain')],
  });
  stops.push(() => charts.stop());
  say(`chart repository on ${charts.url} (${charts.charts.map((c) => `${c.name}-${c.version}`).join(', ')})`);

  const target: RegistryServer = await startRegistry({ mode: 'http' });
  stops.push(() => target.stop());
  say(`target registry on ${target.url}`);

  const state = {
    source: source.host,
    target: target.host,
    chartRepo: charts.url,
    images: images.map((i) => ({ ref: `${source.host}/${i.ref}`, digest: i.digest })),
    logs: { source: source.logFile, target: target.logFile, chartRepo: charts.logFile },
  };
  const tmp = `${stateFile}.tmp`;
  await writeFile(tmp, `${JSON.stringify(state, null, 2)}\n`);
  await rename(tmp, stateFile as string);

  // Stay up until told to stop, or until the demo script that started us is gone.
  setInterval(() => {
    if (parent === undefined) return;
    try {
      process.kill(parent, 0);
    } catch {
      void stopAll(0);
    }
  }, 1000);
}

main().catch(async (err) => {
  process.stderr.write(`demo-servers: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  await stopAll(1);
});
