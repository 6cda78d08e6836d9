/** The edgerun command line. Commands load their modules on use, so each starts only what it needs. */
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import type { DeviceOptions, GlobalOptions } from './context.js';
import { version } from './package-info.js';

const int = (min: number, max = Number.MAX_SAFE_INTEGER) => (v: string): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) throw new InvalidArgumentError(max === Number.MAX_SAFE_INTEGER ? `expected an integer ≥ ${min}` : `expected an integer from ${min} to ${max}`);
  return n;
};
/** A persistent session needs an id the broker can find it under again (MQTT 5 §3.1.3.1: 1–23 bytes is what every broker must take; longer is common). */
const clientId = (v: string): string => {
  if (!/^[\x21-\x7e]{1,128}$/.test(v)) throw new InvalidArgumentError('expected 1–128 printable ASCII characters without spaces');
  return v;
};
const PORT_MAX = 65_535;
/** Each device instance is a full emulator programmed and evaluated over the data set: beyond this a run would not end in a day. */
const SEEDS_MAX = 1000;
const positive = (v: string): number => {
  const n = Number(v);
  if (!(n >= 0) || !Number.isFinite(n)) throw new InvalidArgumentError('expected a non-negative number');
  return n;
};
const backendOption = (): Option => new Option('-b, --backend <name>', 'backend: digital, or analog (crossbar emulator + digital sub-models)').default('digital');
const profileOption = (): Option => new Option('-p, --profile <name|file>', 'analog device profile: ideal, pcm, flash or a JSON file (default: config analog.profile = pcm)');
const peripheryOption = (): Option => new Option('--periphery <on|off>', 'analog: apply BatchNormalization, activations and pooling in the device\'s digital periphery (default: config analog.periphery = on)').choices(['on', 'off']);
const seedOption = (): Option => new Option('--seed <n>', 'analog device instance (default: config analog.seed = 0)').argParser(int(0));
const protocolVersion = (v: string): 4 | 5 => {
  if (v !== '4' && v !== '5') throw new InvalidArgumentError('4 (MQTT 3.1.1) or 5; MQTT 3.1 (3) is not supported');
  return Number(v) as 4 | 5;
};
const protocolOption = (): Option => new Option('--protocol <v>', 'MQTT protocol version: 5, or 4 (3.1.1; the embedded Aedes broker) (default: config mqtt.protocolVersion)').argParser(protocolVersion);

