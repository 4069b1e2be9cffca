/**
 * A scripted BatteryManager (the Battery Status API's one object per page) for web unit tests;
 * `unplug()` is the machine going on battery.
 */
export class FakeBattery extends EventTarget {
  charging = true;
  level = 1;
  unplug(): void {
    this.charging = false;
    this.dispatchEvent(new Event("chargingchange"));
  }
}
