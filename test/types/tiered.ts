// Compiled (never run) by `npm run test:types`: typed uses of shm-typed-lru/tiered.

import { TieredCache, type TieredCacheStats } from 'shm-typed-lru/tiered';

async function use(): Promise<void> {
  const t = await TieredCache.connect({ name: '/pages', capacity: 1000, recordSize: 4096, redis: 'redis://127.0.0.1:6379', prefix: 'pages:' });
  const s: string | undefined = await t.get('k');
  await t.set('k', 'v', { ttl: 5000 });
  const existed: boolean = await t.delete('k');
  const f: string | undefined = await t.fetch('k', async () => 'loaded');
  const stats: TieredCacheStats = t.stats();
  const size: number = t.local.size;
  t.on('down', ({ reason }) => console.log(reason));
  t.on('up', ({ cleared }) => console.log(cleared));
  await t.close();
  void [s, existed, f, stats, size];

  // The L1 has a byte budget by default (64 MiB); maxBytes and maxValueSize choose another.
  await (await TieredCache.connect({ name: '/json' })).close();
  await (await TieredCache.connect({ name: '/json', maxBytes: 1 << 26, maxValueSize: 1 << 20, capacity: 10_000 })).close();
  const b = await TieredCache.connect({ name: '/blobs', capacity: 10, recordSize: 64, valueType: 'buffer' });
  const bytes: Buffer | undefined = await b.get('k');
  void bytes;
  // @ts-expect-error keys are strings
  await b.get(42);
  // @ts-expect-error a string tier's values are strings
  const wrong: Buffer | undefined = await t.get('k');
  void wrong;
  // @ts-expect-error made with connect()
  new TieredCache();
}
void use;