const program = new Command('edgerun')
  .description('Edge inference on analog in-memory-computing accelerators, with digital fallback.')
  // `edgerun -V|--version` is answered before commander parses (below): as a program option it would take `deploy build --version 1.2.0`.
  .option('-c, --config <file>', 'JSON config file (env EDGERUN_SECTION__KEY and flags override it)')
  .option('--threads <n>', 'onnxruntime-web WebAssembly threads', int(1))
  // Usage errors are reported once, in one line, by the catch at the end (commands inherit this).
  .exitOverride()
  .configureOutput({ outputError: () => undefined })
  .addHelpText('after', `
  edgerun -V, --version                     output the version number

Examples:
  $ edgerun inspect models/cnn.onnx
  $ edgerun run models/mlp.onnx --random --repeat 100
  $ edgerun eval models/cnn.onnx --data models/data/fashion-mnist-test-2000.bin
  $ edgerun inspect --plan models/cnn.onnx --profile pcm
  $ edgerun eval models/mlp.onnx --data models/data/fashion-mnist-test-2000.bin --backend analog --profile pcm --age 1s,1h,1d,1y --seeds 3
  $ edgerun eval models/detector.onnx --task detect --data models/data/scenes-300.bin --backend analog --profile pcm --age 1h --seeds 3
  $ edgerun check models/conformance/cnn --json
  $ edgerun demo                                              # = npm start: broker + device + listener, 20 s
  $ edgerun serve --rate 10                                   # the device daemon (embedded broker unless mqtt.url is set)
  $ edgerun serve --url mqtt://broker:1883 --model models/cnn.onnx --count 1000 --state-dir /var/lib/edgerun
  $ edgerun detect --source synthetic --fps 5 --seconds 30    # a camera streaming detections (events, snapshots, counts)
  $ edgerun detect --source rtsp://cam.local/stream --url mqtt://broker:1883 --ha-discovery
  $ edgerun broker --port 1883 --ws-port 8883                 # the embedded broker on its own
  $ edgerun dashboard --port 8080 --broker-ws ws://127.0.0.1:8883   # the fleet dashboard in a browser
  $ edgerun keys gen --name operator --dir ~/.edgerun          # an operator key (0600)
  $ edgerun keys show --name operator --dir ~/.edgerun --json > operator.pub
  $ edgerun keys trust operator.pub                           # on the device: trust that public key
  $ edgerun cmd edge-1 pause-stream --args '{"stream":"camera"}' --key ~/.edgerun/operator.key --wait 10
  $ edgerun listen --url mqtt://127.0.0.1:1883 --kinds results,events --count 100
  $ edgerun deploy build models/cnn.onnx --version 1.2.0 --canary models/data/canary-64.bin --profiles pcm
  $ edgerun deploy sign cnn-1.2.0.bundle --key ~/.edgerun/operator.key
  $ edgerun deploy push cnn-1.2.0.bundle --to edge-1,edge-2 --key ~/.edgerun/operator.key
  $ edgerun deploy rollout cnn-1.2.0.bundle --fleet plant-a --waves 10%,50%,100% --abort-failure-rate 0.2 --key ~/.edgerun/operator.key
  $ edgerun cmd edge-1 rollback --args '{"model":"cnn"}' --key ~/.edgerun/operator.key --wait 10
  $ edgerun fleet run models/mlp.onnx --scenario all --latency-bound 50 --quick --html fleet.html
  $ edgerun fleet dse --adc-bits 4,6,8 --ages 1h,1y --html dse.html
  $ edgerun fleet compare before.json after.json --threshold 5`);

const globals = (): GlobalOptions => program.opts<GlobalOptions>();
/** Global options plus the command's device selection (--profile, --seed, --periphery). */
const withDevice = (opts: { profile?: string; seed?: number; periphery?: 'on' | 'off' }): GlobalOptions & DeviceOptions => ({ ...globals(), profile: opts.profile, seed: opts.seed, periphery: opts.periphery });

program.command('inspect')
  .description('table of layers: shapes, parameters, MACs and whether each can run on an analog crossbar')
  .argument('<model>', 'ONNX model file')
  .option('--batch <n>', 'batch size used for shapes and MACs', int(1), 1)
  .option('--plan', 'show the hybrid analog/digital execution plan on a device profile')
  .addOption(profileOption())
  .addOption(peripheryOption())
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
  .addOption(peripheryOption())
  .addOption(seedOption())
  .option('--json', 'print one JSON object with outputs and latency')
  .action(async (model: string, opts) => (await import('./commands/run.js')).runCommand(model, opts, withDevice(opts)));

program.command('eval')
  .description('classification accuracy, latency percentiles and throughput on an EDGD dataset; detection mAP@0.5 on an EDGS scene set (--task detect)')
  .argument('<model>', 'ONNX model file')
  .requiredOption('-d, --data <file>', 'EDGD dataset, or EDGS scene set with --task detect (see models/README.md)')
  .option('--task <task>', 'classify (accuracy) or detect (mAP@0.5, VOC all-point)', 'classify')
  .option('--batch <n>', 'samples per inference (default: config eval.batchSize)', int(1))
  .option('--limit <n>', 'evaluate only the first N samples', int(1))
  .addOption(backendOption())
  .addOption(profileOption())
  .addOption(peripheryOption())
  .addOption(seedOption())
  .option('--age <list>', 'analog: device ages to evaluate, e.g. 1s,1h,1d,1y (s, m, h, d, y)')
  .option('--seeds <k>', 'analog: device instances per age (seed, seed+1, …); mean ± std', int(1, SEEDS_MAX), 1)
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
  .addOption(peripheryOption())
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

