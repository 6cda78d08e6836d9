#!/usr/bin/env node
// The edgerun CLI from its TypeScript sources, compiled on the fly by tsx (cached on disk).
// Devices can run the ahead-of-time build instead: `npm run build && node dist/apps/edgerun/main.js`.
import { register } from 'tsx/esm/api';

register();
await import('../apps/edgerun/main.ts');
