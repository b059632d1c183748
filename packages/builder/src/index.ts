/**
 * @lading/builder — the `lading-build` CLI. The library behind its commands, for other packages
 * and scripts (e.g. `create --with-loader` builds on `createBundle`).
 */
export { type ChartImagesOptions, type ChartImagesResult, chartImagesOf } from './lib/chart-images.ts';
export { type ChartImage, type FetchedChart, fetchChart, storeChartArchive } from './lib/charts.ts';
export { type CreateOptions, type CreateProgress, type CreateSummary, createBundle } from './lib/create.ts';
export { collectImages, type ImageRequest, type PulledImage, pullImages } from './lib/images.ts';
export { describeBundle, formatInspect, type InspectResult, inspectBundle } from './lib/inspect.ts';
export { defaultCacheDir, resolveOutputPath } from './lib/output.ts';
export { type PublishBundleOptions, type PublishBundleResult, publishBundle } from './lib/publish.ts';
export { type BaseBundle, loadBaseBundle } from './lib/since.ts';
export { type SourceOptions, SourceRegistries } from './lib/sources.ts';
export { checkFreeSpace, InsufficientSpaceError } from './lib/space.ts';
export * from './lib/spec/index.ts';