const fleet = program.command('fleet').description('benchmarks after MLPerf LoadGen, design-space exploration and their reports');
const quickOption = (): Option => new Option('--quick', 'scale LoadGen\'s minimums down for a smoke test (10 s, 64/662 queries; not a valid result)');
/** Adds the LoadGen flags `fleet devices --scenario` and `fleet bench --scenario` share; `scope` says whose rate a QPS is. */
const withScenarioOptions = (cmd: Command, scope: string): Command => [
  new Option('--mode <mode>', 'with --scenario: performance (latency, throughput) or accuracy (every sample once)').choices(['performance', 'accuracy']).default('performance'),
  quickOption(),
  new Option('--target-qps <n>', `server: one run at this Poisson arrival rate${scope}`).argParser(aboveZero),
  new Option('--p99-bound <ms>', `server: p99 bound; without --target-qps, search the highest rate${scope} that meets it (one run per rate)`).argParser(aboveZero),
  new Option('--start-qps <n>', 'server search: the first rate tried (doubled until one fails, then bisected)').argParser(aboveZero).default(10),
  new Option('--offline-qps <n>', `offline: expected samples/s${scope}; the one query is sized to last 1.1 × the minimum duration`).argParser(aboveZero),
  new Option('--seed <n>', 'with --scenario: seed of sample choice and arrivals').argParser(int(0)).default(1),
  new Option('--min-duration <s>', 'with --scenario: LoadGen\'s minimum run time instead of the default (600 s, --quick 10 s)').argParser(aboveZero),
  new Option('--min-queries <n>', 'with --scenario: LoadGen\'s minimum query count (offline: samples) instead of the default').argParser(int(1)),
].reduce((c, o) => c.addOption(o), cmd);
const dataOption = (): Option => new Option('-d, --data <file>', 'EDGD data set (labels for accuracy)').default('models/data/fashion-mnist-test-2000.bin');
const aboveZero = (v: string): number => {
  const n = Number(v);
  if (!(n > 0)) throw new InvalidArgumentError('expected a number > 0');
  return n;
};

fleet.command('run')
  .description('LoadGen scenarios against one model on this machine: SingleStream (p90), MultiStream (p99, 8 samples/query), Server (Poisson, p99 bound), Offline')
  .argument('<model>', 'ONNX model file')
  .addOption(new Option('-s, --scenario <name>', 'scenario').choices(['SingleStream', 'MultiStream', 'Server', 'Offline', 'all']).default('SingleStream'))
  .addOption(new Option('--mode <mode>', 'performance (latency, throughput) or accuracy (every sample once)').choices(['performance', 'accuracy']).default('performance'))
  .addOption(backendOption())
  .addOption(dataOption())
  .addOption(quickOption())
  .option('--qps <n>', 'Server: one run at this Poisson arrival rate', aboveZero)
  .option('--latency-bound <ms>', 'Server: p99 bound; without --qps, search the highest rate that meets it', aboveZero)
  .option('--offline-qps <n>', 'Offline: expected samples/s; the one query is sized to last 1.1 × the minimum duration', aboveZero)
  .option('--seed <n>', 'seed of sample choice and arrivals', int(0), 1)
  .option('-o, --out <file>', 'JSON result (on Ctrl-C/SIGTERM: what was measured so far, marked interrupted; exit 130/143)', 'fleet-result.json')
  .option('--html <file>', 'also write the self-contained HTML report')
  .option('--no-progress', 'no progress bars')
  .addOption(profileOption())
  .action(async (model: string, opts) => { await (await import('./commands/fleet-run.js')).fleetRunCommand({ ...opts, model }, withDevice({ profile: opts.profile })); });

fleet.command('dse')
  .description('design-space exploration: accuracy, energy per inference and latency over model sizes × ADC/DAC bits × tile size × profile × age, and digital; Pareto front and iso-accuracy')
  .option('-m, --models <file...>', 'model family (default: models/mlp.onnx, models/cnn.onnx and models/family/*.onnx)')
  .option('--profiles <list>', 'device profiles', 'pcm')
  .option('--adc-bits <list>', 'ADC resolutions', '4,6,8')
  .option('--dac-bits <list>', 'DAC resolutions', '7')
  .option('--tiles <list>', 'square tile sizes (rows = cols)', '256')
  .option('--ages <list>', 'device ages after programming (drift)', '1h')
  .option('--targets <list>', 'target accuracies, % (iso-accuracy)', '85,88,90')
  .addOption(dataOption())
  .option('--limit <n>', 'evaluate the first N samples (default: all; 200 with --quick)', int(1))
  .option('--quick', 'a small sweep for a smoke test: 200 samples unless --limit')
  .option('-o, --out <file>', 'JSON result', 'fleet-dse.json')
  .option('--html <file>', 'also write the self-contained HTML report')
  .option('--no-progress', 'no progress bar')
  .action(async (opts) => (await import('./commands/fleet-dse.js')).fleetDseCommand(opts, globals()));

