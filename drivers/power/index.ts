/** Power sensors on Linux sysfs, and a simulated battery and load for devices and fleets without one. */
export { detectSensors, primarySensor, type DetectOptions } from './detect.js';
export { ExternalSupplySensor, PowerSupplySensor, powerSupplySensor } from './power-supply.js';
export { findIioIna3221, IioIna3221Sensor } from './iio-ina3221.js';
export { HwmonSensor, hwmonIdentity, hwmonRole, type HwmonOptions, type HwmonRole } from './hwmon.js';
export { RaplSensor } from './rapl.js';
export { ThermalZoneSensor } from './thermal-zone.js';
export { MAX_ATTRIBUTE_BYTES, SysfsError } from './sysfs.js';
export { LI_ION_OCV, SimulatedBattery, type SimulatedBatteryOptions } from './simulated-battery.js';
export { SimulatedLoad, type SimulatedLoadOptions } from './simulated-load.js';
