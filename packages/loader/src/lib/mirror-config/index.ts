import { containerdConfig } from './containerd.ts';
import { idmsConfig, itmsConfig } from './idms.ts';
import { k3sConfig } from './k3s.ts';
import { registriesConfConfig } from './registries-conf.ts';
import type { MirrorConfig, MirrorFormat, MirrorInput } from './types.ts';

export * from './types.ts';

const generators: Record<MirrorFormat, (input: MirrorInput) => MirrorConfig> = {
  containerd: containerdConfig,
  k3s: k3sConfig,
  'registries-conf': registriesConfConfig,
  idms: idmsConfig,
  itms: itmsConfig,
};

export function mirrorConfig(format: MirrorFormat, input: MirrorInput): MirrorConfig {
  return generators[format](input);
}
export * from './output.ts';