fleet.command('collect')
  .description('fleet figures from the devices\' MQTT messages only: latency, accuracy, energy, battery, fallbacks, events, lost, duplicated')
  .option('--url <url>', 'broker (default: config mqtt.url, else mqtt://127.0.0.1:1883)')
  .option('--fleet <fleet>', 'fleet, or + for every fleet', '+')
  .option('--share <group>', 'one of a shared-subscription group (MQTT 5): consumers of a group split the messages')
  .option('--results <n>', 'stop after N results', int(1))
  .option('--seconds <s>', 'stop after s seconds (exit 1 if --results was not reached); with --warmup, s seconds after the warm-up', positive)
  .option('--warmup <s>', 'for the first s seconds after subscribing, results are counted (lost, duplicated, accuracy) but not timed: this consumer\'s own start and the fleet\'s catch-up stay out of the latency figures', positive)
  .addOption(protocolOption())
  .option('--prefix <prefix>', 'topic prefix (default: config mqtt.prefix)')
  .option('-o, --out <file>', 'JSON result', 'fleet-metrics.json')
  .option('--html <file>', 'also write the self-contained HTML report')
  .option('--partial <file>', 'also write what this consumer saw in mergeable form (histograms, seq ranges), for `fleet bench`')
  .option('--stop-on <topic>', 'stop when a message arrives on this topic (`fleet bench` ends its consumers so)')
  .action(async (opts) => { await (await import('./commands/fleet-collect.js')).fleetCollectCommand(opts, globals()); });

fleet.command('agent')
  .description('run a share of a fleet for `fleet bench` coordinators over the broker: announce this machine, take signed scenarios, run the devices, report back (until Ctrl-C)')
  .option('--url <url>', 'broker (default: config mqtt.url, else mqtt://127.0.0.1:1883)')
  .requiredOption('--fleet <fleet>', 'fleet (as the fleet file names it)')
  .option('--id <id>', 'agent id (default: the host name)')
  .option('--workers <n>', 'worker threads for the devices (default: one per core); the coordinator gives agents shares in proportion', int(1))
  .option('--state-dir <dir>', 'devices\' state, one directory per run (or per scenario session): removed when the run ends cleanly with every message delivered, kept for diagnosis when it fails', 'fleet-agent-state')
  .option('--key-dir <dir>', 'trust store directory: with keys in it, only scenarios they signed run (default: config security.keyDir, else <state-dir>/keys)')
  .option('--key <file>', 'key file signing this agent\'s statuses and reports (coordinators with --agent-keys take signed agents only)')
  .option('--prefix <prefix>', 'topic prefix (default: config mqtt.prefix)')
  .addOption(protocolOption())
  .action(async (opts) => (await import('./commands/fleet-agent.js')).fleetAgentCommand(opts, globals()));

