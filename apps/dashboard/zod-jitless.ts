/**
 * Imported first by page-modules.ts: the page's Content-Security-Policy forbids eval, so zod must
 * not probe for it (it does so when a schema is built, and the probe is reported as a violation).
 */
import { z } from 'zod';

z.config({ jitless: true });
