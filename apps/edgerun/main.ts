/** The edgerun command line. Commands load their modules on use, so each starts only what it needs. */
import { Command, InvalidArgumentError, Option } from 'commander';
import type { DeviceOptions, GlobalOptions } from './context.js';
import { version } from './package-info.js';

const int = (min: number) => (v: string): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`expected an integer ≥ ${min}`);
  return n;
};
const positive = (v: string): number => {
  const n = Number(v);
  if (!(n >= 0) || !Number.isFinite(n)) throw new InvalidArgumentError('expected a non-negative number');
  return n;
};
const backendOption = (): Option => new Option('-b, --backend <name>', 'backend: digital, or analog (crossbar emulator + digital sub-models)').default('digital');
const profileOption = (): Option => new Option('-p, --profile <name|file>', 'analog device profile: ideal, pcm, flash or a JSON file (default: config analog.profile = pcm)');
const seedOption = (): Option => new Option('--seed <n>', 'analog device instance (default: config analog.seed = 0)').argParser(int(0));

const program = new Command('edgerun')
  .description('Edge inference on analog in-memory-computing accelerators, with digital fallback.')
  .version(version)
  .option('-c, --config <file>', 'JSON config file (env EDGERUN_SECTION__KEY and flags override it)')
  .option('--threads <n>', 'onnxruntime-web WebAssembly threads', int(1))
  .showHelpAfterError()
  .addHelpText('after', `
Examples:
  $ edgerun inspect models/cnn.onnx
  $ edgerun run models/mlp.onnx --random --repeat 100
  $ edgerun eval models/cnn.onnx --data models/data/fashion-mnist-test-2000.bin
  $ edgerun inspect --plan models/cnn.onnx --profile pcm
  $ edgerun eval models/mlp.onnx --data models/data/fashion-mnist-test-2000.bin --backend analog --profile pcm --age 1s,1h,1d,1y --seeds 3
  $ edgerun check models/conformance/cnn --json
  $ edgerun demo                                              # = npm start: broker + device + listener, 20 s
  $ edgerun serve --rate 10                                   # the device daemon (embedded broker unless mqtt.url is set)
  $ edgerun serve --url mqtt://broker:1883 --model models/cnn.onnx --count 1000 --state-dir /var/lib/edgerun
  $ edgerun broker --port 1883 --ws-port 8883                 # the embedded broker on its own
  $ edgerun keys gen --name operator --dir ~/.edgerun          # an operator key (0600)
  $ edgerun keys show --name operator --dir ~/.edgerun --json > operator.pub
  $ edgerun keys trust operator.pub                           # on the device: trust that public key
  $ edgerun cmd edge-1 pause-stream --args '{"stream":"camera"}' --key ~/.edgerun/operator.key --wait 10
  $ edgerun listen --url mqtt://127.0.0.1:1883 --kinds results,events --count 100`);

const globals = (): GlobalOptions => program.opts<GlobalOptions>();
/** Global options plus the command's device selection (--profile, --seed). */
const withDevice = (opts: { profile?: string; seed?: number }): GlobalOptions & DeviceOptions => ({ ...globals(), profile: opts.profile, seed: opts.seed });

program.command('inspect')
  .description('table of layers: shapes, parameters, MACs and whether each can run on an analog crossbar')
  .argument('<model>', 'ONNX model file')
  .option('--batch <n>', 'batch size used for shapes and MACs', int(1), 1)
  .option('--plan', 'show the hybrid analog/digital execution plan on a device profile')
  .addOption(profileOption())
  .option('--json', 'print one JSON object')
  .action(async (model: string, opts) => (await import('./commands/inspect.js')).inspectCommand(model, opts, withDevice(opts)));

program.command('run')
  .description('run a model once (or --repeat N times) and print its outputs / top-k classes')
  .argument('<model>', 'ONNX model file')
  .option('-i, --input <file...>', 'inputs: one JSON file, or TensorProto .pb files (matched by name, else by position)')
  .option('--random', 'uniform [0,1) random inputs (default when no --input)')
  .option('--input-seed <n>', 'seed for --random', int(0), 1)
  .option('--batch <n>', 'size of symbolic (batch) dims for --random', int(1), 1)
  .option('--repeat <n>', 'run N times and report latency', int(1), 1)
  .option('-k, --top-k <k>', 'classes shown per row', int(1), 5)
  .addOption(backendOption())
  .addOption(profileOption())
  .addOption(seedOption())
  .option('--json', 'print one JSON object with outputs and latency')
  .action(async (model: string, opts) => (await import('./commands/run.js')).runCommand(model, opts, withDevice(opts)));