withScenarioOptions(fleet.command('bench')
  .description('coordinate a fleet benchmark over the broker: wait for N agents, split the fleet file among them, publish the signed scenario, measure through shared-subscription consumers, merge the report')
  .requiredOption('--devices <file>', 'fleet file (YAML or JSON)')
  .option('--agents <n>', 'agents to wait for', int(1), 1)
  .option('--url <url>', 'broker (default: config mqtt.url, else mqtt://127.0.0.1:1883)')
  .option('--duration <s>', 'seconds each agent runs its devices', aboveZero, 60)
  .option('--rate <hz>', 'inferences per second per device stream, for every device (default: the fleet file\'s rates)', aboveZero)
  .option('--consumers <n>', 'consumer processes on the shared subscription', int(1), 2)
  .option('--wait-agents <s>', 'give up when the agents are not there after s seconds', aboveZero, 120)
  .option('--start-timeout <s>', 'an agent whose devices are not all up this long after the scenario fails its run', aboveZero, 300)
  .option('--grace <s>', 'an agent silent this long (no heartbeat) is lost', aboveZero, 60)
  .option('--key <file>', 'operator key file signing the scenario (agents with a trust store need it)')
  .option('--agent-keys <dir>', 'trust store of agent keys: only agents signing with one of them take part (unsigned, forged and replayed agent messages refused)')
  .option('--run <id>', 'run id (default: from the time)')
  .option('--prefix <prefix>', 'topic prefix (default: config mqtt.prefix)')
  .option('-o, --out <file>', 'JSON result (on Ctrl-C/SIGTERM: the agents end the run, the report is partial, marked interrupted; exit 130/143)', 'fleet-bench.json')
  .option('--html <file>', 'also write the self-contained HTML report')
  .option('--no-progress', 'no progress bar')
  .option('--scenario <name>', 'a LoadGen scenario instead of the devices\' own streams: each agent\'s load generator issues its share (singlestream, multistream, server, offline)'),
  ' fleet-wide (split among the agents in proportion to their devices)')
  .action(async (opts) => { await (await import('./commands/fleet-bench.js')).fleetBenchCommand({ ...opts, durationS: opts.duration }, globals()); });

withScenarioOptions(fleet.command('devices')
  .description('the emulated devices of a fleet file (YAML/JSON), many per worker thread, each a whole edgerun device on the broker; until Ctrl-C or --seconds')
  .argument('<fleet-file>', 'fleet file: groups (count, profile, age, models, rateHz, seed, sign, battery) or generate: {devices, seed}')
  .option('--url <url>', 'broker (default: config mqtt.url)')
  .addOption(protocolOption())
  .option('--workers <n>', 'worker threads (default: one per core)', int(1))
  .option('--state-dir <dir>', 'each device keeps its outbox, progress and keys in <dir>/<device>/', 'fleet-state')
  .option('--seconds <s>', 'stop after s seconds', positive)
  .option('--prefix <prefix>', 'topic prefix (default: config mqtt.prefix)')
  .option('--sign', 'sign every device\'s messages (default: as the fleet file says per group)')
  .option('-d, --data <file>', 'EDGD data set each device replays (default: the bundled Fashion-MNIST subset)')
  .option('--interval <s>', 'seconds between progress lines', aboveZero, 5)
  .option('--drain-ms <ms>', 'on stop, wait at most this long per device for its outbox to be acknowledged', int(0), 10_000)
  .option('--scenario <name>', 'a LoadGen scenario issued to the devices by a load generator (they do not pace themselves): singlestream, multistream, server, offline; then stop'), '')
  .option('-o, --out <file>', 'with --scenario: JSON result (on Ctrl-C/SIGTERM: what was measured so far, marked interrupted; exit 130/143)', 'fleet-scenario.json')
  .option('--html <file>', 'with --scenario: also write the self-contained HTML report')
  .option('--no-progress', 'no progress bar')
  .action(async (file: string, opts) => { await (await import('./commands/fleet-devices.js')).fleetDevicesCommand(file, opts, globals()); });

fleet.command('compare')
  .description('compare two fleet results figure by figure; exit 1 when one got worse by more than --threshold')
  .argument('<a>', 'baseline JSON result')
  .argument('<b>', 'new JSON result')
  .option('--threshold <percent>', 'relative change counted as a regression', positive, 5)
  .option('--json', 'print one JSON object')
  .action(async (a: string, b: string, opts) => (await import('./commands/fleet-compare.js')).fleetCompareCommand(a, b, opts));

const keys = program.command('keys').description('ed25519 key pairs (files 0600) and the trust store of keys allowed to sign commands');
const keyDirOption = (): Option => new Option('--dir <dir>', 'key directory (default: config security.keyDir, else state/keys)');
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
  .option('--port <n>', 'MQTT TCP port (0 = a free port)', int(0, PORT_MAX), 1883)
  .option('--ws-port <n>', 'MQTT over WebSocket port (0 = a free port)', int(0, PORT_MAX), 8883)
  .option('--no-ws', 'no WebSocket listener')
  .option('--host <addr>', 'interface to listen on (0.0.0.0 = every interface)', '127.0.0.1')
  .action(async (opts) => (await import('./commands/broker.js')).brokerCommand(opts));

