/** The emulated analog accelerator and its device profiles. */
export { CrossbarEmulator, AcceleratorFault, type EmulatorOptions } from './emulator.js';
export {
  loadProfile, listProfiles, parseProfile, withOverrides, overridesFromFlags, isDigitalExact, profileSchema, ProfileError,
  type DeviceProfile, type ProfileOverrides, type DeepPartial,
} from './profile.js';
export { Random } from './random.js';