program.command('eval')
  .description('classification accuracy, latency percentiles and throughput on an EDGD dataset')
  .argument('<model>', 'ONNX model file')
  .requiredOption('-d, --data <file>', 'EDGD dataset (see models/README.md)')
  .option('--batch <n>', 'samples per inference (default: config eval.batchSize)', int(1))
  .option('--limit <n>', 'evaluate only the first N samples', int(1))
  .addOption(backendOption())
  .addOption(profileOption())
  .addOption(seedOption())
  .option('--age <list>', 'analog: device ages to evaluate, e.g. 1s,1h,1d,1y (s, m, h, d, y)')
  .option('--seeds <k>', 'analog: device instances per age (seed, seed+1, …); mean ± std', int(1), 1)
  .option('--gdc <on|off>', 'analog: global drift compensation (default: the profile\'s)')
  .option('--adc-bits <n>', 'analog: ADC resolution override', int(1))
  .option('--no-progress', 'no progress bar')
  .option('--json', 'print one JSON object (last line) with accuracy, latency and throughput')
  .action(async (model: string, opts) => { await (await import('./commands/eval.js')).evalCommand(model, opts, withDevice(opts)); });

program.command('check')
  .description('run an ONNX test-data directory (model.onnx + test_data_set_N/*.pb) and compare outputs')
  .argument('<dir>', 'directory with model.onnx and test_data_set_N/')
  .addOption(backendOption())
  .addOption(profileOption())
  .addOption(seedOption())
  .option('--rtol <x>', 'relative tolerance', positive, 1e-3)
  .option('--atol <x>', 'absolute tolerance', positive, 1e-5)
  .option('--json', 'print one JSON object')
  .action(async (dir: string, opts) => { await (await import('./commands/check.js')).checkCommand(dir, opts, withDevice(opts)); });

program.command('accel-emulator')
  .description('serve an emulated crossbar accelerator over the remote protocol (drivers/remote/PROTOCOL.md)')
  .option('--socket <path>', 'listen on this Unix socket')
  .option('--stdio', 'speak the protocol on stdin/stdout')
  .addOption(new Option('-p, --profile <name|file>', 'device profile: ideal, pcm, flash or a JSON file').default('pcm'))
  .addOption(new Option('--seed <n>', 'device instance').argParser(int(0)).default(0))
  .option('--max-payload <bytes>', 'largest request payload accepted', int(64))
  .action(async (opts) => (await import('./commands/accel-emulator.js')).accelEmulatorCommand(opts));

program.command('power')
  .description('power sensors of this board (battery, mains/USB supplies, hwmon INA219/INA3221, Jetson IIO INA3221, RAPL with sub-zones, thermal) and their live readings')
  .option('--list', 'list the sensors found and whether each works (the default)')
  .option('--watch', 'print readings every --interval ms until Ctrl-C (or --count rounds)')
  .option('--interval <ms>', 'time between readings', int(10), 1000)
  .option('--count <n>', 'stop after N rounds of readings', int(1))
  .option('--root <dir>', 'sysfs root (default: config power.root = /sys)')
  .option('-s, --sensor <id...>', 'watch only these sensors, e.g. power_supply:BAT0 rapl:intel-rapl:0')
  .option('--json', 'one JSON object per list or per round of readings')
  .action(async (opts) => (await import('./commands/power.js')).powerCommand(opts, globals()));

const keys = program.command('keys').description('ed25519 key pairs (files 0600) and the trust store of keys allowed to sign commands');
const keyDirOption = (): Option => new Option('--dir <dir>', 'key directory (default: config security.keyDir = state/keys)');
keys.command('gen')
  .description('generate a key pair into <dir>/<name>.key (default: config security.keyFile = device.key)')
  .option('--name <name>', 'key name (file <name>.key)')
  .option('--file <file>', 'key file name in the key directory')
  .addOption(keyDirOption())
  .option('--force', 'replace an existing key file (its key is lost)')
  .option('--json', 'print one JSON object')
  .action(async (opts) => (await import('./commands/keys.js')).keysGenCommand(opts, globals()));
keys.command('show')
  .description('public key and fingerprint of a key file (never the secret)')
  .option('--name <name>', 'key name (file <name>.key)')
  .option('--file <file>', 'key file name in the key directory')
  .addOption(keyDirOption())
  .option('--json', 'print one JSON object (usable as a file for `keys trust`)')
  .action(async (opts) => (await import('./commands/keys.js')).keysShowCommand(opts, globals()));
keys.command('trust')
  .description('trust a public key to sign commands to this device')
  .argument('<key>', 'base64 public key, or a file: a key file or `keys show --json` output (only its public key is read)')
  .option('--name <name>', 'name of the trusted key (default: the name in the file)')
  .addOption(keyDirOption())
  .option('--force', 'take the name from another key that holds it')
  .option('--json', 'print one JSON object')
  .action(async (key: string, opts) => (await import('./commands/keys.js')).keysTrustCommand(key, opts, globals()));
keys.command('untrust')
  .description('stop trusting a key')
  .argument('<name|fingerprint>')
  .addOption(keyDirOption())
  .option('--json', 'print one JSON object')
  .action(async (key: string, opts) => (await import('./commands/keys.js')).keysUntrustCommand(key, opts, globals()));
keys.command('list')
  .description('trusted keys')
  .addOption(keyDirOption())
  .option('--json', 'print one JSON object')
  .action(async (opts) => (await import('./commands/keys.js')).keysListCommand(opts, globals()));