program.command('dashboard')
  .description('serve the live fleet dashboard (a web page talking to the broker over MQTT-over-WebSocket) until Ctrl-C')
  .option('--port <n>', 'HTTP port (0 = a free port)', int(0, PORT_MAX), 8080)
  .option('--host <addr>', 'interface to listen on (0.0.0.0 = every interface)', '127.0.0.1')
  .option('--broker-ws <url>', 'the broker\'s WebSocket URL the page connects to (default: config mqtt.url if ws:// or wss://, else ws://127.0.0.1:8883)')
  .option('--prefix <prefix>', 'topic prefix (default: config mqtt.prefix)')
  .action(async (opts) => (await import('./commands/dashboard.js')).dashboardCommand(opts, globals()));

program.command('listen')
  .description('print what a fleet publishes as JSON lines {topic, device, session, seq, ts, kind, body, signedBy?}, deduplicated on (device, signer, session, seq), with a summary')
  .option('--url <url>', 'broker: mqtt://, mqtts://, ws:// or wss://, optionally user:password@ (default: config mqtt.url, else mqtt://127.0.0.1:1883)')
  .option('--fleet <fleet>', 'fleet, or + for every fleet', '+')
  .option('--kinds <list>', 'comma-separated kinds: status, results, detections, telemetry, events (default: all)')
  .option('--share <group>', 'shared subscription ($share/<group>/...): the listeners of one group split the messages (Mosquitto, EMQX, HiveMQ; the embedded Aedes has none)')
  .option('--client-id <id>', 'persistent session under this client id: messages queued while away arrive on return', clientId)
  .option('--out <file>', 'append the JSON lines to this file instead of stdout')
  .option('--count <n>', 'exit after N unique messages', int(1))
  .option('--timeout <s>', 'exit after s seconds (exit 1 if --count was not reached or the broker was never reached)', positive)
  .option('--summary-every <s>', 'print the summary every s seconds too', positive)
  .option('--require-signed', 'ignore unsigned messages and messages signed by keys not in the trust store (counted in the summary)')
  .option('--key-dir <dir>', 'trust store directory (default: config security.keyDir, else state/keys)')
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
  .option('--state-dir <dir>', 'outbox, sequence, progress and (unless config security.keyDir is set) keys, trust store and replay state (default: config mqtt.stateDir = state)')
  .option('--url <url>', 'MQTT broker: mqtt://, mqtts://, ws:// or wss://, optionally user:password@ (default: config mqtt.url, else an embedded broker)')
  .addOption(protocolOption())
  .option('-q, --quiet', 'no log lines for events and commands')
  .action(async (opts) => (await import('./commands/serve.js')).serveCommand(opts, globals()));

const deploy = program.command('deploy').description('signed model bundles: build, sign, inspect, install locally, push to devices over MQTT');
const fraction = (v: string): number => {
  const n = Number(v);
  if (!(n >= 0 && n <= 1)) throw new InvalidArgumentError('expected a number from 0 to 1');
  return n;
};
deploy.command('build')
  .description('bundle a model: manifest (sha256 of each part, I/O spec, labels, profiles, guard thresholds), the ONNX file, canaries with their digital outputs')
  .argument('<model>', 'ONNX model file')
  .requiredOption('--version <semver>', 'version of this model, e.g. 1.2.0')
  .requiredOption('--canary <dataset>', 'EDGD data set whose first samples become the canaries')
  .option('--labels <file>', 'class names, one per line')
  .option('--profiles <list>', 'device profiles it is meant for, e.g. pcm,flash (default: any)')
  .option('--id <id>', 'model id the device\'s streams know it by (default: the file name without .onnx)')
  .option('--canary-count <n>', 'canaries taken from the data set', int(1), 32)
  .option('--min-agreement <x>', 'self-test: least top-1 agreement with the digital outputs', fraction, 0.9)
  .option('--min-cosine <x>', 'self-test: least mean cosine similarity with the digital outputs', fraction, 0.97)
  .option('--min-runtime <semver>', 'oldest edgerun that may run it (default: this one)')
  .option('-o, --out <file>', 'bundle file (default: <id>-<version>.bundle)')
  .option('--json', 'print one JSON object')
  .action(async (model: string, opts) => (await import('./commands/deploy.js')).deployBuildCommand(model, opts, globals()));
