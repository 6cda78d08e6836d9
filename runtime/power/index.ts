/** Power budgets: energy model, accounting, governor. Sensors live in drivers/power. */
export { type Clock, ManualClock, systemClock } from './clock.js';
export type { PowerChannel, PowerReading, PowerSensor, SensorDescription, SensorKind } from './sensor.js';
export {
  conversionEnergyPj, converterEnergySchema, DEFAULT_DEVICE_ENERGY, DEFAULT_HOST_ENERGY, deviceEnergyOf, deviceEnergySchema,
  type ConverterEnergy, type DeviceEnergy, type HostEnergy,
} from './energy-constants.js';
export { addWork, estimateWork, NO_WORK, workFromTileCounters, type InferenceWork, type PeripheryNodes, type Placement, type TileGeometry } from './work.js';
export { addBreakdown, EnergyModel, ZERO_BREAKDOWN, type ConverterBits, type EnergyBreakdown } from './energy-model.js';
export { InferenceCostTable, type InferenceCosts } from './inference-costs.js';
export { EnergyLedger, type EnergyEstimate, type EnergySnapshot } from './ledger.js';
export { PowerMeter } from './power-meter.js';
export { BOARD_INPUT_RAIL, chooseRail, railChannel, railReading, type IndexedChannel, type RailChoice } from './rails.js';
export { SumSensor } from './sum-sensor.js';
export { MeteredModel, type MeteredRun } from './metered-model.js';
export { observedSummary } from './model-summary.js';
export { GOVERNOR_ACTIONS, governorPolicySchema, mergePolicy, PolicyError, type ActionKind, type GovernorPolicy, type GovernorPolicyInput } from './policy.js';
export type { GovernedStream, GovernedSystem } from './governed-system.js';
export { Governor, type DecisionNumbers, type GovernorEvent, type GovernorOptions, type GovernorStatus, type LimitReason } from './governor.js';
export type { Step } from './governor-steps.js';
