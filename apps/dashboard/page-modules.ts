/**
 * The runtime code the dashboard's page runs, bundled for the browser (server.ts): decoding and
 * de-duplicating what devices publish, typing their bodies (bodies.ts), reading key files and
 * signing commands exactly as `edgerun cmd` does. Nothing here touches Node APIs.
 */
import './zod-jitless.js';

export { readBody } from './bodies.js';
export { buildCommand, commandTopic, newNonce } from '../../runtime/telemetry/build-command.js';
export { parseKeyFile, fingerprint, KEY_FILE_MAX_BYTES } from '../../runtime/telemetry/keys.js';
export { Listener } from '../../runtime/telemetry/listener.js';