deploy.command('sign')
  .description('sign a bundle\'s manifest with an operator key (ed25519, the key files of `edgerun keys`)')
  .argument('<bundle>')
  .requiredOption('--key <file>', 'operator key file')
  .option('-o, --out <file>', 'write the signed bundle here (default: in place)')
  .option('--json', 'print one JSON object')
  .action(async (bundle: string, opts) => (await import('./commands/deploy.js')).deploySignCommand(bundle, opts, globals()));
deploy.command('inspect')
  .description('print a bundle\'s manifest and verify it: signature by a key of the trust store, every part\'s hash (exit 1 when it does not verify)')
  .argument('<bundle>')
  .option('--key-dir <dir>', 'trust store directory (default: config security.keyDir)')
  .option('--json', 'print one JSON object')
  .action(async (bundle: string, opts) => (await import('./commands/deploy.js')).deployInspectCommand(bundle, opts, globals()));
deploy.command('install')
  .description('install a bundle into the state directory of a device that is not running: verify, stage, self-test on its placement, switch')
  .argument('<bundle>')
  .option('--state-dir <dir>', 'the device\'s state directory (default: config mqtt.stateDir = state)')
  .option('-m, --model <file...>', 'the models the device serves (default: the bundled ones), as for `serve`')
  .option('-d, --data <file>', 'the data set its streams replay, as for `serve`')
  .option('--allow-downgrade', 'install an older version than the active one')
  .option('--json', 'print the final status as one JSON object')
  .action(async (bundle: string, opts) => (await import('./commands/deploy.js')).deployInstallCommand(bundle, opts, globals()));
/** The options push and rollout share: broker, operator key, how the bundle travels. */
const withTransferOptions = (cmd: Command): Command => cmd
  .requiredOption('--key <file>', 'operator key file the devices trust')
  .option('--url <url>', 'broker (default: config mqtt.url, else mqtt://127.0.0.1:1883)')
  .option('--prefix <prefix>', 'topic prefix (default: config mqtt.prefix)')
  .addOption(protocolOption())
  .option('--download-url <url>', 'the devices download the bundle from this http(s) URL instead of receiving chunks')
  .option('--chunk-size <bytes>', 'bytes per chunk', int(1024), 64 * 1024)
  .option('--allow-downgrade', 'allow an older version than the active one (the signed command says so)')
  .option('--timeout <s>', 'give up on a device that reports nothing for this long', positive, 120);

withTransferOptions(deploy.command('push')
  .description('deploy a signed bundle to devices over MQTT: a signed deploy command, then chunks (or a URL the device downloads); waits for each device\'s outcome')
  .argument('<bundle>')
  .requiredOption('--to <targets>', 'device ids, comma-separated; `fleet`: every online device of the fleet; `group:<name>`: those of one group (found from their births)')
  .option('--fleet <fleet>', 'fleet of the devices (default: config device.fleet)')
  .option('--discover <s>', 'with --to fleet or group:<name>: seconds to collect the devices\' retained births', positive, 3))
  .option('--json', 'one JSON line per device')
  .action(async (bundle: string, opts) => (await import('./commands/deploy.js')).deployPushCommand(bundle, opts, globals()));
withTransferOptions(deploy.command('rollout')
  .description('roll a signed bundle out to a fleet (or group) in cumulative waves found from the devices\' births; halts when a wave fails beyond the threshold (exit 1)')
  .argument('<bundle>')
  .requiredOption('--fleet <fleet>', 'fleet of the devices')
  .option('--group <group>', 'only devices whose birth names this group')
  .option('--waves <list>', 'cumulative percentages of the devices per wave, the last 100%', '10%,50%,100%')
  .option('--abort-failure-rate <rate>', 'halt when a wave\'s share of failed devices exceeds this (0..1)', fraction, 0.2)
  .option('--rollback-failed', 'when a wave halts the rollout, roll its activated devices back (signed rollback)')
  .option('--discover <s>', 'how long to collect the devices\' retained births', positive, 3))
  .option('--report <file>', 'write the JSON report here')
  .option('--json', 'print the JSON report instead of the table')
  .action(async (bundle: string, opts) => (await import('./commands/deploy.js')).deployRolloutCommand(bundle, opts, globals()));