program.command('broker')
  .description('run the embedded MQTT broker (Aedes; TCP and WebSocket listeners) until Ctrl-C')
  .option('--port <n>', 'MQTT TCP port (0 = a free port)', int(0), 1883)
  .option('--ws-port <n>', 'MQTT over WebSocket port (0 = a free port)', int(0), 8883)
  .option('--no-ws', 'no WebSocket listener')
  .option('--host <addr>', 'interface to listen on (0.0.0.0 = every interface)', '127.0.0.1')
  .action(async (opts) => (await import('./commands/broker.js')).brokerCommand(opts));

const protocolOption = (): Option => new Option('--protocol <v>', 'MQTT protocol version: 5, or 4 (3.1.1; the embedded Aedes broker) (default: config mqtt.protocolVersion)').choices(['4', '5']).argParser(Number);
program.command('listen')
  .description('print what a fleet publishes as JSON lines {topic, device, seq, ts, kind, body, signedBy?}, deduplicated on (device, seq), with a summary')
  .option('--url <url>', 'broker (default: config mqtt.url, else mqtt://127.0.0.1:1883)')
  .option('--fleet <fleet>', 'fleet, or + for every fleet', '+')
  .option('--kinds <list>', 'comma-separated kinds: status, results, detections, telemetry, events (default: all)')
  .option('--share <group>', 'shared subscription ($share/<group>/...): the listeners of one group split the messages (Mosquitto, EMQX, HiveMQ; the embedded Aedes has none)')
  .option('--client-id <id>', 'persistent session under this client id: messages queued while away arrive on return')
  .option('--out <file>', 'append the JSON lines to this file instead of stdout')
  .option('--count <n>', 'exit after N unique messages', int(1))
  .option('--timeout <s>', 'exit after s seconds (exit 1 if --count was not reached)', positive)
  .option('--summary-every <s>', 'print the summary every s seconds too', positive)
  .option('--require-signed', 'refuse unsigned messages and messages signed by keys not in the trust store')
  .option('--key-dir <dir>', 'trust store directory (default: config security.keyDir)')
  .option('--prefix <prefix>', 'topic prefix (default: config mqtt.prefix)')
  .addOption(protocolOption())
  .option('--json', 'summary as a JSON line {"summary": ...} on stdout')
  .option('-q, --quiet', 'no progress or rejection lines on stderr')
  .action(async (opts) => (await import('./commands/listen.js')).listenCommand(opts, globals()));

program.command('cmd')
  .description('sign a command with an operator key and publish it to a device (set-power-budget, set-placement, telemetry-snapshot, pause-stream, resume-stream)')
  .argument('<device>', 'device id')
  .argument('<name>', 'command name')
  .option('--args <json>', 'command arguments as JSON, e.g. \'{"stream":"camera"}\'')
  .requiredOption('--key <file>', 'operator key file (edgerun keys gen); the device must trust its public key')
  .option('--url <url>', 'broker (default: config mqtt.url, else mqtt://127.0.0.1:1883)')
  .option('--fleet <fleet>', 'fleet of the device (default: config device.fleet)')
  .option('--prefix <prefix>', 'topic prefix (default: config mqtt.prefix)')
  .addOption(new Option('--encoding <e>', 'payload encoding (default: config mqtt.encoding)').choices(['json', 'cbor']))
  .addOption(protocolOption())
  .option('--wait <s>', 'wait up to s seconds for the device\'s report on the command; exit 1 unless it ran', positive)
  .option('--json', 'print JSON lines')
  .action(async (device: string, name: string, opts) => (await import('./commands/cmd.js')).cmdCommand(device, name, opts, globals()));

program.command('serve')
  .description('the device daemon: replay a data set as a sensor, infer, report results/telemetry/events over MQTT, take signed commands')
  .option('-m, --model <file...>', 'ONNX models, one stream each (default: the bundled models/mlp.onnx and models/cnn.onnx)')
  .option('--rate <hz>', 'inferences per second per stream (0 = as fast as the device goes)', positive, 10)
  .option('--count <n>', 'produce exactly N results over all runs on this state directory, exit when acknowledged', int(1))
  .option('--source <kind>', 'sample source: dataset (replay an EDGD file)', 'dataset')
  .option('-d, --data <file>', 'EDGD data set to replay (default: models/data/fashion-mnist-test-2000.bin)')
  .option('--state-dir <dir>', 'outbox, sequence and progress state (default: config mqtt.stateDir = state)')
  .option('--url <url>', 'MQTT broker URL (default: config mqtt.url, else an embedded broker)')
  .option('-q, --quiet', 'no log lines for events and commands')
  .action(async (opts) => (await import('./commands/serve.js')).serveCommand(opts, globals()));

program.command('demo', { isDefault: false })
  .description('embedded broker + a demo device streaming both bundled models + a live listener, for a few seconds (what `npm start` runs)')
  .option('--seconds <s>', 'how long the device streams', positive, 20)
  .option('--rate <hz>', 'inferences per second per model', positive, 10)
  .action(async (opts) => (await import('./commands/demo.js')).demoCommand(opts, globals()));

try {
  await program.parseAsync();
} catch (e) {
  console.error(`edgerun: ${(e as Error).message}`);
  process.exitCode = process.exitCode || 2;
}
