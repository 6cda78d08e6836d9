/** Power sensors on Linux sysfs, and a simulated battery and load for devices and fleets without one. */
export { detectSensors, primarySensor, type DetectOptions } from './detect.js';
export { PowerSupplySensor } from './power-supply.js';
export { HwmonSensor, type HwmonOptions } from './hwmon.js';
export { RaplSensor } from './rapl.js';
export { ThermalZoneSensor } from './thermal-zone.js';
export { SysfsError } from './sysfs.js';
export { LI_ION_OCV, SimulatedBattery, type SimulatedBatteryOptions } from './simulated-battery.js';
export { SimulatedLoad, type SimulatedLoadOptions } from './simulated-load.js';