program.command('detect')
  .description('a camera\'s detection stream: frames → detector (analog with digital fallback) → tracker → Frigate-style events, snapshots and counts over MQTT')
  .option('-s, --source <src>', 'synthetic, a video file, rtsp:// or http(s):// URL, /dev/video0, or dir:<path> of PNG/JPEG files (default: config detect.source = synthetic)')
  .option('--camera <name>', 'camera name in events and topics (default: config detect.camera = camera)')
  .option('--fps <n>', 'frames per second taken from the source (default: config detect.fps = 5)', positive)
  .option('-m, --model <file>', 'detector with a grid head (default: the bundled models/detector.onnx)')
  .option('--score <s>', 'score threshold (default: config detect.scoreThreshold = 0.5)', fraction)
  .option('--nms-iou <iou>', 'class-wise NMS overlap (default: config detect.nmsIou = 0.45)', fraction)
  .option('--detections-interval <ms>', 'per-frame `detections` messages at most every ms (0 = none; default: config detect.detectionsIntervalMs)', int(0))
  .option('--no-snapshots', 'no JPEG snapshots of tracks\' best frames')
  .option('--ha-discovery', 'announce per-label counts and the device status to Home Assistant (MQTT discovery)')
  .option('--zones <file>', 'JSON {"name": [[x, y], ...]} polygons in frame pixels (config detect.zones)')
  .option('--size <WxH>', 'synthetic camera frame size (default: the detector\'s input)')
  .option('--seed <n>', 'synthetic camera scene', int(0))
  .option('--frames <n>', 'synthetic camera: stop after N frames', int(1))
  .option('--seconds <s>', 'stop after s seconds', positive)
  .option('--state-dir <dir>', 'outbox and sequence state (default: config mqtt.stateDir = state)')
  .option('--url <url>', 'MQTT broker URL (default: config mqtt.url, else an embedded broker)')
  .option('-q, --quiet', 'no log lines for events and commands')
  .action(async (opts) => (await import('./commands/detect.js')).detectCommand(opts, globals()));

program.command('demo', { isDefault: false })
  .description('embedded broker + a demo device streaming both bundled models + a live listener, for a few seconds (what `npm start` runs)')
  .option('--seconds <s>', 'how long the device streams', positive, 20)
  .option('--rate <hz>', 'inferences per second per model', positive, 10)
  .action(async (opts) => (await import('./commands/demo.js')).demoCommand(opts, globals()));

/** `edgerun <command…> --help` for the command named on the command line, for usage errors. */
function helpFor(argv: readonly string[]): string {
  const names = ['edgerun'];
  let command = program;
  for (const arg of argv) {
    if (arg.startsWith('-')) continue;
    const sub = command.commands.find((c) => c.name() === arg);
    if (!sub) continue;
    names.push(arg);
    command = sub;
  }
  return `${names.join(' ')} --help`;
}

try {
  const args = process.argv.slice(2);
  if (args.length === 1 && (args[0] === '-V' || args[0] === '--version')) console.log(version);
  else await program.parseAsync();
} catch (e) {
  if (e instanceof CommanderError && (e.code === 'commander.helpDisplayed' || e.code === 'commander.version')) {
    process.exitCode = 0;
  } else if (e instanceof CommanderError && e.code === 'commander.help') {
    process.exitCode = 2; // no command given: the help went to stderr
  } else if (e instanceof CommanderError) {
    console.error(`edgerun: ${e.message.replace(/^error: /, '')} (see \`${helpFor(process.argv.slice(2))}\`)`);
    process.exitCode = 2;
  } else {
    console.error(`edgerun: ${(e as Error).message}`);
    process.exitCode = process.exitCode || 2;
  }
}
